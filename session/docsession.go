package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/ot"
)

// docSession is the goroutine that owns one loaded document. Everything
// below the "owned by run" line is touched only by run.
//
// An op goes through two stages. run transforms it over the ops since its
// base version, applies it to the in-memory document and submits it to the
// op log (group commit) without waiting; when the commit completes, the
// storage goroutine appends the version to durable and wakes run, which
// acks the author and sends the op to everyone else. So clients only ever
// see durable ops, each exactly once and in version order, while ops from
// many clients share one fsync. Requests that must see the durable state
// (open, comments, a duplicate uid still in flight) first wait for every
// submitted op to be durable (flush).
type docSession struct {
	docs *Docs
	id   string
	log  zerolog.Logger
	reqs chan *docRequest
	stop chan struct{} // closed by Docs.Close
	done chan struct{} // closed when run stops taking requests

	// opsApplied and memberCount are read by Docs.Stats from other
	// goroutines; run writes them.
	opsApplied  atomic.Int64
	memberCount atomic.Int32

	durableMu sync.Mutex    // guards durable, failure, failedAt and failedN
	durable   []int         // versions committed since run last looked
	failure   error         // the first append failure
	failedAt  int           // the version whose append failed first
	failedN   int           // append failures since failure was set
	wake      chan struct{} // cap 1: durable or failure changed

	// Owned by run.
	doc     *doc.Document
	loaded  bool
	loadErr error
	epoch   string         // the document's incarnation (doc.Info.Epoch)
	acked   int            // ops [0, acked) are durable and sent out
	recent  []doc.OpRecord // the last ops, contiguous, ending at doc.Version()
	// uids maps the uid of every op from version uidFloor on to its
	// version: within that range memory proves that a uid is new. It
	// reaches further back than recent (up to maxUIDs ops).
	uids     map[string]int
	uidFloor int
	// content caches the text at version contentV (-1: none), so that
	// concurrent opens and reads at one version share one string.
	content   string
	contentV  int
	inflight  map[int]pendOp // submitted, not yet durable, by version
	members   map[string]*docMember
	limiters  map[string]*rate.Limiter // per user
	idle      *time.Timer
	cursorDue *time.Timer // flushes coalesced cursors
	commentN  int
}

// pendOp is an op waiting for its commit.
type pendOp struct {
	author string // client id; empty for a server-side edit
	id     *int64 // the author's request id
	dupes  []dupAck
	done   chan<- EditResult // a server-side edit's waiter (on its last op)
	whole  ot.Op             // the server-side edit's whole op, for done
	start  time.Time         // when the op arrived, for the ack latency
}

// maxUIDs is how many ops' uids a session keeps at least (up to twice as
// many) to tell a new uid from a resent one without asking storage.
const maxUIDs = 1 << 14

// dupAck is a resend of an op whose original is still in flight.
type dupAck struct {
	client string
	id     *int64
}

// docMember is a client with the document open.
type docMember struct {
	client DocClient
	cursor []ot.Selection // at version acked; nil when none
	// cursorVersion is where cursor was last broadcast; pending marks a
	// coalesced update not yet broadcast.
	lastCursor time.Time
	pending    bool
}

func newDocSession(d *Docs, id string) *docSession {
	return &docSession{
		docs:     d,
		id:       id,
		log:      d.log.With().Str("doc", id).Logger(),
		reqs:     make(chan *docRequest, d.cfg.QueueLen),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		contentV: -1,
		uids:     make(map[string]int),
		inflight: make(map[int]pendOp),
		members:  make(map[string]*docMember),
		limiters: make(map[string]*rate.Limiter),
	}
}

// run is the document's goroutine.
func (s *docSession) run() {
	defer s.docs.wg.Done()
	cfg := &s.docs.cfg
	s.idle = time.NewTimer(cfg.IdleTimeout)
	s.cursorDue = time.NewTimer(time.Hour)
	s.cursorDue.Stop()
	defer s.idle.Stop()
	defer s.cursorDue.Stop()
	for {
		select {
		case r := <-s.reqs:
			s.handle(r)
		case <-s.wake:
			s.drainDurable()
		case <-s.cursorDue.C:
			s.flushCursors()
		case <-s.idle.C:
			if len(s.members) == 0 && s.unload() {
				return
			}
			s.idle.Reset(cfg.IdleTimeout)
		case <-s.stop:
			s.unload()
			return
		}
		if s.failed() != nil && len(s.inflight) == 0 && len(s.members) == 0 {
			// The log failed: unload now, so the next open reloads
			// what is durable instead of this session's memory.
			if s.unload() {
				return
			}
		}
	}
}

// unload flushes, writes a snapshot and the comments, and leaves the
// manager. It returns false, and stays, when requests arrived meanwhile.
//
// It writes before it leaves the manager: while it is still there, every
// request for the document comes to it, so no new session can load the
// document and change its comments (a deletion, an edit) before this
// session's writes land on top of them.
func (s *docSession) unload() bool {
	s.flush()
	d := s.docs
	d.mu.Lock()
	busy := len(s.reqs) > 0 && !d.closed
	d.mu.Unlock()
	if busy {
		return false
	}
	if s.loaded && s.loadErr == nil && s.failed() == nil {
		s.persist()
	}
	d.mu.Lock()
	if len(s.reqs) > 0 && !d.closed {
		d.mu.Unlock()
		return false // what was persisted stays true; the session goes on
	}
	delete(d.sessions, s.id)
	close(s.done)
	d.mu.Unlock()
	// Requests that slipped in before done closed go to the next session.
	for {
		select {
		case r := <-s.reqs:
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.submit(s.id, r)
			}()
		default:
			s.log.Debug().Msg("unloaded")
			return true
		}
	}
}

// persist writes a snapshot of the head and every comment's current range.
func (s *docSession) persist() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := &s.docs.cfg
	if err := cfg.Snapshots.PutSnapshot(ctx, s.id, doc.Snapshot{Version: s.doc.Version(), Content: s.headContent()}); err != nil {
		s.log.Error().Err(err).Msg("snapshot on unload")
	}
	if cs := s.doc.Comments(); len(cs) > 0 {
		if err := cfg.Comments.PutComments(ctx, s.id, cs); err != nil {
			s.log.Error().Err(err).Msg("comments on unload")
		}
	}
}

// headContent returns the text at the head, from the cache when it is
// there (the string is shared: strings never change).
func (s *docSession) headContent() string {
	if s.contentV != s.doc.Version() {
		s.content, s.contentV = s.doc.Content(), s.doc.Version()
	}
	return s.content
}

// forget drops everything the session knows of the document, so that the
// next request loads it afresh; the members stay.
func (s *docSession) forget() {
	s.loaded, s.loadErr, s.doc, s.epoch = false, nil, nil, ""
	s.recent, s.uids, s.uidFloor = nil, map[string]int{}, 0
	s.content, s.contentV = "", -1
	s.commentN = 0
}

// load reads the document from storage, once. create says whether a
// missing document may be created empty.
func (s *docSession) load(create bool) error {
	if s.loaded {
		if s.loadErr == nil && s.failed() != nil {
			return fmt.Errorf("%s: %w", s.id, ErrStorage)
		}
		return s.loadErr
	}
	cfg := &s.docs.cfg
	info, err := cfg.Documents.GetDoc(s.id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("load %s: %w", s.id, err)
	}
	if err != nil { // not found
		if !create {
			return fmt.Errorf("%s: %w", s.id, ErrDocNotFound)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		info, err = cfg.Documents.CreateDoc(ctx, doc.Info{ID: s.id, Created: cfg.Now()})
		cancel()
		switch {
		case isExists(err):
			info, err = cfg.Documents.GetDoc(s.id)
		case err == nil && cfg.Hub != nil:
			cfg.Hub.Publish(Publication{Channel: "system:docs", Event: "created", Data: []byte(fmt.Sprintf(`{"id":%q}`, s.id)),
				From: proto.From{User: "system"}}, func(uint64, error) {})
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", s.id, err)
		}
	}
	s.epoch = info.Epoch
	if s.epoch == "" {
		s.epoch = "none" // a store that keeps no epochs: one for every incarnation
	}
	snap, tail, err := cfg.Snapshots.Head(s.id)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s: %w", s.id, err)
		return s.loadErr
	}
	d, err := doc.Restore(s.id, snap, tail)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s: %w", s.id, err)
		return s.loadErr
	}
	comments, err := cfg.Comments.Comments(s.id)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s comments: %w", s.id, err)
		return s.loadErr
	}
	for _, c := range comments {
		s.commentN++
		c = s.catchUp(c, d)
		if err := d.AddComment(c); err != nil {
			s.log.Error().Err(err).Str("comment", c.ID).Msg("comment dropped on load")
		}
	}
	s.doc = d
	s.acked = d.Version()
	s.recent = slices.Clone(tail)
	s.uidFloor = snap.Version // the tail holds every op from there on
	for _, rec := range s.recent {
		s.uids[rec.UID] = rec.Version
	}
	s.loaded = true
	return nil
}

// catchUp moves a stored comment's range to the head of d.
func (s *docSession) catchUp(c doc.Comment, d *doc.Document) doc.Comment {
	if c.Version < d.Version() {
		recs, err := s.docs.cfg.OpLog.Ops(s.id, c.Version, d.Version())
		if err == nil {
			if moved, err := doc.CatchUp(c, recs); err == nil {
				return moved
			}
		}
		s.log.Warn().Str("comment", c.ID).Msg("comment history gone; keeping its range as stored")
	}
	// A comment stored ahead of the log (a crash lost ops after it was
	// written) or whose history is gone: clamp it into the text.
	n := d.Len()
	c.Range.From, c.Range.To = min(max(c.Range.From, 0), n), min(max(c.Range.To, 0), n)
	c.Range.From = min(c.Range.From, c.Range.To)
	return c
}

func (s *docSession) handle(r *docRequest) {
	switch r.kind {
	case reqOpen:
		s.open(r)
	case reqOp:
		s.submitOp(r)
	case reqCursor:
		s.setCursor(r)
	case reqComment:
		s.handleComment(r)
	case reqClose:
		s.closeFor(r.client.Sub.ClientID(), true)
		if r.id != nil {
			r.client.Sub.Send(proto.Encode(proto.Closed{ID: r.id, Type: proto.TypeClosed, Doc: s.id}))
		}
	case reqLeave:
		s.closeFor(r.client.Sub.ClientID(), false)
	case reqServerEdit:
		s.serverEdit(r)
	case reqDelete:
		s.deleteDoc(r)
	case reqRead:
		s.readHead(r)
	}
}

// failed returns the first storage failure, if any.
func (s *docSession) failed() error {
	s.durableMu.Lock()
	defer s.durableMu.Unlock()
	return s.failure
}

// member returns the request's client if it has the document open, or
// answers ErrNotOpen.
func (s *docSession) member(r *docRequest) *docMember {
	m := s.members[r.client.Sub.ClientID()]
	if m == nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrNotOpen))
	}
	return m
}

// open answers an open request with a snapshot, or the ops since version.
// A version of another incarnation of the document (the request's epoch
// is not the document's) gets a snapshot marked reset, never ops: they
// would apply to a text the client does not have.
func (s *docSession) open(r *docRequest) {
	if err := s.load(r.create); err != nil {
		r.fail(err)
		return
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	cid := r.client.Sub.ClientID()
	head := s.doc.Version()
	reset := r.version != nil && r.epoch != "" && r.epoch != s.epoch
	var reply LargeFrame
	if r.version != nil && !reset {
		v := *r.version
		if v < 0 || v > head {
			r.fail(fmt.Errorf("open %s at v%d, head is v%d: %w", s.id, v, head, ErrFutureVersion))
			return
		}
		recs, err := s.opsBetween(v, head)
		if err != nil {
			r.fail(err)
			return
		}
		size := 0
		ops := make([]proto.DocOp, len(recs))
		for i, rec := range recs {
			ops[i] = opFrame(s.id, rec)
			ops[i].Type = ""
			size += doc.InsertBytes(rec.Op)
		}
		if size > s.docs.cfg.MaxReplayBytes {
			r.fail(fmt.Errorf("open %s at v%d: %d bytes of ops to replay, at most %d: %w", s.id, v, size, s.docs.cfg.MaxReplayBytes, ErrHistoryGone))
			return
		}
		reply = &proto.Opened{ID: r.id, Type: proto.TypeOpened, Doc: s.id, Version: head, Epoch: s.epoch, Ops: ops,
			Comments: s.commentFrames(), Members: s.memberFrames(cid, r.client.User), Cursors: s.cursorFrames(cid)}
	} else {
		reply = &proto.Snapshot{ID: r.id, Type: proto.TypeSnapshot, Doc: s.id, Version: head, Epoch: s.epoch, Reset: reset,
			Content: s.headContent(), Comments: s.commentFrames(), Members: s.memberFrames(cid, r.client.User), Cursors: s.cursorFrames(cid)}
	}
	if err := sendFrame(r.client.Sub, reply, true); err != nil {
		if errors.Is(err, ErrBusy) {
			r.fail(fmt.Errorf("open %s: %w", s.id, err))
		}
		return // a closing connection: it leaves on its own
	}
	if _, again := s.members[cid]; !again {
		s.members[cid] = &docMember{client: r.client}
		s.memberCount.Store(int32(len(s.members)))
		notify(s.docs.cfg.Notifier, Event{Type: EventDocJoined, Time: s.docs.cfg.Now(), Doc: s.id, User: r.client.User.ID, ClientID: cid})
		s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "join",
			Member: &proto.Member{ClientID: cid, User: r.client.User}}), cid)
	}
}

// opsBetween returns the ops [from, to), from memory where it holds them
// and from the log before that. recent always ends at the in-memory head.
//
// It reads at most MaxReplayOps ops: a request that needs more (an open,
// an op or a cursor made against a version that far back) gets
// ErrHistoryGone, as when the ops were compacted away, so that no request
// holds the document's goroutine for longer than that read.
func (s *docSession) opsBetween(from, to int) ([]doc.OpRecord, error) {
	if from >= to {
		return nil, nil
	}
	if n := to - from; n > s.docs.cfg.MaxReplayOps {
		return nil, fmt.Errorf("%d ops of %s from v%d, at most %d: %w", n, s.id, from, s.docs.cfg.MaxReplayOps, ErrHistoryGone)
	}
	memStart := s.doc.Version() - len(s.recent)
	if from >= memStart {
		return s.recent[from-memStart : to-memStart], nil
	}
	end := min(to, memStart)
	recs, err := s.docs.cfg.OpLog.Ops(s.id, from, end)
	if errors.Is(err, doc.ErrCompacted) {
		return nil, fmt.Errorf("ops of %s from v%d: %w: %v", s.id, from, ErrHistoryGone, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read ops of %s: %w", s.id, err)
	}
	if len(recs) != end-from {
		return nil, fmt.Errorf("ops of %s from v%d: %w", s.id, from, ErrHistoryGone)
	}
	if to > memStart {
		recs = append(recs, s.recent[:to-memStart]...)
	}
	return recs, nil
}

// ErrHistoryGone: the ops a request needs were compacted away; the client
// must reopen the document without a version.
var ErrHistoryGone = errors.New("session: history compacted away")

// submitOp transforms, applies and submits one op.
func (s *docSession) submitOp(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	cfg := &s.docs.cfg
	base := *r.version
	if base < 0 || base > s.acked {
		r.fail(fmt.Errorf("op on %s at v%d, the client can know at most v%d: %w", s.id, base, s.acked, ErrFutureVersion))
		return
	}
	if r.uid == "" || len(r.uid) > 128 {
		r.fail(fmt.Errorf("%w: an op needs a uid of 1 to 128 bytes", ErrBadUID))
		return
	}
	// Exactly once: a uid seen before is acked with its original version.
	v, ok, err := s.lookupUID(r.uid)
	if err != nil {
		r.fail(err)
		return
	}
	if ok {
		if p, inFlight := s.inflight[v]; inFlight {
			p.dupes = append(p.dupes, dupAck{client: m.client.Sub.ClientID(), id: r.id})
			s.inflight[v] = p
			return
		}
		m.client.Sub.Send(proto.Encode(proto.Ack{ID: r.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: r.uid}))
		return
	}
	lim := s.limiters[m.client.User.ID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(cfg.OpRate), cfg.OpBurst)
		s.limiters[m.client.User.ID] = lim
	}
	if !lim.Allow() {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrOpRate))
		return
	}
	if insBytes := doc.InsertBytes(r.op); insBytes > cfg.MaxOpBytes {
		r.fail(fmt.Errorf("op inserts %d bytes, at most %d: %w", insBytes, cfg.MaxOpBytes, ErrDocTooLarge))
		return
	}
	rec := doc.OpRecord{Op: r.op, UID: r.uid, User: m.client.User.ID, ClientID: m.client.Sub.ClientID()}
	if err := s.commitOp(base, rec, pendOp{author: rec.ClientID, id: r.id, start: r.received}); err != nil {
		r.fail(err)
	}
}

// commitOp transforms rec.Op, made against version base, over the ops
// since then (one at a time, the history's inserts first), applies it at
// the head and submits it to the op log; p waits for its commit. On an
// error nothing has changed.
func (s *docSession) commitOp(base int, rec doc.OpRecord, p pendOp) error {
	op, err := s.transformOver(base, rec.Op)
	if err != nil {
		return err
	}
	if n := s.doc.Len() + op.Delta(); n > s.docs.cfg.MaxDocLen {
		return fmt.Errorf("document would have %d code points, at most %d: %w", n, s.docs.cfg.MaxDocLen, ErrDocTooLarge)
	}
	rec.Op = op
	return s.apply(rec, p)
}

// transformOver transforms op, made against version base, over the ops
// applied since then, one at a time, the history's inserts first.
func (s *docSession) transformOver(base int, op ot.Op) (ot.Op, error) {
	head := s.doc.Version()
	if base >= head {
		return op, nil
	}
	history, err := s.opsBetween(base, head)
	if err != nil {
		return nil, err
	}
	for _, h := range history {
		if _, op, err = ot.Transform(h.Op, op); err != nil {
			return nil, err
		}
	}
	return op, nil
}

// apply applies rec.Op, made against the head, and submits it to the op
// log; p waits for its commit. On an error nothing has changed.
func (s *docSession) apply(rec doc.OpRecord, p pendOp) error {
	head := s.doc.Version()
	if err := s.doc.Apply(rec.Op); err != nil {
		return err
	}
	rec.Version, rec.Time = head, s.docs.cfg.Now()
	s.remember(rec)
	s.inflight[head] = p
	s.docs.cfg.OpLog.AppendOpAsync(s.id, rec, func(err error) { s.committed(head, err) })
	return nil
}

// ErrBadUID: an op without a usable uid.
var ErrBadUID = errors.New("session: bad uid")

// lookupUID finds the version an op with uid was applied at. Memory
// answers for the ops from uidFloor on; before that only storage's uid
// index knows, whatever version the request claims to be based on (a
// client may resend an op rebased on later versions), so storage is asked
// whenever memory cannot prove that the uid is new. A failed read is
// ErrTryAgain: nothing is applied on a guess.
func (s *docSession) lookupUID(uid string) (int, bool, error) {
	if v, ok := s.uids[uid]; ok {
		return v, true, nil
	}
	if s.uidFloor == 0 {
		return 0, false, nil // memory holds every uid since the document was created
	}
	rec, ok, err := s.docs.cfg.OpLog.OpByUIDBefore(s.id, uid, s.uidFloor)
	if err != nil {
		s.log.Error().Err(err).Msg("uid lookup")
		return 0, false, fmt.Errorf("look up op uid on %s: %w", s.id, ErrTryAgain)
	}
	return rec.Version, ok, nil
}

// remember keeps rec in the recent window and its uid in uids.
func (s *docSession) remember(rec doc.OpRecord) {
	s.recent = append(s.recent, rec)
	s.uids[rec.UID] = rec.Version
	if max := s.docs.cfg.RecentOps; len(s.recent) > 2*max {
		// Forget the oldest half, but never an op still in flight.
		cut := len(s.recent) - max
		if oldest := s.acked - s.recent[0].Version; cut > oldest {
			cut = oldest
		}
		s.recent = slices.Clone(s.recent[cut:])
	}
	if floor := min(rec.Version+1-maxUIDs, s.acked); len(s.uids) > 2*maxUIDs && floor > s.uidFloor {
		// Forget the uids of the oldest ops (never one in flight):
		// storage's index answers for them from now on.
		for uid, v := range s.uids {
			if v < floor {
				delete(s.uids, uid)
			}
		}
		s.uidFloor = max(s.uidFloor, floor)
	}
}

// committed runs on storage's goroutine when an append completes. It only
// records the outcome and wakes run; it must not block.
func (s *docSession) committed(version int, err error) {
	s.durableMu.Lock()
	if err != nil {
		if s.failure == nil {
			s.failure, s.failedAt = err, version
		}
		s.failedN++
	} else {
		s.durable = append(s.durable, version)
	}
	s.durableMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drainDurable acks and broadcasts every op that became durable, in
// version order, and handles an append failure.
func (s *docSession) drainDurable() {
	s.durableMu.Lock()
	versions, failure := s.durable, s.failure
	s.durable = nil
	s.durableMu.Unlock()
	slices.Sort(versions)
	for _, v := range versions {
		if v != s.acked {
			// Commits complete in submission order; a gap means a failure
			// that the failure branch below handles.
			break
		}
		s.publish(v)
	}
	if failure != nil && len(s.inflight) > 0 {
		if errors.Is(failure, doc.ErrDuplicateUID) {
			s.recoverDuplicate()
			return
		}
		s.fail(failure)
	}
}

// recoverDuplicate handles storage's refusal of an op whose uid its log
// already holds (memory said the uid was new; storage's index is the
// truth). Nothing of that op or of the ops submitted after it was written
// (each later append failed on the version), and none of them was sent to
// anyone, so: the op is acked with its original version, like any resend;
// the later ops are refused with ErrTryAgain (their authors send them
// again, and they apply then); and the document's memory, ahead of the
// log, is reloaded from storage. The document stays open for everyone.
func (s *docSession) recoverDuplicate() {
	// Every append after the refused one fails; wait until all have said so.
	for {
		s.durableMu.Lock()
		n := s.failedN
		s.durableMu.Unlock()
		if n >= len(s.inflight) {
			break
		}
		<-s.wake
	}
	s.durableMu.Lock()
	dupAt := s.failedAt
	s.failure, s.failedN, s.durable = nil, 0, nil
	s.durableMu.Unlock()
	s.log.Warn().Int("version", dupAt).Msg("storage refused a duplicate op uid; acking the original and reloading")
	versions := slices.Sorted(maps.Keys(s.inflight))
	memStart := s.doc.Version() - len(s.recent)
	for _, v := range versions {
		p := s.inflight[v]
		rec := s.recent[v-memStart]
		orig, ok := doc.OpRecord{}, false
		if v == dupAt {
			var err error
			orig, ok, err = s.docs.cfg.OpLog.OpByUIDBefore(s.id, rec.UID, math.MaxInt)
			if err != nil {
				s.log.Error().Err(err).Msg("uid lookup")
			}
		}
		s.answerDropped(p, rec.UID, orig.Version, ok)
	}
	s.inflight = map[int]pendOp{}
	s.forget()
	if err := s.load(false); err != nil {
		s.log.Error().Err(err).Msg("reload after a duplicate uid")
		s.durableMu.Lock()
		s.failure = err
		s.durableMu.Unlock()
		s.fail(err)
	}
}

// answerDropped answers the author (and the resenders) of an op that was
// not applied: an ack with the original's version when it was a duplicate
// (ok), else ErrTryAgain.
func (s *docSession) answerDropped(p pendOp, uid string, orig int, ok bool) {
	err := fmt.Errorf("op %s on %s was not applied: %w", uid, s.id, ErrTryAgain)
	answer := func(cid string, id *int64) {
		m := s.members[cid]
		if m == nil {
			return
		}
		if ok {
			m.client.Sub.Send(proto.Encode(proto.Ack{ID: id, Type: proto.TypeAck, Doc: s.id, Version: orig, UID: uid}))
		} else {
			m.client.Fail(id, err)
		}
	}
	if p.author != "" {
		answer(p.author, p.id)
	}
	for _, d := range p.dupes {
		answer(d.client, d.id)
	}
	if p.done != nil {
		if ok {
			p.done <- EditResult{Version: orig}
		} else {
			p.done <- EditResult{Err: err}
		}
	}
}

// publish acks op v to its author (and to resends of it) and sends it to
// every other member, then moves stored cursors through it.
func (s *docSession) publish(v int) {
	p := s.inflight[v]
	delete(s.inflight, v)
	s.docs.cfg.Metrics.ObserveAck(time.Since(p.start))
	rec := s.recent[v-s.recent[0].Version]
	s.acked = v + 1
	frame := proto.Encode(opFrame(s.id, rec))
	for cid, m := range s.members {
		if cid == p.author {
			m.client.Sub.Send(proto.Encode(proto.Ack{ID: p.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: rec.UID}))
		} else {
			sendEncoded(m.client.Sub, frame)
		}
		if m.cursor != nil {
			m.cursor = transformSelections(rec.Op, m.cursor, cid == rec.ClientID)
		}
	}
	if p.done != nil {
		op := rec.Op
		if p.whole != nil {
			op = p.whole
		}
		p.done <- EditResult{Version: v, Op: op}
	}
	s.opsApplied.Add(1)
	notify(s.docs.cfg.Notifier, Event{Type: EventDocChanged, Time: rec.Time, Doc: s.id, Version: v + 1, User: rec.User, ClientID: rec.ClientID})
	for _, d := range p.dupes {
		if m := s.members[d.client]; m != nil {
			m.client.Sub.Send(proto.Encode(proto.Ack{ID: d.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: rec.UID}))
		}
	}
}

// flush waits until every submitted op is durable and published.
func (s *docSession) flush() {
	for len(s.inflight) > 0 {
		if s.failed() != nil {
			s.drainDurable()
			return
		}
		<-s.wake
		s.drainDurable()
	}
}

// fail handles an append failure: the in-memory document is ahead of the
// log, so every member is told and the document closes; the next open
// reloads it from storage.
func (s *docSession) fail(err error) {
	s.log.Error().Err(err).Msg("op log append failed; closing the document")
	for v, p := range s.inflight {
		err := fmt.Errorf("op at v%d of %s: %w", v, s.id, ErrStorage)
		if p.done != nil {
			p.done <- EditResult{Err: err}
		}
		if m := s.members[p.author]; m != nil {
			m.client.Fail(p.id, err)
		}
	}
	s.inflight = map[int]pendOp{}
	for cid, m := range s.members {
		m.client.Sub.Send(proto.Encode(proto.Closed{Type: proto.TypeClosed, Doc: s.id, Reason: "unavailable"}))
		delete(s.members, cid)
	}
}

// closeFor removes a client from the document and tells the others.
func (s *docSession) closeFor(cid string, _ bool) {
	m := s.members[cid]
	if m == nil {
		return
	}
	delete(s.members, cid)
	s.memberCount.Store(int32(len(s.members)))
	notify(s.docs.cfg.Notifier, Event{Type: EventDocLeft, Time: s.docs.cfg.Now(), Doc: s.id, User: m.client.User.ID, ClientID: cid})
	s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "leave",
		Member: &proto.Member{ClientID: cid, User: m.client.User}}), cid)
	if len(s.members) == 0 {
		s.idle.Reset(s.docs.cfg.IdleTimeout)
	}
}

// broadcast sends a frame to every member but skip.
func (s *docSession) broadcast(frame []byte, skip string) {
	for cid, m := range s.members {
		if cid != skip {
			m.client.Sub.Send(frame)
		}
	}
}

// setCursor stores a client's cursor, moved to the durable head, and
// broadcasts it at most once per CursorInterval (the latest wins).
func (s *docSession) setCursor(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	v := *r.version
	if v < 0 || v > s.acked {
		r.fail(fmt.Errorf("cursor on %s at v%d, head is v%d: %w", s.id, v, s.acked, ErrFutureVersion))
		return
	}
	if len(r.ranges) > 100 {
		r.fail(fmt.Errorf("%w: at most 100 ranges", ErrBadCursor))
		return
	}
	ranges := slices.Clone(r.ranges)
	if ranges == nil {
		ranges = []ot.Selection{}
	}
	if v < s.acked {
		recs, err := s.opsBetween(v, s.acked)
		if err != nil {
			r.fail(err)
			return
		}
		for _, rec := range recs {
			ranges = transformSelections(rec.Op, ranges, rec.ClientID == m.client.Sub.ClientID())
		}
	}
	// Clamp into the durable text, which is what the others have seen.
	n := s.durableLen()
	for i := range ranges {
		ranges[i].Anchor = min(max(ranges[i].Anchor, 0), n)
		ranges[i].Head = min(max(ranges[i].Head, 0), n)
	}
	m.cursor = ranges
	interval := s.docs.cfg.CursorInterval
	now := s.docs.cfg.Now()
	if now.Sub(m.lastCursor) >= interval {
		s.sendCursor(m)
		return
	}
	if !m.pending {
		m.pending = true
		s.cursorDue.Reset(interval - now.Sub(m.lastCursor))
	}
}

// ErrBadCursor: a cursor request with too many ranges.
var ErrBadCursor = errors.New("session: bad cursor")

// durableLen is the length of the text at the durable head: the in-memory
// length minus what the in-flight ops changed.
func (s *docSession) durableLen() int {
	n := s.doc.Len()
	for v := s.acked; v < s.doc.Version(); v++ {
		n -= s.recent[v-s.recent[0].Version].Op.Delta()
	}
	return n
}

func (s *docSession) sendCursor(m *docMember) {
	m.pending = false
	m.lastCursor = s.docs.cfg.Now()
	cid := m.client.Sub.ClientID()
	user := m.client.User
	s.broadcast(proto.Encode(proto.Cursor{Type: proto.TypeCursor, Doc: s.id, Version: s.acked,
		ClientID: cid, User: &user, Ranges: m.cursor}), cid)
}

// flushCursors broadcasts the coalesced cursors that are due.
func (s *docSession) flushCursors() {
	interval := s.docs.cfg.CursorInterval
	now := s.docs.cfg.Now()
	var next time.Duration
	for _, m := range s.members {
		if !m.pending {
			continue
		}
		if wait := interval - now.Sub(m.lastCursor); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		s.sendCursor(m)
	}
	if next > 0 {
		s.cursorDue.Reset(next)
	}
}

func transformSelections(op ot.Op, sel []ot.Selection, own bool) []ot.Selection {
	out := make([]ot.Selection, len(sel))
	for i, r := range sel {
		out[i] = ot.TransformSelection(op, r, own)
	}
	return out
}

// handleComment performs a comment action on the durable head. The change
// is made in memory, written, and undone in memory when the write fails,
// so that memory never holds a comment storage does not (or lacks one it
// holds). A comment's text is at most MaxCommentBytes and a document has
// at most MaxComments comments, replies included: past either the action
// is refused with an error wrapping ErrTooLarge.
func (s *docSession) handleComment(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	cfg := &s.docs.cfg
	cr := r.comment
	now := cfg.Now()
	if cr.Text != nil && len(*cr.Text) > cfg.MaxCommentBytes {
		r.fail(fmt.Errorf("comment text of %d bytes, at most %d: %w", len(*cr.Text), cfg.MaxCommentBytes, ErrTooLarge))
		return
	}
	saved := s.doc.Comments() // to undo the change if its write fails
	var c doc.Comment
	switch cr.Action {
	case "add":
		if cr.Range == nil || cr.Text == nil || *cr.Text == "" {
			r.fail(fmt.Errorf("%w: add needs a range and a text", ErrBadComment))
			return
		}
		if n := s.doc.NumComments(); n >= cfg.MaxComments {
			r.fail(fmt.Errorf("%s has %d comments (replies included), at most %d: %w", s.id, n, cfg.MaxComments, ErrTooLarge))
			return
		}
		if cr.Version < 0 || cr.Version > s.acked {
			r.fail(fmt.Errorf("comment on %s at v%d, head is v%d: %w", s.id, cr.Version, s.acked, ErrFutureVersion))
			return
		}
		if cr.Range.From < 0 || cr.Range.From > cr.Range.To {
			r.fail(fmt.Errorf("%w: range [%d,%d)", ErrBadComment, cr.Range.From, cr.Range.To))
			return
		}
		rng := *cr.Range
		recs, err := s.opsBetween(cr.Version, s.acked)
		if err != nil {
			r.fail(err)
			return
		}
		for _, rec := range recs {
			rng = ot.TransformRange(rec.Op, rng)
		}
		parent := ""
		if cr.Parent != nil && *cr.Parent != "" {
			p, ok := s.doc.Comment(*cr.Parent)
			if !ok {
				r.fail(fmt.Errorf("%w: no parent comment %q", ErrBadComment, *cr.Parent))
				return
			}
			parent, rng = p.ID, p.Range // a reply sits on its thread's text
		}
		c = doc.Comment{ID: s.newCommentID(), Range: rng, User: m.client.User.ID, UserName: m.client.User.Name,
			Text: *cr.Text, Parent: parent, CreatedAt: now}
		if err := s.doc.AddComment(c); err != nil {
			r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
			return
		}
	case "edit", "resolve", "reopen", "delete":
		old, ok := s.doc.Comment(cr.CommentID)
		if !ok {
			r.fail(fmt.Errorf("%w: no comment %q", ErrBadComment, cr.CommentID))
			return
		}
		if (cr.Action == "edit" || cr.Action == "delete") && old.User != m.client.User.ID && !r.moderate {
			r.fail(fmt.Errorf("%s comment %q: %w", cr.Action, cr.CommentID, ErrCommentForbidden))
			return
		}
		c = old
		switch cr.Action {
		case "edit":
			if cr.Text == nil || *cr.Text == "" {
				r.fail(fmt.Errorf("%w: edit needs a text", ErrBadComment))
				return
			}
			c.Text = *cr.Text
		case "resolve":
			c.Resolved = true
		case "reopen":
			c.Resolved = false
		}
		c.UpdatedAt = now
		if cr.Action == "delete" {
			if err := s.doc.RemoveComment(c.ID); err != nil {
				r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
				return
			}
		} else if err := s.doc.UpdateComment(c); err != nil {
			r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
			return
		}
	default:
		r.fail(fmt.Errorf("%w: unknown action %q (add, edit, resolve, reopen, delete)", ErrBadComment, cr.Action))
		return
	}
	if cr.Action == "delete" {
		c.Version = s.doc.Version()
	} else {
		c, _ = s.doc.Comment(c.ID) // with Version set
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var err error
	if cr.Action == "delete" {
		err = cfg.Comments.DeleteComment(ctx, s.id, c.ID)
	} else {
		err = cfg.Comments.PutComment(ctx, s.id, c)
	}
	cancel()
	if err != nil {
		s.doc.SetComments(saved)
		r.fail(fmt.Errorf("store comment: %w", err))
		return
	}
	frame := proto.CommentFrame{Type: proto.TypeComment, Doc: s.id, Action: cr.Action, Comment: commentFrame(c)}
	reply := frame
	reply.ID = r.id
	m.client.Sub.Send(proto.Encode(reply))
	s.broadcast(proto.Encode(frame), m.client.Sub.ClientID())
	if cr.Action == "add" {
		notify(cfg.Notifier, Event{Type: EventCommentAdded, Time: now, Doc: s.id, User: c.User, ClientID: m.client.Sub.ClientID(), Data: frame.Comment})
	}
	if cr.Action == "add" || cr.Action == "edit" {
		if names := Mentions(c.Text); len(names) > 0 && cfg.Hub != nil {
			cfg.Hub.NotifyMentions(names, "doc:"+s.id, uint64(s.acked), m.client.User.ID, m.client.User.Name, c.Text)
		}
	}
}

func (s *docSession) newCommentID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "cm_" + hex.EncodeToString(b[:])
}

// commentFrames returns every comment for a snapshot.
func (s *docSession) commentFrames() []proto.Comment {
	cs := s.doc.Comments()
	out := make([]proto.Comment, len(cs))
	for i, c := range cs {
		out[i] = commentFrame(c)
	}
	return out
}

func commentFrame(c doc.Comment) proto.Comment {
	var parent *string
	if c.Parent != "" {
		parent = &c.Parent
	}
	f := proto.Comment{ID: c.ID, Range: c.Range, User: proto.User{ID: c.User, Name: c.UserName, Color: proto.ColorOf(c.User)}, Text: c.Text,
		Parent: parent, Resolved: c.Resolved, CreatedAt: c.CreatedAt.UTC().Format(proto.TimeLayout)}
	if !c.UpdatedAt.IsZero() {
		f.UpdatedAt = c.UpdatedAt.UTC().Format(proto.TimeLayout)
	}
	return f
}

// memberFrames lists the members for a snapshot, the opener last.
func (s *docSession) memberFrames(self string, selfUser proto.User) []proto.Member {
	out := make([]proto.Member, 0, len(s.members)+1)
	for cid, m := range s.members {
		if cid != self {
			out = append(out, proto.Member{ClientID: cid, User: m.client.User})
		}
	}
	return append(out, proto.Member{ClientID: self, User: selfUser})
}

// cursorFrames lists the other members' cursors for a snapshot.
func (s *docSession) cursorFrames(self string) []proto.Cursor {
	out := []proto.Cursor{}
	for cid, m := range s.members {
		if cid != self && m.cursor != nil {
			u := m.client.User
			out = append(out, proto.Cursor{Doc: s.id, Version: s.acked, ClientID: cid, User: &u, Ranges: m.cursor})
		}
	}
	return out
}

func opFrame(docID string, rec doc.OpRecord) proto.DocOp {
	return proto.DocOp{Type: proto.TypeOp, Doc: docID, Version: rec.Version, Op: rec.Op, UID: rec.UID,
		User: rec.User, ClientID: rec.ClientID, TS: rec.Time.UTC().Format(proto.TimeLayout)}
}

// serverEdit applies an edit from the server side (Docs.Edit, Replace,
// Create): an op made against a version, transformed over what was
// applied since, checked against MaxDocLen as a whole, and applied as
// consecutive ops that each insert at most MaxOpBytes. Nothing runs in
// between them; the waiter hears when the last is durable.
func (s *docSession) serverEdit(r *docRequest) {
	cfg := &s.docs.cfg
	if r.mustCreate {
		if n := r.op.Delta(); n > cfg.MaxDocLen {
			r.fail(fmt.Errorf("content of %d code points, at most %d: %w", n, cfg.MaxDocLen, ErrDocTooLarge))
			return
		}
		if s.loaded {
			r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
			return
		}
		if _, err := cfg.Documents.GetDoc(s.id); err == nil {
			r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
			return
		} else if !isNotFound(err) {
			r.fail(err)
			return
		}
	}
	if err := s.load(r.create); err != nil {
		r.fail(err)
		return
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	if r.epoch != "" && r.epoch != s.epoch {
		// Read from an incarnation that was deleted since.
		r.fail(fmt.Errorf("%s was deleted and created again while the edit was made: %w", s.id, ErrTryAgain))
		return
	}
	head := s.doc.Version()
	base := head
	if r.version != nil {
		base = *r.version
		if base < 0 || base > head {
			r.fail(fmt.Errorf("edit %s at v%d, head is v%d: %w", s.id, base, head, ErrFutureVersion))
			return
		}
	}
	if r.op.IsNoop() {
		r.done <- EditResult{Version: head, Op: ot.Op{}}
		return
	}
	if r.uid == "" {
		r.uid = "srv-" + s.newCommentID()[3:]
	} else if v, ok, err := s.lookupUID(r.uid); err != nil {
		r.fail(err)
		return
	} else if ok {
		r.done <- EditResult{Version: v}
		return
	}
	op, err := s.transformOver(base, r.op)
	if err != nil {
		r.fail(err)
		return
	}
	if n := s.doc.Len() + op.Delta(); n > cfg.MaxDocLen {
		r.fail(fmt.Errorf("document would have %d code points, at most %d: %w", n, cfg.MaxDocLen, ErrDocTooLarge))
		return
	}
	pieces := doc.SplitOp(op, cfg.MaxOpBytes)
	for i, piece := range pieces {
		rec := doc.OpRecord{Op: piece, UID: r.uid, User: r.user}
		if i > 0 {
			rec.UID = fmt.Sprintf("%s.%d", r.uid, i+1)
		}
		p := pendOp{start: r.received}
		if i == len(pieces)-1 {
			p.done, p.whole = r.done, op
		}
		// Each piece applies to the text the previous one made: at the
		// head, with nothing to transform over. The length was checked for
		// the whole edit (a piece may pass through a longer text).
		if err := s.apply(rec, p); err != nil {
			r.fail(err) // cannot happen after the checks above, short of a bug
			return
		}
	}
	s.idle.Reset(cfg.IdleTimeout)
}

// readHead answers a server-side edit's read: the durable head's version,
// text and epoch.
func (s *docSession) readHead(r *docRequest) {
	if err := s.load(r.create); err != nil {
		r.fail(err)
		return
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	*r.head = headText{version: s.doc.Version(), content: s.headContent(), epoch: s.epoch}
	r.done <- EditResult{Version: s.doc.Version()}
}

// deleteDoc closes the document for everyone and deletes it.
func (s *docSession) deleteDoc(r *docRequest) {
	s.flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.docs.cfg.Documents.DeleteDoc(ctx, s.id)
	cancel()
	if err != nil {
		r.fail(fmt.Errorf("delete %s: %w", s.id, err))
		return
	}
	frame := proto.Encode(proto.Closed{Type: proto.TypeClosed, Doc: s.id, Reason: "deleted"})
	for cid, m := range s.members {
		m.client.Sub.Send(frame)
		delete(s.members, cid)
	}
	s.memberCount.Store(0)
	// Forget everything: the next request loads afresh (and finds nothing,
	// or a new incarnation with its own epoch).
	s.forget()
	r.done <- EditResult{}
}
