package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/internal/testwait"
)

// contention is the outcome of contend.
type contention struct {
	acked     map[string]int // uid → version acknowledged to its writer
	conflicts int64
	total     int
	maxPause  time.Duration // the longest time without any acknowledgement
}

// contend makes each store in stores append opsEach ops to document id,
// in batches of 1 to 3 at the version it believes is the head, all at
// once. A writer that loses the compare-and-append reads the ops it missed
// (checking none of them is its own) and tries again at the new head; one
// whose append failed otherwise (a server going away) looks its batch's
// first uid up from its base, as a client's resend would, before trying
// again. progress counts the ops acknowledged so far.
func contend(t *testing.T, stores []*Store, id string, opsEach int, progress *atomic.Int64) contention {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	out := contention{acked: map[string]int{}, total: len(stores) * opsEach}
	lastAck := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for w, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			head, done, n := 0, 0, 0
			for done < opsEach {
				if ctx.Err() != nil {
					errs <- fmt.Errorf("writer %d: %d of %d ops: %w", w, done, opsEach, ctx.Err())
					return
				}
				k := min(1+r.IntN(3), opsEach-done)
				recs := make([]doc.OpRecord, k)
				for i := range recs {
					recs[i] = doc.OpRecord{Version: head + i, Op: insertAt(0, 0, fmt.Sprintf("%c", 'a'+w)),
						UID: fmt.Sprintf("w%d-%d", w, n+i), ClientID: fmt.Sprintf("w%d", w)}
				}
				err := s.AppendOps(ctx, id, recs)
				var ce *ConflictError
				switch {
				case err == nil:
				case errors.As(err, &ce):
					atomic.AddInt64(&out.conflicts, 1)
					missed, err := s.OpsCtx(ctx, id, head, int(ce.Have))
					if err != nil {
						errs <- fmt.Errorf("writer %d: read missed ops [%d, %d): %w", w, head, ce.Have, err)
						return
					}
					for _, m := range missed {
						for _, mine := range recs {
							if m.UID == mine.UID {
								errs <- fmt.Errorf("writer %d: lost the append of %s but finds it at v%d", w, m.UID, m.Version)
								return
							}
						}
					}
					head = int(ce.Have)
					continue
				default:
					rec, found, ferr := s.FindUID(ctx, id, recs[0].UID, head)
					if ferr != nil || !found {
						t.Logf("writer %d: append at v%d failed (%v); not stored (%v), trying again", w, head, err, ferr)
						if info, gerr := s.GetDoc(id); gerr == nil {
							head = info.Version
						}
						continue
					}
					if rec.Version != head {
						errs <- fmt.Errorf("writer %d: its batch from v%d was stored at v%d", w, head, rec.Version)
						return
					}
				}
				mu.Lock()
				for _, rec := range recs {
					out.acked[rec.UID] = rec.Version
				}
				now := time.Now()
				out.maxPause = max(out.maxPause, now.Sub(lastAck))
				lastAck = now
				mu.Unlock()
				head += k
				done += k
				n += k
				progress.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// checkLog reads the whole log of id and checks it against what contend
// acknowledged: every version once, every uid once, every acknowledged op
// at the version its writer was told.
func checkLog(t *testing.T, s *Store, id string, c contention) []doc.OpRecord {
	t.Helper()
	info, err := s.GetDoc(id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != c.total {
		t.Fatalf("head v%d, want v%d (every op once)", info.Version, c.total)
	}
	all, err := s.Ops(id, 0, c.total)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, rec := range all {
		if rec.Version != i {
			t.Fatalf("op %d has version %d", i, rec.Version)
		}
		if v, dup := seen[rec.UID]; dup {
			t.Fatalf("uid %s at v%d and v%d", rec.UID, v, rec.Version)
		}
		seen[rec.UID] = rec.Version
	}
	for uid, v := range c.acked {
		if seen[uid] != v {
			t.Fatalf("acknowledged %s at v%d, the log has it at v%d", uid, v, seen[uid])
		}
	}
	if len(c.acked) != c.total {
		t.Fatalf("%d ops acknowledged, want %d", len(c.acked), c.total)
	}
	return all
}

func TestAppendContention(t *testing.T) {
	srv := natstest.Run(t)
	var stores []*Store
	for i := range 4 {
		stores = append(stores, open(t, testConfig(t, srv.ClientURL(), fmt.Sprintf("n%d", i+1))))
	}
	const id = "contended"
	if _, err := stores[0].CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	// A follower on a fifth connection sees every op, in order.
	fs := open(t, testConfig(t, srv.ClientURL(), "follower"))
	var fmu sync.Mutex
	var followed []doc.OpRecord
	f, err := fs.FollowOps(bg, id, 0, func(recs []doc.OpRecord) {
		fmu.Lock()
		followed = append(followed, recs...)
		fmu.Unlock()
	}, func(err error) { t.Errorf("follower: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer f()

	var progress atomic.Int64
	c := contend(t, stores, id, 60, &progress)
	all := checkLog(t, stores[0], id, c)
	t.Logf("%d ops by 4 writers, %d conflicts", c.total, c.conflicts)
	if c.conflicts == 0 {
		t.Log("no conflict at all: the writers did not overlap")
	}
	testwait.For(t, 10*time.Second, "the follower to see every op", func() bool {
		fmu.Lock()
		defer fmu.Unlock()
		return len(followed) >= c.total
	})
	fmu.Lock()
	defer fmu.Unlock()
	if len(followed) != c.total {
		t.Fatalf("follower saw %d ops, want %d", len(followed), c.total)
	}
	for i, rec := range followed {
		if rec.Version != i || rec.UID != all[i].UID {
			t.Fatalf("follower's op %d: v%d %s, log has v%d %s", i, rec.Version, rec.UID, all[i].Version, all[i].UID)
		}
	}
	// A follower started mid-log starts exactly there.
	var mid []doc.OpRecord
	var mmu sync.Mutex
	f2, err := fs.FollowOps(bg, id, 101, func(recs []doc.OpRecord) {
		mmu.Lock()
		mid = append(mid, recs...)
		mmu.Unlock()
	}, func(err error) { t.Errorf("follower: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer f2()
	testwait.For(t, 10*time.Second, "the mid-log follower", func() bool {
		mmu.Lock()
		defer mmu.Unlock()
		return len(mid) == c.total-101
	})
	if mid[0].Version != 101 {
		t.Fatalf("mid-log follower starts at v%d", mid[0].Version)
	}
}

func TestAppendOpAsyncGroupCommit(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, testConfig(t, srv.ClientURL(), "a"))
	b := open(t, testConfig(t, srv.ClientURL(), "b"))
	const id = "async"
	if _, err := a.CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	results := make(chan error, n)
	for v := range n {
		a.AppendOpAsync(id, doc.OpRecord{Version: v, Op: insertAt(0, 0, "x"), UID: fmt.Sprintf("u%d", v)}, func(err error) { results <- err })
	}
	for range n {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	info, err := a.GetDoc(id)
	if err != nil || info.Version != n {
		t.Fatalf("after %d async appends: v%d %v", n, info.Version, err)
	}
	r, _ := a.loadRef(bg, id)
	si, err := a.ops.Info(bg, jetstream.WithSubjectFilter(r.subj))
	if err != nil {
		t.Fatal(err)
	}
	msgs := si.State.Subjects[r.subj]
	t.Logf("%d ops in %d messages", n, msgs)
	if msgs >= n {
		t.Fatalf("%d ops took %d messages: no group commit", n, msgs)
	}

	// A writer that lost the race fails its batch and what was queued
	// behind it with a conflict, and what it submits after that too until
	// it resumes; then it goes through.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	for i := range 3 {
		b.AppendOpAsync(id, doc.OpRecord{Version: 10 + i, Op: insertAt(0, 0, "y"), UID: fmt.Sprintf("stale%d", i)},
			func(err error) { errs[i] = err; wg.Done() })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("stale async append %d: %v, want a conflict", i, err)
		}
	}
	done := make(chan error, 1)
	b.AppendOpAsync(id, doc.OpRecord{Version: n, Op: insertAt(0, 0, "z"), UID: "fresh"}, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrConflict) {
		t.Fatalf("append to a fenced document: %v, want the conflict again", err)
	}
	b.ResumeAppends(id)
	b.AppendOpAsync(id, doc.OpRecord{Version: n, Op: insertAt(0, 0, "z"), UID: "fresh"}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("append after the conflict: %v", err)
	}
}

// TestFollowerSeesDeletion: a follower of a document deleted by another
// node stops with ErrNotFound.
func TestFollowerSeesDeletion(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, testConfig(t, srv.ClientURL(), "a"))
	b := open(t, testConfig(t, srv.ClientURL(), "b"))
	if _, err := a.CreateDoc(bg, doc.Info{ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AppendOps(bg, "gone", []doc.OpRecord{{Version: 0, Op: insertAt(0, 0, "x"), UID: "u"}}); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	f, err := a.FollowOps(bg, "gone", 1, func([]doc.OpRecord) {}, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer f()
	if err := b.DeleteDoc(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, doc.ErrNotFound) {
			t.Fatalf("follower ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not see the deletion")
	}
}

// TestExactlyOnceAcrossNodes: a client's op sent to node A, which stores
// it, then resent to node B (the client reconnected there) against the same
// base: B finds its uid from that base and acknowledges the version A
// stored, instead of storing it again; had B appended first, A's append
// would lose the compare-and-append and A would find the uid among the ops
// it missed.
func TestExactlyOnceAcrossNodes(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, testConfig(t, srv.ClientURL(), "A"))
	b := open(t, testConfig(t, srv.ClientURL(), "B"))
	const id = "once"
	if _, err := a.CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	if err := a.AppendOps(bg, id, []doc.OpRecord{{Version: 0, Op: insertAt(0, 0, "x"), UID: "other"}}); err != nil {
		t.Fatal(err)
	}
	// The client's op, base 1, lands through A at v1.
	op := doc.OpRecord{Version: 1, Op: insertAt(1, 1, "y"), UID: "client-op-7"}
	if err := a.AppendOps(bg, id, []doc.OpRecord{op}); err != nil {
		t.Fatal(err)
	}
	// B, which has not seen it, would append it at v1 too: it loses.
	err := b.AppendOps(bg, id, []doc.OpRecord{op})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Have != 2 {
		t.Fatalf("second append of one uid: %v, want a conflict at head 2", err)
	}
	// The resend's lookup from its base finds it.
	rec, found, err := b.FindUID(bg, id, op.UID, 1)
	if err != nil || !found || rec.Version != 1 {
		t.Fatalf("FindUID from the base: %+v %v %v", rec, found, err)
	}
	if info, _ := b.GetDoc(id); info.Version != 2 {
		t.Fatalf("head v%d, want 2: the op is stored once", info.Version)
	}
}

// TestRetryOfAStoredBatch: an append whose first attempt was stored but
// whose response was lost is retried with the same message id; the retry
// recognises its own message and succeeds, storing nothing more.
func TestRetryOfAStoredBatch(t *testing.T) {
	s, _ := openOne(t)
	const id = "retry"
	if _, err := s.CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.prepareOps(id, []doc.OpRecord{{Version: 0, Op: insertAt(0, 0, "x"), UID: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOps(bg, id, recs); err != nil {
		t.Fatal(err)
	}
	r, _ := s.loadRef(bg, id)
	data, _ := json.Marshal(recs)
	msgID := batchMsgID(r.meta.Epoch, 0, data)
	if _, err := s.publishOps(bg, r, 0, 1, msgID, data, true); err != nil {
		t.Fatalf("retry of a stored batch: %v", err)
	}
	// A first attempt with the same versions but another body is a
	// conflict.
	other, _ := json.Marshal([]doc.OpRecord{{Version: 0, Op: insertAt(0, 0, "z"), UID: "v"}})
	if _, err := s.publishOps(bg, r, 0, 1, batchMsgID(r.meta.Epoch, 0, other), other, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("another batch at a taken version: %v", err)
	}
	if info, _ := s.GetDoc(id); info.Version != 1 {
		t.Fatalf("head v%d after the retry, want 1", info.Version)
	}
}

// TestReadSurvivesConsumerFailures reads a long history while the ordered
// consumer fails again and again part way (as it does when the server it
// reads from goes away): the read goes on from where each failure left it
// and returns every op once, in order.
func TestReadSurvivesConsumerFailures(t *testing.T) {
	s, _ := openOne(t)
	const id, n = "faulty", 300
	appendOneByOne(t, s, id, n)
	var faults atomic.Int64
	s.consumerFault = func(next uint64) error {
		if next%7 == 0 {
			faults.Add(1)
			return errors.New("injected consumer failure")
		}
		return nil
	}
	checkReadFrom3(t, s, id, n)
	if faults.Load() < 2 {
		t.Fatalf("the consumer failed %d times; the test means it to fail repeatedly", faults.Load())
	}
}

// TestReadSurvivesLaggingConsumer: an ordered consumer that says nothing
// more is pending before the end (one placed on a replica that is still
// catching up after a restart, which made TestClusterContention read "v60
// compacted away" once) does not end a read: it goes on with requests the
// stream's leader answers, and returns every op.
func TestReadSurvivesLaggingConsumer(t *testing.T) {
	s, _ := openOne(t)
	const id, n = "lagging", 300
	appendOneByOne(t, s, id, n)
	var lags atomic.Int64
	s.consumerLag = func(seq uint64) bool {
		if seq%40 == 0 {
			lags.Add(1)
			return true
		}
		return false
	}
	checkReadFrom3(t, s, id, n)
	if lags.Load() < 2 {
		t.Fatalf("the consumer ended early %d times; the test means it to, repeatedly", lags.Load())
	}
}

// appendOneByOne creates document id with n ops, one message each.
func appendOneByOne(t *testing.T, s *Store, id string, n int) {
	t.Helper()
	if _, err := s.CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	for v := range n {
		rec := doc.OpRecord{Version: v, Op: insertAt(0, v, "x"), UID: fmt.Sprintf("u%d", v), ClientID: "c"}
		if err := s.AppendOps(bg, id, []doc.OpRecord{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReadFrom3 reads the ops of document id (made by appendOneByOne with
// n ops) from v3 to the end and checks each.
func checkReadFrom3(t *testing.T, s *Store, id string, n int) {
	t.Helper()
	recs, err := s.OpsCtx(bg, id, 3, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n-3 {
		t.Fatalf("read %d ops, want %d", len(recs), n-3)
	}
	for i, rec := range recs {
		if rec.Version != 3+i || rec.UID != fmt.Sprintf("u%d", 3+i) {
			t.Fatalf("op %d: v%d %s", i, rec.Version, rec.UID)
		}
	}
}
