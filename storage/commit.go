package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeFunc is one write request's work inside the shared transaction of a
// group commit.
//
// Contract: a writeFunc validates everything before it mutates. A plain
// error it returns rejects the request and promises that it changed
// nothing; the transaction goes on with the other requests. When a mutation
// fails after it began mutating, it returns abort(err): the committer rolls
// the whole transaction back and retries it without that request.
type writeFunc func(w *writeTx) error

// writeTx is the state shared by the requests of one transaction.
type writeTx struct {
	tx  *bolt.Tx
	db  *DB
	now time.Time
	// grew collects the documents whose op log grew, for the snapshotter.
	grew map[string]struct{}
	// jtx is this transaction's change to the journal (journal.go).
	jtx journalTx
	// packDue lists the documents (by number) that got ops in the op log,
	// for the packer to check once the transaction commits.
	packDue []uint64
}

// abortError marks a failure after a writeFunc began mutating.
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }

// abort wraps a mutation failure; see writeFunc. It returns nil for nil.
func abort(err error) error {
	if err == nil {
		return nil
	}
	return &abortError{err: err}
}

// request is one queued write and its completion.
type request struct {
	fn   writeFunc
	done func(error)
}

// Stats counts the committer's work since Open, for metrics. Averages are
// Requests/Commits and CommitTime/Commits.
type Stats struct {
	// Commits is the number of write transactions run (one fsync each
	// unless NoSync).
	Commits uint64
	// Requests is the number of write requests completed, successfully or
	// not; Rejected of them failed validation (conflict, duplicate uid, bad
	// input, missing document) and Failed of them failed with their
	// transaction.
	Requests, Rejected, Failed uint64
	// MaxGroup and LastGroup are the largest and the latest number of
	// requests in one transaction.
	MaxGroup, LastGroup int
	// CommitTime is the total time spent in write transactions, from begin
	// to the end of commit (including fsync); MaxCommitTime and
	// LastCommitTime the longest and the latest.
	CommitTime, MaxCommitTime, LastCommitTime time.Duration
	// Snapshots is the number of automatic snapshots written.
	Snapshots uint64
	// PackedOps is the number of ops the packer moved into blocks
	// (pack.go).
	PackedOps uint64
	// JournalDrains is the number of times the journal was moved into the
	// op log, and Journal the number of ops it holds now (journal.go).
	// Drains while writes pause are transactions of their own, counted
	// here and in JournalDrainTime, not in Commits or CommitTime.
	JournalDrains    uint64
	Journal          int
	JournalDrainTime time.Duration
}

// committer is the one goroutine that writes. Requests queue up while a
// commit runs; the next commit takes all of them, in submission order, into
// one bbolt transaction with one fsync, then completes each. There is no
// artificial delay: a lone writer waits for one commit.
type committer struct {
	db *DB

	mu     sync.Mutex
	queue  []request // guarded by mu
	closed bool      // guarded by mu; set once by stop

	wake   chan struct{} // cap 1: a queued request, stop, or no write expected
	exited chan struct{} // closed when run returns

	// expected is the number of write requests the callers expect to
	// submit soon (DB.ExpectWrites), for gather; gathering is set while
	// gather waits, so that only then does the last one taken back wake
	// the committer.
	expected  atomic.Int64
	gathering atomic.Bool

	// journal is owned by the committer goroutine (run and the write
	// transactions it runs); set by Open before run starts.
	journal journalState
	// drainFailed is set, on the committer goroutine, when a drain failed
	// (a damaged journal): the committer stops trying and the ops stay
	// readable in the journal.
	drainFailed bool

	statsMu sync.Mutex
	stats   Stats // guarded by statsMu
	// lastTxErr is the error of the latest write transaction, nil when it
	// committed; guarded by statsMu. Ready reports it.
	lastTxErr error
}

func newCommitter(db *DB) *committer {
	return &committer{
		db:     db,
		wake:   make(chan struct{}, 1),
		exited: make(chan struct{}),
	}
}

// submit queues fn. done is called exactly once: on the committer goroutine
// after the commit, or at once on the caller's goroutine with ErrClosed when
// the committer is stopped. Requests submitted in order by one goroutine are
// applied and committed in that order.
func (c *committer) submit(fn writeFunc, done func(error)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		done(ErrClosed)
		return
	}
	c.queue = append(c.queue, request{fn: fn, done: done})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// stop refuses new requests, waits until everything queued is committed
// and completed, and returns.
func (c *committer) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.exited
}

// journalIdle is how long the committer waits without a request before it
// drains a non-empty journal. Long enough that an editor typing a few keys
// a second does not pay a drain's fsync after each op (at 50 ms, two
// clients at 8 ops/s each caused 40 drains in 5 s), short enough that the
// journal is empty soon after writes stop.
const journalIdle = time.Second

// run is the committer goroutine.
func (c *committer) run() {
	defer close(c.exited)
	var batch []request
	var last int           // requests in the last commit (0 after a pause)
	var took time.Duration // how long it took
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		paused := time.Now()
		if c.journal.entries > 0 && !c.drainFailed {
			idle.Reset(c.db.cfg.journalIdle)
			select {
			case <-c.wake:
				idle.Stop()
			case <-idle.C:
				c.commit(nil, true)
				continue
			}
		} else {
			<-c.wake
		}
		if time.Since(paused) > c.db.cfg.CommitGather {
			last = 0 // quiet for a while: no longer busy
		}
		for {
			c.mu.Lock()
			batch, c.queue = c.queue, batch[:0]
			closed := c.closed
			c.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					if c.journal.entries > 0 && !c.drainFailed {
						c.commit(nil, true) // leave a closed file's journal empty
					}
					return
				}
				break
			}
			if wait := min(gatherTook*took, c.db.cfg.CommitGather); last >= gatherFrom && wait > 0 && !closed && c.expected.Load() > 0 {
				batch = c.gather(batch, wait)
			}
			last = len(batch)
			took = c.commit(batch, c.journal.entries >= c.db.cfg.journalMax && !c.drainFailed)
			clear(batch) // drop the closures
		}
	}
}

// gatherFrom is the size of a commit from which the committer counts the
// server as busy, and gathers (see gather).
const gatherFrom = 8

// gatherTook bounds a gather's wait by the duration of the commit before
// it: at most gatherTook times as long (and at most Config.CommitGather).
const gatherTook = 6

// gather makes a busy server's commits larger without making anyone wait
// for nothing. The callers lend the committer their expectation of writes
// to come (DB.ExpectWrites: the document sessions count the editors they
// have just acked, who send their next op at once when they have one).
// When the last commit carried last >= gatherFrom requests and writes are
// expected, run calls gather to wait until none is expected any more, at
// most wait: an editor's next op then joins this commit instead of waiting
// for the next one. A quiet server never waits, nor one whose writers have
// all sent what they were expected to. Fewer, larger commits save fsyncs
// and put more ops in each member's write (a commit's ops are acked and
// broadcast together). Stopping the committer ends the wait. It returns
// batch with what it took.
func (c *committer) gather(batch []request, wait time.Duration) []request {
	t := time.NewTimer(wait)
	defer t.Stop()
	c.gathering.Store(true)
	defer c.gathering.Store(false)
	for {
		var closed bool
		batch, closed = c.takeQueued(batch)
		if closed || c.expected.Load() <= 0 {
			return batch
		}
		select {
		case <-c.wake:
		case <-t.C:
			batch, _ = c.takeQueued(batch)
			return batch
		}
	}
}

// expect adds n, which may be negative, to the writes expected, and wakes
// a gathering committer when none is expected any more.
func (c *committer) expect(n int) {
	if c.expected.Add(int64(n)) <= 0 && n < 0 && c.gathering.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// takeQueued appends the queued requests to batch and empties the queue;
// closed reports that the committer is stopping.
func (c *committer) takeQueued(batch []request) (_ []request, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch = append(batch, c.queue...)
	clear(c.queue)
	c.queue = c.queue[:0]
	return batch, c.closed
}

// commit writes batch in one transaction and completes every request, and
// returns how long that took. With drain, the transaction first moves the
// journal into the op log.
func (c *committer) commit(batch []request, drain bool) time.Duration {
	start := time.Now()
	errs := make([]error, len(batch))
	skip := make([]bool, len(batch)) // requests aborted in an earlier attempt
	var due []string
	var packDue []uint64
	var txErr error
	for {
		for i := range errs {
			if !skip[i] {
				errs[i] = nil
			}
		}
		var aborted int
		aborted, due, packDue, txErr = c.attempt(batch, errs, skip, drain)
		if aborted == drainAborted {
			drain, c.drainFailed = false, true // logged; the batch goes on without it
			if len(batch) == 0 {
				break
			}
			continue
		}
		if aborted < 0 {
			break
		}
		skip[aborted] = true
		c.db.log.Error().Err(errs[aborted]).Msg("write aborted; retrying its transaction without it")
	}
	elapsed := time.Since(start)
	if txErr != nil {
		c.db.log.Error().Err(txErr).Int("requests", len(batch)).Msg("commit failed")
	}
	var rejected, failed uint64
	for i := range errs {
		switch {
		case skip[i]:
			failed++
		case errs[i] != nil:
			rejected++
		case txErr != nil:
			errs[i] = fmt.Errorf("commit: %w", txErr)
			failed++
		}
	}
	if len(due) > 0 {
		c.db.snaps.notify(due)
	}
	if len(packDue) > 0 {
		c.db.packs.notify(packDue)
	}
	// Count before completing, so that a caller that saw its request done
	// sees it in Stats.
	c.statsMu.Lock()
	s := &c.stats
	if len(batch) > 0 {
		s.Commits++
		s.Requests += uint64(len(batch))
		s.Rejected += rejected
		s.Failed += failed
		s.LastGroup = len(batch)
		s.MaxGroup = max(s.MaxGroup, len(batch))
		s.CommitTime += elapsed
		s.LastCommitTime = elapsed
		s.MaxCommitTime = max(s.MaxCommitTime, elapsed)
	} else {
		s.JournalDrainTime += elapsed // a drain of its own, writes paused
	}
	s.JournalDrains = c.journal.drains
	s.Journal = c.journal.entries
	c.lastTxErr = txErr
	c.statsMu.Unlock()

	for i := range batch {
		batch[i].done(errs[i])
	}
	return elapsed
}

// drainAborted is attempt's report that the journal drain failed and the
// transaction was rolled back.
const drainAborted = -2

// attempt runs the requests not skipped in one transaction, after draining
// the journal if drain. It returns the index of a request that aborted (the
// transaction was rolled back), drainAborted, or -1 with the documents due
// for a snapshot, those to check for packing, and the begin/commit error.
func (c *committer) attempt(batch []request, errs []error, skip []bool, drain bool) (aborted int, due []string, packDue []uint64, err error) {
	tx, err := c.db.bolt.Begin(true)
	if err != nil {
		return -1, nil, nil, err
	}
	w := &writeTx{tx: tx, db: c.db, now: c.db.cfg.Now(), grew: make(map[string]struct{})}
	if drain {
		if err := callWrite(func(w *writeTx) error { return w.drainJournal() }, w); err != nil {
			_ = tx.Rollback()
			c.db.log.Error().Err(err).Msg("journal drain failed; its ops stay in the journal")
			return drainAborted, nil, nil, nil
		}
	}
	for i, r := range batch {
		if skip[i] {
			continue
		}
		err := callWrite(r.fn, w)
		if ab, ok := errors.AsType[*abortError](err); ok {
			_ = tx.Rollback()
			errs[i] = ab.err
			return i, nil, nil, nil
		}
		errs[i] = err
	}
	due = w.snapshotsDue()
	if err := tx.Commit(); err != nil {
		return -1, nil, nil, err
	}
	c.commitJournal(w.jtx)
	return -1, due, w.packDue, nil
}

// callWrite runs fn, turning a panic (a bug, or bbolt meeting a damaged
// page) into an abort of that request rather than a dead committer.
func callWrite(fn writeFunc, w *writeTx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = abort(fmt.Errorf("write panicked: %v", r))
		}
	}()
	return fn(w)
}

// ExpectWrites adds n, which may be negative, to the number of write
// requests the caller expects to submit soon: a hint, never a promise.
// While some are expected, a busy server's commit waits a little for them
// (Config.CommitGather) instead of leaving them for the next commit; a
// caller takes back what it lent (a negative n) once it has submitted
// the write (so that the commit that stops waiting takes it), or as soon
// as it stops expecting it. A count left lent only costs a busy server
// those short waits.
func (db *DB) ExpectWrites(n int) { db.commits.expect(n) }

// ExpectedWrites reports the number of writes expected (ExpectWrites).
func (db *DB) ExpectedWrites() int { return int(db.commits.expected.Load()) }

// Stats returns a copy of the committer's counters.
func (db *DB) Stats() Stats {
	c := db.commits
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

// addSnapshotStat counts an automatic snapshot.
func (c *committer) addSnapshotStat(n int) {
	c.statsMu.Lock()
	c.stats.Snapshots += uint64(n)
	c.statsMu.Unlock()
}

// addPackStat counts ops packed into blocks.
func (c *committer) addPackStat(n int) {
	c.statsMu.Lock()
	c.stats.PackedOps += uint64(n)
	c.statsMu.Unlock()
}
