package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
)

// Channels in cluster mode: the hub's History is a SharedChannelLog and
// says the channel is shared (every channel but the ones a node keeps to
// itself, like system:stats).
//
// Offsets: a stored publish does not assign the offset; it queues the
// message for the channel's publish worker (the caller never blocks),
// which stores it with PublishMessage, whose compare-and-append on the
// channel's subject gives the next offset, consecutive from 1 across the
// nodes. Local subscribers get messages only from the channel's follower
// (FollowChannel), whichever node stored them, in offset order: so every
// subscriber on every node sees the same offsets in the same order. A
// publisher's done waits until the follower has delivered its message
// here (when the channel has local subscribers), so that, as on a single
// node, a publisher that is subscribed gets the message before the reply
// to its publish. Echo false travels in the stored message (NoEcho).
// @mentions are resolved by the node that stored the message.
//
// While a channel has local subscribers the node follows it: the
// follower (for namespaces that keep history), a subscription to its
// ephemeral subject (ephemeral messages, retraction and receipt notices
// published on another node) and a presence watch (members connected to
// other nodes, listed with the local ones and announced like them). The
// last local subscriber leaving stops all three.

// chanCluster is a channel's cluster state. Every field is guarded by the
// channel's mu, except stops and following, which change under both seq
// and mu.
type chanCluster struct {
	following bool
	stops     []func()
	// remote holds the members connected to other nodes (listed in
	// channel.order too).
	remote map[string]*remoteSub
	// waiters are publishes of this node stored but not yet delivered
	// here.
	waiters []pubWaiter
	// pubq is the queue of the channel's publish worker; publishing says
	// whether it runs.
	pubq       []*sharedPub
	publishing bool
}

// remoteSub is a member connected to another node.
type remoteSub struct {
	member proto.Member
	bytes  int
}

type pubWaiter struct {
	offset uint64
	epoch  string
	done   func(uint64, error)
}

type sharedPub struct {
	msg      doc.Message
	fromName string
	done     func(uint64, error)
}

// ephemeralEnvelope is what a node sends other nodes on a channel's
// ephemeral subject: an ephemeral message, or a frame (a retraction or a
// receipt) to hand to the subscribers as it is.
type ephemeralEnvelope struct {
	Msg   *doc.Message    `json:"m,omitempty"`
	Frame json.RawMessage `json:"f,omitempty"`
}

// memberLocked returns the member listed under client id id, local or
// remote, and its encoded size. Must be called with ch.mu held.
func (ch *channel) memberLocked(id string) (proto.Member, int) {
	if s := ch.subs[id]; s != nil {
		return s.member, s.memberBytes
	}
	if ch.clu != nil {
		if r := ch.clu.remote[id]; r != nil {
			return r.member, r.bytes
		}
	}
	return proto.Member{ClientID: id}, memberSize(proto.Member{ClientID: id})
}

// announceLocked tells the other nodes of a local member's join, update or
// leave. Must be called with ch.mu held (the bus only queues).
func (h *Hub) announceLocked(ch *channel, s *subscription, kind string) {
	if !ch.cluster || h.cfg.Presence == nil {
		return
	}
	id := s.sub.ClientID()
	var err error
	switch kind {
	case "join":
		err = h.cfg.Presence.Join(ch.name, id, proto.Encode(s.member))
	case "update":
		err = h.cfg.Presence.Update(ch.name, id, proto.Encode(s.member))
	default:
		err = h.cfg.Presence.Leave(ch.name, id)
	}
	if err != nil {
		h.log.Warn().Err(err).Str("channel", ch.name).Str("event", kind).Msg("presence to other nodes")
	}
}

// followSeqLocked starts following the channel on other nodes, if it does
// not yet. Must be called with ch.seq held, after prepare.
func (h *Hub) followSeqLocked(ch *channel) error {
	ch.mu.Lock()
	following, after := ch.clu.following, ch.delivered
	ch.mu.Unlock()
	if following {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stops []func()
	fail := func(err error) error {
		for _, stop := range stops {
			stop()
		}
		return fmt.Errorf("subscribe %s: %w", ch.name, err)
	}
	if ch.ns.HistorySize > 0 {
		stop, err := h.shared.FollowChannel(ctx, ch.name, after, func(m doc.Message, epoch string) { h.followed(ch, m, epoch) },
			func(err error) { h.log.Error().Err(err).Str("channel", ch.name).Msg("following the channel stopped") })
		if err != nil {
			return fail(err)
		}
		stops = append(stops, stop)
	}
	if h.cfg.Ephemeral != nil {
		stop, err := h.cfg.Ephemeral.SubscribeEphemeral(EphemeralChannel, ch.name, func(p []byte) { h.fromOthers(ch, p) })
		if err != nil {
			return fail(err)
		}
		stops = append(stops, stop)
	}
	var members []RemoteMember
	if h.cfg.Presence != nil && ch.ns.Presence != PresenceOff {
		ms, stop, err := h.cfg.Presence.Watch(ch.name, func(ev RemoteEvent) { h.remotePresence(ch, ev) })
		if err != nil {
			return fail(err)
		}
		members = ms
		stops = append(stops, stop)
	}
	ch.mu.Lock()
	ch.clu.following, ch.clu.stops = true, stops
	for _, m := range members {
		h.remoteJoinLocked(ch, m.Info, false)
	}
	ch.mu.Unlock()
	return nil
}

// unfollow stops following a channel that has no local subscriber left;
// its remote members are forgotten (nobody here to tell) and waiting
// publishers answered.
func (h *Hub) unfollow(ch *channel) {
	ch.seq.Lock()
	defer ch.seq.Unlock()
	ch.mu.Lock()
	if len(ch.subs) > 0 || !ch.clu.following {
		ch.mu.Unlock()
		return
	}
	stops := ch.clu.stops
	ch.clu.following, ch.clu.stops = false, nil
	ch.loaded = false // positions go stale unfollowed: the next subscribe reads them anew
	for id := range ch.clu.remote {
		if i, ok := slices.BinarySearch(ch.order, id); ok {
			ch.order = slices.Delete(ch.order, i, i+1)
		}
	}
	clear(ch.clu.remote)
	waiters := ch.clu.waiters
	ch.clu.waiters = nil
	ch.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	for _, w := range waiters {
		w.done(w.offset, nil)
	}
}

// followed takes a message any node stored, from the follower: it is
// delivered once, in offset order; a message of a new epoch (the history
// aged out and restarted) starts the channel's positions anew.
func (h *Hub) followed(ch *channel, m doc.Message, epoch string) {
	ch.mu.Lock()
	if epoch != "" && epoch != ch.epoch {
		h.log.Info().Str("channel", ch.name).Str("epoch", epoch).Msg("channel history restarted in a new epoch")
		ch.epoch, ch.delivered, ch.last = epoch, 0, 0
	}
	if m.Offset <= ch.delivered {
		ch.mu.Unlock()
		return
	}
	ch.delivered = m.Offset
	ch.last = max(ch.last, m.Offset)
	h.deliverLocked(ch, m, m.NoEcho)
	var ready []pubWaiter
	keep := ch.clu.waiters[:0]
	for _, w := range ch.clu.waiters {
		if w.epoch != ch.epoch || w.offset <= ch.delivered {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	ch.clu.waiters = keep
	ch.mu.Unlock()
	for _, w := range ready {
		w.done(w.offset, nil)
	}
}

// publishShared queues a stored publish for the channel's publish worker.
// It takes over the caller's reference on ch, released when done is
// called.
func (h *Hub) publishShared(ch *channel, p Publication, now time.Time, done func(uint64, error)) {
	m := doc.Message{Channel: p.Channel, Event: p.Event, Data: p.Data, User: p.From.User, ClientID: p.From.ClientID,
		Time: now, NoEcho: p.SkipClient}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.release(ch)
		done(0, ErrClosed)
		return
	}
	ch.mu.Lock()
	ch.clu.pubq = append(ch.clu.pubq, &sharedPub{msg: m, fromName: p.FromName, done: done})
	start := !ch.clu.publishing
	ch.clu.publishing = true
	ch.mu.Unlock()
	if start {
		h.pubs.Add(1)
	}
	h.mu.Unlock()
	if start {
		go h.publishWorker(ch)
	}
}

// publishWorker stores a channel's queued publishes one after the other,
// in order, until the queue is empty.
func (h *Hub) publishWorker(ch *channel) {
	defer h.pubs.Done()
	for {
		ch.mu.Lock()
		if len(ch.clu.pubq) == 0 {
			ch.clu.publishing = false
			ch.mu.Unlock()
			return
		}
		p := ch.clu.pubq[0]
		ch.clu.pubq = ch.clu.pubq[1:]
		ch.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		stored, epoch, err := h.shared.PublishMessage(ctx, p.msg)
		cancel()
		if err != nil {
			h.release(ch)
			p.done(0, fmt.Errorf("publish %s: %w", ch.name, err))
			continue
		}
		ch.mu.Lock()
		wait := ch.clu.following && epoch == ch.epoch && stored.Offset > ch.delivered
		if wait {
			ch.clu.waiters = append(ch.clu.waiters, pubWaiter{offset: stored.Offset, epoch: epoch, done: p.done})
		}
		ch.mu.Unlock()
		if !wait {
			p.done(stored.Offset, nil)
		}
		if ch.ns.Mentions {
			h.mentions.queueMessage(stored, p.fromName)
		}
		h.release(ch)
	}
}

// sendOthers sends an envelope to the other nodes following channel.
func (h *Hub) sendOthers(channel string, e ephemeralEnvelope) {
	if h.cfg.Ephemeral == nil {
		return
	}
	data, err := json.Marshal(e)
	if err == nil {
		err = h.cfg.Ephemeral.PublishEphemeral(EphemeralChannel, channel, data)
	}
	if err != nil {
		h.log.Debug().Err(err).Str("channel", channel).Msg("ephemeral to other nodes")
	}
}

// sendOthersIfShared is sendOthers for a channel that is shared.
func (h *Hub) sendOthersIfShared(channel string, e ephemeralEnvelope) {
	if h.shared != nil && h.shared.Shared(channel) {
		h.sendOthers(channel, e)
	}
}

// fromOthers delivers what another node sent on the channel's ephemeral
// subject to the local subscribers.
func (h *Hub) fromOthers(ch *channel, payload []byte) {
	var e ephemeralEnvelope
	if json.Unmarshal(payload, &e) != nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch {
	case e.Msg != nil:
		e.Msg.Offset, e.Msg.NoEcho = 0, ""
		h.deliverLocked(ch, *e.Msg, "")
	case len(e.Frame) > 0:
		for _, s := range ch.subs {
			s.sendLocked(e.Frame)
		}
	}
}

// remotePresence applies a member change on another node.
func (h *Hub) remotePresence(ch *channel, ev RemoteEvent) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !ch.clu.following {
		return
	}
	if ev.Kind == "leave" {
		h.remoteLeaveLocked(ch, ev.Member.ClientID)
		return
	}
	h.remoteJoinLocked(ch, ev.Member.Info, true)
}

// remoteJoinLocked lists (or updates) a member of another node; announce
// tells the local subscribers. Must be called with ch.mu held.
func (h *Hub) remoteJoinLocked(ch *channel, info json.RawMessage, announce bool) {
	var m proto.Member
	if json.Unmarshal(info, &m) != nil || m.ClientID == "" {
		return
	}
	id := m.ClientID
	if _, local := ch.subs[id]; local {
		return
	}
	tmp := &subscription{member: m}
	if r := ch.clu.remote[id]; r != nil {
		r.member, r.bytes = m, memberSize(m)
		if announce && h.modeLocked(ch) == PresenceFull {
			h.presenceLocked(ch, "update", tmp, "")
		}
		return
	}
	ch.clu.remote[id] = &remoteSub{member: m, bytes: memberSize(m)}
	i, _ := slices.BinarySearch(ch.order, id)
	ch.order = slices.Insert(ch.order, i, id)
	if !announce || h.modeLocked(ch) != PresenceFull {
		return
	}
	if above, _ := ch.ns.countBounds(); above > 0 && len(ch.order) > above {
		h.switchModeLocked(ch, true)
		return
	}
	h.presenceLocked(ch, "join", tmp, "")
}

// remoteLeaveLocked takes a member of another node off the channel. Must
// be called with ch.mu held.
func (h *Hub) remoteLeaveLocked(ch *channel, id string) {
	r := ch.clu.remote[id]
	if r == nil {
		return
	}
	delete(ch.clu.remote, id)
	if i, ok := slices.BinarySearch(ch.order, id); ok {
		ch.order = slices.Delete(ch.order, i, i+1)
	}
	switch h.modeLocked(ch) {
	case PresenceFull:
		h.presenceLocked(ch, "leave", &subscription{member: r.member}, "")
	case PresenceCount:
		if _, below := ch.ns.countBounds(); ch.countMode && len(ch.order) < below {
			h.switchModeLocked(ch, false)
		}
	}
}
