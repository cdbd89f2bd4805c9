package session_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// indexOf returns the index of the first frame match accepts, or -1.
func (r *recorder) indexOf(match func(map[string]json.RawMessage) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.IndexFunc(r.frames, match)
}

func ackOf(id *int64) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool { return str(m["type"]) == "ack" && num(m["id"]) == int(*id) }
}

func opAt(v int) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && num(m["version"]) == v }
}

// TestBroadcastWindowHolds: with a broadcast window, a document of at
// least BroadcastMembers members holds its durable ops (acks included)
// and the broadcasts that follow them (cursors) until the window ends, or
// sends them before anything else: a member's own op or cursor sends it
// its held frames, any other request everyone's, in order. A smaller
// document sends at once.
func TestBroadcastWindowHolds(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.BroadcastWindow = time.Hour // only something else sends what it holds
		c.BroadcastMembers = 3
	})
	const id = "window"
	ann, bob, cat := newRecorder(t, "ann"), newRecorder(t, "bob"), newRecorder(t, "cat")
	ann.open(docs, id)
	bob.open(docs, id)
	// Two members: below the threshold, nothing is held.
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("a")}, "ann-1"))
	bob.wait("ann's first op", opAt(0))

	cat.open(docs, id)
	second := ann.op(docs, id, 1, ot.Op{ot.Retain(1), ot.Insert("b")}, "ann-2")
	time.Sleep(200 * time.Millisecond) // the op is durable long before this
	if ann.saw(ackOf(second)) || bob.saw(opAt(1)) || cat.saw(opAt(1)) {
		t.Fatal("an op was sent before the window ended, with nothing else to send")
	}
	// bob's cursor: bob gets what is held for him; his cursor joins what
	// is held for the others.
	docs.Cursor(bob.client(), nil, id, 1, []ot.Selection{{Anchor: 1, Head: 1}})
	bob.wait("ann's second op", opAt(1))
	isCursor := func(m map[string]json.RawMessage) bool { return str(m["type"]) == "cursor" }
	time.Sleep(100 * time.Millisecond)
	if ann.saw(ackOf(second)) || ann.saw(isCursor) || cat.saw(opAt(1)) || cat.saw(isCursor) {
		t.Fatal("bob's cursor sent the others what was held for them")
	}
	// ann's next op: ann gets hers, in order.
	third := ann.op(docs, id, 2, ot.Op{ot.Retain(2), ot.Insert("c")}, "ann-3")
	ann.wait("bob's cursor", isCursor)
	if a, c := ann.indexOf(ackOf(second)), ann.indexOf(isCursor); a < 0 || a > c {
		t.Fatalf("ann's ack at frame %d, bob's cursor at %d: want the ack first", a, c)
	}
	if cat.saw(opAt(1)) {
		t.Fatal("ann's op sent cat what was held for it")
	}
	// dan opens: everyone gets everything held, in order.
	newRecorder(t, "dan").open(docs, id)
	cat.wait("ann's third op", opAt(2))
	if o, c, o2 := cat.indexOf(opAt(1)), cat.indexOf(isCursor), cat.indexOf(opAt(2)); o < 0 || o > c || c > o2 {
		t.Fatalf("cat got ann's second op at frame %d, bob's cursor at %d, ann's third op at %d: want them in that order", o, c, o2)
	}
	ann.answer(third)
	bob.wait("ann's third op", opAt(2))
}

// TestBroadcastWindowEnds: what a window holds goes out when it ends, each
// member's in one batch.
func TestBroadcastWindowEnds(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.BroadcastWindow = time.Second
		c.BroadcastMembers = 2
	})
	const id = "window-ends"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	start := time.Now()
	reqs := []*int64{
		ann.op(docs, id, 0, ot.Op{ot.Insert("a")}, "ann-1"),
		bob.op(docs, id, 0, ot.Op{ot.Insert("b")}, "bob-1"),
	}
	ann.answer(reqs[0])
	bob.answer(reqs[1])
	if took := time.Since(start); took < time.Second {
		t.Fatalf("acked after %v, within the window of 1s", took)
	}
	ann.wait("bob's op", opAt(1))
	bob.wait("ann's op", opAt(0))
	for _, r := range []*recorder{ann, bob} {
		r.mu.Lock()
		batches := slices.Clone(r.batches)
		r.mu.Unlock()
		if !slices.Equal(batches, []int{2}) {
			t.Errorf("%s got batches of %v frames, want the window's in one", r.user.ID, batches)
		}
	}
}

// TestBroadcastWindowLendsNothing: a document whose acks the window holds
// does not lend its editors to the op log as writes to come (their acks
// come too late for a commit to wait for their next ops); below the
// window's threshold it does. Not parallel: it lengthens expectFor.
func TestBroadcastWindowLendsNothing(t *testing.T) {
	session.SetExpectFor(t, time.Minute)
	docs, st := newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.BroadcastWindow = time.Hour
		c.BroadcastMembers = 3
	})
	ann, bob, cat := newRecorder(t, "ann"), newRecorder(t, "bob"), newRecorder(t, "cat")
	ann.open(docs, "small")
	bob.open(docs, "small")
	ann.answer(ann.op(docs, "small", 0, ot.Op{ot.Insert("a")}, "ann-1"))
	waitFor(t, "ann lent as a write to come", func() bool { return st.ExpectedWrites() == 1 })
	docs.Close()
	waitFor(t, "everything given back", func() bool { return st.ExpectedWrites() == 0 })

	docs, st = newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.BroadcastWindow = time.Hour
		c.BroadcastMembers = 3
	})
	for _, r := range []*recorder{ann, bob, cat} {
		r.open(docs, "big")
	}
	ann.op(docs, "big", 0, ot.Op{ot.Insert("a")}, "ann-2")
	time.Sleep(200 * time.Millisecond) // durable, and held
	if n := st.ExpectedWrites(); n != 0 {
		t.Fatalf("%d writes expected from a document whose acks are held, want 0", n)
	}
}
