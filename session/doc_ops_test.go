package session_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// Tests of the op pipeline (doc_ops.go), driven directly: a document's
// session over a real bbolt file, clients that record what they are sent.

// TestOpsTransformedAckedAndBroadcast: two editors make an op each against
// version 0; the second is transformed over the first (the first's insert
// stands first), each author gets an ack with the version its op applied
// to, the other gets the op as applied, and a new reader sees the result.
func TestOpsTransformedAckedAndBroadcast(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, time.Minute)
	const id = "pipeline"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	a := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("hello")}, "ann-1"))
	b := bob.answer(bob.op(docs, id, 0, ot.Op{ot.Insert("world")}, "bob-1"))
	if str(a["type"]) != "ack" || num(a["version"]) != 0 || str(b["type"]) != "ack" || num(b["version"]) != 1 {
		t.Fatalf("acks %s and %s, want versions 0 and 1", mustJSON(t, a), mustJSON(t, b))
	}
	// Bob's op reaches ann transformed to apply after hers.
	op := ann.wait("bob's op", func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && str(m["uid"]) == "bob-1" })
	if got := string(op["op"]); got != `[5,"world"]` || num(op["version"]) != 1 {
		t.Fatalf("ann got bob's op as %s at v%d, want [5,\"world\"] at v1", got, num(op["version"]))
	}
	if !bob.saw(func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && str(m["uid"]) == "ann-1" }) {
		t.Fatal("bob never got ann's op")
	}
	if ann.saw(func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && str(m["uid"]) == "ann-1" }) {
		t.Fatal("ann got her own op back as an op (she gets an ack)")
	}
	snap := newRecorder(t, "cat").open(docs, id)
	if str(snap["content"]) != "helloworld" || num(snap["version"]) != 2 {
		t.Fatalf("a new reader sees %s", mustJSON(t, snap))
	}
}

// TestOpAckedOnlyWhenDurable: while storage has not reported an op
// durable, its author gets no ack and nobody else gets the op; once it
// does, both come.
func TestOpAckedOnlyWhenDurable(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	const id = "durable"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	release := make(chan struct{})
	st.set(func(f *faultyStore) { f.holdDone = release })
	req := ann.op(docs, id, 0, ot.Op{ot.Insert("x")}, "ann-1")
	// The op is stored by now (the hold is on its report): give the
	// session every chance to answer early.
	time.Sleep(200 * time.Millisecond)
	if ann.saw(ofType("ack")) || bob.saw(ofType("op")) {
		t.Fatal("an op was acked or broadcast before storage reported it durable")
	}
	st.set(func(f *faultyStore) { f.holdDone = nil })
	close(release)
	if a := ann.answer(req); str(a["type"]) != "ack" {
		t.Fatalf("answer %s, want an ack", mustJSON(t, a))
	}
	bob.wait("ann's op", ofType("op"))
}

// TestOpsDeliveredByRound: ops that become durable while the document's
// goroutine is busy reach each member in one batch, in version order: an
// ack for its own op, the others' ops.
func TestOpsDeliveredByRound(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	const id = "rounds"
	eds := []*recorder{newRecorder(t, "ann"), newRecorder(t, "bob"), newRecorder(t, "cat")}
	dan := newRecorder(t, "dan")
	for _, r := range append(eds, dan) {
		r.open(docs, id)
	}
	release := make(chan struct{})
	st.set(func(f *faultyStore) { f.holdDone = release })
	reqs := make([]*int64, len(eds))
	for i, r := range eds {
		reqs[i] = r.op(docs, id, 0, ot.Op{ot.Insert(r.user.ID)}, r.user.ID+"-1")
	}
	testwait.For(t, 10*time.Second, "the three appends", func() bool {
		return st.appendsOf("ann-1")+st.appendsOf("bob-1")+st.appendsOf("cat-1") == 3
	})
	// Hold the document's goroutine in a send to cat (dan's cursor) while
	// storage reports the three ops durable.
	entered, open := make(chan struct{}), make(chan struct{})
	cat := eds[2]
	cat.mu.Lock()
	cat.gate = sync.OnceFunc(func() { close(entered); <-open })
	cat.mu.Unlock()
	docs.Cursor(dan.client(), dan.newID(), id, 0, []ot.Selection{{}})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("dan's cursor never reached cat")
	}
	st.set(func(f *faultyStore) { f.holdDone = nil })
	close(release)
	testwait.For(t, 10*time.Second, "the three reports", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.reported == 3
	})
	close(open)
	for i, r := range eds {
		if a := r.answer(reqs[i]); str(a["type"]) != "ack" || num(a["version"]) != i {
			t.Fatalf("%s's answer %s, want an ack at v%d", r.user.ID, mustJSON(t, a), i)
		}
	}
	for i, r := range append(eds, dan) {
		r.wait("the last op", func(m map[string]json.RawMessage) bool {
			return str(m["type"]) == "op" && num(m["version"]) == 2 || str(m["type"]) == "ack" && num(m["version"]) == 2
		})
		r.mu.Lock()
		var got []string
		for _, m := range r.frames {
			if typ := str(m["type"]); typ == "op" || typ == "ack" {
				got = append(got, fmt.Sprintf("%s v%d", typ, num(m["version"])))
			}
		}
		batches := slices.Clone(r.batches)
		r.mu.Unlock()
		want := []string{"op v0", "op v1", "op v2"}
		if i < len(eds) {
			want[i] = fmt.Sprintf("ack v%d", i)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s got %q, want %q", r.user.ID, got, want)
		}
		if !slices.Equal(batches, []int{3}) {
			t.Errorf("%s got batches of %v frames, want one of 3", r.user.ID, batches)
		}
	}
}

// TestOpResentIsAckedWithItsVersion: an op sent again with a uid the
// document has applied is acked with the version it applied at, and
// nothing is applied twice, whether the original is still in flight or
// already acked.
func TestOpResentIsAckedWithItsVersion(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	const id = "resent"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("a")}, "ann-1"))
	// In flight: the resend waits for the original's commit.
	release := make(chan struct{})
	st.set(func(f *faultyStore) { f.holdDone = release })
	first := ann.op(docs, id, 1, ot.Op{ot.Insert("b")}, "ann-2")
	again := ann.op(docs, id, 1, ot.Op{ot.Insert("b")}, "ann-2")
	st.set(func(f *faultyStore) { f.holdDone = nil })
	close(release)
	for _, req := range []*int64{first, again} {
		if a := ann.answer(req); str(a["type"]) != "ack" || num(a["version"]) != 1 {
			t.Fatalf("answer %s, want an ack at v1", mustJSON(t, a))
		}
	}
	// Acked already: the resend is answered at once.
	if a := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("a")}, "ann-1")); str(a["type"]) != "ack" || num(a["version"]) != 0 {
		t.Fatalf("answer %s, want an ack at v0", mustJSON(t, a))
	}
	if n := st.appendsOf("ann-2"); n != 1 {
		t.Fatalf("ann-2 reached storage %d times", n)
	}
	if snap := newRecorder(t, "cat").open(docs, id); str(snap["content"]) != "ba" && str(snap["content"]) != "ab" || num(snap["version"]) != 2 {
		t.Fatalf("document %s, want two ops applied once each", mustJSON(t, snap))
	}
}

// TestOpRefusals: an op the pipeline must refuse gets an error naming why
// and changes nothing.
func TestOpRefusals(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.MaxOpBytes = 16
		c.MaxDocLen = 20
		c.OpRate, c.OpBurst = 0.001, 8
	})
	const id = "refusals"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("abc")}, "ok-1"))
	ann.answer(ann.op(docs, id, 1, ot.Op{ot.Retain(3), ot.Insert(strings.Repeat("k", 15))}, "ok-2")) // 18 code points
	stranger := newRecorder(t, "stranger")                                                           // has not opened it
	for _, tc := range []struct {
		name    string
		by      *recorder
		version int
		op      ot.Op
		uid     string
		want    string
	}{
		{"not open", stranger, 2, ot.Op{ot.Insert("x")}, "s-1", "not open"},
		{"future version", ann, 5, ot.Op{ot.Insert("x")}, "f-1", "at most v2"},
		{"no uid", ann, 2, ot.Op{ot.Insert("x")}, "", "uid"},
		{"uid too long", ann, 2, ot.Op{ot.Insert("x")}, strings.Repeat("u", 129), "uid"},
		{"past the end", ann, 2, ot.Op{ot.Retain(19), ot.Insert("x")}, "p-1", "past"},
		{"inserts too much", ann, 2, ot.Op{ot.Insert(strings.Repeat("y", 17))}, "big-1", "at most 16"},
		{"document too long", ann, 2, ot.Op{ot.Insert("zzz")}, "long-1", "at most 20"},
	} {
		f := tc.by.answer(tc.by.op(docs, id, tc.version, tc.op, tc.uid))
		if str(f["type"]) != "error" || !strings.Contains(str(f["message"]), tc.want) {
			t.Errorf("%s: answer %s, want an error saying %q", tc.name, mustJSON(t, f), tc.want)
		}
	}
	// The burst of 8 is spent by now (two ok and the refused ones that got
	// as far as the limiter or past it); more ops are refused for rate.
	var limited bool
	for i := range 8 {
		f := ann.answer(ann.op(docs, id, 2, ot.Op{ot.Insert("r")}, "rate-"+string(rune('a'+i))))
		if str(f["type"]) == "error" && strings.Contains(str(f["message"]), "too many ops") {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("an editor over its op rate was never refused")
	}
	snap := newRecorder(t, "cat").open(docs, id)
	if c := strings.ReplaceAll(str(snap["content"]), "r", ""); c != "abc"+strings.Repeat("k", 15) {
		t.Fatalf("a refused op changed the document: %q", c)
	}
}
