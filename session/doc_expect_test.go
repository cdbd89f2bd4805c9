package session_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// TestExpectedWrites: a document lends the op log (storage.DB.ExpectWrites)
// the editors acked in its latest round of commits, takes each back when
// its next op comes, drops the ones of the round before when a round
// ends without them, and gives everything back when the editors stop for
// expectFor, or when the session ends. Not parallel: it lengthens
// expectFor for every document.
func TestExpectedWrites(t *testing.T) {
	session.SetExpectFor(t, time.Minute)
	docs, st := newFaultyDocs(t, time.Minute)
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, "d")
	bob.open(docs, "d")
	expected := func(want int, after string) {
		t.Helper()
		testwait.For(t, 10*time.Second, fmt.Sprintf("%d expected writes after %s", want, after), func() bool {
			return st.ExpectedWrites() == want
		})
		time.Sleep(20 * time.Millisecond) // and it stays so
		if got := st.ExpectedWrites(); got != want {
			t.Fatalf("after %s: %d expected writes, want %d", after, got, want)
		}
	}
	expected(0, "opening")
	ann.answer(ann.op(docs, "d", 0, ot.Op{ot.Insert("a")}, "a1"))
	expected(1, "ann's op")     // ann may send again
	hold := make(chan struct{}) // ann's next op is durable, but the session hears it late
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // before the cleanup's Close waits for the op
	st.set(func(f *faultyStore) { f.holdDone = hold })
	id := ann.op(docs, "d", 1, ot.Op{ot.Retain(1), ot.Insert("b")}, "a2")
	expected(0, "ann's second op came") // taken back
	st.set(func(f *faultyStore) { f.holdDone = nil })
	release()
	ann.answer(id)
	expected(1, "ann's second op was acked") // lent again
	bob.answer(bob.op(docs, "d", 2, ot.Op{ot.Retain(2), ot.Insert("c")}, "b1"))
	expected(1, "bob's op") // bob now; ann did not come back in that round
	docs.Close()
	expected(0, "the end of the session")
}

// TestExpectedWritesSettle: editors sending ops as fast as they are acked
// leave nothing lent to the op log once they stop (expectFor after the
// last commit), however their ops fell into rounds.
func TestExpectedWritesSettle(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	const editors, ops = 6, 30
	var wg sync.WaitGroup
	var mu sync.Mutex // serialises the version each editor builds on
	version := 0
	for e := range editors {
		r := newRecorder(t, fmt.Sprintf("e%d", e))
		r.open(docs, "d")
		wg.Go(func() {
			for i := range ops {
				mu.Lock()
				v := version
				mu.Unlock()
				op := ot.Op{ot.Insert("x")} // every op inserts one: v is the length at v
				if v > 0 {
					op = ot.Op{ot.Retain(v), ot.Insert("x")}
				}
				a := r.answer(r.op(docs, "d", v, op, fmt.Sprintf("%s-%d", r.id, i)))
				if a["type"] == nil || string(a["type"]) != `"ack"` {
					t.Errorf("%s's op %d: %s, want an ack", r.id, i, a["type"])
					return
				}
				mu.Lock()
				version = max(version, num(a["version"])+1)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	testwait.For(t, 10*time.Second, "nothing lent to the op log after the editors stopped", func() bool {
		return st.ExpectedWrites() == 0
	})
}
