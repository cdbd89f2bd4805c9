package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A span is the part of a log one stored message holds: versions (or
// offsets) [lo, hi), at stream sequence seq.
type span struct {
	lo, hi uint64
	seq    uint64
}

// spanFunc reads the span of a message; it fails for a message that holds
// no span (a deleted document's marker).
type spanFunc func(*jetstream.RawStreamMsg) (span, error)

// tailCache remembers the spans of the last messages seen on each subject
// (appended, read or followed), so that an append knows the sequence to
// expect and a read of recent history starts without a search. Entries
// may be stale (another node appended, compaction purged): users treat a
// hit as a hint and check it against the server.
type tailCache struct {
	mu  sync.Mutex        // guards m
	m   map[string][]span // subject → up to tailSpans spans, by seq
	cap int               // subjects kept
}

const tailSpans = 32

func newTailCache(capacity int) *tailCache {
	return &tailCache{m: make(map[string][]span), cap: capacity}
}

// add records a span seen on subj.
func (c *tailCache) add(subj string, sp span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans, ok := c.m[subj]
	if !ok && len(c.m) >= c.cap {
		for k := range c.m { // evict one at random
			delete(c.m, k)
			break
		}
	}
	i := sort.Search(len(spans), func(i int) bool { return spans[i].seq >= sp.seq })
	if i < len(spans) && spans[i].seq == sp.seq {
		return
	}
	spans = append(spans, span{})
	copy(spans[i+1:], spans[i:])
	spans[i] = sp
	if len(spans) > tailSpans {
		spans = spans[len(spans)-tailSpans:]
	}
	c.m[subj] = spans
}

// last returns the newest span seen on subj.
func (c *tailCache) last(subj string) (span, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans := c.m[subj]
	if len(spans) == 0 {
		return span{}, false
	}
	return spans[len(spans)-1], true
}

// find returns the cached span holding target, if any, and otherwise the
// newest cached span that ends at or before target (a lower bound for a
// search).
func (c *tailCache) find(subj string, target uint64) (hit span, found bool, below span, hasBelow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sp := range c.m[subj] {
		switch {
		case sp.lo <= target && target < sp.hi:
			return sp, true, below, hasBelow
		case sp.hi <= target:
			below, hasBelow = sp, true
		}
	}
	return span{}, false, below, hasBelow
}

// drop forgets subj.
func (c *tailCache) drop(subj string) {
	c.mu.Lock()
	delete(c.m, subj)
	c.mu.Unlock()
}

// call runs one request with the attempt timeout, retrying transient
// failures (a lost response, no stream leader during an election, a
// reconnect) until three RequestTimeouts have passed or ctx ends. Only
// idempotent requests go through it; a compare-and-set that is retried
// after its first attempt was in fact applied fails, and its caller, which
// re-reads before it writes again, sees its own write.
func call[T any](s *Store, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(3 * s.cfg.RequestTimeout)
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.attemptTimeout())
		v, err := fn(actx)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil || time.Now().After(deadline) || s.isClosed() {
			return v, err
		}
		backoff(ctx, attempt)
	}
}

// retryable reports a failure worth another attempt of the same request.
func retryable(err error) bool {
	for _, final := range []error{jetstream.ErrMsgNotFound, jetstream.ErrKeyNotFound, jetstream.ErrKeyExists,
		jetstream.ErrKeyDeleted, ErrNotFound, ErrInvalid, ErrCompacted, ErrConflict, ErrCorrupt, ErrClosed} {
		if errors.Is(err, final) {
			return false
		}
	}
	return !isWrongLast(err) && transient(err)
}

// getMsg reads the message at seq exactly; nil when there is none.
func (s *Store) getMsg(ctx context.Context, st jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := call(s, ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return st.GetMsg(ctx, seq) })
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// nextMsg reads the first message on subj at or after seq; nil when there
// is none.
func (s *Store) nextMsg(ctx context.Context, st jetstream.Stream, subj string, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := call(s, ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return st.GetMsg(ctx, max(seq, 1), jetstream.WithGetMsgSubject(subj))
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// lastMsg reads the last message on subj (a filter may have wildcards);
// nil when there is none.
func (s *Store) lastMsg(ctx context.Context, st jetstream.Stream, subj string) (*jetstream.RawStreamMsg, error) {
	m, err := call(s, ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return st.GetLastMsgForSubject(ctx, subj) })
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// kvGet, kvPut, kvCreate and kvUpdate are the bucket's calls through
// call.
func (s *Store) kvGet(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	return call(s, ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, key) })
}

func (s *Store) kvPut(ctx context.Context, kv jetstream.KeyValue, key string, val []byte) (uint64, error) {
	return call(s, ctx, func(ctx context.Context) (uint64, error) { return kv.Put(ctx, key, val) })
}

func (s *Store) kvCreate(ctx context.Context, kv jetstream.KeyValue, key string, val []byte) (uint64, error) {
	return call(s, ctx, func(ctx context.Context) (uint64, error) { return kv.Create(ctx, key, val) })
}

func (s *Store) kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, val []byte, rev uint64) (uint64, error) {
	return call(s, ctx, func(ctx context.Context) (uint64, error) { return kv.Update(ctx, key, val, rev) })
}

// seek finds the message on subj whose span holds target or, when target
// falls in a hole (trimmed, compacted, retracted), the first message after
// it. It returns nil when target lies at or past the end of the last
// message. It reads the cache first, then searches the stream's sequence
// space between the nearest known spans: interpolation on the spans'
// positions, alternating with bisection, so that it takes a few requests
// when the subject's messages are spread evenly through the stream and
// O(log n) otherwise.
func (s *Store) seek(ctx context.Context, st jetstream.Stream, subj string, target uint64, spanOf spanFunc) (*jetstream.RawStreamMsg, span, error) {
	hit, found, below, hasBelow := s.tails.find(subj, target)
	if found {
		m, err := s.getMsg(ctx, st, hit.seq)
		if err != nil {
			return nil, span{}, err
		}
		if m != nil && m.Subject == subj {
			if sp, err := spanOf(m); err == nil && sp == hit {
				return m, sp, nil
			}
		}
		s.tails.drop(subj) // stale
		hasBelow = false
	}
	hiMsg, err := s.lastMsg(ctx, st, subj)
	if err != nil || hiMsg == nil {
		return nil, span{}, err
	}
	hiSpan, err := spanOf(hiMsg)
	if err != nil {
		return nil, span{}, err
	}
	s.tails.add(subj, hiSpan)
	if target >= hiSpan.hi {
		return nil, span{}, nil
	}
	if target >= hiSpan.lo {
		return hiMsg, hiSpan, nil
	}
	var loSpan span
	if hasBelow && below.seq < hiSpan.seq {
		loSpan = below
	} else {
		first, err := s.nextMsg(ctx, st, subj, 1)
		if err != nil || first == nil {
			return nil, span{}, err
		}
		sp, err := spanOf(first)
		if err != nil {
			return nil, span{}, err
		}
		if target < sp.hi {
			return first, sp, nil
		}
		loSpan = sp
	}
	// The message sought has a sequence in (a, b); loSpan ends at or before
	// target, hiSpan starts after it.
	a, b := loSpan.seq, hiSpan.seq
	for i := 0; ; i++ {
		if i > 128 {
			return nil, span{}, fmt.Errorf("seek %d on %s: no progress", target, subj)
		}
		if b-a <= 1 {
			return hiMsg, hiSpan, nil // target is in a hole
		}
		g := a + (b-a)/2
		if i%2 == 0 && hiSpan.lo > loSpan.hi {
			frac := float64(target-loSpan.hi) / float64(hiSpan.lo-loSpan.hi)
			g = a + 1 + uint64(frac*float64(b-a-1))
		}
		g = min(max(g, a+1), b-1)
		m, err := s.nextMsg(ctx, st, subj, g)
		if err != nil {
			return nil, span{}, err
		}
		if m == nil || m.Sequence >= b {
			b = g // nothing of subj in [g, b)
			continue
		}
		sp, err := spanOf(m)
		if err != nil {
			return nil, span{}, err
		}
		switch {
		case target < sp.lo:
			hiMsg, hiSpan, b = m, sp, m.Sequence
		case target >= sp.hi:
			loSpan, a = sp, m.Sequence
		default:
			return m, sp, nil
		}
	}
}

// scanDirect is how many messages scan reads one request at a time before
// it switches to an ordered consumer, and scanFallback how many it reads
// that way after the consumer failed, before it tries one again.
const (
	scanDirect   = 8
	scanFallback = 64
)

// scan calls fn on each message of subj with a sequence in [from, until],
// in order, until fn returns false. It reads the first few with one
// request each and the rest through an ordered consumer, which streams
// them. When the consumer fails (a server of the cluster going away, an
// election), scan goes on from where it stopped with single requests,
// which retry, and then with a new consumer: a read fails only when ctx
// ends or a request keeps failing past its retries.
func (s *Store) scan(ctx context.Context, st jetstream.Stream, subj string, from, until uint64, fn func(*jetstream.RawStreamMsg) (bool, error)) error {
	seq := from
	direct := scanDirect
	for {
		for i := 0; i < direct; i++ {
			if seq > until {
				return nil
			}
			m, err := s.nextMsg(ctx, st, subj, seq)
			if err != nil {
				return err
			}
			if m == nil || m.Sequence > until {
				return nil
			}
			more, err := fn(m)
			if err != nil || !more {
				return err
			}
			seq = m.Sequence + 1
		}
		if seq > until {
			return nil
		}
		next, finished, err := s.scanConsumer(ctx, st, subj, seq, until, fn)
		if finished {
			return err
		}
		if ctx.Err() != nil || s.isClosed() {
			return fmt.Errorf("read %s: %w", subj, err)
		}
		if !errors.Is(err, errConsumerDrained) {
			s.log.Debug().Err(err).Str("subject", subj).Uint64("seq", next).Msg("ordered consumer failed; reading on with single requests")
		}
		seq, direct = next, scanFallback
	}
}

// scanConsumer is scan's ordered consumer from seq. finished reports that
// the scan is over (err is then fn's, or nil); otherwise err is the
// consumer's failure and next the first sequence not yet given to fn.
func (s *Store) scanConsumer(ctx context.Context, st jetstream.Stream, subj string, seq, until uint64, fn func(*jetstream.RawStreamMsg) (bool, error)) (next uint64, finished bool, err error) {
	next = seq
	// The consumer recreates itself after a failure; bound each wait.
	wait := 3 * s.cfg.RequestTimeout
	cctx, cancel := context.WithTimeout(ctx, wait)
	cons, err := s.js.OrderedConsumer(cctx, st.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    seq,
	})
	cancel()
	if err != nil {
		return next, false, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return next, false, err
	}
	defer it.Stop()
	for {
		if s.consumerFault != nil {
			if err := s.consumerFault(next); err != nil {
				return next, false, err
			}
		}
		nctx, cancel := context.WithTimeout(ctx, wait)
		jm, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			return next, false, err
		}
		meta, err := jm.Metadata()
		if err != nil {
			return next, false, err
		}
		m := &jetstream.RawStreamMsg{Subject: jm.Subject(), Sequence: meta.Sequence.Stream,
			Header: jm.Headers(), Data: jm.Data(), Time: meta.Timestamp}
		if m.Sequence > until {
			return next, true, nil
		}
		more, err := fn(m)
		next = m.Sequence + 1
		if err != nil || !more || m.Sequence == until {
			return next, true, err
		}
		if meta.NumPending == 0 || (s.consumerLag != nil && s.consumerLag(m.Sequence)) {
			// Nothing more pending for the consumer, which may be placed on
			// a replica that is still catching up (a JetStream server just
			// restarted): its end is not the stream's. The scan goes on
			// with single requests, which the stream's leader answers, and
			// ends when they find nothing.
			return next, false, errConsumerDrained
		}
	}
}

// errConsumerDrained: scan's ordered consumer had nothing more pending.
var errConsumerDrained = errors.New("natsstore: ordered consumer has nothing pending")
