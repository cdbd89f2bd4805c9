package session

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// docSession is the goroutine that owns one loaded document. Everything
// below the "owned by run" line is touched only by run.
//
// This file holds the session itself: its state, its loop, the dispatch
// of requests, and who has the document open (open, close). The rest is
// split by concept: doc_lifecycle.go (load, unload, persist, delete),
// doc_ops.go (the op pipeline: uid check, transform, apply, append,
// ack and broadcast once durable), doc_cursors.go, doc_comments.go and
// doc_edits.go (edits made on the server side: the HTTP API).
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
	// transformBufs is transformOver's memory, used in turn.
	transformBufs [2]ot.Op
	// durableSpare is memory for durable, which drainDurable hands over
	// and takes back.
	durableSpare []int
	// holding is set while run drains durable ops: only those rounds may
	// be held for the broadcast window; heldOps counts the ops held, and
	// deliverDue ends the window (doc_hold.go).
	holding    bool
	heldOps    int
	deliverDue *time.Timer
	// round and batch are drainDurable's and deliver's memory.
	round []published
	batch [][]byte

	// expecting holds the members acked in the latest round of commits
	// who have not sent an op since: editors about to send their next op,
	// lent to the op log as appends to come (WriteExpecter, doc_expect.go).
	// expectDue takes them back when they do not come soon. expecter is
	// nil when the op log takes no such hint.
	expecting map[string]struct{}
	lent      int // the count lent to expecter now
	expectDue *time.Timer
	expecter  WriteExpecter

	// cl is the cluster-mode state (doc_cluster.go); nil on a single node.
	cl *clusterDoc
}

// docMember is a client with the document open.
type docMember struct {
	client DocClient
	cursor []ot.Selection // at version acked; nil when none
	// lastCursor is when cursor was last broadcast; pending marks a
	// coalesced update not yet broadcast (doc_cursors.go).
	lastCursor time.Time
	pending    bool
	// held is what the broadcast window holds for the member
	// (doc_hold.go).
	held [][]byte
}

func newDocSession(d *Docs, id string) *docSession {
	s := &docSession{
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
		cl:       newClusterDoc(&d.cfg),
	}
	if e, ok := d.cfg.OpLog.(WriteExpecter); ok && s.cl == nil {
		s.expecter, s.expecting = e, make(map[string]struct{})
	}
	return s
}

// run is the document's goroutine.
func (s *docSession) run() {
	defer s.docs.wg.Done()
	cfg := &s.docs.cfg
	s.idle = time.NewTimer(cfg.IdleTimeout)
	s.cursorDue = time.NewTimer(time.Hour)
	s.cursorDue.Stop()
	s.expectDue = time.NewTimer(time.Hour)
	s.expectDue.Stop()
	s.deliverDue = newDeliverTimer()
	defer s.idle.Stop()
	defer s.cursorDue.Stop()
	defer s.deliverDue.Stop()
	defer s.expectNone()
	for {
		// What the broadcast window holds is sent before anything else
		// (doc_hold.go).
		select {
		case r := <-s.reqs:
			s.sendHeldBefore(r)
			s.handle(r)
		case <-s.wake:
			if s.cl != nil {
				s.drainResults()
			} else {
				s.holding = true
				s.drainDurable()
				s.holding = false
			}
		case <-s.deliverDue.C:
			s.sendHeld()
		case e := <-s.inboxChan():
			s.sendHeld()
			s.handleIn(e)
		case <-s.sideChan():
			s.sendHeld()
			s.handleSide()
		case <-s.retryChan():
			s.sendHeld()
			s.recover()
		case <-s.parkChan():
			s.sendHeld()
			s.expireParked()
		case <-s.cursorDue.C:
			s.flushCursors() // broadcasts only, which join what is held
		case <-s.expectDue.C:
			s.expectNone()
		case <-s.idle.C:
			s.sendHeld()
			if len(s.members) == 0 && s.unload() {
				return
			}
			s.idle.Reset(cfg.IdleTimeout)
		case <-s.stop:
			s.sendHeld()
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

// loadDurable loads the document for r (creating it when r asks) and
// waits until everything submitted is durable, as a request that reads
// the head needs; when that fails it answers r and reports false.
func (s *docSession) loadDurable(r *docRequest) bool {
	if err := s.load(r.create); err != nil {
		r.fail(err)
		return false
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return false
	}
	return true
}

// open answers an open request with a snapshot, or the ops since version.
// A version of another incarnation of the document (the request's epoch
// is not the document's) gets a snapshot marked reset, never ops: they
// would apply to a text the client does not have.
func (s *docSession) open(r *docRequest) {
	if !s.loadDurable(r) {
		return
	}
	cid := r.client.Sub.ClientID()
	head := s.doc.Version()
	reset := r.version != nil && r.epoch != "" && r.epoch != s.epoch
	var reply LargeFrame
	if r.version != nil && !reset {
		v := *r.version
		if v > head && s.park(r, v) {
			return // the log has not reached it here yet (cluster mode)
		}
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
			ops[i] = DocOpOf(s.id, rec)
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
		s.joinBus(cid, r.client.User)
		notify(s.docs.cfg.Notifier, Event{Type: EventDocJoined, Time: s.docs.cfg.Now(), Doc: s.id, User: r.client.User.ID, ClientID: cid})
		s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "join",
			Member: &proto.Member{ClientID: cid, User: r.client.User}}), cid)
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
	s.leaveBus(cid)
	notify(s.docs.cfg.Notifier, Event{Type: EventDocLeft, Time: s.docs.cfg.Now(), Doc: s.id, User: m.client.User.ID, ClientID: cid})
	s.broadcast(proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:" + s.id, Doc: s.id, Event: "leave",
		Member: &proto.Member{ClientID: cid, User: m.client.User}}), cid)
	if len(s.members) == 0 {
		s.idle.Reset(s.docs.cfg.IdleTimeout)
	}
}

// broadcast sends a frame to every member but skip; while a broadcast
// window runs, it joins what the window holds (doc_hold.go).
func (s *docSession) broadcast(frame []byte, skip string) {
	hold := s.heldOps > 0
	for cid, m := range s.members {
		switch {
		case cid == skip:
		case hold:
			m.held = append(m.held, frame)
		default:
			m.client.Sub.Send(frame)
		}
	}
}

// memberFrames lists the members for a snapshot (those on other nodes
// too, in cluster mode), the opener last.
func (s *docSession) memberFrames(self string, selfUser proto.User) []proto.Member {
	out := make([]proto.Member, 0, len(s.members)+1)
	for cid, m := range s.members {
		if cid != self {
			out = append(out, proto.Member{ClientID: cid, User: m.client.User})
		}
	}
	if s.cl != nil {
		for cid, rm := range s.cl.remote {
			if cid != self {
				out = append(out, proto.Member{ClientID: cid, User: rm.user})
			}
		}
	}
	return append(out, proto.Member{ClientID: self, User: selfUser})
}
