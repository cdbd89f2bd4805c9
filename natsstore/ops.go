package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// errDeleted is what opSpan returns for a deletion marker.
var errDeleted = fmt.Errorf("document deleted: %w", ErrNotFound)

// opSpan reads the versions an op message holds from its headers.
func opSpan(m *jetstream.RawStreamMsg) (span, error) {
	if m.Header.Get(hdrDeleted) != "" {
		return span{}, errDeleted
	}
	v, err1 := strconv.ParseUint(m.Header.Get(hdrVersion), 10, 63)
	k, err2 := strconv.ParseUint(m.Header.Get(hdrCount), 10, 31)
	if err1 != nil || err2 != nil || k == 0 {
		return span{}, corrupt(fmt.Sprintf("op message %d on %s", m.Sequence, m.Subject), fmt.Errorf("bad headers %v", m.Header))
	}
	return span{lo: v, hi: v + k, seq: m.Sequence}, nil
}

// decodeOps decodes an op message: its ops, consecutive from its first
// version.
func decodeOps(m *jetstream.RawStreamMsg) ([]doc.OpRecord, span, error) {
	sp, err := opSpan(m)
	if err != nil {
		return nil, sp, err
	}
	var recs []doc.OpRecord
	if err := json.Unmarshal(m.Data, &recs); err != nil {
		return nil, sp, corrupt(fmt.Sprintf("op message %d", m.Sequence), err)
	}
	if uint64(len(recs)) != sp.hi-sp.lo {
		return nil, sp, corrupt(fmt.Sprintf("op message %d", m.Sequence), fmt.Errorf("%d ops, headers say %d", len(recs), sp.hi-sp.lo))
	}
	for i := range recs {
		if uint64(recs[i].Version) != sp.lo+uint64(i) {
			return nil, sp, corrupt(fmt.Sprintf("op message %d", m.Sequence), fmt.Errorf("op %d has version %d", i, recs[i].Version))
		}
	}
	return recs, sp, nil
}

// prepareOps validates a batch for appending: consecutive versions from a
// non-negative one, valid uids and ops. A zero Time is set to now, a nil
// Op to the no-op. It returns the batch as stored.
func (s *Store) prepareOps(docID string, recs []doc.OpRecord) ([]doc.OpRecord, error) {
	if err := checkID("doc id", docID); err != nil {
		return nil, fmt.Errorf("append ops: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("append ops to %q: empty batch: %w", docID, ErrInvalid)
	}
	out := make([]doc.OpRecord, len(recs))
	now := s.cfg.Now().UTC()
	for i, rec := range recs {
		if rec.Version < 0 || rec.Version != recs[0].Version+i {
			return nil, fmt.Errorf("append ops to %q: op %d has version %d, want consecutive versions from %d: %w",
				docID, i, rec.Version, max(recs[0].Version, 0)+i, ErrInvalid)
		}
		if rec.UID != "" {
			if err := checkID("op uid", rec.UID); err != nil {
				return nil, fmt.Errorf("append op v%d to %q: %w", rec.Version, docID, err)
			}
		}
		if rec.Op == nil {
			rec.Op = ot.Op{}
		}
		if err := rec.Op.Validate(); err != nil {
			return nil, fmt.Errorf("append op v%d to %q: %v: %w", rec.Version, docID, err, ErrInvalid)
		}
		if rec.Time.IsZero() {
			rec.Time = now
		}
		out[i] = rec
	}
	return out, nil
}

// AppendOps appends a batch of consecutive ops [v, v+k) to document
// docID's log as one message, by compare-and-append: the message is stored
// only if the log's last message ends exactly at v (JetStream's expected
// last subject sequence, checked by the stream leader against what is
// committed). Of several nodes appending at v, exactly one wins; the
// others get a [*ConflictError] whose Have is the log's head, and read what
// they missed with [Store.Ops] or their follower. It returns once the
// message is stored on a quorum of the stream's replicas (the JetStream
// ack). A deleted document gives ErrNotFound; a batch over the server's
// max_payload ErrInvalid.
//
// Transient failures (no stream leader during an election, a lost
// response, a reconnect) are retried with the same Nats-Msg-Id for up to
// three RequestTimeouts; a retry whose first attempt was in fact stored is
// recognised (by the dedupe window, or by finding its own message id at
// v) and succeeds. If ctx ends first the batch may still have been stored.
func (s *Store) AppendOps(ctx context.Context, docID string, recs []doc.OpRecord) error {
	recs, err := s.prepareOps(docID, recs)
	if err != nil {
		return err
	}
	r, err := s.appendRef(ctx, docID)
	if err != nil {
		return err
	}
	return s.appendBatch(ctx, r, recs)
}

// appendRefs caches the document references appends use (the epoch
// decides the subject); deletion invalidates them.
type refCache struct {
	mu sync.Mutex // guards m
	m  map[string]*docRef
}

// appendRef returns the cached reference of a document for appending.
func (s *Store) appendRef(ctx context.Context, docID string) (*docRef, error) {
	s.refs.mu.Lock()
	r := s.refs.m[docID]
	s.refs.mu.Unlock()
	if r != nil {
		return r, nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, err := s.loadRef(ctx, docID)
	if err != nil {
		return nil, fmt.Errorf("append ops: %w", err)
	}
	s.refs.mu.Lock()
	if len(s.refs.m) > 4096 {
		clear(s.refs.m)
	}
	s.refs.m[docID] = r
	s.refs.mu.Unlock()
	return r, nil
}

// forgetRef drops a cached reference.
func (s *Store) forgetRef(docID string) {
	s.refs.mu.Lock()
	delete(s.refs.m, docID)
	s.refs.mu.Unlock()
}

// attemptTimeout bounds one attempt of an append; appends retry until
// three RequestTimeouts have passed.
func (s *Store) attemptTimeout() time.Duration {
	return max(250*time.Millisecond, s.cfg.RequestTimeout/5)
}

// appendBatch publishes one prepared batch.
func (s *Store) appendBatch(ctx context.Context, r *docRef, recs []doc.OpRecord) error {
	id := r.meta.ID
	data, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	v := uint64(recs[0].Version)
	k := uint64(len(recs))
	msgID := batchMsgID(r.meta.Epoch, v, data)
	deadline := time.Now().Add(3 * s.cfg.RequestTimeout)
	tried := false
	for attempt := 0; ; attempt++ {
		// No closed check: Close waits for the queued appends to finish.
		actx, cancel := context.WithTimeout(ctx, s.attemptTimeout())
		seq, err := s.publishOps(actx, r, v, k, msgID, data, tried)
		cancel()
		switch {
		case err == nil:
			s.tails.add(r.subj, span{lo: v, hi: v + k, seq: seq})
			s.snapper.crossed(id, int(v), int(v+k))
			return nil
		case errors.Is(err, errBusy) && time.Now().Before(deadline):
			backoff(ctx, min(attempt, 3))
			continue
		case errors.Is(err, ErrConflict):
			s.count(func(st *Stats) { st.OpConflicts++ })
			return fmt.Errorf("append ops v%d-%d to %q: %w", v, v+k-1, id, err)
		case errors.Is(err, ErrNotFound):
			s.forgetRef(id)
			return fmt.Errorf("append ops to %q: %w", id, err)
		case isTooLarge(err):
			return fmt.Errorf("append ops v%d-%d to %q: %d bytes, over the server's max_payload: %w", v, v+k-1, id, len(data), ErrInvalid)
		case ctx.Err() != nil:
			return fmt.Errorf("append ops v%d-%d to %q: %w (they may still be stored)", v, v+k-1, id, ctx.Err())
		case !transient(err) || time.Now().After(deadline):
			return fmt.Errorf("append ops v%d-%d to %q: %w (they may have been stored)", v, v+k-1, id, err)
		}
		tried = true
		s.log.Warn().Err(err).Str("doc", id).Int("attempt", attempt+1).Msg("op append retried")
		backoff(ctx, attempt)
	}
}

// batchMsgID is a batch's Nats-Msg-Id: the incarnation, the first version
// and a hash of the body, so that only a retry of the very same batch is
// taken as a duplicate.
func batchMsgID(epoch string, v uint64, data []byte) string {
	sum := sha256.Sum256(data)
	return epoch + "." + strconv.FormatUint(v, 10) + "." + hex.EncodeToString(sum[:12])
}

// publishOps makes one attempt: find the sequence to expect, publish. A
// retry (tried) that loses the compare-and-append checks whether the
// message at v is its own.
func (s *Store) publishOps(ctx context.Context, r *docRef, v, k uint64, msgID string, data []byte, tried bool) (uint64, error) {
	expect, err := s.expectFor(ctx, r, v)
	if err != nil {
		if tried && errors.Is(err, ErrConflict) {
			if seq, ok := s.ownAt(ctx, r, v, msgID); ok {
				return seq, nil
			}
		}
		return 0, err
	}
	msg := nats.NewMsg(r.subj)
	msg.Header.Set(hdrVersion, strconv.FormatUint(v, 10))
	msg.Header.Set(hdrCount, strconv.FormatUint(k, 10))
	msg.Data = data
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(expect), jetstream.WithMsgID(msgID))
	if err == nil {
		return ack.Sequence, nil // a Duplicate ack carries the original's sequence
	}
	if !isWrongLast(err) {
		return 0, err
	}
	s.tails.drop(r.subj)
	if tried {
		if seq, ok := s.ownAt(ctx, r, v, msgID); ok {
			return seq, nil
		}
	}
	head, herr := s.head(ctx, r)
	if herr != nil {
		return 0, herr
	}
	if uint64(head) == v {
		// Refused although the log ends at v: on a replicated stream the
		// leader refuses while another expectation on the subject is in
		// flight. Nothing to read; try again.
		return 0, errBusy
	}
	return 0, &ConflictError{Key: r.meta.ID, Have: uint64(head), Got: v}
}

// errBusy: a compare-and-append refused while the log did not move; it is
// retried.
var errBusy = errors.New("natsstore: subject busy")

// expectFor returns the stream sequence of the message that ends at
// version v: the subject's last message must be it, or v must be 0 on an
// empty subject. Anything else is a conflict (or ErrNotFound for a
// deleted document).
func (s *Store) expectFor(ctx context.Context, r *docRef, v uint64) (uint64, error) {
	if sp, ok := s.tails.last(r.subj); ok && sp.hi == v {
		return sp.seq, nil
	}
	m, err := s.lastMsg(ctx, s.ops, r.subj)
	if err != nil {
		return 0, err
	}
	if m == nil {
		if v == uint64(r.meta.Base) {
			return 0, nil
		}
		return 0, &ConflictError{Key: r.meta.ID, Have: uint64(r.meta.Base), Got: v}
	}
	sp, err := opSpan(m)
	if err != nil {
		return 0, err
	}
	s.tails.add(r.subj, sp)
	if sp.hi != v {
		return 0, &ConflictError{Key: r.meta.ID, Have: sp.hi, Got: v}
	}
	return sp.seq, nil
}

// ownAt reports whether the message holding version v carries msgID: an
// earlier attempt of this append was stored.
func (s *Store) ownAt(ctx context.Context, r *docRef, v uint64, msgID string) (uint64, bool) {
	m, sp, err := s.seek(ctx, s.ops, r.subj, v, opSpan)
	if err != nil || m == nil || sp.lo != v {
		return 0, false
	}
	return m.Sequence, m.Header.Get(jetstream.MsgIDHeader) == msgID
}

// transient reports an error worth retrying with the same message id.
func transient(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, ErrClosed) {
		return false
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code >= 500 // 503: no leader, not ready
	}
	return true // timeouts, no responders, disconnects
}

// backoff sleeps a little longer at each attempt, with jitter.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(min(attempt+1, 20)) * 25 * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// writers group-commits the async appends: one writer per document with
// ops queued, which publishes everything queued as one message when the
// previous one is acknowledged.
type writers struct {
	s  *Store
	mu sync.Mutex // guards m and fence
	m  map[string]*writer
	// fence holds, per document, the failure that stopped its appends:
	// every AppendOpAsync of that document fails with it until
	// ResumeAppends (see AppendOpAsync).
	fence map[string]error
	wg    sync.WaitGroup // running writers
}

type writer struct {
	docID string
	queue []pendingOp // guarded by writers.mu
}

type pendingOp struct {
	rec  doc.OpRecord
	done func(error)
}

func newWriters(s *Store) *writers {
	return &writers{s: s, m: make(map[string]*writer), fence: make(map[string]error)}
}

// wait waits for every writer to finish its queue.
func (ws *writers) wait() { ws.wg.Wait() }

// AppendOpAsync queues rec for appending and returns at once; done is
// called exactly once with the outcome, nil once the op is stored (see
// AppendOps). Ops queued for one document while its previous message is in
// flight are published together as the next message (group commit), so
// that a document's throughput is a batch per round trip. Appends
// submitted in order are stored in order.
//
// When a batch fails, every op queued behind it fails too (with a
// [*ConflictError] when the batch lost the compare-and-append), and so
// does every later AppendOpAsync of that document, until the caller calls
// [Store.ResumeAppends]: the document is fenced. The fence matters because
// the compare-and-append checks versions, not content: ops the caller
// submitted before it heard of the failure were made on top of the failed
// ones, and one of them could otherwise land at a version the log reaches
// through another node's ops, on a text it was not made for. The caller
// resumes once it has heard every outcome and caught up with the log.
//
// done runs on the writer's goroutine (or on the caller's for input
// rejected up front and for a fenced document) and must not block.
func (s *Store) AppendOpAsync(docID string, rec doc.OpRecord, done func(error)) {
	recs, err := s.prepareOps(docID, []doc.OpRecord{rec})
	if err != nil {
		done(err)
		return
	}
	ws := s.writers
	ws.mu.Lock()
	if s.isClosed() {
		ws.mu.Unlock()
		done(ErrClosed)
		return
	}
	if ferr := ws.fence[docID]; ferr != nil {
		ws.mu.Unlock()
		done(fencedErr(docID, rec.Version, ferr))
		return
	}
	w := ws.m[docID]
	start := w == nil
	if start {
		w = &writer{docID: docID}
		ws.m[docID] = w
		ws.wg.Add(1)
	}
	w.queue = append(w.queue, pendingOp{rec: recs[0], done: done})
	ws.mu.Unlock()
	if start {
		go ws.run(w)
	}
}

// ResumeAppends lifts the fence a failed async append put on document
// docID (see AppendOpAsync); a no-op when there is none.
func (s *Store) ResumeAppends(docID string) {
	ws := s.writers
	ws.mu.Lock()
	delete(ws.fence, docID)
	ws.mu.Unlock()
}

// fencedErr is the error of an op refused because an earlier one failed:
// a conflict at the same place when that was one.
func fencedErr(docID string, v int, err error) error {
	var ce *ConflictError
	if errors.As(err, &ce) {
		return fmt.Errorf("append op v%d to %q: after a failed batch: %w", v, docID, &ConflictError{Key: ce.Key, Have: ce.Have, Got: uint64(v)})
	}
	return fmt.Errorf("append op v%d to %q: after a failed batch: %w", v, docID, err)
}

// run publishes w's queue, a batch at a time, until it is empty.
func (ws *writers) run(w *writer) {
	defer ws.wg.Done()
	s := ws.s
	for {
		ws.mu.Lock()
		if len(w.queue) == 0 {
			delete(ws.m, w.docID)
			ws.mu.Unlock()
			return
		}
		// Take the longest run of consecutive versions that fits a message.
		n, size := 1, approxSize(w.queue[0].rec)
		for n < len(w.queue) && w.queue[n].rec.Version == w.queue[n-1].rec.Version+1 {
			sz := approxSize(w.queue[n].rec)
			if size+sz > s.maxBatch {
				break
			}
			size += sz
			n++
		}
		batch := w.queue[:n:n]
		w.queue = w.queue[n:]
		ws.mu.Unlock()

		recs := make([]doc.OpRecord, len(batch))
		for i, p := range batch {
			recs[i] = p.rec
		}
		err := ws.appendQueued(w.docID, recs)
		var behind []pendingOp
		if err != nil {
			ws.mu.Lock()
			behind, w.queue = w.queue, nil
			ws.fence[w.docID] = err
			ws.mu.Unlock()
		}
		for _, p := range batch {
			p.done(err)
		}
		for _, p := range behind {
			p.done(fencedErr(w.docID, p.rec.Version, err))
		}
	}
}

// appendQueued appends one batch of the async path.
func (ws *writers) appendQueued(docID string, recs []doc.OpRecord) error {
	s := ws.s
	ctx := context.Background()
	r, err := s.appendRef(ctx, docID)
	if err != nil {
		return err
	}
	return s.appendBatch(ctx, r, recs)
}

// approxSize estimates an op record's JSON size.
func approxSize(rec doc.OpRecord) int {
	n := 120 + len(rec.UID) + len(rec.User) + len(rec.ClientID)
	for _, c := range rec.Op {
		n += 12 + 2*len(c.Text()) // escapes
	}
	return n
}

// Ops returns the ops of document docID with versions in [from, to), in
// order. It fails with ErrInvalid unless 0 <= from <= to <= the current
// version, and with ErrCompacted when from lies before the compaction
// point.
func (s *Store) Ops(docID string, from, to int) ([]doc.OpRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	return s.OpsCtx(ctx, docID, from, to)
}

// OpsCtx is Ops with a context.
func (s *Store) OpsCtx(ctx context.Context, docID string, from, to int) ([]doc.OpRecord, error) {
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return nil, err
	}
	if from < 0 || from > to || to > head {
		return nil, fmt.Errorf("ops [%d, %d) of %q at v%d: %w", from, to, docID, head, ErrInvalid)
	}
	if from < r.meta.Base {
		return nil, fmt.Errorf("ops from v%d of %q, history starts at v%d: %w", from, docID, r.meta.Base, ErrCompacted)
	}
	return s.readOps(ctx, r, from, to)
}

// readOps reads [from, to) of a document known to hold them.
func (s *Store) readOps(ctx context.Context, r *docRef, from, to int) ([]doc.OpRecord, error) {
	if from >= to {
		return nil, nil
	}
	m, sp, err := s.seek(ctx, s.ops, r.subj, uint64(from), opSpan)
	if err != nil {
		return nil, fmt.Errorf("ops of %q from v%d: %w", r.meta.ID, from, err)
	}
	if m == nil || sp.lo > uint64(from) {
		return nil, fmt.Errorf("ops of %q from v%d: history starts later: %w", r.meta.ID, from, ErrCompacted)
	}
	out := make([]doc.OpRecord, 0, to-from)
	next := from
	err = s.scan(ctx, s.ops, r.subj, m.Sequence, ^uint64(0)>>1, func(m *jetstream.RawStreamMsg) (bool, error) {
		recs, sp, err := decodeOps(m)
		if err != nil {
			return false, err
		}
		if sp.lo > uint64(next) {
			return false, corrupt(fmt.Sprintf("ops of %q", r.meta.ID), fmt.Errorf("gap: v%d missing, next message starts at v%d", next, sp.lo))
		}
		s.tails.add(r.subj, sp)
		for _, rec := range recs {
			if rec.Version >= next && rec.Version < to {
				out = append(out, rec)
				next = rec.Version + 1
			}
		}
		return next < to, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ops of %q: %w", r.meta.ID, err)
	}
	if next < to {
		return nil, fmt.Errorf("ops of %q: read up to v%d of [v%d, v%d): %w", r.meta.ID, next, from, to, ErrCompacted)
	}
	return out, nil
}

// FindUID looks for an op with the given uid among the ops of document
// docID at versions >= base, the only place a client's op made against
// base can have landed, whichever node applied it. It reads [base, head).
// found is false when there is none; ErrCompacted when base lies before the
// compaction point.
func (s *Store) FindUID(ctx context.Context, docID, uid string, base int) (rec doc.OpRecord, found bool, err error) {
	r, head, err := s.ref(ctx, docID)
	if err != nil || uid == "" {
		return rec, false, err
	}
	if base < r.meta.Base {
		return rec, false, fmt.Errorf("uid lookup from v%d of %q, history starts at v%d: %w", base, docID, r.meta.Base, ErrCompacted)
	}
	if base >= head {
		return rec, false, nil
	}
	recs, err := s.readOps(ctx, r, base, head)
	if err != nil {
		return rec, false, err
	}
	for _, o := range recs {
		if o.UID == uid {
			return o, true, nil
		}
	}
	return rec, false, nil
}

// OpByUID returns the op of document docID with the given uid, if the log
// still holds it (the session's OpLog contract). It scans the whole
// history from the compaction point: use FindUID with the op's base
// version, which reads only what can hold it.
func (s *Store) OpByUID(docID, uid string) (doc.OpRecord, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	r, _, err := s.ref(ctx, docID)
	if err != nil {
		return doc.OpRecord{}, false, err
	}
	return s.FindUID(ctx, docID, uid, r.meta.Base)
}

// A Follower delivers a document's or a channel's log as it grows; the
// Follow methods hand out its Stop.
type Follower struct {
	cc    jetstream.ConsumeContext
	ready chan struct{} // closed once cc is set
	once  sync.Once

	mu     sync.Mutex // guards failed: set when the follower has stopped itself
	failed bool
}

// Stop stops the follower and waits until its callback is no longer
// running. Nothing is delivered after Stop returns. It is idempotent.
func (f *Follower) Stop() {
	f.once.Do(func() {
		<-f.ready
		f.cc.Stop()
		<-f.cc.Closed()
	})
}

// isFailed reports whether the follower stopped itself.
func (f *Follower) isFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// failWith stops delivery and reports err to onErr, once. It runs on the
// consumer's goroutine.
func (f *Follower) failWith(err error, onErr func(error)) {
	if f.fail() {
		go func() {
			<-f.ready
			f.cc.Stop()
		}()
		onErr(err)
	}
}

// fail marks the follower failed; it reports whether it was the first.
func (f *Follower) fail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := !f.failed
	f.failed = true
	return first
}

// FollowOps delivers the ops of document docID from version from on, in
// version order, each exactly once, as they are stored by any node: the
// ops already in the log first, then new ones as they are appended. It
// runs an ordered consumer on the document's subject (which the client
// library recreates from where it was after a reconnect or a server
// failure). deliver is called on one goroutine at a time and may block:
// delivery pauses meanwhile. When the log cannot continue (the document
// was deleted: ErrNotFound; compaction removed the next ops:
// ErrCompacted) onErr is called once and delivery stops; the caller still
// calls stop, which stops the follower and returns once deliver is no
// longer running (nothing is delivered after it returns).
func (s *Store) FollowOps(ctx context.Context, docID string, from int, deliver func([]doc.OpRecord), onErr func(error)) (stop func(), err error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, head, err := s.ref(rctx, docID)
	if err != nil {
		return nil, err
	}
	if from < r.meta.Base || from > head {
		return nil, fmt.Errorf("follow %q from v%d, history is [v%d, v%d]: %w", docID, from, r.meta.Base, head, ErrInvalid)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{r.subj}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from < head {
		m, _, err := s.seek(rctx, s.ops, r.subj, uint64(from), opSpan)
		if err != nil {
			return nil, err
		}
		if m != nil {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, m.Sequence
		}
	} else if sp, ok := s.tails.last(r.subj); ok && sp.hi == uint64(head) {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, sp.seq+1
	} else if m, err := s.lastMsg(rctx, s.ops, r.subj); err != nil {
		return nil, err
	} else if m != nil {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, m.Sequence+1
	}
	cons, err := s.js.OrderedConsumer(rctx, s.n.opsStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow %q: %w", docID, err)
	}
	f := &Follower{ready: make(chan struct{})}
	next := from
	failWith := func(err error) { f.failWith(err, onErr) }
	handler := func(jm jetstream.Msg) {
		if f.isFailed() {
			return
		}
		meta, err := jm.Metadata()
		if err != nil {
			failWith(err)
			return
		}
		m := &jetstream.RawStreamMsg{Subject: jm.Subject(), Sequence: meta.Sequence.Stream, Header: jm.Headers(), Data: jm.Data()}
		recs, sp, err := decodeOps(m)
		if err != nil {
			failWith(fmt.Errorf("follow %q: %w", docID, err))
			return
		}
		s.tails.add(r.subj, sp)
		if sp.hi <= uint64(next) {
			return // before from
		}
		if sp.lo > uint64(next) {
			failWith(fmt.Errorf("follow %q: v%d is gone, the log goes on at v%d: %w", docID, next, sp.lo, ErrCompacted))
			return
		}
		recs = recs[uint64(next)-sp.lo:]
		next = int(sp.hi)
		deliver(recs)
	}
	cc, err := cons.Consume(handler, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Debug().Err(err).Str("doc", docID).Msg("follower")
	}))
	if err != nil {
		return nil, fmt.Errorf("follow %q: %w", docID, err)
	}
	f.cc = cc
	close(f.ready)
	return f.Stop, nil
}

// OpByUIDBefore is OpByUID for the session's interface: the log is
// searched whole (from its base), so it also finds a uid at or above
// before.
func (s *Store) OpByUIDBefore(docID, uid string, _ int) (doc.OpRecord, bool, error) {
	return s.OpByUID(docID, uid)
}
