package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/proto"
)

// Message is a channel message as a handler gets it.
type Message struct {
	Channel string
	// Offset is the message's position in its channel, from 1; 0 for an
	// ephemeral message.
	Offset uint64
	Event  string
	// Data is the message's JSON, nil when it has none (or was retracted).
	Data json.RawMessage
	// From says who published it; zero for the server.
	From proto.From
	Time time.Time
	// Retracted marks a tombstone met in recovered history: the message was
	// retracted and its data is gone.
	Retracted bool
	// Recovered marks a message that came from the channel's history (the
	// messages a subscribe recovered) rather than live.
	Recovered bool
}

// Decode unmarshals the message's data into v.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }

// PresenceEvent is a change in who is in a channel.
type PresenceEvent struct {
	Channel string
	// Event is "join", "update", "leave", (count-only namespaces and
	// channels in count mode) "count", or "mode". A batch of changes from
	// the server reaches the callback as one event per change.
	Event string
	// Member is who joined, updated or left (zero for count).
	Member proto.Member
	// Count is the member count of a count or mode event, and after a
	// batch (or 0 when the server did not say).
	Count int
	// Mode is "count" or "full" in a mode event: the channel switched
	// itself to count mode (members are not listed any more) or back.
	Mode string
}

// Receipt is a user's read position in a channel.
type Receipt struct {
	Channel string
	User    string
	Offset  uint64
	Time    time.Time
}

// Retraction says that the message at Offset was retracted by By.
type Retraction struct {
	Channel string
	Offset  uint64
	By      string
}

// SubscribedEvent describes a (re)subscription the server confirmed.
type SubscribedEvent struct {
	Channel string
	// Offset is the channel's latest offset and Epoch its epoch.
	Offset uint64
	Epoch  string
	// Resumed says the client asked to recover from a position: a
	// resubscription after a reconnect, or a first subscribe WithSince.
	Resumed bool
	// Recovered says every message missed since that position came back
	// (they reach the handler right after this event). When Resumed and not
	// Recovered, messages were lost (too old, or the channel's history was
	// reset): reload what you need from elsewhere.
	Recovered bool
	// Members lists who is present (full presence), MemberCount how many
	// (any presence).
	Members     []proto.Member
	MemberCount int
	// Receipts maps user ids to their read offsets.
	Receipts map[string]uint64
}

// SubscribeOption sets an optional part of a subscription.
type SubscribeOption func(*subOptions)

type subOptions struct {
	memberList     bool // read the whole member list of a large room
	since          *proto.Since
	onPresence     func(PresenceEvent)
	onReceipt      func(Receipt)
	onRetract      func(Retraction)
	onSubscribed   func(SubscribedEvent)
	onUnsubscribed func(error)
}

// WithSince subscribes from a position seen earlier (say, by a previous
// process): the messages after it are recovered and reach the handler
// first. SubscribedEvent.Recovered tells whether all of them did.
func WithSince(offset uint64, epoch string) SubscribeOption {
	return func(o *subOptions) { o.since = &proto.Since{Offset: offset, Epoch: epoch} }
}

// WithoutMemberList keeps only the first page of a large room's members
// (what subscribed carries) and the changes after it: Members is then
// partial and MemberCount exact. By default the subscription reads the
// rest of the list in the background (members requests), which costs a
// room of N members N times N/100 requests when everyone joins.
func WithoutMemberList() SubscribeOption {
	return func(o *subOptions) { o.memberList = false }
}

// OnPresence sets the callback for presence events.
func OnPresence(f func(PresenceEvent)) SubscribeOption {
	return func(o *subOptions) { o.onPresence = f }
}

// OnReceipt sets the callback for read receipts.
func OnReceipt(f func(Receipt)) SubscribeOption {
	return func(o *subOptions) { o.onReceipt = f }
}

// OnRetract sets the callback for retractions of messages.
func OnRetract(f func(Retraction)) SubscribeOption {
	return func(o *subOptions) { o.onRetract = f }
}

// OnSubscribed sets the callback called each time the server confirms the
// subscription: once for Subscribe and again after every reconnection,
// before the recovered messages reach the handler.
func OnSubscribed(f func(SubscribedEvent)) SubscribeOption {
	return func(o *subOptions) { o.onSubscribed = f }
}

// OnUnsubscribed sets the callback called when the server ends the
// subscription after Subscribe returned: a refresh took the grant away
// (an *Error with code forbidden), or a resubscription failed.
func OnUnsubscribed(f func(error)) SubscribeOption {
	return func(o *subOptions) { o.onUnsubscribed = f }
}

// Subscription is a client's subscription to one channel. It survives
// reconnections; it ends with Unsubscribe, Client.Close, or when the server
// ends it. Its methods are safe for concurrent use.
type Subscription struct {
	c       *Client
	channel string
	handler func(Message)
	opts    subOptions
	ready   chan struct{} // closed when the server first confirms
	done    chan struct{} // closed when the subscription ends

	mu          sync.Mutex // guards every field below
	last        uint64     // last offset seen
	epoch       string
	positioned  bool // last and epoch mean something: resubscribe with since
	confirmed   bool
	recovered   bool
	members     map[string]proto.Member
	memberCount int
	receipts    map[string]uint64
	ended       bool
	err         error
	// partial says members lists only part of a large room (subscribed
	// carried its first page): memberCount then comes from the server.
	partial bool
	// fetching: a goroutine reads the member list; fetchWanted: read it
	// (again).
	fetching, fetchWanted bool
	// data is what the application's subscribe hook attached to the
	// latest subscribed frame (rpc.go).
	data json.RawMessage
}

func newSubscription(c *Client, channel string, handler func(Message), opts []SubscribeOption) *Subscription {
	if handler == nil {
		handler = func(Message) {}
	}
	s := &Subscription{
		c: c, channel: channel, handler: handler,
		ready: make(chan struct{}), done: make(chan struct{}),
		members: map[string]proto.Member{}, receipts: map[string]uint64{},
	}
	s.opts.memberList = true
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.since != nil {
		s.last, s.epoch, s.positioned = s.opts.since.Offset, s.opts.since.Epoch, true
	}
	return s
}

// Channel returns the channel's name.
func (s *Subscription) Channel() string { return s.channel }

// Position returns the last offset the subscription saw and its epoch: what
// WithSince takes to resume later.
func (s *Subscription) Position() (offset uint64, epoch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.epoch
}

// Recovered reports whether the latest (re)subscription recovered
// everything missed; see SubscribedEvent.Recovered.
func (s *Subscription) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// Members returns who is present in the channel, ordered by client id. In a
// room larger than a page (see FetchMembers) it lists the members this
// subscription has heard of so far: the first page and later changes.
func (s *Subscription) Members() []proto.Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.members))
	slices.SortFunc(out, func(a, b proto.Member) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// FetchMembers reads the channel's whole member list from the server, a
// page at a time, and returns it; Members lists everyone from then on.
// Changes that happen meanwhile are applied in order, so the list is
// exact. In a count-only channel it returns nil (MemberCount has the
// count).
func (s *Subscription) FetchMembers(ctx context.Context) ([]proto.Member, error) {
	after := ""
	for {
		if !s.live() {
			return nil, s.endedErr()
		}
		f, err := s.c.request(ctx, &proto.Request{Type: proto.TypeMembers, Channel: s.channel, After: after})
		if err != nil {
			return nil, err
		}
		page, ok := f.body.(*proto.Members)
		if !ok {
			return nil, fmt.Errorf("client: members of %s answered with %s", s.channel, f.Type)
		}
		if page.Mode == "count" {
			return nil, nil
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	s.mu.Lock()
	s.partial = false
	s.memberCount = len(s.members)
	s.mu.Unlock()
	return s.Members(), nil
}

// MemberCount returns how many are present.
func (s *Subscription) MemberCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memberCount
}

// Receipts returns the users' read offsets as last reported.
func (s *Subscription) Receipts() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.receipts)
}

// Done is closed when the subscription ends; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended (ErrUnsubscribed after
// Unsubscribe, ErrClosed after Client.Close, an *Error when the server
// ended it), or nil while it lasts.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Publish publishes on the subscription's channel; see Client.Publish.
func (s *Subscription) Publish(ctx context.Context, event string, data any, opts PublishOptions) (uint64, error) {
	return s.c.Publish(ctx, s.channel, event, data, opts)
}

// SetPresence replaces this connection's presence state in the channel (a
// JSON object; nil means {}) and returns once the server has applied it.
// The state is per connection: after a reconnection it starts empty again.
func (s *Subscription) SetPresence(ctx context.Context, state any) error {
	if !s.live() {
		return s.endedErr()
	}
	raw := json.RawMessage("{}")
	if state != nil {
		b, err := json.Marshal(state)
		if err != nil {
			return fmt.Errorf("client: presence state: %w", err)
		}
		raw = b
	}
	return s.c.confirm(ctx, &proto.Request{Type: proto.TypePresence, Channel: s.channel, State: raw})
}

// MarkRead records that this user has read the channel up to offset (the
// stored receipt only moves forward) and returns once the server has
// stored it.
func (s *Subscription) MarkRead(ctx context.Context, offset uint64) error {
	if !s.live() {
		return s.endedErr()
	}
	return s.c.confirm(ctx, &proto.Request{Type: proto.TypeRead, Channel: s.channel, Offset: offset})
}

// Retract retracts the message at offset (one's own, or any as an admin).
func (s *Subscription) Retract(ctx context.Context, offset uint64) error {
	_, err := s.c.request(ctx, &proto.Request{Type: proto.TypeRetract, Channel: s.channel, Offset: offset})
	return err
}

// Unsubscribe ends the subscription: its callbacks are not called any more
// once it returns. It waits for the server's answer unless the client is
// not connected (the server then has forgotten the subscription already).
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
	connected := c.conn != nil
	c.mu.Unlock()
	if !s.end(ErrUnsubscribed) {
		return nil
	}
	if !connected {
		return nil
	}
	_, err := c.request(ctx, &proto.Request{Type: proto.TypeUnsubscribe, Channel: s.channel})
	if errors.Is(err, ErrDisconnected) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// end ends the subscription with err; it reports whether it was live.
func (s *Subscription) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended, s.err = true, err
	close(s.done)
	return true
}

func (s *Subscription) live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

func (s *Subscription) endedErr() error {
	if err := s.Err(); err != nil {
		return err
	}
	return ErrUnsubscribed
}

func (s *Subscription) isConfirmed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// applySubscribed takes the server's subscribed frame on the read
// goroutine: it queues the recovered messages not seen yet, then moves the
// position to the channel's latest offset, so that live messages continue
// from there. It reports false when the subscription has ended meanwhile.
func (s *Subscription) applySubscribed(f *proto.Subscribed, resumed bool) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	sameEpoch := !s.positioned || s.epoch == "" || f.Epoch == s.epoch
	msgs := make([]Message, 0, len(f.Messages))
	for _, m := range f.Messages {
		if m.Offset != 0 && s.positioned && sameEpoch && m.Offset <= s.last {
			continue // seen before
		}
		msgs = append(msgs, toMessage(m, true))
	}
	if n := len(msgs); n > 0 && msgs[n-1].Offset > f.Offset {
		f.Offset = msgs[n-1].Offset // never step back behind what was delivered
	}
	s.last, s.epoch, s.positioned, s.recovered = f.Offset, f.Epoch, true, f.Recovered
	s.data = f.Data
	clear(s.members)
	for _, m := range f.Members {
		s.members[m.ClientID] = m
	}
	s.memberCount = len(f.Members)
	if f.MemberCount != nil {
		s.memberCount = *f.MemberCount
	}
	s.partial = f.MembersNext != ""
	fetch := s.partial && s.opts.memberList
	s.receipts = maps.Clone(f.Receipts)
	if s.receipts == nil {
		s.receipts = map[string]uint64{}
	}
	first := !s.confirmed
	s.confirmed = true
	ev := SubscribedEvent{
		Channel: s.channel, Offset: f.Offset, Epoch: f.Epoch, Resumed: resumed, Recovered: f.Recovered,
		Members: slices.Clone(f.Members), MemberCount: s.memberCount, Receipts: maps.Clone(s.receipts),
	}
	s.mu.Unlock()
	s.c.cb.push(func() {
		if h := s.opts.onSubscribed; h != nil && s.live() {
			h(ev)
		}
		for _, m := range msgs {
			if !s.live() {
				return
			}
			s.handler(m)
		}
	})
	if first {
		close(s.ready)
	}
	if fetch {
		s.fetchMembersLater()
	}
	return true
}

// onMessage takes a live message on the read goroutine and queues it for
// the handler unless it was seen already.
func (s *Subscription) onMessage(f *proto.Message) {
	s.mu.Lock()
	if s.ended || !s.confirmed {
		s.mu.Unlock()
		return
	}
	if f.Offset != 0 {
		if f.Offset <= s.last {
			s.mu.Unlock()
			return // delivered before (recovered, or a duplicate)
		}
		if f.Offset != s.last+1 {
			s.c.log.Warn().Str("channel", s.channel).Uint64("after", s.last).Uint64("offset", f.Offset).Msg("gap in channel offsets")
		}
		s.last = f.Offset
	}
	s.mu.Unlock()
	m := toMessage(*f, false)
	s.c.cb.push(func() {
		if s.live() {
			s.handler(m)
		}
	})
}

// onPresence applies a presence frame on the read goroutine: a single
// event, a batch of them (the server coalesces a member's changes within
// its batching window, so each is applied as it comes), a count, or a mode
// change (count mode keeps no member list; back in full presence the
// members are read anew, unless WithoutMemberList).
func (s *Subscription) onPresence(f *proto.Presence) {
	self := s.c.ClientID() // c.mu before s.mu
	var evs []PresenceEvent
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	fetch := false
	switch f.Event {
	case "batch":
		for _, e := range f.Events {
			s.applyLocked(e.Event, e.Member)
			if e.Event == "join" && e.Member.ClientID == self {
				continue // our own join: we know
			}
			evs = append(evs, PresenceEvent{Channel: s.channel, Event: e.Event, Member: e.Member})
		}
	case "mode":
		ev := PresenceEvent{Channel: s.channel, Event: f.Event, Mode: f.Mode}
		if f.Count != nil {
			ev.Count = *f.Count
		}
		s.partial = true
		if f.Mode == "count" {
			clear(s.members)
		} else {
			fetch = s.opts.memberList
		}
		evs = append(evs, ev)
	default:
		ev := PresenceEvent{Channel: s.channel, Event: f.Event}
		if f.Member != nil {
			ev.Member = *f.Member
			s.applyLocked(f.Event, *f.Member)
		}
		evs = append(evs, ev)
	}
	if f.Count != nil {
		for i := range evs {
			evs[i].Count = *f.Count
		}
		s.memberCount = *f.Count
	}
	s.mu.Unlock()
	if fetch {
		s.fetchMembersLater()
	}
	if h := s.opts.onPresence; h != nil && len(evs) > 0 {
		s.c.cb.push(func() {
			for _, ev := range evs {
				if !s.live() {
					return
				}
				h(ev)
			}
		})
	}
}

// applyLocked applies one join, update or leave to the member list. While
// the list is partial (a large room), the count comes from the server, or
// moves with joins of members not known and with leaves. Must be called
// with s.mu held.
func (s *Subscription) applyLocked(event string, m proto.Member) {
	_, known := s.members[m.ClientID]
	switch event {
	case "join", "update":
		s.members[m.ClientID] = m
		if s.partial && event == "join" && !known {
			s.memberCount++
		}
	case "leave":
		delete(s.members, m.ClientID)
		if s.partial {
			s.memberCount--
		}
	}
	if !s.partial {
		s.memberCount = len(s.members)
	}
}

// fetchMembersLater reads the whole member list in the background (see
// FetchMembers); asked again while it runs, it reads it once more after.
func (s *Subscription) fetchMembersLater() {
	s.mu.Lock()
	s.fetchWanted = true
	if s.fetching {
		s.mu.Unlock()
		return
	}
	s.fetching = true
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.c.done:
			case <-s.done:
			case <-ctx.Done():
			}
			cancel()
		}()
		for {
			s.mu.Lock()
			if !s.fetchWanted || s.ended {
				s.fetching = false
				s.mu.Unlock()
				return
			}
			s.fetchWanted = false
			s.mu.Unlock()
			if _, err := s.FetchMembers(ctx); err != nil && ctx.Err() == nil {
				s.c.log.Debug().Err(err).Str("channel", s.channel).Msg("reading the member list")
			}
		}
	}()
}

// onMembers applies a page of members on the read goroutine: it replaces
// what the subscription knows of the range of client ids the page covers.
// The server queues the page in order with the presence events, so the
// result is exact for that range.
func (s *Subscription) onMembers(f *proto.Members) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.memberCount = f.Count
	if f.Mode == "count" {
		clear(s.members)
		s.partial = true
		return
	}
	for id := range s.members {
		if id > f.After && (f.Next == "" || id <= f.Next) {
			delete(s.members, id)
		}
	}
	for _, m := range f.Members {
		s.members[m.ClientID] = m
	}
}

func (s *Subscription) onReceipt(f *proto.Receipt) {
	user := f.User
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if f.Offset > s.receipts[user] {
		s.receipts[user] = f.Offset
	}
	s.mu.Unlock()
	if h := s.opts.onReceipt; h != nil {
		r := Receipt{Channel: s.channel, User: user, Offset: f.Offset, Time: parseTime(f.TS)}
		s.c.cb.push(func() {
			if s.live() {
				h(r)
			}
		})
	}
}

func (s *Subscription) onRetracted(f *proto.ChannelReply) {
	if h := s.opts.onRetract; h != nil {
		r := Retraction{Channel: s.channel, Offset: f.Offset, By: f.By}
		s.c.cb.push(func() {
			if s.live() {
				h(r)
			}
		})
	}
}

func toMessage(m proto.Message, recovered bool) Message {
	out := Message{
		Channel: m.Channel, Offset: m.Offset, Event: m.Event, Data: m.Data,
		Time: parseTime(m.TS), Retracted: m.Retracted, Recovered: recovered,
	}
	if m.From != nil {
		out.From = *m.From
	}
	return out
}

func parseTime(ts string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}
	}
	return t
}
