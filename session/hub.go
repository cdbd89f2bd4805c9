package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/internal/proto"
)

// Errors the hub returns; the web layer maps them to wire codes.
var (
	// ErrClosed: the hub is shut down.
	ErrClosed = errors.New("session: closed")
	// ErrNotSubscribed: a presence update or read receipt on a channel the
	// connection has not subscribed to.
	ErrNotSubscribed = errors.New("session: not subscribed")
	// ErrNotFound: no such message (retract of an unknown offset).
	ErrNotFound = errors.New("session: not found")
	// ErrForbidden: retracting someone else's message.
	ErrForbidden = errors.New("session: forbidden")
	// ErrBadOffset: a read receipt past the channel's last offset.
	ErrBadOffset = errors.New("session: offset past the end of the channel")
	// ErrTooLarge: a message's data over its namespace's MaxPayload.
	ErrTooLarge = errors.New("session: payload too large")
	// ErrReserved: a channel in a reserved namespace (doc:) used as a channel.
	ErrReserved = errors.New("session: reserved namespace")
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
	// RecoverBytes caps the data one subscribe recovers, so that the
	// subscribed frame fits a connection's send queue; past it the newest
	// messages that fit are sent with recovered false. By default 1 MiB.
	RecoverBytes int
	// CountInterval is how often count-only channels announce their member
	// count. By default 5 * time.Second.
	CountInterval time.Duration
	Logger        zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
	// Metrics counts published messages; nil makes a private set.
	Metrics *metrics.Metrics
	// Notifier hears of joins, leaves and mentions; nil: nobody.
	Notifier Notifier
}

// Hub owns the channels: their subscribers, presence and publish order. It
// is safe for concurrent use. Lock order: channel.seq, then Hub.mu, then
// channel.mu; a channel's locks are never held while taking another
// channel's.
type Hub struct {
	cfg HubConfig
	log zerolog.Logger
	now func() time.Time

	mu       sync.Mutex          // guards channels and closed
	channels map[string]*channel // channels with subscribers or work in flight
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup // background goroutines: count ticker, mention workers
}

// channel is one live channel.
type channel struct {
	name string
	ns   *Namespace

	// seq serialises offset assignment with submission to storage, so that
	// offsets are submitted in order. It is taken before mu and never by a
	// completion, which may run inline when storage is closed.
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
	epoch     string
	refs      int // calls and publishes in flight; see Hub.release
	subs      map[string]*subscription
	members   int // subscriptions listed in presence
	counted   int // member count last announced (count mode)
}

type subscription struct {
	sub          Subscriber
	member       proto.Member
	present      bool // listed in presence
	seesPresence bool
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
	if cfg.CountInterval <= 0 {
		cfg.CountInterval = 5 * time.Second
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
	h.wg.Add(1)
	go h.countLoop()
	return h
}

// Close stops the hub's background work and waits for it. Publishes already
// submitted complete; new calls fail with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.stop)
	h.wg.Wait()
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

// loadLocked reads the channel's last offset and epoch from storage the
// first time, or again after a failed append. Must be called with ch.mu held.
func (h *Hub) loadLocked(ch *channel) error {
	if ch.loaded && !ch.broken {
		return nil
	}
	last, epoch, err := h.cfg.History.ChannelState(ch.name)
	if err != nil {
		return fmt.Errorf("load channel %s: %w", ch.name, err)
	}
	ch.last, ch.delivered, ch.epoch, ch.loaded, ch.broken = last, last, epoch, true, false
	return nil
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
}

// Subscribe adds a subscriber to a channel and queues its subscribed frame
// (with recovered messages, members and receipts) before any live message,
// so the subscriber sees every offset once and in order. Subscribing again
// on the same connection re-sends subscribed (recovering from Since again)
// and changes nothing else.
func (h *Hub) Subscribe(r SubscribeRequest) error {
	ch, err := h.acquire(r.Channel)
	if err != nil {
		return err
	}
	defer h.release(ch)
	if ch.ns.Reserved {
		return fmt.Errorf("subscribe %s: %w", r.Channel, ErrReserved)
	}
	receipts, err := h.cfg.Receipts.Receipts(r.Channel)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.Channel, err)
	}
	if receipts == nil {
		receipts = map[string]uint64{}
	}

	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := h.loadLocked(ch); err != nil {
		return err
	}
	reply := proto.Subscribed{
		ID: r.ID, Type: proto.TypeSubscribed, Channel: r.Channel,
		Offset: ch.delivered, Epoch: ch.epoch, Messages: []proto.Message{}, Receipts: receipts,
	}
	if r.Since != nil {
		msgs, recovered, err := h.recoverLocked(ch, *r.Since)
		if err != nil {
			return err
		}
		reply.Messages, reply.Recovered = msgs, recovered
	}
	old, again := ch.subs[r.Sub.ClientID()]
	s := &subscription{sub: r.Sub, member: r.Member, seesPresence: r.Presence && ch.ns.Presence != PresenceOff}
	if again {
		s = old
	}
	switch ch.ns.Presence {
	case PresenceFull:
		if s.seesPresence {
			reply.Members = make([]proto.Member, 0, ch.members+1)
			for _, o := range ch.subs {
				if o.present && o != s {
					reply.Members = append(reply.Members, o.member)
				}
			}
			reply.Members = append(reply.Members, s.member)
		}
	case PresenceCount:
		n := ch.members
		if !again && s.seesPresence {
			n++
		}
		reply.MemberCount = &n
	}
	r.Sub.Send(proto.Encode(reply))
	if again {
		return nil
	}
	ch.subs[r.Sub.ClientID()] = s
	notify(h.cfg.Notifier, Event{Type: EventChannelJoined, Time: h.now(), Channel: ch.name, User: r.Member.User.ID, ClientID: r.Sub.ClientID()})
	if s.seesPresence {
		s.present = true
		ch.members++
		if ch.ns.Presence == PresenceFull {
			h.presenceLocked(ch, "join", s, s.sub.ClientID())
		}
	}
	return nil
}

// recoverLocked returns the messages after since and whether that is all of
// them. When the epoch matches but the oldest wanted messages are gone, it
// returns what is left with recovered false. Must be called with ch.mu held.
func (h *Hub) recoverLocked(ch *channel, since proto.Since) ([]proto.Message, bool, error) {
	msgs := []proto.Message{}
	// A client that saw nothing yet (offset 0) recovers in any epoch; so
	// does one whose channel had no epoch yet when it last looked.
	sameEpoch := since.Epoch == ch.epoch || since.Offset == 0 || since.Epoch == ""
	if !sameEpoch || since.Offset > ch.delivered {
		return msgs, false, nil
	}
	if since.Offset == ch.delivered {
		return msgs, true, nil
	}
	limit := int(min(ch.delivered-since.Offset, uint64(h.cfg.RecoverLimit)))
	stored, err := h.cfg.History.MessagesSince(ch.name, since.Offset, limit)
	if err != nil {
		return nil, false, fmt.Errorf("recover %s: %w", ch.name, err)
	}
	for i, m := range stored {
		if m.Offset > ch.delivered {
			stored = stored[:i] // committed, but its completion (live delivery) is still to come
			break
		}
	}
	recovered := len(stored) > 0 && stored[0].Offset == since.Offset+1 &&
		stored[len(stored)-1].Offset == ch.delivered
	// One subscribed frame must fit a connection's send queue: past the
	// byte budget, keep the newest messages and say recovered false.
	budget, first := h.cfg.RecoverBytes, len(stored)
	for first > 0 && budget-(len(stored[first-1].Data)+200) >= 0 {
		first--
		budget -= len(stored[first].Data) + 200
	}
	if first > 0 {
		recovered = false
	}
	for _, m := range stored[first:] {
		msgs = append(msgs, h.messageFrame(m, ""))
	}
	return msgs, recovered, nil
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

// presenceLocked sends a join, update or leave of s to every other
// subscriber that sees presence. Must be called with ch.mu held.
func (h *Hub) presenceLocked(ch *channel, event string, s *subscription, skip string) {
	m := s.member
	if event == "leave" {
		m.State = nil
	}
	frame := proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: ch.name, Event: event, Member: &m})
	for id, o := range ch.subs {
		if id != skip && o.seesPresence {
			o.sub.Send(frame)
		}
	}
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
		delete(ch.subs, clientID)
		notify(h.cfg.Notifier, Event{Type: EventChannelLeft, Time: h.now(), Channel: ch.name, User: s.member.User.ID, ClientID: clientID})
		if s.present {
			ch.members--
			if ch.ns.Presence == PresenceFull {
				h.presenceLocked(ch, "leave", s, clientID)
			}
		}
	}
	ch.mu.Unlock()
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

// SetPresence replaces a subscriber's presence state and announces the
// update (never as a leave and a join).
func (h *Hub) SetPresence(channelName, clientID string, state json.RawMessage) error {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return ErrNotSubscribed
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	s, ok := ch.subs[clientID]
	if !ok || !s.present {
		return ErrNotSubscribed
	}
	s.member.State = state
	if ch.ns.Presence == PresenceFull {
		h.presenceLocked(ch, "update", s, "")
	}
	return nil
}

// Members returns who is present in a channel (nil for an idle channel).
func (h *Hub) Members(channelName string) []proto.Member {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return []proto.Member{}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]proto.Member, 0, ch.members)
	for _, s := range ch.subs {
		if s.present {
			out = append(out, s.member)
		}
	}
	return out
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
	ch.seq.Lock()
	defer ch.seq.Unlock()
	ch.mu.Lock()
	if p.Ephemeral || ch.ns.HistorySize == 0 {
		m := doc.Message{Channel: p.Channel, Event: p.Event, Data: p.Data, User: p.From.User, ClientID: p.From.ClientID, Time: now}
		h.deliverLocked(ch, m, p.SkipClient)
		ch.mu.Unlock()
		h.release(ch)
		done(0, nil)
		return
	}
	if err := h.loadLocked(ch); err != nil {
		ch.mu.Unlock()
		h.release(ch)
		done(0, err)
		return
	}
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
			if ch.epoch == "" {
				if _, epoch, err := h.cfg.History.ChannelState(ch.name); err == nil {
					ch.epoch = epoch
				}
			}
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
			h.notifyMentions(m, p.FromName)
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
			s.sub.Send(frame)
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
			s.sub.Send(frame)
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
	h.Broadcast(channelName, proto.Encode(proto.ChannelReply{Type: proto.TypeRetracted, Channel: channelName, Offset: offset, By: by}), "")
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
	err = h.loadLocked(ch)
	last := ch.delivered
	ch.mu.Unlock()
	switch {
	case !subscribed:
		return ErrNotSubscribed
	case err != nil:
		return err
	case offset > last:
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
	h.Broadcast(channelName, proto.Encode(proto.Receipt{
		Type: proto.TypeReceipt, Channel: channelName, User: user, Offset: offset,
		TS: h.now().UTC().Format(proto.TimeLayout),
	}), "")
	return nil
}

// countLoop announces member counts of count-only channels.
func (h *Hub) countLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.CountInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		var chans []*channel
		for _, ch := range h.channels {
			if ch.ns.Presence == PresenceCount {
				chans = append(chans, ch)
			}
		}
		h.mu.Unlock()
		for _, ch := range chans {
			ch.mu.Lock()
			if ch.members != ch.counted {
				ch.counted = ch.members
				n := ch.members
				frame := proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: ch.name, Event: "count", Count: &n})
				for _, s := range ch.subs {
					if s.seesPresence {
						s.sub.Send(frame)
					}
				}
			}
			ch.mu.Unlock()
		}
	}
}

// Mentions returns the @names in text: `@` followed by letters, digits and
// `_.-`, at the start or after a character that is not part of a name.
func Mentions(text string) []string {
	var out []string
	isName := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-", r) }
	prev := ' '
	for i, r := range text {
		if r == '@' && !isName(prev) {
			rest := text[i+1:]
			end := strings.IndexFunc(rest, func(r rune) bool { return !isName(r) })
			if end < 0 {
				end = len(rest)
			}
			name := strings.TrimRight(rest[:end], ".-") // a sentence's full stop is not part of it
			if name != "" {
				out = append(out, name)
			}
		}
		prev = r
	}
	return out
}

// notifyMentions publishes a "mention" on user:<id> for each known user a
// message's data.text mentions (by id or by name), in the background.
func (h *Hub) notifyMentions(m doc.Message, fromName string) {
	var body struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Data, &body) != nil || !strings.Contains(body.Text, "@") {
		return
	}
	names := Mentions(body.Text)
	if len(names) == 0 {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		h.NotifyMentions(names, m.Channel, m.Offset, m.User, fromName, body.Text)
	}()
}

// NotifyMentions publishes a "mention" event on user:<id> for each of names
// that is a known user's id or name, except the author. Documents' comments
// use it too (channel is then doc:<id>).
func (h *Hub) NotifyMentions(names []string, channel string, offset uint64, fromUser, fromName, text string) {
	seen := map[string]bool{fromUser: true}
	if len(text) > 280 {
		text = text[:280]
	}
	for _, name := range names {
		u, ok, err := h.cfg.Users.GetUser(name)
		if err == nil && !ok {
			u, ok, err = h.cfg.Users.UserByName(name)
		}
		if err != nil {
			h.log.Error().Err(err).Msg("mention lookup")
			continue
		}
		if !ok || seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		notify(h.cfg.Notifier, Event{Type: EventMention, Time: h.now(), Channel: channel, User: u.ID,
			Data: map[string]any{"offset": offset, "text": text, "from": fromUser}})
		data, _ := json.Marshal(map[string]any{
			"channel": channel, "offset": offset, "text": text,
			"from": map[string]string{"id": fromUser, "name": fromName},
		})
		h.Publish(Publication{Channel: "user:" + u.ID, Event: "mention", Data: data, From: proto.From{User: fromUser}},
			func(_ uint64, err error) {
				if err != nil && !errors.Is(err, ErrClosed) {
					h.log.Error().Err(err).Str("user", u.ID).Msg("mention notification")
				}
			})
	}
}
