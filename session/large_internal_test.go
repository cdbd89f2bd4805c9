package session

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// callLog is a subscriber that logs each call it gets: "send a",
// "batch a b", "large c". Refuse makes the call with that frame refuse.
type callLog struct {
	calls  []string
	refuse string
}

func (l *callLog) ClientID() string { return "c" }

func (l *callLog) Send(frame []byte) bool {
	l.calls = append(l.calls, "send "+name(frame))
	return name(frame) != l.refuse
}

func (l *callLog) take(kind string, frames [][]byte) bool {
	names := make([]string, len(frames))
	for i, f := range frames {
		names[i] = name(f)
	}
	l.calls = append(l.calls, kind+" "+strings.Join(names, " "))
	return !slices.Contains(names, l.refuse)
}

// name is a test frame's name: its first byte.
func name(frame []byte) string { return string(frame[:1]) }

// batchLog takes batches; largeLog takes batches and large frames.
type batchLog struct{ callLog }
type largeLog struct{ batchLog }

func (l *batchLog) SendBatch(frames [][]byte) bool { return l.take("batch", frames) }

func (l *largeLog) SendLarge(f LargeFrame, _ bool) error {
	var buf bytes.Buffer
	_, _ = f.WriteTo(&buf)
	if !l.take("large", [][]byte{buf.Bytes()}) {
		return ErrSlow
	}
	return nil
}

// TestSendFrames: frames go out in order, small ones in batches where the
// subscriber takes them, large ones as large frames where it takes them,
// and nothing after a refusal.
func TestSendFrames(t *testing.T) {
	small := func(n string) []byte { return []byte(n) }
	large := func(n string) []byte { return append([]byte(n), bytes.Repeat([]byte{'x'}, eagerMax)...) }
	abc := [][]byte{small("a"), small("b"), small("c")}
	mixed := [][]byte{small("a"), small("b"), large("L"), small("c"), large("M"), large("N"), small("d"), small("e")}
	for _, tc := range []struct {
		name   string
		sub    func() (Subscriber, *callLog)
		frames [][]byte
		refuse string
		want   []string
		ok     bool
	}{
		{"plain", plain, abc, "", []string{"send a", "send b", "send c"}, true},
		{"batches", batches, abc, "", []string{"batch a b c"}, true},
		{"one", batches, abc[:1], "", []string{"batch a"}, true},
		{"large between batches", larges, mixed, "",
			[]string{"batch a b", "large L", "batch c", "large M", "large N", "batch d e"}, true},
		{"large to a batcher that takes no large frames", batches, mixed, "",
			[]string{"batch a b L c M N d e"}, true},
		{"large to a plain subscriber", plain, mixed[1:4], "", []string{"send b", "send L", "send c"}, true},
		{"refused batch", larges, mixed, "b", []string{"batch a b"}, false},
		{"refused large", larges, mixed, "M", []string{"batch a b", "large L", "batch c", "large M"}, false},
		{"refused send", plain, abc, "b", []string{"send a", "send b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, log := tc.sub()
			log.refuse = tc.refuse
			if ok := sendFrames(sub, tc.frames); ok != tc.ok {
				t.Errorf("sendFrames returned %v, want %v", ok, tc.ok)
			}
			if !slices.Equal(log.calls, tc.want) {
				t.Errorf("calls %q, want %q", log.calls, tc.want)
			}
		})
	}
}

func plain() (Subscriber, *callLog) { l := &callLog{}; return l, l }
func batches() (Subscriber, *callLog) {
	l := &batchLog{}
	return l, &l.callLog
}
func larges() (Subscriber, *callLog) {
	l := &largeLog{}
	return l, &l.callLog
}
