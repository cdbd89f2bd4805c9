package hooks

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DocSnapshot is a document's content at a version: the doc_store hook's
// request body, and what a DocSource returns.
type DocSnapshot struct {
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	// Epoch names the document's incarnation: it changes when the
	// document is deleted and created again (or its history is reset), and
	// versions start again from 0 in the new one.
	Epoch   string `json:"epoch"`
	Content string `json:"content"`
}

// DocSource returns a document's latest durable version, its epoch and its
// content: what an acknowledged op made it, never an op not yet stored
// (the backend would keep a version Tandem may lose in a crash, then
// ignore the other text Tandem gives the same number). doc_store calls it
// from its own goroutines when a document's changes have settled, with a
// context bounded by the hook's timeout.
type DocSource func(ctx context.Context, doc string) (DocSnapshot, error)

// SetDocSource sets where doc_store reads the content of the documents
// DocChanged names. Set it before the first DocChanged (the server wires
// the Caller before its document sessions exist, hence a setter).
func (c *Caller) SetDocSource(src DocSource) {
	if c == nil || c.store == nil {
		return
	}
	c.store.source.Store(&src)
}

// DocChanged tells doc_store that document doc reached version in epoch
// (a new version is durable). It never blocks and does no I/O: call it
// from the document's goroutine after each commit, in version order. Once
// the document's changes settle (Debounce without a change, or MaxWait
// after the first unsent one) its content is read from the DocSource and
// sent. When the hook is off it returns at once, at no cost.
func (c *Caller) DocChanged(doc string, version int, epoch string) {
	if c == nil || c.store == nil {
		return
	}
	c.store.changed(doc, version, epoch, nil)
}

// StoreDoc is DocChanged with the content in hand (at a snapshot or an
// unload, where the session has it anyway): no DocSource call is needed
// for this version. It never blocks; the same rules apply.
func (c *Caller) StoreDoc(s DocSnapshot) {
	if c == nil || c.store == nil {
		return
	}
	c.store.changed(s.Doc, s.Version, s.Epoch, &s.Content)
}

// docStore is the doc_store hook's sender: per document, a debounce window
// and at most one request in flight; the latest known version wins.
//
// Guarantees. Per document, versions reach the backend in increasing
// order within an epoch (one request in flight at a time, each for the
// latest version known when it starts, and a version no newer than the
// last stored is never sent), and at least once: a failed store is
// retried with backoff, with the latest version then known, until stored,
// refused with a 4xx (not 408 or 429), out of attempts or drained. This
// rests on the callers naming one document's versions in order, as its
// goroutine does.
type docStore struct {
	c      *Caller
	hk     *hook
	log    zerolog.Logger
	source atomic.Pointer[DocSource]

	debounce, maxWait  time.Duration
	retryMin, retryMax time.Duration
	maxAttempts        int
	queueLen           int
	drain              time.Duration

	mu      sync.Mutex           // guards docs, timers, closing, idleSet and every docState
	docs    map[string]*docState // documents with something to send or in flight; at most queueLen
	timers  timerHeap            // when each document's next send is due; stale entries are skipped
	closing bool                 // close has begun: changes are dropped, windows end now
	idleSet bool                 // idle is closed
	idle    chan struct{}        // closed once closing and docs is empty

	ready  chan string   // documents due; cap queueLen and each at most once (queued), so a send never blocks
	wake   chan struct{} // cap 1: the timers changed
	ctx    context.Context
	cancel context.CancelFunc // ends the goroutines and in-flight requests
	wg     sync.WaitGroup

	dropWarned, failWarned atomic.Int64
}

// docState is one document's entry.
type docState struct {
	// The latest version known, and its content when a caller gave it.
	epoch      string
	version    int
	content    string
	hasContent bool
	// gen counts the changes recorded: a send compares it before and after
	// to tell whether a change came in after it read the source.
	gen uint64
	// What the backend has (or what doc_store gave up on).
	done        bool
	doneEpoch   string
	doneVersion int
	// Scheduling.
	opened   time.Time // the debounce window's first change; zero: no window open
	last     time.Time // the window's latest change
	retryAt  time.Time // when a failed store may be tried again; zero: none
	due      time.Time // the timer entry in force; zero: none
	queued   bool      // in ready
	busy     bool      // a worker is sending it
	attempts int       // failed attempts since the last store
}

// pending reports whether the latest known version is newer than what the
// backend has.
func (st *docState) pending() bool {
	return !st.done || st.epoch != st.doneEpoch || st.version > st.doneVersion
}

func newDocStore(c *Caller, hk *hook, cfg DocStoreConfig) *docStore {
	dur := func(v Duration, def time.Duration) time.Duration {
		if v > 0 {
			return time.Duration(v)
		}
		return def
	}
	s := &docStore{
		c: c, hk: hk, log: c.log.With().Str("hook", "doc_store").Logger(),
		debounce:    dur(cfg.Debounce, 2*time.Second),
		maxWait:     dur(cfg.MaxWait, 10*time.Second),
		retryMin:    dur(cfg.RetryMin, time.Second),
		retryMax:    dur(cfg.RetryMax, time.Minute),
		drain:       dur(cfg.DrainTimeout, 10*time.Second),
		maxAttempts: cfg.MaxAttempts,
		queueLen:    cfg.QueueLen,
		docs:        make(map[string]*docState),
		idle:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
	}
	s.retryMax = max(s.retryMax, s.retryMin)
	if s.queueLen <= 0 {
		s.queueLen = 10000
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 4
	}
	s.ready = make(chan string, s.queueLen)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1 + workers)
	go s.timerLoop()
	for range workers {
		go s.worker()
	}
	return s
}

// changed records a new version (with its content, or nil) and schedules
// its store.
func (s *docStore) changed(doc string, version int, epoch string, content *string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.dropLocked(doc, "shutting down")
		return
	}
	st := s.docs[doc]
	switch {
	case st == nil:
		if len(s.docs) >= s.queueLen {
			s.dropLocked(doc, "queue full")
			return
		}
		st = &docState{epoch: epoch}
		s.docs[doc] = st
		s.c.metrics.pending.Inc()
	case epoch != st.epoch: // a new incarnation replaces the old one
		st.epoch, st.hasContent, st.content = epoch, false, ""
	case version < st.version:
		return // older than what is known: the callers' order was broken
	case version == st.version:
		if content == nil || st.hasContent {
			return // nothing new
		}
	default:
		st.hasContent, st.content = false, ""
	}
	st.version = version
	st.gen++
	if content != nil {
		st.content, st.hasContent = *content, true
	}
	if !st.pending() { // the backend has it already
		if !st.busy && !st.queued && st.due.IsZero() {
			s.forgetLocked(doc, st)
		}
		return
	}
	now := time.Now()
	st.last = now
	if st.opened.IsZero() {
		st.opened = now
	}
	s.scheduleLocked(doc, st)
}

// dropLocked counts and (rate-limited) logs a dropped change.
func (s *docStore) dropLocked(doc, why string) {
	s.c.metrics.dropped.Inc()
	if warnDue(&s.dropWarned, time.Now(), 10*time.Second) {
		s.log.Warn().Str("doc", doc).Str("reason", why).Msg("doc_store dropped a change (further drops within 10s not logged)")
	}
}

// dueLocked is when st's next send is due: when its window ends (its
// debounce after the latest change, at most maxWait after the first; at
// once while closing) and its retry backoff, if any, has passed. Zero:
// nothing is scheduled.
func (s *docStore) dueLocked(st *docState) time.Time {
	var t time.Time
	if !st.opened.IsZero() {
		t = st.last.Add(s.debounce)
		if limit := st.opened.Add(s.maxWait); limit.Before(t) {
			t = limit
		}
		if s.closing {
			t = st.opened
		}
	}
	if !st.retryAt.IsZero() && st.retryAt.After(t) {
		t = st.retryAt // a backend that fails is not asked again before its backoff, edits or not
	}
	return t
}

// scheduleLocked sets a timer for st's next send if it is earlier than the
// one in force (a later one is found when the earlier fires).
func (s *docStore) scheduleLocked(doc string, st *docState) {
	want := s.dueLocked(st)
	if want.IsZero() || !st.due.IsZero() && !want.Before(st.due) {
		return
	}
	st.due = want
	heap.Push(&s.timers, timerEntry{at: want, doc: doc})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// forgetLocked drops a document with nothing left to send.
func (s *docStore) forgetLocked(doc string, st *docState) {
	delete(s.docs, doc)
	s.c.metrics.pending.Dec()
	if s.closing && len(s.docs) == 0 && !s.idleSet {
		s.idleSet = true
		close(s.idle)
	}
}

// timerLoop queues each document when its send is due.
func (s *docStore) timerLoop() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		for s.timers.Len() > 0 && !s.timers[0].at.After(now) {
			e := heap.Pop(&s.timers).(timerEntry)
			st := s.docs[e.doc]
			if st == nil || !st.due.Equal(e.at) {
				continue // stale: rescheduled or forgotten since
			}
			st.due = time.Time{}
			if want := s.dueLocked(st); want.After(now) { // the window was extended, or a retry waits
				st.due = want
				heap.Push(&s.timers, timerEntry{at: want, doc: e.doc})
				continue
			}
			st.opened, st.retryAt = time.Time{}, time.Time{}
			if !st.busy && !st.queued { // a busy one is queued again when its send ends
				st.queued = true
				s.ready <- e.doc
			}
		}
		wait := time.Hour
		if s.timers.Len() > 0 {
			wait = s.timers[0].at.Sub(now)
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.wake:
		case <-s.ctx.Done():
			return
		}
	}
}

// worker sends the documents that are due.
func (s *docStore) worker() {
	defer s.wg.Done()
	for {
		select {
		case doc := <-s.ready:
			s.send(doc)
		case <-s.ctx.Done():
			return
		}
	}
}

// errNoSource: a document was named by DocChanged but no DocSource is set.
var errNoSource = errors.New("no DocSource set: call SetDocSource, or StoreDoc with the content")

// send stores a document's latest version: one attempt.
func (s *docStore) send(doc string) {
	s.mu.Lock()
	st := s.docs[doc]
	st.queued = false
	if !st.pending() {
		if !st.busy && st.due.IsZero() {
			s.forgetLocked(doc, st)
		}
		s.mu.Unlock()
		return
	}
	st.busy = true
	snap := DocSnapshot{Doc: doc, Version: st.version, Epoch: st.epoch, Content: st.content}
	has := st.hasContent
	attempt := st.attempts + 1
	s.mu.Unlock()

	var srcErr, err error
	status := 0
	if !has {
		snap, srcErr = s.read(doc)
	}
	skip := false
	var readGen uint64
	if srcErr == nil {
		s.mu.Lock()
		// Changes recorded from now on are newer than snap.
		readGen = st.gen
		// The source may be ahead of the notifications: never send what
		// the backend has.
		skip = st.done && snap.Epoch == st.doneEpoch && snap.Version <= st.doneVersion
		s.mu.Unlock()
		if !skip {
			var body []byte
			if body, err = json.Marshal(snap); err == nil {
				status, err = s.c.post(s.ctx, s.hk, s.hk.url, storeDeliveryID(snap), attempt, body, nil)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	st.busy = false
	// adopt takes the source's snapshot as the latest known state when no
	// change came in since it was read and it is ahead of (or in another
	// epoch than) the notifications: the source is the truth.
	adopt := func() {
		if st.gen == readGen && (snap.Epoch != st.epoch || snap.Version > st.version) {
			st.epoch, st.version, st.hasContent, st.content = snap.Epoch, snap.Version, false, ""
		}
	}
	switch {
	case s.ctx.Err() != nil:
		return // the drain is over: close counts what is left
	case srcErr != nil:
		// Not the backend's failure: the document is gone, or no source is
		// set. Give up on this version.
		s.abandonLocked(doc, st, snap, srcErr)
	case skip:
		adopt()
		if st.gen == readGen && st.epoch == snap.Epoch && st.version > snap.Version {
			// The source is behind the notifications: ask it again later
			// rather than at once.
			st.attempts++
			st.retryAt = time.Now().Add(s.backoff(st.attempts))
		}
	case err == nil:
		st.done, st.doneEpoch, st.doneVersion, st.attempts = true, snap.Epoch, snap.Version, 0
		adopt()
	default:
		st.attempts++
		retryable := status == 0 || status >= 500 || status == 408 || status == 429
		if !retryable || s.maxAttempts > 0 && st.attempts >= s.maxAttempts {
			s.abandonLocked(doc, st, snap, err)
		} else {
			st.retryAt = time.Now().Add(s.backoff(st.attempts))
		}
	}
	s.finishLocked(doc, st)
}

// abandonLocked gives up on a version: counted, logged (rate-limited),
// and marked as if stored, so that only a newer one is sent.
func (s *docStore) abandonLocked(doc string, st *docState, snap DocSnapshot, err error) {
	s.c.metrics.abandoned.Inc()
	if warnDue(&s.failWarned, time.Now(), 10*time.Second) {
		s.log.Warn().Str("doc", doc).Int("version", snap.Version).Int("attempts", st.attempts).Err(err).
			Msg("doc_store gave up on a version (further within 10s not logged)")
	}
	if snap.Epoch == "" && snap.Version == 0 { // the source failed: what was known
		snap.Epoch, snap.Version = st.epoch, st.version
	}
	st.done, st.doneEpoch, st.doneVersion, st.attempts = true, snap.Epoch, snap.Version, 0
}

// finishLocked decides what follows a send: forget the document, wait for
// its window or retry, or queue it again at once (a window that ended
// while it was busy).
func (s *docStore) finishLocked(doc string, st *docState) {
	switch {
	case !st.pending():
		s.forgetLocked(doc, st) // its timer entry, if any, is now stale
	case st.opened.IsZero() && st.retryAt.IsZero():
		st.queued = true
		s.ready <- doc
	default:
		s.scheduleLocked(doc, st)
	}
}

// read asks the DocSource for a document's latest durable content.
func (s *docStore) read(doc string) (DocSnapshot, error) {
	src := s.source.Load()
	if src == nil {
		return DocSnapshot{}, errNoSource
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.hk.timeout)
	defer cancel()
	snap, err := (*src)(ctx, doc)
	if err != nil {
		return DocSnapshot{}, err
	}
	snap.Doc = doc
	return snap, nil
}

// backoff is the wait after failed attempt n (from 1): retryMin doubled
// n-1 times, capped at retryMax, of which a random half to all is waited.
func (s *docStore) backoff(n int) time.Duration {
	w := s.retryMin
	for i := 1; i < n && w < s.retryMax; i++ {
		w *= 2
	}
	w = min(w, s.retryMax)
	return w/2 + rand.N(w/2+1)
}

// close stops taking changes, ends every window now and waits until every
// document is stored (or given up on), for at most the drain timeout and
// ctx; then it abandons what is left, ends the goroutines and returns the
// deadline's error if something was abandoned.
func (s *docStore) close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	for doc, st := range s.docs {
		s.scheduleLocked(doc, st) // windows end now: an earlier entry
	}
	if len(s.docs) == 0 {
		s.idleSet = true
		close(s.idle)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}

	ctx, cancel := context.WithTimeout(ctx, s.drain)
	defer cancel()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	if n := len(s.docs); n > 0 {
		s.c.metrics.abandoned.Add(float64(n))
		s.c.metrics.pending.Sub(float64(n))
		s.log.Warn().Int("docs", n).Msg("doc_store drain ended with documents not stored")
		clear(s.docs)
	}
	s.mu.Unlock()
	return err
}

// storeDeliveryID is the X-Tandem-Delivery of a store: the same for every
// attempt at one version of one incarnation of a document, so a backend
// may dedupe by it as well as by version.
func storeDeliveryID(s DocSnapshot) string {
	h := sha256.New()
	h.Write([]byte(s.Doc))
	h.Write([]byte{0})
	h.Write([]byte(s.Epoch))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(s.Version)))
	return "hds_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// timerEntry is a document's send falling due at at.
type timerEntry struct {
	at  time.Time
	doc string
}

// timerHeap orders entries by time (container/heap).
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
