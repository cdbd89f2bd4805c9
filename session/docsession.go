package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

	durableMu sync.Mutex    // guards durable and failure
	durable   []int         // versions committed since run last looked
	failure   error         // the first append failure
	wake      chan struct{} // cap 1: durable or failure changed

	// Owned by run.
	doc       *doc.Document
	loaded    bool
	loadErr   error
	acked     int            // ops [0, acked) are durable and sent out
	recent    []doc.OpRecord // the last ops, contiguous, ending at doc.Version()
	uids      map[string]int // uid → version, for the ops in recent
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
	done   chan<- EditResult // a server-side edit's waiter
	start  time.Time         // when the op arrived, for the ack latency
}

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
func (s *docSession) unload() bool {
	s.flush()
	d := s.docs
	d.mu.Lock()
	if len(s.reqs) > 0 && !d.closed {
		d.mu.Unlock()
		return false
	}
	delete(d.sessions, s.id)
	close(s.done)
	d.mu.Unlock()
	if s.loaded && s.loadErr == nil && s.failed() == nil {
		s.persist()
	}
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
	if err := cfg.Snapshots.PutSnapshot(ctx, s.id, s.doc.Snapshot()); err != nil {
		s.log.Error().Err(err).Msg("snapshot on unload")
	}
	for _, c := range s.doc.Comments() {
		if err := cfg.Comments.PutComment(ctx, s.id, c); err != nil {
			s.log.Error().Err(err).Msg("comment on unload")
			return
		}
	}
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
	_, err := cfg.Documents.GetDoc(s.id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("load %s: %w", s.id, err)
	}
	if err != nil { // not found
		if !create {
			return fmt.Errorf("%s: %w", s.id, ErrDocNotFound)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cfg.Documents.CreateDoc(ctx, doc.Info{ID: s.id, Created: cfg.Now()})
		cancel()
		if err != nil && !isExists(err) {
			return fmt.Errorf("create %s: %w", s.id, err)
		}
		if err == nil && cfg.Hub != nil {
			cfg.Hub.Publish(Publication{Channel: "system:docs", Event: "created", Data: []byte(fmt.Sprintf(`{"id":%q}`, s.id)),
				From: proto.From{User: "system"}}, func(uint64, error) {})
		}
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
	var reply any
	if r.version != nil {
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
		ops := make([]proto.DocOp, len(recs))
		for i, rec := range recs {
			ops[i] = opFrame(s.id, rec)
			ops[i].Type = ""
		}
		reply = proto.Opened{ID: r.id, Type: proto.TypeOpened, Doc: s.id, Version: head, Ops: ops,
			Comments: s.commentFrames(), Members: s.memberFrames(cid, r.client.User), Cursors: s.cursorFrames(cid)}
	} else {
		reply = proto.Snapshot{ID: r.id, Type: proto.TypeSnapshot, Doc: s.id, Version: head, Content: s.doc.Content(),
			Comments: s.commentFrames(), Members: s.memberFrames(cid, r.client.User), Cursors: s.cursorFrames(cid)}
	}
	r.client.Sub.Send(proto.Encode(reply))
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
func (s *docSession) opsBetween(from, to int) ([]doc.OpRecord, error) {
	if from >= to {
		return nil, nil
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
	if v, ok := s.lookupUID(r.uid, base); ok {
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
	insBytes := 0
	for _, c := range r.op {
		insBytes += len(c.Text())
	}
	if insBytes > cfg.MaxOpBytes {
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
	cfg := &s.docs.cfg
	head := s.doc.Version()
	op := rec.Op
	if base < head {
		history, err := s.opsBetween(base, head)
		if err != nil {
			return err
		}
		for _, h := range history {
			if _, op, err = ot.Transform(h.Op, op); err != nil {
				return err
			}
		}
	}
	if n := s.doc.Len() + op.Delta(); n > cfg.MaxDocLen {
		return fmt.Errorf("document would have %d code points, at most %d: %w", n, cfg.MaxDocLen, ErrDocTooLarge)
	}
	if err := s.doc.Apply(op); err != nil {
		return err
	}
	rec.Version, rec.Op, rec.Time = head, op, cfg.Now()
	s.remember(rec)
	s.inflight[head] = p
	cfg.OpLog.AppendOpAsync(s.id, rec, func(err error) { s.committed(head, err) })
	return nil
}

// ErrBadUID: an op without a usable uid.
var ErrBadUID = errors.New("session: bad uid")

// lookupUID finds the version an op with uid was applied at. Ops with base
// version base can only have been applied at base or later, so memory
// answers when it reaches back that far; otherwise the log's index does.
func (s *docSession) lookupUID(uid string, base int) (int, bool) {
	if v, ok := s.uids[uid]; ok {
		return v, true
	}
	if len(s.recent) > 0 && s.recent[0].Version <= base || len(s.recent) == 0 && base == s.doc.Version() {
		return 0, false
	}
	rec, ok, err := s.docs.cfg.OpLog.OpByUID(s.id, uid)
	if err != nil {
		s.log.Error().Err(err).Msg("uid lookup")
		return 0, false
	}
	return rec.Version, ok
}

// remember keeps rec in the recent window.
func (s *docSession) remember(rec doc.OpRecord) {
	s.recent = append(s.recent, rec)
	s.uids[rec.UID] = rec.Version
	if max := s.docs.cfg.RecentOps; len(s.recent) > 2*max {
		// Forget the oldest half, but never an op still in flight.
		cut := len(s.recent) - max
		if oldest := s.acked - s.recent[0].Version; cut > oldest {
			cut = oldest
		}
		for _, old := range s.recent[:cut] {
			delete(s.uids, old.UID)
		}
		s.recent = slices.Clone(s.recent[cut:])
	}
}

// committed runs on storage's goroutine when an append completes. It only
// records the outcome and wakes run; it must not block.
func (s *docSession) committed(version int, err error) {
	s.durableMu.Lock()
	if err != nil {
		if s.failure == nil {
			s.failure = err
		}
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
		s.fail(failure)
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
	var ack []byte
	for cid, m := range s.members {
		if cid == p.author {
			ack = proto.Encode(proto.Ack{ID: p.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: rec.UID})
			m.client.Sub.Send(ack)
		} else {
			m.client.Sub.Send(frame)
		}
		if m.cursor != nil {
			m.cursor = transformSelections(rec.Op, m.cursor, cid == rec.ClientID)
		}
	}
	if p.done != nil {
		p.done <- EditResult{Version: v, Op: rec.Op}
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

// handleComment performs a comment action on the durable head.
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
	var c doc.Comment
	switch cr.Action {
	case "add":
		if cr.Range == nil || cr.Text == nil || *cr.Text == "" {
			r.fail(fmt.Errorf("%w: add needs a range and a text", ErrBadComment))
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

// serverEdit applies an edit from the server side: an op, or a new text to
// diff against the text at the base version.
func (s *docSession) serverEdit(r *docRequest) {
	cfg := &s.docs.cfg
	if r.mustCreate && !s.loaded {
		if _, err := cfg.Documents.GetDoc(s.id); err == nil {
			r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
			return
		} else if !isNotFound(err) {
			r.fail(err)
			return
		}
	} else if r.mustCreate {
		r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
		return
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
	head := s.doc.Version()
	base := head
	if r.version != nil {
		base = *r.version
		if base < 0 || base > head {
			r.fail(fmt.Errorf("edit %s at v%d, head is v%d: %w", s.id, base, head, ErrFutureVersion))
			return
		}
	}
	op := r.op
	if r.content != nil {
		old := s.doc.Content()
		if base < head {
			var err error
			if old, err = cfg.Snapshots.ContentAt(s.id, base); err != nil {
				r.fail(fmt.Errorf("content of %s at v%d: %w", s.id, base, err))
				return
			}
		}
		op = doc.DiffOp(old, *r.content)
	}
	if op.IsNoop() {
		r.done <- EditResult{Version: head, Op: ot.Op{}}
		return
	}
	if r.uid == "" {
		r.uid = "srv-" + s.newCommentID()[3:]
	} else if v, ok := s.lookupUID(r.uid, base); ok {
		r.done <- EditResult{Version: v}
		return
	}
	rec := doc.OpRecord{Op: op, UID: r.uid, User: r.user}
	if err := s.commitOp(base, rec, pendOp{done: r.done, start: r.received}); err != nil {
		r.fail(err)
		return
	}
	s.idle.Reset(cfg.IdleTimeout)
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
	// Forget everything: the next request loads afresh (and finds nothing).
	s.loaded, s.loadErr, s.doc = false, nil, nil
	s.recent, s.uids = nil, map[string]int{}
	r.done <- EditResult{}
}
