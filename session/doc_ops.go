package session

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

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

// submitOp transforms, applies and submits one op.
func (s *docSession) submitOp(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	defer s.expectArrived(m.client.Sub.ClientID()) // after the append: doc_expect.go
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	base := *r.version
	if base > s.acked && s.park(r, base) {
		return // the log has not reached it here yet (cluster mode)
	}
	if base < 0 || base > s.acked {
		r.fail(fmt.Errorf("op on %s at v%d, the client can know at most v%d: %w", s.id, base, s.acked, ErrFutureVersion))
		return
	}
	if r.uid == "" || len(r.uid) > 128 {
		r.fail(fmt.Errorf("%w: an op needs a uid of 1 to 128 bytes", ErrBadUID))
		return
	}
	if s.cl != nil {
		s.submitOpCluster(r, m, base)
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
	if !s.admitOp(r, m) {
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
	// Each step builds into the buffer the step before did not use; only
	// the result is copied out.
	for i, h := range history {
		if op, err = ot.TransformRight(h.Op, op, s.transformBufs[i%2]); err != nil {
			return nil, err
		}
		s.transformBufs[i%2] = op
	}
	return slices.Clone(op), nil
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
// version order, and handles an append failure. Ops that become durable
// while it publishes join the round it delivers: storage reports a
// commit's appends one by one, and the first report may wake run before
// the last is made.
func (s *docSession) drainDurable() {
	round := s.round[:0]
	var failure error
	for gap := false; !gap; {
		s.durableMu.Lock()
		versions := s.durable
		failure = s.failure
		s.durable, s.durableSpare = s.durableSpare[:0], nil
		s.durableMu.Unlock()
		if len(versions) == 0 {
			s.durableSpare = versions
			break
		}
		slices.Sort(versions)
		if len(round) == 0 {
			s.expectAgain()
			defer s.expectLend()
		}
		for _, v := range versions {
			if v != s.acked {
				// Commits complete in submission order; a gap means a
				// failure that the failure branch below handles.
				gap = true
				break
			}
			if !s.windowed() { // a held ack comes too late to be waited for
				s.expectFrom(s.inflight[v].author)
			}
			round = append(round, s.publish(v))
		}
		s.durableSpare = versions
	}
	s.deliver(round)
	clear(round)
	s.round = round[:0]
	if failure != nil && len(s.inflight) > 0 {
		s.sendHeld()
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
		s.answerDropped(p, rec.UID, orig.Version, ok, nil)
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
// (ok), else the error why (nil: ErrTryAgain).
func (s *docSession) answerDropped(p pendOp, uid string, orig int, ok bool, why error) {
	err := why
	if err == nil {
		err = fmt.Errorf("op %s on %s was not applied: %w", uid, s.id, ErrTryAgain)
	}
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

// published is what one durable op sends to the document's members: an
// ack to its author, and to the clients whose resends of it were still in
// flight, and the op to everyone else.
type published struct {
	author string // client id; empty for a server-side edit
	ack    []byte
	frame  []byte
	dupes  []dupFrame
}

// dupFrame is the ack of a resend whose original was still in flight.
type dupFrame struct {
	client string
	ack    []byte
}

// publish does what op v's becoming durable does in the document (cursors
// move through it, its waiter and the watchers hear of it) and returns
// what it sends to the members, for deliver.
func (s *docSession) publish(v int) published {
	p := s.inflight[v]
	delete(s.inflight, v)
	s.docs.cfg.Metrics.ObserveAck(time.Since(p.start))
	rec := s.recent[v-s.recent[0].Version]
	s.acked = v + 1
	out := published{author: p.author, frame: proto.Encode(opFrame(s.id, rec))}
	if p.author != "" {
		out.ack = proto.Encode(proto.Ack{ID: p.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: rec.UID})
	}
	for _, d := range p.dupes {
		out.dupes = append(out.dupes, dupFrame{d.client, proto.Encode(proto.Ack{ID: d.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: rec.UID})})
	}
	for cid, m := range s.members {
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
	s.watch(v + 1)
	notify(s.docs.cfg.Notifier, Event{Type: EventDocChanged, Time: rec.Time, Doc: s.id, Version: v + 1, User: rec.User, ClientID: rec.ClientID})
	return out
}

// deliver sends a round of durable ops, in version order, to every
// member: acks for its own ops (and for its resends of ops still in
// flight), everyone else's ops. Each member gets the whole round in one call
// where its connection takes a batch (BatchSender): one wake-up of its
// writer and one write for the round, where a call per op let the writer
// take the first ops before the rest were queued.
func (s *docSession) deliver(round []published) {
	if len(round) == 0 {
		return
	}
	hold := s.holds(len(round))
	if !hold {
		s.sendHeld()
	}
	batch := s.batch[:0]
	for cid, m := range s.members {
		batch = batch[:0]
		for i := range round {
			p := &round[i]
			if cid == p.author {
				batch = append(batch, p.ack)
			} else {
				batch = append(batch, p.frame)
			}
			for _, d := range p.dupes {
				if d.client == cid {
					batch = append(batch, d.ack)
				}
			}
		}
		if hold {
			m.held = append(m.held, batch...)
		} else {
			sendFrames(m.client.Sub, batch)
		}
	}
	clear(batch)
	s.batch = batch[:0]
	if hold {
		s.held(len(round))
	}
}

// flush waits until every submitted op is durable and published. In
// cluster mode memory holds only what is in the log: nothing to wait for.
func (s *docSession) flush() {
	if s.cl != nil {
		return
	}
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

func opFrame(docID string, rec doc.OpRecord) proto.DocOp {
	f := DocOpOf(docID, rec)
	f.Type = proto.TypeOp
	return f
}

// DocOpOf returns an op of document docID's log as the wire carries it,
// without a type (a pushed op frame has one, an entry of a list has none).
// An empty docID leaves the document out, as the HTTP API's /ops page does.
func DocOpOf(docID string, rec doc.OpRecord) proto.DocOp {
	return proto.DocOp{Doc: docID, Version: rec.Version, Op: rec.Op, UID: rec.UID,
		User: rec.User, ClientID: rec.ClientID, TS: rec.Time.UTC().Format(proto.TimeLayout)}
}

// submitOpCluster queues a client's op in cluster mode, after the checks
// submitOp shares: exactly once (a uid in the log is acked with its
// version, one pending waits with it), the rate and the size.
func (s *docSession) submitOpCluster(r *docRequest, m *docMember, base int) {
	v, e, ok, err := s.lookupUIDCluster(r.uid, base)
	if err != nil {
		r.fail(err)
		return
	}
	if ok {
		if e != nil {
			e.p.dupes = append(e.p.dupes, dupAck{client: m.client.Sub.ClientID(), id: r.id})
			return
		}
		m.client.Sub.Send(proto.Encode(proto.Ack{ID: r.id, Type: proto.TypeAck, Doc: s.id, Version: v, UID: r.uid}))
		return
	}
	if !s.admitOp(r, m) {
		return
	}
	s.queueOp(&clusterOp{base: base, op: r.op, root: r.uid, user: m.client.User.ID, client: m.client.Sub.ClientID(),
		p: pendOp{author: m.client.Sub.ClientID(), id: r.id, start: r.received}})
}

// admitOp applies the author's op rate and the bound on inserted bytes to
// a client's op; when either refuses it, it answers r and reports false.
func (s *docSession) admitOp(r *docRequest, m *docMember) bool {
	cfg := &s.docs.cfg
	lim := s.limiters[m.client.User.ID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(cfg.OpRate), cfg.OpBurst)
		s.limiters[m.client.User.ID] = lim
	}
	if !lim.Allow() {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrOpRate))
		return false
	}
	if insBytes := doc.InsertBytes(r.op); insBytes > cfg.MaxOpBytes {
		r.fail(fmt.Errorf("op inserts %d bytes, at most %d: %w", insBytes, cfg.MaxOpBytes, ErrDocTooLarge))
		return false
	}
	return true
}
