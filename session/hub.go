package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/proto"
)

// Subscriber is one connection as the hub sees it.
type Subscriber interface {
	// ClientID identifies the connection.
	ClientID() string
	// Send queues a frame for the connection without blocking. It returns
	// false when the connection's queue overflowed; the connection then
	// closes itself as a slow reader and unsubscribes. The hub hands the same
	// slice to every subscriber: Send must not modify it.
	Send(frame []byte) bool
}

// BatchSender is a Subscriber that takes several frames in one call, as if
// sent one by one in order: a document delivers a round of ops to each
// member at once.
type BatchSender interface {
	// SendBatch queues frames in order without blocking and reports false
	// as Send does. It may keep the frames, which it must not modify, but
	// not the slice that holds them.
	SendBatch(frames [][]byte) bool
}

// HubConfig configures a Hub. History, Receipts and Users are required.
type HubConfig struct {
	History  ChannelHistory
	Receipts Receipts
	Users    Users
	// Namespaces maps a namespace name to its options; nil means
	// DefaultNamespaces(). A channel whose namespace is not listed uses the
	// default namespace "" (which must be present).
	Namespaces map[string]*Namespace
	// RecoverLimit caps how many messages one subscribe recovers. By
	// default 1000.
	RecoverLimit int
	// RecoverBytes caps the recovered messages of one subscribe, measured
	// as encoded in the frame; past it the newest messages that fit are
	// sent with recovered false. By default 1 MiB, and never more than
	// what FrameBudget leaves.
	RecoverBytes int
	// FrameBudget bounds the encoded size of the frames the hub builds from
	// many parts (subscribed, members, presence batches), so that one
	// always fits a connection's send queue: the server sets it to half of
	// the queue's byte bound. A subscribed frame spends at most a quarter
	// of it on members and an eighth on receipts; recovered messages get
	// the rest (up to RecoverBytes). By default 2 MiB.
	FrameBudget int
	// MemberPage is how many members subscribed lists at most (the first
	// page, in client id order) and the largest page a members request
	// gets. By default 100.
	MemberPage int
	// CountInterval is how often count-only channels announce their member
	// count. By default 5 * time.Second.
	CountInterval time.Duration
	// MentionWorkers resolve @mentions (user lookups and the publishes to
	// user:<id>) from a queue of MentionQueue messages; when the queue is
	// full a message's mentions are dropped, counted and logged. By default
	// 2 workers and 1024 messages.
	MentionWorkers int
	MentionQueue   int
	Logger         zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
	// Metrics counts published messages; nil makes a private set.
	Metrics *metrics.Metrics
	// Notifier hears of joins, leaves and mentions; nil: nobody.
	Notifier Notifier
	// Presence and Ephemeral carry presence, ephemeral messages and
	// notices between nodes in cluster mode (History a SharedChannelLog);
	// nil: this node's only.
	Presence  PresenceBus
	Ephemeral EphemeralBus
}

// Hub owns the channels: their subscribers, presence and publish order. It
// is safe for concurrent use. Lock order: channel.seq, then Hub.mu, then
// channel.mu; a channel's locks are never held while taking another
// channel's. No lock of the hub is held across a storage read.
type Hub struct {
	cfg HubConfig
	log zerolog.Logger
	now func() time.Time

	mu       sync.Mutex          // guards channels and closed
	channels map[string]*channel // channels with subscribers or work in flight
	closed   bool

	mentions *mentionPool

	// shared is History as a SharedChannelLog (cluster mode), else nil.
	shared SharedChannelLog
	pubs   sync.WaitGroup // cluster publish workers (hub_cluster.go)

	stop chan struct{}
	wg   sync.WaitGroup // background goroutines: count ticker, mention workers
}

// channel is one live channel.
type channel struct {
	name string
	ns   *Namespace

	// seq serialises offset assignment with submission to storage, so that
	// offsets are submitted in order, and serialises loading the channel's
	// state from storage (which reads storage outside mu). It is taken
	// before mu and never by a completion, which may run inline when
	// storage is closed.
	seq sync.Mutex

	mu     sync.Mutex // guards every field below
	loaded bool       // last and epoch read from storage
	broken bool       // an append failed: reload state before the next publish
	last   uint64     // last offset assigned
	// delivered is the last offset committed and delivered to the
	// subscribers. Between assignment and commit last runs ahead of it;
	// subscribed reports delivered and recovers only up to it, since what
	// comes after reaches the new subscriber live.
	delivered uint64
	// epoch is never empty once loaded: a channel without one in storage
	// gets one at once, stored through the group commit (prepareSeqLocked).
	epoch string
	refs  int // calls and publishes in flight; see Hub.release
	subs  map[string]*subscription
	// order holds the client ids of the subscriptions listed in presence,
	// sorted: pages of members follow it. len(order) is the member count.
	order   []string
	counted int // member count last announced (count mode)
	// countMode: a full-presence channel switched itself to count mode
	// (Namespace.PresenceCountAbove).
	countMode bool
	// singles and batched count the subscriptions that see presence as
	// single events and in batches.
	singles, batched int
	// batch holds the changes waiting for the next batch frame, at most
	// one per client id (batchAt gives its index); batchTimer is armed
	// while they wait; batchSent is when the last batch frame went out.
	batch      []proto.PresenceEvent
	batchAt    map[string]int
	batchTimer *time.Timer
	batchSent  time.Time

	// Cluster mode (hub_cluster.go); cluster is set at creation.
	cluster bool
	clu     *chanCluster
}

type subscription struct {
	sub          Subscriber
	member       proto.Member
	memberBytes  int  // len of member encoded, plus a separator
	present      bool // listed in presence
	seesPresence bool
	batches      bool // sees presence in batch frames
	// While recovering, the subscriber's subscribed frame is being built
	// outside the channel's lock: frames for it wait in pending (in order)
	// and follow the subscribed frame. See Subscribe.
	recovering bool
	pending    [][]byte
}

// sendLocked queues frame for the subscriber, or holds it while its
// subscribed frame is being built. Must be called with the channel's mu
// held.
func (s *subscription) sendLocked(frame []byte) {
	if s.recovering {
		s.pending = append(s.pending, frame)
		return
	}
	s.sub.Send(frame)
}

// NewHub returns a hub and starts its background work; Close stops it.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Namespaces == nil {
		cfg.Namespaces = DefaultNamespaces()
	}
	if cfg.Namespaces[""] == nil {
		cfg.Namespaces[""] = DefaultNamespaces()[""]
	}
	if cfg.RecoverLimit <= 0 {
		cfg.RecoverLimit = 1000
	}
	if cfg.RecoverBytes <= 0 {
		cfg.RecoverBytes = 1 << 20
	}
	if cfg.FrameBudget <= 0 {
		cfg.FrameBudget = 2 << 20
	}
	if cfg.MemberPage <= 0 {
		cfg.MemberPage = 100
	}
	if cfg.CountInterval <= 0 {
		cfg.CountInterval = 5 * time.Second
	}
	if cfg.MentionWorkers <= 0 {
		cfg.MentionWorkers = 2
	}
	if cfg.MentionQueue <= 0 {
		cfg.MentionQueue = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "hub").Logger(),
		now:      cfg.Now,
		channels: make(map[string]*channel),
		stop:     make(chan struct{}),
	}
	h.shared, _ = cfg.History.(SharedChannelLog)
	h.mentions = newMentionPool(h)
	h.wg.Add(1 + cfg.MentionWorkers)
	go h.countLoop()
	for range cfg.MentionWorkers {
		go h.mentions.work()
	}
	return h
}

// Close stops the hub's background work and waits for it. Publishes already
// submitted complete; mentions still queued are dropped; new calls fail
// with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	chans := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		chans = append(chans, ch)
	}
	h.mu.Unlock()
	var stops []func()
	for _, ch := range chans {
		ch.mu.Lock()
		if ch.batchTimer != nil {
			ch.batchTimer.Stop()
			ch.batchTimer = nil
		}
		if ch.clu != nil && ch.clu.following {
			stops = append(stops, ch.clu.stops...)
			ch.clu.following, ch.clu.stops = false, nil
		}
		ch.mu.Unlock()
	}
	for _, stop := range stops { // cluster mode: followers and watches
		stop()
	}
	close(h.stop)
	h.wg.Wait()
	h.pubs.Wait()
}

// Namespace returns the options of the channel's namespace.
func (h *Hub) Namespace(channel string) *Namespace {
	if ns := h.cfg.Namespaces[NamespaceOf(channel)]; ns != nil {
		return ns
	}
	return h.cfg.Namespaces[""]
}

// acquire returns the live channel of that name, creating it, with a
// reference the caller must release.
func (h *Hub) acquire(name string) (*channel, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	ch := h.channels[name]
	if ch == nil {
		ch = &channel{name: name, ns: h.Namespace(name), subs: make(map[string]*subscription)}
		if h.shared != nil && h.shared.Shared(name) {
			ch.cluster, ch.clu = true, &chanCluster{remote: map[string]*remoteSub{}}
		}
		h.channels[name] = ch
	}
	ch.mu.Lock()
	ch.refs++
	ch.mu.Unlock()
	return ch, nil
}

// release drops a reference; a channel with no references and no
// subscribers leaves memory (its state is in storage).
func (h *Hub) release(ch *channel) {
	h.mu.Lock()
	ch.mu.Lock()
	ch.refs--
	if ch.refs == 0 && len(ch.subs) == 0 && h.channels[ch.name] == ch {
		delete(h.channels, ch.name)
	}
	ch.mu.Unlock()
	h.mu.Unlock()
}

// prepare makes sure the channel's last offset and epoch are loaded; see
// prepareSeqLocked.
func (h *Hub) prepare(ch *channel) error {
	ch.mu.Lock()
	ready := ch.loaded && !ch.broken
	ch.mu.Unlock()
	if ready {
		return nil
	}
	ch.seq.Lock()
	defer ch.seq.Unlock()
	return h.prepareSeqLocked(ch)
}

// prepareSeqLocked reads the channel's last offset and epoch from storage
// the first time, or again after a failed write, without holding ch.mu
// (ch.seq keeps loads and offset assignment apart, and completions do not
// take it). A channel that has no epoch in storage gets a new one at once:
// it is stored through the group commit without waiting, so that many new
// channels share one fsync, and the channel stays in memory until it is
// durable, so that nobody loads the channel meanwhile and makes another.
// If the write fails the channel reloads later and gets another epoch:
// clients that saw this one then see a reset history (recovered false),
// never a wrong one. Must be called with ch.seq held.
func (h *Hub) prepareSeqLocked(ch *channel) error {
	ch.mu.Lock()
	ready := ch.loaded && !ch.broken
	ch.mu.Unlock()
	if ready {
		return nil
	}
	last, epoch, err := h.cfg.History.ChannelState(ch.name)
	if err != nil {
		return fmt.Errorf("load channel %s: %w", ch.name, err)
	}
	fresh := epoch == ""
	if fresh {
		epoch = newEpoch()
	}
	ch.mu.Lock()
	ch.last, ch.delivered, ch.epoch, ch.loaded, ch.broken = last, last, epoch, true, false
	if fresh {
		ch.refs++ // released by the completion
	}
	ch.mu.Unlock()
	if fresh {
		h.cfg.History.EnsureChannelAsync(ch.name, epoch, func(stored string, err error) {
			if err != nil || stored != epoch {
				ch.mu.Lock()
				ch.broken = true
				ch.mu.Unlock()
				h.log.Warn().Err(err).Str("channel", ch.name).Msg("channel epoch not stored; the channel will get another")
			}
			h.release(ch)
		})
	}
	return nil
}

// newEpoch returns a random epoch: 16 hex digits, like storage's.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// SubscribeRequest is what Subscribe needs to know.
type SubscribeRequest struct {
	// ID is the request's id, echoed in the subscribed frame.
	ID      *int64
	Channel string
	// Since asks to recover what was missed after that position.
	Since *proto.Since
	Sub   Subscriber
	// Member is who subscribes, as presence shows them.
	Member proto.Member
	// Presence lets the subscriber see and appear in presence.
	Presence bool
	// PresenceBatch asks for presence changes in batch frames.
	PresenceBatch bool
	// Data goes into the subscribed frame as is (what the application's
	// subscribe hook attached); nil: none.
	Data json.RawMessage
}

// Subscribe adds a subscriber to a channel and queues its subscribed frame
// (with recovered messages, members and receipts) before any live message,
// so the subscriber sees every offset once and in order. Subscribing again
// on the same connection re-sends subscribed (recovering from Since again)
// and changes nothing else. One connection's calls must not overlap (the
// web layer makes them from its read goroutine).
//
// Storage is read without the channel's lock, so that a subscribe reading
// a long history never holds up publishes (whose completions on the
// committer take that lock). Under the lock, the subscription is
// registered and marked recovering, and the position (delivered) and the
// members are taken; everything the channel sends it from then on (live
// messages after that position, presence, receipts) waits in its pending
// list. Outside the lock the history up to that position is read and the
// frame encoded. Under the lock again, the subscribed frame is queued, then
// the pending frames in order, and the subscription goes live: so it sees
// each offset once, in order, and every presence change after its member
// list.
func (h *Hub) Subscribe(r SubscribeRequest) error {
	ch, err := h.acquire(r.Channel)
	if err != nil {
		return err
	}
	defer h.release(ch)
	if ch.ns.Reserved {
		return fmt.Errorf("subscribe %s: %w", r.Channel, ErrReserved)
	}
	if err := h.prepare(ch); err != nil {
		return err
	}
	stored, err := h.cfg.Receipts.Receipts(r.Channel)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.Channel, err)
	}
	receipts, receiptBytes := trimReceipts(stored, h.cfg.FrameBudget/8)

	id := r.Sub.ClientID()
	if ch.cluster {
		// Follow what other nodes do with the channel before registering,
		// and hold seq until registered, so that the last subscriber
		// leaving meanwhile cannot stop it (see unfollow).
		ch.seq.Lock()
		if err := h.followSeqLocked(ch); err != nil {
			ch.seq.Unlock()
			return err
		}
	}
	ch.mu.Lock()
	s, again := ch.subs[id]
	if again && s.recovering {
		ch.mu.Unlock()
		if ch.cluster {
			ch.seq.Unlock()
		}
		return fmt.Errorf("subscribe %s: a subscribe of this connection is under way", r.Channel)
	}
	if !again {
		s = &subscription{sub: r.Sub, member: r.Member, memberBytes: memberSize(r.Member),
			seesPresence: r.Presence && ch.ns.Presence != PresenceOff, batches: r.PresenceBatch}
		ch.subs[id] = s
		ch.countViewerLocked(s, 1)
		notify(h.cfg.Notifier, Event{Type: EventChannelJoined, Time: h.now(), Channel: ch.name, User: r.Member.User.ID, ClientID: id})
		if s.seesPresence {
			h.joinLocked(ch, s)
		}
	}
	s.recovering = true
	reply := proto.Subscribed{
		ID: r.ID, Type: proto.TypeSubscribed, Channel: r.Channel,
		Offset: ch.delivered, Epoch: ch.epoch, Messages: []proto.Message{}, Receipts: receipts, Data: r.Data,
	}
	memberBytes := h.subscribedMembersLocked(ch, s, &reply)
	ch.mu.Unlock()
	if ch.cluster {
		ch.seq.Unlock()
	}

	var frame []byte
	if r.Since != nil {
		budget := min(h.cfg.RecoverBytes, h.cfg.FrameBudget-memberBytes-receiptBytes-len(r.Data)-frameOverhead)
		reply.Messages, reply.Recovered, err = h.recover(ch.name, *r.Since, reply.Offset, reply.Epoch, budget)
	}
	if err == nil {
		frame = proto.Encode(reply)
	}

	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.subs[id] != s {
		return err // unsubscribed meanwhile (the connection went away)
	}
	pending := s.pending
	s.recovering, s.pending = false, nil
	if err != nil {
		if !again {
			h.removeLocked(ch, id, s)
			if ch.cluster && len(ch.subs) == 0 {
				go h.unfollow(ch)
			}
			return err
		}
		frame = nil // the subscription goes on as it was
	}
	if frame != nil && !r.Sub.Send(frame) {
		return err
	}
	for _, f := range pending {
		if !r.Sub.Send(f) {
			break
		}
	}
	return err
}

// frameOverhead is what a subscribed frame needs besides its messages,
// members and receipts (names, epoch, keys), with room to spare.
const frameOverhead = 1024

// trimReceipts returns receipts, or when they encode to more than budget
// bytes, those with the highest offsets that fit; and their encoded size.
func trimReceipts(receipts map[string]uint64, budget int) (map[string]uint64, int) {
	if receipts == nil {
		return map[string]uint64{}, 0
	}
	size := func(user string, off uint64) int {
		return len(proto.Encode(user)) + len(strconv.FormatUint(off, 10)) + 2
	}
	total := 0
	for u, off := range receipts {
		total += size(u, off)
	}
	if total <= budget {
		return receipts, total
	}
	users := slices.Collect(maps.Keys(receipts))
	slices.SortFunc(users, func(a, b string) int { return cmp.Compare(receipts[b], receipts[a]) })
	out := make(map[string]uint64)
	total = 0
	for _, u := range users {
		n := size(u, receipts[u])
		if total+n > budget {
			break
		}
		out[u], total = receipts[u], total+n
	}
	return out, total
}

// recover returns the messages after since up to delivered, in epoch, and
// whether that is all of them, reading storage (the caller holds no lock).
// A position in another epoch (an empty epoch with an offset included) or
// past the end recovers nothing, with recovered false. When the oldest
// wanted messages are gone (trimmed, or beyond RecoverLimit or the byte
// budget), it returns the newest ones that are left and fit, with
// recovered false. It reads backwards from delivered in growing chunks, so
// that it reads little more than what fits the budget.
func (h *Hub) recover(name string, since proto.Since, delivered uint64, epoch string, budget int) ([]proto.Message, bool, error) {
	if since.Offset > 0 && since.Epoch != epoch || since.Offset > delivered {
		return []proto.Message{}, false, nil
	}
	if since.Offset == delivered {
		return []proto.Message{}, true, nil
	}
	from, recovered := since.Offset, true
	if delivered-from > uint64(h.cfg.RecoverLimit) {
		from, recovered = delivered-uint64(h.cfg.RecoverLimit), false
	}
	var rev []proto.Message // newest first
	to, chunk := delivered, uint64(32)
	for to > from {
		lo := max(from, to-min(chunk, to))
		stored, err := h.cfg.History.MessagesSince(name, lo, int(to-lo))
		if err != nil {
			return nil, false, fmt.Errorf("recover %s: %w", name, err)
		}
		for i, m := range stored {
			if m.Offset > to {
				stored = stored[:i] // committed, but its live delivery is still to come
				break
			}
		}
		if len(stored) == 0 || stored[len(stored)-1].Offset != to {
			return reversed(rev), false, nil // a gap: trimmed meanwhile
		}
		for i := len(stored) - 1; i >= 0; i-- {
			m := h.messageFrame(stored[i], "")
			n := len(proto.Encode(m)) + 1
			if n > budget {
				return reversed(rev), false, nil
			}
			budget -= n
			rev = append(rev, m)
		}
		if stored[0].Offset != lo+1 {
			return reversed(rev), false, nil // the older ones were trimmed
		}
		to, chunk = lo, chunk*2
	}
	return reversed(rev), recovered, nil
}

// reversed returns ms in reverse order (never nil).
func reversed(ms []proto.Message) []proto.Message {
	out := make([]proto.Message, len(ms))
	for i, m := range ms {
		out[len(ms)-1-i] = m
	}
	return out
}

// messageFrame converts a stored message for the wire; typ is "message"
// for a push and "" inside subscribed.
func (h *Hub) messageFrame(m doc.Message, typ string) proto.Message {
	f := proto.Message{
		Type: typ, Channel: m.Channel, Offset: m.Offset, Event: m.Event, Data: m.Data,
		TS: m.Time.UTC().Format(proto.TimeLayout), Retracted: m.Retracted,
	}
	if m.User != "" || m.ClientID != "" {
		f.From = &proto.From{User: m.User, ClientID: m.ClientID}
	}
	return f
}

// Unsubscribe removes a connection from a channel and announces its leave.
// It reports whether the connection was subscribed.
func (h *Hub) Unsubscribe(channelName, clientID string) bool {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	s, ok := ch.subs[clientID]
	if ok {
		h.removeLocked(ch, clientID, s)
	}
	last := ok && len(ch.subs) == 0
	ch.mu.Unlock()
	if last && ch.cluster {
		h.unfollow(ch)
	}
	if ok {
		// Give the channel a chance to leave memory.
		h.mu.Lock()
		ch.mu.Lock()
		if ch.refs == 0 && len(ch.subs) == 0 && h.channels[ch.name] == ch {
			delete(h.channels, ch.name)
		}
		ch.mu.Unlock()
		h.mu.Unlock()
	}
	return ok
}

// removeLocked takes s off the channel and announces its leave. Must be
// called with ch.mu held.
func (h *Hub) removeLocked(ch *channel, clientID string, s *subscription) {
	delete(ch.subs, clientID)
	ch.countViewerLocked(s, -1)
	notify(h.cfg.Notifier, Event{Type: EventChannelLeft, Time: h.now(), Channel: ch.name, User: s.member.User.ID, ClientID: clientID})
	if s.present {
		h.leaveLocked(ch, s)
	}
}

// Publication is a message to publish.
type Publication struct {
	Channel string
	Event   string
	Data    json.RawMessage
	// Ephemeral messages skip history: current subscribers get them with no
	// offset.
	Ephemeral bool
	From      proto.From
	// FromName is the publisher's display name, for mention notifications.
	FromName string
	// SkipClient leaves that connection out of the delivery (echo false).
	SkipClient string
}

// Publish stores and delivers a message. For a stored message it assigns
// the next offset, appends it through storage's group commit without
// waiting, and once it is durable delivers it to every subscriber (in offset
// order: commits complete in submission order) and calls done with the
// offset. An ephemeral message is delivered at once and done gets offset 0.
// done is called exactly once, possibly before Publish returns, and must
// not block.
func (h *Hub) Publish(p Publication, done func(offset uint64, err error)) {
	ch, err := h.acquire(p.Channel)
	if err != nil {
		done(0, err)
		return
	}
	if ch.ns.Reserved {
		h.release(ch)
		done(0, fmt.Errorf("publish %s: %w", p.Channel, ErrReserved))
		return
	}
	if max := ch.ns.MaxPayload; max > 0 && len(p.Data) > max {
		h.release(ch)
		done(0, fmt.Errorf("publish %s: %d bytes of data, at most %d: %w", p.Channel, len(p.Data), max, ErrTooLarge))
		return
	}
	now := h.now()
	if ch.cluster && !p.Ephemeral && ch.ns.HistorySize > 0 {
		h.publishShared(ch, p, now, done) // takes over the reference
		return
	}
	ch.seq.Lock()
	defer ch.seq.Unlock()
	ch.mu.Lock()
	if p.Ephemeral || ch.ns.HistorySize == 0 {
		m := doc.Message{Channel: p.Channel, Event: p.Event, Data: p.Data, User: p.From.User, ClientID: p.From.ClientID, Time: now}
		h.deliverLocked(ch, m, p.SkipClient)
		ch.mu.Unlock()
		if ch.cluster {
			h.sendOthers(ch.name, ephemeralEnvelope{Msg: &m})
		}
		h.release(ch)
		done(0, nil)
		return
	}
	ch.mu.Unlock()
	if err := h.prepareSeqLocked(ch); err != nil {
		h.release(ch)
		done(0, err)
		return
	}
	ch.mu.Lock()
	ch.last++
	m := doc.Message{
		Channel: p.Channel, Offset: ch.last, Event: p.Event, Data: p.Data,
		User: p.From.User, ClientID: p.From.ClientID, Time: now,
	}
	limits := doc.HistoryLimit{MaxCount: ch.ns.HistorySize, MaxAge: ch.ns.HistoryAge}
	ch.mu.Unlock()
	// Submitting under ch.seq keeps offsets in submission order; the call
	// only queues, and the completion below runs on the committer.
	h.cfg.History.AppendMessageAsync(m, limits, func(err error) {
		ch.mu.Lock()
		if err != nil {
			ch.broken = true // later offsets of this run fail too; reload
		} else {
			ch.delivered = m.Offset
			h.deliverLocked(ch, m, p.SkipClient)
		}
		ch.mu.Unlock()
		h.release(ch)
		if err != nil {
			done(0, fmt.Errorf("publish %s: %w", p.Channel, err))
			return
		}
		done(m.Offset, nil)
		if ch.ns.Mentions {
			h.mentions.queueMessage(m, p.FromName)
		}
	})
}

// deliverLocked encodes m once and queues it to every subscriber but skip.
// Must be called with ch.mu held.
func (h *Hub) deliverLocked(ch *channel, m doc.Message, skip string) {
	h.cfg.Metrics.Published.Inc()
	if len(ch.subs) == 0 {
		return
	}
	frame := proto.Encode(h.messageFrame(m, proto.TypeMessage))
	for id, s := range ch.subs {
		if id != skip {
			s.sendLocked(frame)
		}
	}
}

// Broadcast queues a pre-encoded frame to every subscriber of a live
// channel but skip, without storing it: documents use it for ops, cursors
// and comments, whose durable record lives elsewhere.
func (h *Hub) Broadcast(channelName string, frame []byte, skip string) {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return
	}
	ch.mu.Lock()
	for id, s := range ch.subs {
		if id != skip {
			s.sendLocked(frame)
		}
	}
	ch.mu.Unlock()
}

// History returns up to limit stored messages after offset.
func (h *Hub) History(channelName string, since uint64, limit int) ([]proto.Message, error) {
	stored, err := h.cfg.History.MessagesSince(channelName, since, limit)
	if err != nil {
		return nil, err
	}
	out := make([]proto.Message, len(stored))
	for i, m := range stored {
		out[i] = h.messageFrame(m, "")
	}
	return out, nil
}

// Retract replaces a message with a tombstone and tells the subscribers.
// Only its author may, or an admin. Retracting a tombstone again is a no-op.
func (h *Hub) Retract(ctx context.Context, channelName string, offset uint64, by string, admin bool) error {
	if offset == 0 {
		return fmt.Errorf("retract %s offset 0: %w", channelName, ErrNotFound)
	}
	stored, err := h.cfg.History.MessagesSince(channelName, offset-1, 1)
	if err != nil {
		return fmt.Errorf("retract: %w", err)
	}
	if len(stored) == 0 || stored[0].Offset != offset {
		return fmt.Errorf("retract %s offset %d: %w", channelName, offset, ErrNotFound)
	}
	m := stored[0]
	if !admin && m.User != by {
		return fmt.Errorf("retract %s offset %d: not the author: %w", channelName, offset, ErrForbidden)
	}
	if m.Retracted {
		return nil
	}
	if err := h.cfg.History.Retract(ctx, channelName, offset, by); err != nil {
		return fmt.Errorf("retract: %w", err)
	}
	frame := proto.Encode(proto.ChannelReply{Type: proto.TypeRetracted, Channel: channelName, Offset: offset, By: by})
	h.Broadcast(channelName, frame, "")
	h.sendOthersIfShared(channelName, ephemeralEnvelope{Frame: frame})
	return nil
}

// MarkRead stores a user's read position in a channel (it only moves
// forward) and tells the subscribers.
func (h *Hub) MarkRead(ctx context.Context, channelName, clientID, user string, offset uint64) error {
	ch, err := h.acquire(channelName)
	if err != nil {
		return err
	}
	defer h.release(ch)
	ch.mu.Lock()
	_, subscribed := ch.subs[clientID]
	ch.mu.Unlock()
	if !subscribed {
		return ErrNotSubscribed
	}
	if err := h.prepare(ch); err != nil {
		return err
	}
	ch.mu.Lock()
	last := ch.delivered
	ch.mu.Unlock()
	if offset > last {
		return fmt.Errorf("read %s offset %d, last is %d: %w", channelName, offset, last, ErrBadOffset)
	}
	receipts, err := h.cfg.Receipts.Receipts(channelName)
	if err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	if receipts[user] >= offset {
		return nil // receipts only move forward; nothing to announce
	}
	if err := h.cfg.Receipts.SetReceipt(ctx, user, channelName, offset); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	frame := proto.Encode(proto.Receipt{
		Type: proto.TypeReceipt, Channel: channelName, User: user, Offset: offset,
		TS: h.now().UTC().Format(proto.TimeLayout),
	})
	h.Broadcast(channelName, frame, "")
	h.sendOthersIfShared(channelName, ephemeralEnvelope{Frame: frame})
	return nil
}
