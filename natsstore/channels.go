package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
)

// Headers of channel messages.
const (
	hdrOffset = "Tandem-Offset"
	hdrEpoch  = "Tandem-Epoch"
)

// epochRecord is a channel's epoch record, the last message on
// <base>.e. Used says whether a publisher has started the epoch; a used
// epoch whose messages may have aged out (see chanHead.stale) is never
// continued: the next message starts a new epoch at offset 1, so that no
// offset is ever reused within an epoch.
type epochRecord struct {
	Epoch string `json:"epoch"`
	Used  bool   `json:"used"`
}

// chanRef is where a channel lives.
type chanRef struct {
	name  string
	ns    string
	lim   doc.HistoryLimit
	st    jetstream.Stream
	base  string // <prefix>.ch.<ns>.<channel>
	msgs  string // base.m
	rec   string // base.e
	union string // base.*
}

// chanRef finds a channel's stream; ok is false for a namespace that keeps
// no history.
func (s *Store) chanRef(channel string) (*chanRef, bool, error) {
	if err := checkID("channel", channel); err != nil {
		return nil, false, err
	}
	if s.isClosed() {
		return nil, false, ErrClosed
	}
	ns, _, found := strings.Cut(channel, ":")
	if !found {
		ns = ""
	}
	st, ok := s.channels[ns]
	if !ok {
		ns = ""
		if st, ok = s.channels[ns]; !ok {
			return nil, false, nil
		}
	}
	base := s.n.chanBase(ns, channel)
	return &chanRef{name: channel, ns: ns, lim: s.cfg.Namespaces[ns], st: st,
		base: base, msgs: base + ".m", rec: base + ".e", union: base + ".*"}, true, nil
}

// chanHead is what the last message on a channel's subjects says.
type chanHead struct {
	seq    uint64 // its stream sequence; 0 when the channel has nothing
	isMsg  bool   // a message (else the epoch record, or nothing)
	offset uint64 // the message's offset
	epoch  string
	used   bool      // the record's Used
	at     time.Time // when the record was stored
}

// head reads the last message on the channel's subjects.
func (s *Store) chanHead(ctx context.Context, c *chanRef) (chanHead, error) {
	m, err := s.lastMsg(ctx, c.st, c.union)
	if err != nil || m == nil {
		return chanHead{}, err
	}
	if m.Subject == c.msgs {
		off, err := strconv.ParseUint(m.Header.Get(hdrOffset), 10, 64)
		if err != nil {
			return chanHead{}, corrupt(fmt.Sprintf("channel %q message %d", c.name, m.Sequence), err)
		}
		return chanHead{seq: m.Sequence, isMsg: true, offset: off, epoch: m.Header.Get(hdrEpoch)}, nil
	}
	var rec epochRecord
	if err := json.Unmarshal(m.Data, &rec); err != nil || rec.Epoch == "" {
		return chanHead{}, corrupt(fmt.Sprintf("channel %q epoch record", c.name), err)
	}
	return chanHead{seq: m.Sequence, epoch: rec.Epoch, used: rec.Used, at: m.Time}, nil
}

// stale reports whether a used epoch with no message left may have lost
// its messages to age, so that it must not be continued. A message stored
// after the record would be younger than the record; while the record is
// younger than half the maximum age (half: room for clock skew between
// this node and the servers), no such message can have aged out, and an
// empty channel means the epoch's first message is still on its way (or
// its publisher gave up): the epoch goes on at offset 1. Without a maximum
// age nothing ages out: messages are trimmed by count, which keeps the
// newest, and a retraction never deletes the newest.
func (h chanHead) stale(c *chanRef, now time.Time) bool {
	return h.used && c.lim.MaxAge > 0 && now.Sub(h.at) >= c.lim.MaxAge/2
}

// writeRecord publishes an epoch record, compare-and-append on the union
// of the channel's subjects; it never expires.
func (s *Store) writeRecord(ctx context.Context, c *chanRef, rec epochRecord, expect uint64) (uint64, error) {
	msg := nats.NewMsg(c.rec)
	msg.Header.Set(jetstream.MsgTTLHeader, "never")
	msg.Data, _ = json.Marshal(rec)
	actx, cancel := context.WithTimeout(ctx, s.attemptTimeout())
	defer cancel()
	ack, err := s.js.PublishMsg(actx, msg, jetstream.WithExpectLastSequenceForSubject(expect, c.union),
		jetstream.WithMsgID("rec."+rec.Epoch+"."+strconv.FormatBool(rec.Used)))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// ChannelState returns a channel's last offset and epoch. The epoch exists
// from the first call (the epoch record is created then), so that a
// subscriber of an empty channel already holds the epoch its first
// message will carry. A channel whose messages have all aged out reports
// offset 0 in a new epoch. A namespace that keeps no history gives 0, "".
func (s *Store) ChannelState(channel string) (lastOffset uint64, epoch string, err error) {
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	c, ok, err := s.chanRef(channel)
	if err != nil || !ok {
		return 0, "", err
	}
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		h, err := s.chanHead(ctx, c)
		if err != nil {
			return 0, "", fmt.Errorf("channel %q: %w", channel, err)
		}
		switch {
		case h.isMsg:
			return h.offset, h.epoch, nil
		case h.seq != 0 && !h.stale(c, s.cfg.Now()):
			return 0, h.epoch, nil
		}
		// No record yet, or an epoch whose messages have aged out: start one.
		e := randomID()
		if _, err := s.writeRecord(ctx, c, epochRecord{Epoch: e}, h.seq); err == nil {
			return 0, e, nil
		} else if !isWrongLast(err) {
			return 0, "", fmt.Errorf("channel %q: %w", channel, err)
		}
		s.count(func(st *Stats) { st.CASRetries++ })
	}
	return 0, "", fmt.Errorf("channel %q: %w", channel, ErrContended)
}

// chanPos is where the next message of a channel goes, as this node last
// saw it.
type chanPos struct {
	epoch  string
	next   uint64 // its offset
	expect uint64 // the sequence the channel's subjects must end at
}

// chanCache holds chanPos by channel.
type chanCache struct {
	mu sync.Mutex // guards m
	m  map[string]chanPos
}

func (cc *chanCache) get(ch string) (chanPos, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	p, ok := cc.m[ch]
	return p, ok
}

func (cc *chanCache) set(ch string, p chanPos) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil || len(cc.m) > 8192 {
		cc.m = make(map[string]chanPos)
	}
	cc.m[ch] = p
}

func (cc *chanCache) drop(ch string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.m, ch)
}

// maxPublishAttempts bounds the retries of one publish under contention.
const maxPublishAttempts = 200

// PublishMessage stores msg on its channel with the next offset and
// returns it as stored, with the channel's epoch. The offset is assigned
// by compare-and-append on the channel's subjects: the message is stored
// only if nothing was stored on the channel since the position this node
// last saw, so offsets are consecutive from 1 and identical on every node;
// a publish that loses to another node's reads the new position and
// retries (counted in Stats.MessageRetries). msg.Offset is ignored; a zero
// msg.Time is set to now. It fails with ErrInvalid for a namespace that
// keeps no history or a message over the server's max_payload. The stream
// enforces the namespace's history limits.
func (s *Store) PublishMessage(ctx context.Context, msg doc.Message) (doc.Message, string, error) {
	c, ok, err := s.chanRef(msg.Channel)
	if err != nil {
		return doc.Message{}, "", fmt.Errorf("publish: %w", err)
	}
	if !ok {
		return doc.Message{}, "", fmt.Errorf("publish to %q: its namespace keeps no history: %w", msg.Channel, ErrInvalid)
	}
	if msg.Retracted {
		return doc.Message{}, "", fmt.Errorf("publish to %q: a tombstone: %w", msg.Channel, ErrInvalid)
	}
	if msg.Time.IsZero() {
		msg.Time = s.cfg.Now().UTC()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.RequestTimeout)
	defer cancel()
	// One id for every attempt: a retry after a lost ack is recognised as
	// a duplicate within the stream's window, not stored again.
	msgID := "msg." + randomID() + randomID()
	for attempt := 0; attempt < maxPublishAttempts; attempt++ {
		pos, ok := s.chans.get(c.name)
		if !ok {
			if pos, err = s.nextPos(ctx, c); err != nil {
				if isWrongLast(err) {
					s.count(func(st *Stats) { st.MessageRetries++ })
					continue
				}
				return doc.Message{}, "", fmt.Errorf("publish to %q: %w", c.name, err)
			}
		}
		msg.Offset = pos.next
		data, err := json.Marshal(msg)
		if err != nil {
			return doc.Message{}, "", fmt.Errorf("publish to %q: %v: %w", c.name, err, ErrInvalid)
		}
		m := nats.NewMsg(c.msgs)
		m.Header.Set(hdrOffset, strconv.FormatUint(pos.next, 10))
		m.Header.Set(hdrEpoch, pos.epoch)
		m.Data = data
		actx, acancel := context.WithTimeout(ctx, s.attemptTimeout())
		ack, err := s.js.PublishMsg(actx, m, jetstream.WithExpectLastSequenceForSubject(pos.expect, c.union), jetstream.WithMsgID(msgID))
		acancel()
		switch {
		case err == nil && ack.Duplicate:
			// An earlier attempt was stored: report it as it was stored.
			s.chans.drop(c.name)
			stored, err := s.getMsg(ctx, c.st, ack.Sequence)
			if err != nil || stored == nil {
				return doc.Message{}, "", fmt.Errorf("publish to %q: read back the stored message: %v: %w", c.name, err, ErrCorrupt)
			}
			var sm doc.Message
			if err := json.Unmarshal(stored.Data, &sm); err != nil {
				return doc.Message{}, "", corrupt(fmt.Sprintf("channel %q message %d", c.name, ack.Sequence), err)
			}
			return sm, stored.Header.Get(hdrEpoch), nil
		case err == nil:
			s.chans.set(c.name, chanPos{epoch: pos.epoch, next: pos.next + 1, expect: ack.Sequence})
			return msg, pos.epoch, nil
		case isWrongLast(err):
			s.chans.drop(c.name)
			s.count(func(st *Stats) { st.MessageRetries++ })
			if attempt > 2 {
				backoff(ctx, min(attempt/4, 4))
			}
		case isTooLarge(err):
			return doc.Message{}, "", fmt.Errorf("publish to %q: %d bytes, over the server's max_payload: %w", c.name, len(data), ErrInvalid)
		case ctx.Err() == nil && transient(err):
			// The position may have moved (or this message been stored:
			// a lost ack); read it again. A lost ack can make a message
			// stored twice under two offsets; the window is one
			// publish timeout.
			s.chans.drop(c.name)
			backoff(ctx, attempt)
		default:
			return doc.Message{}, "", fmt.Errorf("publish to %q: %w", c.name, err)
		}
	}
	return doc.Message{}, "", fmt.Errorf("publish to %q: %w", c.name, ErrContended)
}

// nextPos reads where the next message of a channel goes, starting or
// renewing its epoch when it has no message.
func (s *Store) nextPos(ctx context.Context, c *chanRef) (chanPos, error) {
	h, err := s.chanHead(ctx, c)
	if err != nil {
		return chanPos{}, err
	}
	if h.isMsg {
		return chanPos{epoch: h.epoch, next: h.offset + 1, expect: h.seq}, nil
	}
	// No message: mark the record's epoch used (or, when its messages
	// have aged out, start a new one), then offset 1.
	if h.used && !h.stale(c, s.cfg.Now()) {
		return chanPos{epoch: h.epoch, next: 1, expect: h.seq}, nil
	}
	rec := epochRecord{Epoch: h.epoch, Used: true}
	if h.seq == 0 || h.used {
		rec.Epoch = randomID()
	}
	seq, err := s.writeRecord(ctx, c, rec, h.seq)
	if err != nil {
		return chanPos{}, err
	}
	return chanPos{epoch: rec.Epoch, next: 1, expect: seq}, nil
}

// msgOffset reads a channel message's offset, as a span [o, o+1).
func msgOffset(m *jetstream.RawStreamMsg) (span, error) {
	off, err := strconv.ParseUint(m.Header.Get(hdrOffset), 10, 64)
	if err != nil {
		return span{}, corrupt(fmt.Sprintf("channel message %d", m.Sequence), err)
	}
	return span{lo: off, hi: off + 1, seq: m.Sequence}, nil
}

// tombstones is a channel's retractions, kept in the retractions bucket
// under the channel: the retracted messages without their data, by offset,
// for one epoch.
type tombstones struct {
	Epoch string                 `json:"epoch"`
	Items map[uint64]doc.Message `json:"items"`
}

// loadTombstones reads a channel's tombstones for epoch.
func (s *Store) loadTombstones(ctx context.Context, c *chanRef, epoch string) (tombstones, uint64, error) {
	e, err := s.kvGet(ctx, s.kvRetr, encode(c.name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tombstones{Epoch: epoch}, 0, nil
	}
	if err != nil {
		return tombstones{}, 0, err
	}
	var t tombstones
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return tombstones{}, 0, corrupt(fmt.Sprintf("tombstones of %q", c.name), err)
	}
	if t.Epoch != epoch {
		t = tombstones{Epoch: epoch}
	}
	return t, e.Revision(), nil
}

// MessagesSince returns up to limit messages of channel with offsets above
// offset, oldest first (limit <= 0: all), from the channel's current
// epoch. Trimmed messages are gone; retracted ones come as tombstones in
// their place (a tombstone just before the oldest stored message, or
// before another such tombstone, still counts as history).
func (s *Store) MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	c, ok, err := s.chanRef(channel)
	if err != nil || !ok {
		return nil, err
	}
	last, err := s.lastMsg(ctx, c.st, c.msgs)
	if err != nil || last == nil {
		return nil, err
	}
	epoch := last.Header.Get(hdrEpoch)
	tomb, _, err := s.loadTombstones(ctx, c, epoch)
	if err != nil {
		return nil, fmt.Errorf("messages of %q: %w", channel, err)
	}
	var stored []doc.Message
	first, _, err := s.seek(ctx, c.st, c.msgs, offset+1, msgOffset)
	if err != nil {
		return nil, fmt.Errorf("messages of %q: %w", channel, err)
	}
	if first != nil {
		err = s.scan(ctx, c.st, c.msgs, first.Sequence, last.Sequence, func(m *jetstream.RawStreamMsg) (bool, error) {
			var msg doc.Message
			if err := json.Unmarshal(m.Data, &msg); err != nil {
				return false, corrupt(fmt.Sprintf("channel %q message %d", channel, m.Sequence), err)
			}
			if m.Header.Get(hdrEpoch) != epoch {
				return true, nil // an older epoch's last message, not yet trimmed
			}
			stored = append(stored, msg)
			return limit <= 0 || len(stored) < limit, nil
		})
		if err != nil {
			return nil, fmt.Errorf("messages of %q: %w", channel, err)
		}
	}
	// Merge the tombstones: in place of stored ones, in the holes between
	// them, and just before the oldest stored message.
	var oldest uint64 = 0
	if f, err := s.nextMsg(ctx, c.st, c.msgs, 1); err == nil && f != nil {
		if sp, err := msgOffset(f); err == nil {
			oldest = sp.lo
		}
	}
	for oldest > 1 {
		if _, ok := tomb.Items[oldest-1]; !ok {
			break
		}
		oldest--
	}
	var cutoff time.Time
	if c.lim.MaxAge > 0 {
		cutoff = s.cfg.Now().Add(-c.lim.MaxAge)
	}
	byOffset := make(map[uint64]doc.Message, len(stored)+len(tomb.Items))
	for _, m := range stored {
		byOffset[m.Offset] = m
	}
	end := last.Header.Get(hdrOffset)
	lastOff, _ := strconv.ParseUint(end, 10, 64)
	if len(stored) > 0 && limit > 0 && len(stored) == limit {
		lastOff = stored[len(stored)-1].Offset
	}
	for off, t := range tomb.Items {
		if off > offset && off >= oldest && off <= lastOff && (cutoff.IsZero() || !t.Time.Before(cutoff)) {
			byOffset[off] = t
		}
	}
	out := make([]doc.Message, 0, len(byOffset))
	for _, m := range byOffset {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Retract replaces message offset of channel with a tombstone that keeps
// its offset, time, author and event and records by; its data is dropped.
// The tombstone is recorded first (by compare-and-set on the channel's
// tombstones), then the stored message is deleted from the stream, except
// the channel's newest message, which anchors the next offset: its data
// stays in the stream until the history limits remove it, though no read
// returns it. Retracting a tombstone again changes nothing. It fails with
// ErrNotFound when the message is not stored.
func (s *Store) Retract(ctx context.Context, channel string, offset uint64, by string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.RequestTimeout)
	defer cancel()
	c, ok, err := s.chanRef(channel)
	if err != nil {
		return fmt.Errorf("retract: %w", err)
	}
	if !ok {
		return fmt.Errorf("retract message %d of %q: %w", offset, channel, ErrNotFound)
	}
	last, err := s.lastMsg(ctx, c.st, c.msgs)
	if err != nil {
		return fmt.Errorf("retract: %w", err)
	}
	if last == nil {
		return fmt.Errorf("retract message %d of %q: %w", offset, channel, ErrNotFound)
	}
	epoch := last.Header.Get(hdrEpoch)
	m, sp, err := s.seek(ctx, c.st, c.msgs, offset, msgOffset)
	if err != nil {
		return fmt.Errorf("retract: %w", err)
	}
	found := m != nil && sp.lo == offset && m.Header.Get(hdrEpoch) == epoch
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		tomb, rev, err := s.loadTombstones(ctx, c, epoch)
		if err != nil {
			return fmt.Errorf("retract: %w", err)
		}
		if _, done := tomb.Items[offset]; done {
			return nil
		}
		if !found {
			return fmt.Errorf("retract message %d of %q: %w", offset, channel, ErrNotFound)
		}
		var msg doc.Message
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			return corrupt(fmt.Sprintf("channel %q message %d", channel, m.Sequence), err)
		}
		msg.Retracted, msg.RetractedBy, msg.Data = true, by, nil
		if tomb.Items == nil {
			tomb.Items = make(map[uint64]doc.Message)
		}
		tomb.Items[offset] = msg
		// Forget tombstones the history limits have removed.
		lastOff, _ := strconv.ParseUint(last.Header.Get(hdrOffset), 10, 64)
		for off := range tomb.Items {
			if c.lim.MaxCount > 0 && off+uint64(2*c.lim.MaxCount) < lastOff {
				delete(tomb.Items, off)
			}
		}
		val, err := json.Marshal(tomb)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kvCreate(ctx, s.kvRetr, encode(c.name), val)
		} else {
			_, err = s.kvUpdate(ctx, s.kvRetr, encode(c.name), val, rev)
		}
		if err == nil {
			if m.Sequence != last.Sequence {
				if err := c.st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					s.log.Warn().Err(err).Str("channel", channel).Uint64("offset", offset).Msg("retracted message's data not deleted")
				}
			}
			return nil
		}
		if !isRevMismatch(err) {
			return fmt.Errorf("retract: %w", err)
		}
		s.count(func(st *Stats) { st.CASRetries++ })
	}
	return fmt.Errorf("retract message %d of %q: %w", offset, channel, ErrContended)
}

// FollowChannel delivers channel's messages with offsets above after, in
// offset order, each once, as any node stores them, with their epoch. A
// message of a new epoch (the channel's history aged out and restarted at
// offset 1) comes with that epoch; the caller resets what it holds.
// deliver runs on one goroutine at a time and may block. Retractions are
// not delivered here (they are announced over core NATS by the node that
// retracts). onErr is called once if delivery cannot go on.
// stop stops the follower and returns once deliver is no longer running.
func (s *Store) FollowChannel(ctx context.Context, channel string, after uint64, deliver func(msg doc.Message, epoch string), onErr func(error)) (stop func(), err error) {
	c, ok, err := s.chanRef(channel)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("follow %q: its namespace keeps no history: %w", channel, ErrInvalid)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{c.msgs}, DeliverPolicy: jetstream.DeliverAllPolicy}
	last, err := s.lastMsg(rctx, c.st, c.msgs)
	if err != nil {
		return nil, err
	}
	if last != nil {
		lsp, err := msgOffset(last)
		if err != nil {
			return nil, err
		}
		if after >= lsp.lo {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last.Sequence+1
		} else if m, _, err := s.seek(rctx, c.st, c.msgs, after+1, msgOffset); err != nil {
			return nil, err
		} else if m != nil {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, m.Sequence
		}
	}
	cons, err := s.js.OrderedConsumer(rctx, c.st.CachedInfo().Config.Name, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow %q: %w", channel, err)
	}
	f := &Follower{ready: make(chan struct{})}
	handler := func(jm jetstream.Msg) {
		if f.isFailed() {
			return
		}
		var msg doc.Message
		if err := json.Unmarshal(jm.Data(), &msg); err != nil {
			f.failWith(corrupt(fmt.Sprintf("channel %q message", channel), err), onErr)
			return
		}
		deliver(msg, jm.Headers().Get(hdrEpoch))
	}
	cc, err := cons.Consume(handler, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Debug().Err(err).Str("channel", channel).Msg("follower")
	}))
	if err != nil {
		return nil, fmt.Errorf("follow %q: %w", channel, err)
	}
	f.cc = cc
	close(f.ready)
	return f.Stop, nil
}
