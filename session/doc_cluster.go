package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// Cluster mode: the document's log is shared with other nodes (its OpLog
// is a SharedOpLog), so the serialisation point is the log's
// compare-and-append, not this goroutine.
//
// The rule: the session applies an op to its document only once the op is
// in the log, in log order, whichever node stored it. So s.doc is always a
// prefix of the log (s.acked == s.doc.Version()), and what a client is
// sent (snapshots, ops, cursors) is always log. A follower delivers the
// log as it grows (FollowOps, from the version the session loaded);
// deliveries come into run's loop through the inbox.
//
// A local op (a client's, or a server-side edit) waits in pend, in its
// ORIGINAL form (the op as made against its base version, its uid, author
// and request). While nothing failed, each is transformed over the log
// since its base and over the ops submitted before it, and submitted at
// the next version with AppendOpAsync (ops submitted together share a
// message: group commit per document). When the follower delivers an op
// whose uid is a pending op's, the op is stored: the author gets its ack,
// the other local members the op. An op another node stored is applied
// and sent to every local member; it also dooms whatever this node had
// submitted at that version.
//
// When an append fails (another node won the version: a conflict; or
// JetStream could not say), the store fences the document: every later
// append of it fails until ResumeAppends. The session stops submitting,
// waits until every outstanding append has reported, lets the follower
// catch up with the log (to the conflict's head, or the head it reads
// after an ambiguous failure), then transforms every pending op again
// from its original form, in arrival order, and submits them all. The
// client sees only a later ack. A pending op whose uid the follower
// delivers, from whichever node, is acked with the version it has in the
// log: so an op resent to another node after a reconnect is applied once.
//
// Requests naming a version this node has not reached yet (a client that
// reconnected from a node ahead of this one) wait, at most parkTimeout,
// for the follower to get there.
//
// Presence and cursors: each node announces its own members of the
// document on the presence bus under "doc:<id>" and sends its members'
// cursors on the ephemeral bus; a cursor from another node made at a
// version this node has not reached waits for it. Comments are shared
// through the store, whose changes the session watches.

// parkTimeout bounds how long a request waits for the log to reach the
// version it names.
const parkTimeout = 5 * time.Second

// clusterDoc is the cluster state of a docSession, owned by run (except
// the fields under mu).
type clusterDoc struct {
	log       SharedOpLog
	comments  CommentWatcher // nil: comments are not watched
	presence  PresenceBus    // nil: local members only
	ephemeral EphemeralBus   // nil: local cursors only

	// inbox carries the follower's deliveries and the comment watch's
	// changes; its senders block (select on quit) so the log is never
	// dropped. side carries presence changes and remote cursors, which
	// their senders must not block on.
	inbox    chan inEvent
	quit     chan struct{} // closed to stop the senders before unsubscribing
	stops    []func()      // unsubscribe everything subscribed at load
	mu       sync.Mutex    // guards side
	side     []inEvent
	sideWake chan struct{} // cap 1: side grew

	pend    []*clusterOp
	byUID   map[string]*clusterOp // pending ops by the uid of their next piece
	results []appendResult        // filled by appendDone under docSession.durableMu
	out     int                   // appends submitted and not reported
	// halted: an append failed, or an op from another node doomed ours;
	// nothing is submitted until recovery. have is the head the log had
	// at the latest conflict, okTo the version after the last append
	// reported stored; ambiguous asks for a head read before recovery.
	halted    bool
	have      int
	okTo      int
	ambiguous bool
	retry     *time.Timer // re-runs recovery after a failed head read

	remote  map[string]*remoteMember // members on other nodes, by client id
	held    []proto.Cursor           // remote cursors ahead of the log
	heldCmt []doc.Comment            // comment changes ahead of the log
	parked  []parkedReq
	parkDue *time.Timer

	conflicts int64 // recoveries, for Stats
}

// clusterOp is a local op waiting to be stored.
type clusterOp struct {
	base int   // the version op is made against
	op   ot.Op // the op (or the rest of a split edit) as made against base
	// root is the uid of the op's first piece; landed the pieces stored so
	// far (piece n has uid root, root.2, root.3...: pieceUID).
	root   string
	landed int
	split  bool // a server-side edit, split into pieces over MaxOpBytes
	pieces int  // pieces of its latest submission
	user   string
	client string // author's client id; empty for a server-side edit
	p      pendOp
	whole  ot.Op          // the pieces stored so far, composed (server-side edits)
	lastV  int            // the version of the last piece stored
	subs   []doc.OpRecord // pieces submitted and not yet delivered
}

// nextUID is the uid of the op's next piece to land.
func (e *clusterOp) nextUID() string { return pieceUID(e.root, e.landed) }

func pieceUID(root string, n int) string {
	if n == 0 {
		return root
	}
	return fmt.Sprintf("%s.%d", root, n+1)
}

type appendResult struct {
	version int
	err     error
}

// inEvent is one thing other nodes did.
type inEvent struct {
	ops       []doc.OpRecord
	followErr error
	comment   *doc.Comment
	deleted   bool // comment deleted (comment carries the ID)
	presence  *RemoteEvent
	cursor    []byte
}

// remoteMember is a member connected to another node.
type remoteMember struct {
	node   string
	user   proto.User
	cursor []ot.Selection // at the head; nil: none
}

type parkedReq struct {
	r     *docRequest
	need  int
	until time.Time
}

// newClusterDoc returns the cluster state when the document's log is
// shared, else nil.
func newClusterDoc(cfg *DocsConfig) *clusterDoc {
	shared, ok := cfg.OpLog.(SharedOpLog)
	if !ok {
		return nil
	}
	c := &clusterDoc{log: shared, presence: cfg.Presence, ephemeral: cfg.Ephemeral,
		sideWake: make(chan struct{}, 1), byUID: map[string]*clusterOp{}, remote: map[string]*remoteMember{}}
	c.comments, _ = cfg.Comments.(CommentWatcher)
	return c
}

// presenceName is the document's name on the presence bus.
func (s *docSession) presenceName() string { return "doc:" + s.id }

// startFollowing subscribes to what other nodes do with the document, from
// the version just loaded. Called by load with the document in memory.
func (s *docSession) startFollowing(ctx context.Context) error {
	c := s.cl
	if c.inbox == nil { // (the comment watch may have made them)
		c.inbox = make(chan inEvent, 64)
		c.quit = make(chan struct{})
	}
	quit, inbox := c.quit, c.inbox
	send := func(e inEvent) {
		select {
		case inbox <- e:
		case <-quit:
		}
	}
	stop, err := c.log.FollowOps(ctx, s.id, s.doc.Version(), func(recs []doc.OpRecord) { send(inEvent{ops: recs}) },
		func(err error) { send(inEvent{followErr: err}) })
	if err != nil {
		return fmt.Errorf("follow %s: %w", s.id, err)
	}
	c.stops = append(c.stops, stop)
	if c.presence != nil {
		members, stop, err := c.presence.Watch(s.presenceName(), func(ev RemoteEvent) { s.sideEvent(inEvent{presence: &ev}) })
		if err != nil {
			s.stopFollowing()
			return fmt.Errorf("presence of %s: %w", s.id, err)
		}
		c.stops = append(c.stops, stop)
		for _, m := range members {
			s.remoteJoin(m, false)
		}
	}
	if c.ephemeral != nil {
		stop, err := c.ephemeral.SubscribeEphemeral(EphemeralDoc, s.id, func(p []byte) { s.sideEvent(inEvent{cursor: p}) })
		if err != nil {
			s.stopFollowing()
			return fmt.Errorf("cursors of %s: %w", s.id, err)
		}
		c.stops = append(c.stops, stop)
	}
	return nil
}

// watchComments starts the comment watch before the comments are read, so
// that no change falls between the read and the watch (a change seen
// twice is recognised: it equals what memory holds).
func (s *docSession) watchComments(ctx context.Context) error {
	c := s.cl
	if c.comments == nil {
		return nil
	}
	if c.inbox == nil {
		c.inbox = make(chan inEvent, 64)
		c.quit = make(chan struct{})
	}
	quit, inbox := c.quit, c.inbox
	stop, err := c.comments.WatchComments(ctx, s.id, func(cm doc.Comment, deleted bool) {
		select {
		case inbox <- inEvent{comment: &cm, deleted: deleted}:
		case <-quit:
		}
	})
	if err != nil {
		return fmt.Errorf("watch comments of %s: %w", s.id, err)
	}
	c.stops = append(c.stops, stop)
	return nil
}

// stopFollowing ends every subscription of the document and drops what
// other nodes told. Local members stay members; their presence on the bus
// is left to the caller.
func (s *docSession) stopFollowing() {
	c := s.cl
	if c.quit != nil {
		close(c.quit)
	}
	for _, stop := range c.stops {
		stop()
	}
	c.stops, c.quit, c.inbox = nil, nil, nil
	c.mu.Lock()
	c.side = nil
	c.mu.Unlock()
	for cid := range c.remote {
		delete(c.remote, cid)
	}
	c.held, c.heldCmt = nil, nil
}

// sideEvent queues a presence change or a remote cursor; it never blocks.
// Cursors are dropped past a bound (the next one replaces them anyway);
// presence changes never are.
func (s *docSession) sideEvent(e inEvent) {
	c := s.cl
	c.mu.Lock()
	if e.cursor != nil && len(c.side) > 4096 {
		c.mu.Unlock()
		return
	}
	c.side = append(c.side, e)
	c.mu.Unlock()
	select {
	case c.sideWake <- struct{}{}:
	default:
	}
}

// takeSide returns the queued side events.
func (s *docSession) takeSide() []inEvent {
	c := s.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.side
	c.side = nil
	return out
}

// inboxChan returns the inbox to select on (nil when not following, which
// blocks forever in a select).
func (s *docSession) inboxChan() chan inEvent {
	if s.cl == nil {
		return nil
	}
	return s.cl.inbox
}

func (s *docSession) sideChan() chan struct{} {
	if s.cl == nil {
		return nil
	}
	return s.cl.sideWake
}

func (s *docSession) retryChan() <-chan time.Time {
	if s.cl == nil || s.cl.retry == nil {
		return nil
	}
	return s.cl.retry.C
}

func (s *docSession) parkChan() <-chan time.Time {
	if s.cl == nil || s.cl.parkDue == nil {
		return nil
	}
	return s.cl.parkDue.C
}

// handleIn handles one event from the inbox.
func (s *docSession) handleIn(e inEvent) {
	switch {
	case e.followErr != nil:
		s.followFailed(e.followErr)
	case e.ops != nil:
		s.deliverOps(e.ops)
	case e.comment != nil:
		s.remoteComment(*e.comment, e.deleted)
	}
}

// handleSide handles the queued presence changes and remote cursors.
func (s *docSession) handleSide() {
	for _, e := range s.takeSide() {
		if !s.loaded || s.loadErr != nil {
			return
		}
		switch {
		case e.presence != nil:
			s.remotePresence(*e.presence)
		case e.cursor != nil:
			s.remoteCursor(e.cursor)
		}
	}
}

// --- the op pipeline ---

// lookupUIDCluster finds an op with uid made against base: in the log
// (memory, or the store from base when memory does not reach back so far)
// or among the pending ops.
func (s *docSession) lookupUIDCluster(uid string, base int) (v int, pending *clusterOp, ok bool, err error) {
	if v, ok := s.uids[uid]; ok {
		return v, nil, true, nil
	}
	if e := s.cl.byUID[uid]; e != nil {
		return 0, e, true, nil
	}
	if base >= s.uidFloor {
		return 0, nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, found, err := s.cl.log.FindUID(ctx, s.id, uid, base)
	if err != nil {
		s.log.Error().Err(err).Msg("uid lookup")
		return 0, nil, false, fmt.Errorf("look up op uid on %s: %w", s.id, ErrTryAgain)
	}
	return rec.Version, nil, found, nil
}

// queueOp adds a local op to the pending ops and submits what can be.
func (s *docSession) queueOp(e *clusterOp) {
	c := s.cl
	c.pend = append(c.pend, e)
	c.byUID[e.nextUID()] = e
	s.submitPending()
}

// submitPending transforms and submits every pending op not submitted
// yet, in order, unless the pipeline is halted.
func (s *docSession) submitPending() {
	c := s.cl
	if c.halted {
		return
	}
	next := s.doc.Version()
	length := s.doc.Len()
	var ahead []doc.OpRecord // submitted, not delivered: the log after the head, as this node expects it
	for i := 0; i < len(c.pend); i++ {
		e := c.pend[i]
		if len(e.subs) > 0 {
			for _, sub := range e.subs {
				ahead = append(ahead, sub)
				length += sub.Op.Delta()
				next++
			}
			continue
		}
		op, err := s.transformOver(e.base, e.op)
		if err == nil {
			for _, a := range ahead {
				if _, op, err = ot.Transform(a.Op, op); err != nil {
					break
				}
			}
		}
		if err == nil {
			if cerr := op.Check(length); cerr != nil {
				err = fmt.Errorf("apply op at v%d: %w", next, cerr)
			}
		}
		if err == nil && length+op.Delta() > s.docs.cfg.MaxDocLen {
			err = fmt.Errorf("document would have %d code points, at most %d: %w", length+op.Delta(), s.docs.cfg.MaxDocLen, ErrDocTooLarge)
		}
		if err != nil {
			s.dropPending(i, err)
			i--
			continue
		}
		pieces := []ot.Op{op}
		if e.split {
			pieces = doc.SplitOp(op, s.docs.cfg.MaxOpBytes)
		}
		e.pieces = len(pieces)
		now := s.docs.cfg.Now()
		for k, piece := range pieces {
			rec := doc.OpRecord{Version: next, Op: piece, UID: pieceUID(e.root, e.landed+k), User: e.user, ClientID: e.client, Time: now}
			e.subs = append(e.subs, rec)
			ahead = append(ahead, rec)
			length += piece.Delta()
			next++
			c.out++
			v := rec.Version
			c.log.AppendOpAsync(s.id, rec, func(err error) { s.appendDone(v, err) })
		}
	}
}

// dropPending removes pending op i and fails it with err.
func (s *docSession) dropPending(i int, err error) {
	c := s.cl
	e := c.pend[i]
	c.pend = append(c.pend[:i], c.pend[i+1:]...)
	delete(c.byUID, e.nextUID())
	s.answerDropped(e.p, e.nextUID(), 0, false, err)
}

// appendDone runs on the store's goroutine when an append reports: it
// records the outcome and wakes run. It must not block.
func (s *docSession) appendDone(v int, err error) {
	s.durableMu.Lock()
	s.cl.results = append(s.cl.results, appendResult{version: v, err: err})
	s.durableMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drainResults takes the appends' outcomes: a failure halts the pipeline;
// recovery starts once every outstanding append has reported.
func (s *docSession) drainResults() {
	c := s.cl
	s.durableMu.Lock()
	results := c.results
	c.results = nil
	s.durableMu.Unlock()
	deleted := false
	for _, r := range results {
		c.out--
		if r.err == nil {
			c.okTo = max(c.okTo, r.version+1)
			if sub, ok := s.firstSub(); ok && sub.Version == r.version && r.version == s.doc.Version() && !c.halted {
				// Stored at the version right after what this node has
				// applied: the log up to it is this document (the fence
				// keeps it so), so the op is the log's next one. Apply it
				// now instead of waiting for the follower, which delivers
				// it again later (and it is skipped then).
				s.deliverOps([]doc.OpRecord{sub})
			}
			continue
		}
		if !c.halted {
			s.log.Debug().Err(r.err).Int("version", r.version).Msg("append failed; catching up before submitting again")
		}
		c.halted = true
		var ce *doc.ConflictError
		switch {
		case errors.As(r.err, &ce):
			c.have = max(c.have, int(ce.Have))
		case errors.Is(r.err, doc.ErrNotFound):
			// Deleted through another node (the follower says so too).
			deleted = true
		case errors.Is(r.err, doc.ErrInvalid):
			// Refused for what it is (over the server's payload): drop it.
			for i, e := range c.pend {
				if len(e.subs) > 0 && e.subs[0].Version <= r.version && r.version < e.subs[0].Version+len(e.subs) {
					s.dropPending(i, fmt.Errorf("op refused by the store: %v: %w", r.err, ErrDocTooLarge))
					break
				}
			}
			c.ambiguous = true
		default:
			c.ambiguous = true
		}
	}
	if deleted && s.loaded {
		s.followFailed(fmt.Errorf("append to %s: %w", s.id, doc.ErrNotFound))
		return
	}
	s.recover()
}

// recover resubmits the pending ops once every append has reported and
// the follower has caught up with the log as it was at the failure.
func (s *docSession) recover() {
	c := s.cl
	if !c.halted || c.out > 0 || !s.loaded {
		return
	}
	if c.ambiguous {
		info, err := s.docs.cfg.Documents.GetDoc(s.id)
		if err != nil {
			if isNotFound(err) {
				return // the follower reports the deletion
			}
			s.log.Warn().Err(err).Msg("head read after a failed append; trying again")
			if c.retry == nil {
				c.retry = time.NewTimer(time.Second)
			} else {
				c.retry.Reset(time.Second)
			}
			return
		}
		c.have = max(c.have, info.Version)
		c.ambiguous = false
	}
	if s.doc.Version() < max(c.have, c.okTo) {
		return // deliverOps calls again
	}
	c.halted, c.have = false, 0
	c.conflicts++
	c.log.ResumeAppends(s.id)
	for _, e := range c.pend {
		e.subs = nil // each failed (those stored were delivered)
	}
	s.submitPending()
}

// deliverOps applies ops stored by any node, in log order.
func (s *docSession) deliverOps(recs []doc.OpRecord) {
	if !s.loaded || s.loadErr != nil {
		return
	}
	for _, rec := range recs {
		if rec.Version < s.doc.Version() {
			continue // already applied (a follower restarted from an older position)
		}
		if rec.Version > s.doc.Version() {
			s.followFailed(fmt.Errorf("the log skipped from v%d to v%d", s.doc.Version(), rec.Version))
			return
		}
		if err := s.doc.Apply(rec.Op); err != nil {
			s.followFailed(fmt.Errorf("apply v%d from the log: %w", rec.Version, err))
			return
		}
		s.remember(rec)
		s.acked = s.doc.Version()
		s.opsApplied.Add(1)
		c := s.cl
		e := c.byUID[rec.UID]
		author := ""
		if e != nil {
			author = e.client
		}
		frame := proto.Encode(opFrame(s.id, rec))
		for cid, m := range s.members {
			if e == nil || cid != author {
				sendEncoded(m.client.Sub, frame)
			}
			if m.cursor != nil {
				m.cursor = transformSelections(rec.Op, m.cursor, cid == rec.ClientID)
			}
		}
		for _, rm := range c.remote {
			if rm.cursor != nil {
				rm.cursor = transformSelections(rec.Op, rm.cursor, false)
			}
		}
		if e != nil {
			s.landed(e, rec)
		} else if s.outstanding() {
			// Another node took the version this node submitted at: what
			// is outstanding fails; submit nothing until it has said so.
			c.halted = true
		}
	}
	s.afterAdvance()
}

// firstSub returns the first piece submitted and not yet applied.
func (s *docSession) firstSub() (doc.OpRecord, bool) {
	for _, e := range s.cl.pend {
		if len(e.subs) > 0 {
			return e.subs[0], true
		}
	}
	return doc.OpRecord{}, false
}

// outstanding reports whether some pending op is submitted and not yet
// delivered.
func (s *docSession) outstanding() bool {
	for _, e := range s.cl.pend {
		if len(e.subs) > 0 {
			return true
		}
	}
	return false
}

// landed handles a piece of pending op e found in the log at rec.Version.
func (s *docSession) landed(e *clusterOp, rec doc.OpRecord) {
	c := s.cl
	delete(c.byUID, e.nextUID())
	own := len(e.subs) > 0 && e.subs[0].UID == rec.UID && e.subs[0].Version == rec.Version && e.subs[0].Op.Equal(rec.Op)
	e.landed++
	e.lastV = rec.Version
	if e.split {
		if e.whole == nil {
			e.whole = rec.Op
		} else if w, err := ot.Compose(e.whole, rec.Op); err == nil {
			e.whole = w
		}
	}
	if own {
		e.subs = e.subs[1:]
	} else {
		if len(e.subs) > 0 {
			c.halted = true // what this node submitted for it fails
		}
		e.subs = nil
	}
	i := 0
	for i < len(c.pend) && c.pend[i] != e {
		i++
	}
	switch {
	case own && len(e.subs) > 0:
		// More pieces of a split edit to come: the rest, as made against
		// the version after this one, is what a recovery transforms.
		rest := e.subs[0].Op
		for _, sub := range e.subs[1:] {
			if composed, err := ot.Compose(rest, sub.Op); err == nil {
				rest = composed
			}
		}
		e.base, e.op = rec.Version+1, rest
		c.byUID[e.nextUID()] = e
		return
	case !own && e.split && !(e.pieces == 1 && e.landed == 1):
		// A piece of a split edit stored by an attempt this node gave up
		// on (its append's outcome was unknown): what is left of the edit
		// is unknown. It stops here; the caller may send it again.
		if i < len(c.pend) {
			c.pend = append(c.pend[:i], c.pend[i+1:]...)
		}
		s.answerDropped(e.p, e.root, 0, false, fmt.Errorf("edit of %s stored in part: %w", s.id, ErrTryAgain))
		return
	}
	// Stored whole: by this node, or (a client's op resent to another
	// node after a reconnect) by another one.
	if i < len(c.pend) {
		c.pend = append(c.pend[:i], c.pend[i+1:]...)
	}
	s.docs.cfg.Metrics.ObserveAck(time.Since(e.p.start))
	if m := s.members[e.p.author]; m != nil && e.p.author != "" {
		m.client.Sub.Send(proto.Encode(proto.Ack{ID: e.p.id, Type: proto.TypeAck, Doc: s.id, Version: rec.Version, UID: rec.UID}))
	}
	for _, d := range e.p.dupes {
		if m := s.members[d.client]; m != nil {
			m.client.Sub.Send(proto.Encode(proto.Ack{ID: d.id, Type: proto.TypeAck, Doc: s.id, Version: rec.Version, UID: rec.UID}))
		}
	}
	if e.p.done != nil {
		op := rec.Op
		if e.split {
			op = e.whole
		}
		e.p.done <- EditResult{Version: rec.Version, Op: op}
	}
	if own { // the node that stored an op reports it (once in the cluster)
		s.watch(rec.Version + 1)
		notify(s.docs.cfg.Notifier, Event{Type: EventDocChanged, Time: rec.Time, Doc: s.id, Version: rec.Version + 1, User: rec.User, ClientID: rec.ClientID})
	}
}

// afterAdvance runs what waited for the log to move: recovery, held
// cursors and comments, parked requests, and submission.
func (s *docSession) afterAdvance() {
	c := s.cl
	head := s.doc.Version()
	if len(c.held) > 0 {
		held := c.held
		c.held = nil
		for _, cur := range held {
			s.applyRemoteCursor(cur)
		}
	}
	if len(c.heldCmt) > 0 {
		held := c.heldCmt
		c.heldCmt = nil
		for _, cm := range held {
			s.remoteComment(cm, false)
		}
	}
	if len(c.parked) > 0 {
		var again []*docRequest
		keep := c.parked[:0]
		for _, p := range c.parked {
			if p.need <= head {
				again = append(again, p.r)
			} else {
				keep = append(keep, p)
			}
		}
		c.parked = keep
		for _, r := range again {
			s.handle(r)
		}
	}
	if c.halted {
		s.recover()
	} else {
		s.submitPending()
	}
}

// park holds r until the log reaches version need (at most parkTimeout);
// it reports false when r must be answered now (the wait is over).
func (s *docSession) park(r *docRequest, need int) bool {
	c := s.cl
	if c == nil || r.parkedOut {
		return false
	}
	until := time.Now().Add(parkTimeout)
	c.parked = append(c.parked, parkedReq{r: r, need: need, until: until})
	if c.parkDue == nil {
		c.parkDue = time.NewTimer(parkTimeout)
	} else if len(c.parked) == 1 {
		c.parkDue.Reset(parkTimeout)
	}
	return true
}

// expireParked answers the parked requests whose wait is over.
func (s *docSession) expireParked() {
	c := s.cl
	now := time.Now()
	var out []*docRequest
	keep := c.parked[:0]
	for _, p := range c.parked {
		if now.After(p.until) {
			p.r.parkedOut = true
			out = append(out, p.r)
		} else {
			keep = append(keep, p)
		}
	}
	c.parked = keep
	if len(keep) > 0 {
		c.parkDue.Reset(time.Until(keep[0].until) + time.Millisecond)
	}
	for _, r := range out {
		s.handle(r)
	}
}

// followFailed handles the end of the follower: a deleted document closes
// for its local members (reason deleted); anything else closes it as
// unavailable. Either way the session forgets the document, so the next
// request loads it afresh.
func (s *docSession) followFailed(err error) {
	reason := "unavailable"
	reqErr := fmt.Errorf("%s: %w", s.id, ErrStorage)
	if errors.Is(err, doc.ErrNotFound) {
		reason = "deleted"
		reqErr = fmt.Errorf("%s: %w", s.id, ErrDocNotFound)
		s.log.Info().Msg("deleted through another node")
	} else {
		s.log.Error().Err(err).Msg("following the op log failed; closing the document")
	}
	s.closeAll(reason, reqErr)
}

// closeAll closes the document for every local member with reason, fails
// every pending op and parked request with reqErr, and forgets the
// document.
func (s *docSession) closeAll(reason string, reqErr error) {
	c := s.cl
	frame := proto.Encode(proto.Closed{Type: proto.TypeClosed, Doc: s.id, Reason: reason})
	for cid, m := range s.members {
		m.client.Sub.Send(frame)
		delete(s.members, cid)
		s.leaveBus(cid)
	}
	s.memberCount.Store(0)
	for _, e := range c.pend {
		s.answerDropped(e.p, e.nextUID(), 0, false, reqErr)
	}
	c.pend, c.byUID = nil, map[string]*clusterOp{}
	parked := c.parked
	c.parked = nil
	for _, p := range parked {
		p.r.fail(reqErr)
	}
	s.forget()
}

// flushCluster waits, at most a bound, until every pending op is stored
// (an unload's flush); what is still pending then fails with ErrTryAgain.
func (s *docSession) flushCluster() {
	c := s.cl
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for len(c.pend) > 0 && c.inbox != nil {
		select {
		case e := <-c.inbox:
			s.handleIn(e)
		case <-s.wake:
			s.drainResults()
		case <-s.retryChan():
			s.recover()
		case <-deadline.C:
			for _, e := range c.pend {
				s.answerDropped(e.p, e.nextUID(), 0, false, fmt.Errorf("%s unloaded: %w", s.id, ErrTryAgain))
			}
			c.pend, c.byUID = nil, map[string]*clusterOp{}
			return
		}
	}
}

// --- presence and cursors across nodes ---

// joinBus announces a local member on the presence bus.
func (s *docSession) joinBus(cid string, u proto.User) {
	if s.cl == nil || s.cl.presence == nil {
		return
	}
	info := proto.Encode(proto.Member{ClientID: cid, User: u})
	if err := s.cl.presence.Join(s.presenceName(), cid, info); err != nil {
		s.log.Warn().Err(err).Msg("presence join")
	}
}

// leaveBus announces that a local member left.
func (s *docSession) leaveBus(cid string) {
	if s.cl == nil || s.cl.presence == nil {
		return
	}
	if err := s.cl.presence.Leave(s.presenceName(), cid); err != nil {
		s.log.Debug().Err(err).Msg("presence leave")
	}
}

// remoteJoin records a member of another node; announce tells the local
// members.
func (s *docSession) remoteJoin(m RemoteMember, announce bool) {
	var pm proto.Member
	if json.Unmarshal(m.Info, &pm) != nil {
		return
	}
	if _, local := s.members[m.ClientID]; local {
		return
	}
	_, again := s.cl.remote[m.ClientID]
	s.cl.remote[m.ClientID] = &remoteMember{node: m.Node, user: pm.User}
	if announce && !again {
		s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "join",
			Member: &proto.Member{ClientID: m.ClientID, User: pm.User}}), "")
	}
}

// remotePresence applies a presence change of another node.
func (s *docSession) remotePresence(ev RemoteEvent) {
	switch ev.Kind {
	case "leave":
		rm := s.cl.remote[ev.Member.ClientID]
		if rm == nil {
			return
		}
		delete(s.cl.remote, ev.Member.ClientID)
		s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "leave",
			Member: &proto.Member{ClientID: ev.Member.ClientID, User: rm.user}}), "")
	default:
		s.remoteJoin(ev.Member, true)
	}
}

// publishCursor sends a local member's cursor frame to the other nodes.
func (s *docSession) publishCursor(frame []byte) {
	if s.cl == nil || s.cl.ephemeral == nil {
		return
	}
	if err := s.cl.ephemeral.PublishEphemeral(EphemeralDoc, s.id, frame); err != nil {
		s.log.Debug().Err(err).Msg("cursor to other nodes")
	}
}

// remoteCursor takes a cursor frame from another node.
func (s *docSession) remoteCursor(payload []byte) {
	var cur proto.Cursor
	if json.Unmarshal(payload, &cur) != nil || cur.ClientID == "" || cur.Version < 0 || len(cur.Ranges) > 100 {
		return
	}
	s.applyRemoteCursor(cur)
}

// applyRemoteCursor moves a remote cursor to the head and sends it to the
// local members; one ahead of the log waits for it.
func (s *docSession) applyRemoteCursor(cur proto.Cursor) {
	c := s.cl
	rm := c.remote[cur.ClientID]
	if rm == nil {
		if cur.User == nil {
			return
		}
		// The cursor came before the member's join: take it as one.
		rm = &remoteMember{user: *cur.User}
		c.remote[cur.ClientID] = rm
		s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "join",
			Member: &proto.Member{ClientID: cur.ClientID, User: *cur.User}}), "")
	}
	head := s.doc.Version()
	if cur.Version > head {
		if len(c.held) < 1024 {
			c.held = append(c.held, cur)
		}
		return
	}
	ranges := cur.Ranges
	if ranges == nil {
		ranges = []ot.Selection{}
	}
	if cur.Version < head {
		recs, err := s.opsBetween(cur.Version, head)
		if err != nil {
			return
		}
		for _, rec := range recs {
			ranges = transformSelections(rec.Op, ranges, rec.ClientID == cur.ClientID)
		}
	}
	n := s.doc.Len()
	for i := range ranges {
		ranges[i].Anchor = min(max(ranges[i].Anchor, 0), n)
		ranges[i].Head = min(max(ranges[i].Head, 0), n)
	}
	rm.cursor = ranges
	u := rm.user
	s.broadcast(proto.Encode(proto.Cursor{Type: proto.TypeCursor, Doc: s.id, Version: head, ClientID: cur.ClientID, User: &u, Ranges: ranges}), "")
}

// --- comments across nodes ---

// remoteComment applies a comment change seen in the store: another
// node's (this node's own writes come back too, and change nothing).
func (s *docSession) remoteComment(cm doc.Comment, deleted bool) {
	if !s.loaded || s.loadErr != nil {
		return
	}
	old, have := s.doc.Comment(cm.ID)
	if deleted {
		if !have {
			return
		}
		if err := s.doc.RemoveComment(cm.ID); err != nil {
			return
		}
		old.Version = s.doc.Version()
		s.broadcast(proto.Encode(proto.CommentFrame{Type: proto.TypeComment, Doc: s.id, Action: "delete", Comment: commentFrame(old)}), "")
		return
	}
	if have && old.Text == cm.Text && old.Resolved == cm.Resolved && old.UpdatedAt.Equal(cm.UpdatedAt) && old.Parent == cm.Parent {
		return // what memory holds (this node's own write)
	}
	if cm.Version > s.doc.Version() {
		s.cl.heldCmt = append(s.cl.heldCmt, cm)
		return
	}
	cm = s.catchUpMemory(cm)
	action := "add"
	var err error
	if have {
		action = "edit"
		if old.Resolved != cm.Resolved {
			action = map[bool]string{true: "resolve", false: "reopen"}[cm.Resolved]
		}
		err = s.doc.UpdateComment(cm)
	} else {
		s.commentN++
		err = s.doc.AddComment(cm)
	}
	if err != nil {
		s.log.Warn().Err(err).Str("comment", cm.ID).Msg("comment from another node not applied")
		return
	}
	cm, _ = s.doc.Comment(cm.ID)
	s.broadcast(proto.Encode(proto.CommentFrame{Type: proto.TypeComment, Doc: s.id, Action: action, Comment: commentFrame(cm)}), "")
}

// catchUpMemory moves a comment stored at an older version to the head
// through the ops in memory (or the log), clamping when they are gone.
func (s *docSession) catchUpMemory(c doc.Comment) doc.Comment {
	if c.Version < s.doc.Version() {
		if recs, err := s.opsBetween(c.Version, s.doc.Version()); err == nil {
			if moved, err := doc.CatchUp(c, recs); err == nil {
				return moved
			}
		}
	}
	n := s.doc.Len()
	c.Range.From, c.Range.To = min(max(c.Range.From, 0), n), min(max(c.Range.To, 0), n)
	c.Range.From = min(c.Range.From, c.Range.To)
	c.Version = s.doc.Version()
	return c
}
