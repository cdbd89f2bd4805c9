package session

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/proto"
)

// Presence: who is in a channel. The members of a channel are its
// subscriptions listed in presence, kept in client id order (channel.order)
// so that a large room's members can be read in pages: subscribed carries
// the first page, members requests the rest (SendMembers). Every page is
// queued under the channel's lock, in order with the presence events, so a
// client that applies events as they come and replaces the range a page
// covers with the page's content ends with the channel's member list.

// memberSize returns the encoded size of m in a list of members.
func memberSize(m proto.Member) int { return len(proto.Encode(m)) + 1 }

// modeLocked returns how the channel tracks presence now. Must be called
// with ch.mu held.
func (h *Hub) modeLocked(ch *channel) PresenceMode {
	if ch.countMode {
		return PresenceCount
	}
	return ch.ns.Presence
}

// countViewerLocked counts s (by delta) among the subscriptions that see
// presence as single events or in batches. Must be called with ch.mu held.
func (ch *channel) countViewerLocked(s *subscription, delta int) {
	switch {
	case !s.seesPresence:
	case s.batches:
		ch.batched += delta
	default:
		ch.singles += delta
	}
}

// joinLocked lists s in presence and announces its join; past the
// namespace's PresenceCountAbove the channel switches to count mode
// instead. Must be called with ch.mu held.
func (h *Hub) joinLocked(ch *channel, s *subscription) {
	s.present = true
	h.announceLocked(ch, s, "join")
	id := s.sub.ClientID()
	i, _ := slices.BinarySearch(ch.order, id)
	ch.order = slices.Insert(ch.order, i, id)
	if h.modeLocked(ch) != PresenceFull {
		return
	}
	if above, _ := ch.ns.countBounds(); above > 0 && len(ch.order) > above {
		h.switchModeLocked(ch, true)
		return
	}
	h.presenceLocked(ch, "join", s, id)
}

// leaveLocked takes s off presence and announces its leave; a channel in
// count mode below the namespace's PresenceCountBelow switches back to full
// presence instead. Must be called with ch.mu held, after s left ch.subs.
func (h *Hub) leaveLocked(ch *channel, s *subscription) {
	s.present = false
	h.announceLocked(ch, s, "leave")
	id := s.sub.ClientID()
	if i, ok := slices.BinarySearch(ch.order, id); ok {
		ch.order = slices.Delete(ch.order, i, i+1)
	}
	switch h.modeLocked(ch) {
	case PresenceFull:
		h.presenceLocked(ch, "leave", s, id)
	case PresenceCount:
		if _, below := ch.ns.countBounds(); ch.countMode && len(ch.order) < below {
			h.switchModeLocked(ch, false)
		}
	}
}

// switchModeLocked moves a full-presence channel to count mode (count
// true) or back, and tells every subscriber that sees presence with a mode
// event carrying the count. Changes waiting for a batch go out first, so
// that they stay in order. Back in full presence, clients read the members
// anew (members requests). Must be called with ch.mu held.
func (h *Hub) switchModeLocked(ch *channel, count bool) {
	h.flushBatchLocked(ch)
	ch.countMode = count
	n := len(ch.order)
	ch.counted = n
	mode := PresenceFull
	if count {
		mode = PresenceCount
	}
	frame := proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: ch.name, Event: "mode", Mode: mode.String(), Count: &n})
	for _, o := range ch.subs {
		if o.seesPresence {
			o.sendLocked(frame)
		}
	}
	h.log.Info().Str("channel", ch.name).Str("mode", mode.String()).Int("members", n).Msg("presence mode switched")
}

// presenceLocked announces a join, update or leave of s: at once as a
// single event to the subscribers that see presence that way (but skip),
// and in the next batch frame to those that asked for batches (the subject
// included). Must be called with ch.mu held.
func (h *Hub) presenceLocked(ch *channel, event string, s *subscription, skip string) {
	m := s.member
	if event == "leave" {
		m.State = nil
	}
	if ch.singles > 0 {
		frame := proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: ch.name, Event: event, Member: &m})
		for id, o := range ch.subs {
			if id != skip && o.seesPresence && !o.batches {
				o.sendLocked(frame)
			}
		}
	}
	if ch.batched > 0 {
		h.queueBatchLocked(ch, proto.PresenceEvent{Event: event, Member: m})
	}
}

// queueBatchLocked adds a change to the channel's next batch frame, where
// a member has at most one entry: the latest change replaces an earlier
// one (a join followed by updates stays a join, with the latest state), so
// applying a batch in order gives each member its latest state. In a quiet
// channel (no batch sent within the window) the batch goes out at once;
// otherwise a timer sends it when the window ends. Must be called with
// ch.mu held.
func (h *Hub) queueBatchLocked(ch *channel, e proto.PresenceEvent) {
	id := e.Member.ClientID
	if i, ok := ch.batchAt[id]; ok {
		if ch.batch[i].Event == "join" && e.Event == "update" {
			e.Event = "join"
		}
		ch.batch[i] = e
	} else {
		if ch.batchAt == nil {
			ch.batchAt = make(map[string]int)
		}
		ch.batchAt[id] = len(ch.batch)
		ch.batch = append(ch.batch, e)
	}
	if ch.batchTimer != nil {
		return
	}
	wait := ch.ns.presenceBatch() - time.Since(ch.batchSent)
	select {
	case <-h.stop:
		wait = 0 // the hub is closing: no timers
	default:
	}
	if wait <= 0 {
		h.flushBatchLocked(ch)
		return
	}
	ch.batchTimer = time.AfterFunc(wait, func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		ch.batchTimer = nil
		h.flushBatchLocked(ch)
	})
}

// flushBatchLocked sends the waiting changes to every subscriber that sees
// presence in batches, as frames of at most a quarter of the frame budget,
// each with the member count. Must be called with ch.mu held.
func (h *Hub) flushBatchLocked(ch *channel) {
	if len(ch.batch) == 0 {
		return
	}
	ch.batchSent = time.Now()
	n := len(ch.order)
	var frames [][]byte
	budget := h.cfg.FrameBudget / 4
	for start := 0; start < len(ch.batch); {
		end, size := start, 0
		for end < len(ch.batch) {
			sz := memberSize(ch.batch[end].Member) + 20
			if end > start && size+sz > budget {
				break
			}
			size += sz
			end++
		}
		frames = append(frames, proto.Encode(proto.Presence{
			Type: proto.TypePresence, Channel: ch.name, Event: "batch", Events: ch.batch[start:end], Count: &n,
		}))
		start = end
	}
	ch.batch = ch.batch[:0]
	clear(ch.batchAt)
	for _, o := range ch.subs {
		if o.seesPresence && o.batches {
			for _, f := range frames {
				o.sendLocked(f)
			}
		}
	}
}

// subscribedMembersLocked fills the presence part of a subscribed frame
// for s: in full presence the first page of members (and, when there are
// more, the count and where the next page starts); in count mode the count.
// It returns the bytes the members take. Must be called with ch.mu held.
func (h *Hub) subscribedMembersLocked(ch *channel, s *subscription, reply *proto.Subscribed) int {
	switch h.modeLocked(ch) {
	case PresenceFull:
		if !s.seesPresence {
			return 0
		}
		members, next, size := h.pageLocked(ch, "", h.cfg.MemberPage)
		reply.Members = members
		if next != "" {
			n := len(ch.order)
			reply.MemberCount, reply.MembersNext = &n, next
		}
		return size
	case PresenceCount:
		n := len(ch.order)
		reply.MemberCount = &n
	}
	return 0
}

// pageLocked returns up to limit members whose client ids sort after
// after, in client id order, within a quarter of the frame budget (at least
// one member); next is the last one's client id when more follow. Must be
// called with ch.mu held.
func (h *Hub) pageLocked(ch *channel, after string, limit int) (members []proto.Member, next string, size int) {
	i, found := slices.BinarySearch(ch.order, after)
	if found {
		i++
	}
	budget := h.cfg.FrameBudget / 4
	members = []proto.Member{}
	for ; i < len(ch.order) && len(members) < limit; i++ {
		m, n := ch.memberLocked(ch.order[i])
		if len(members) > 0 && size+n > budget {
			break
		}
		members = append(members, m)
		size += n
	}
	if i < len(ch.order) && len(members) > 0 {
		next = members[len(members)-1].ClientID
	}
	return members, next, size
}

// MembersRequest asks for a page of a channel's members.
type MembersRequest struct {
	// ID is the request's id, echoed in the answer.
	ID       *int64
	Channel  string
	ClientID string // who asks: a subscriber that sees presence
	// After is the client id the page starts after ("" for the first page);
	// Limit the most members wanted (0 or above the hub's MemberPage: a
	// full page).
	After string
	Limit int
}

// SendMembers queues a page of the channel's members (in client id order)
// for a subscriber that sees presence, in order with its presence events.
// In count mode the page is empty and says so. It fails with
// ErrNotSubscribed when the client is not subscribed with presence.
func (h *Hub) SendMembers(r MembersRequest) error {
	h.mu.Lock()
	ch := h.channels[r.Channel]
	h.mu.Unlock()
	if ch == nil {
		return ErrNotSubscribed
	}
	limit := r.Limit
	if limit <= 0 || limit > h.cfg.MemberPage {
		limit = h.cfg.MemberPage
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	s, ok := ch.subs[r.ClientID]
	if !ok || !s.seesPresence {
		return ErrNotSubscribed
	}
	reply := proto.Members{ID: r.ID, Type: proto.TypeMembers, Channel: r.Channel, After: r.After,
		Members: []proto.Member{}, Count: len(ch.order)}
	if mode := h.modeLocked(ch); mode == PresenceFull {
		reply.Members, reply.Next, _ = h.pageLocked(ch, r.After, limit)
	} else {
		reply.Mode = mode.String()
	}
	s.sendLocked(proto.Encode(reply))
	return nil
}

// SetPresence replaces a subscriber's presence state and announces the
// update (never as a leave and a join). A state that encodes to more than
// the namespace's MaxPresenceState fails with ErrTooLarge and changes
// nothing.
func (h *Hub) SetPresence(channelName, clientID string, state json.RawMessage) error {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return ErrNotSubscribed
	}
	if n, max := len(proto.Encode(state)), ch.ns.maxPresenceState(); n > max {
		return fmt.Errorf("presence in %s: state of %d bytes encoded, at most %d: %w", channelName, n, max, ErrTooLarge)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	s, ok := ch.subs[clientID]
	if !ok || !s.present {
		return ErrNotSubscribed
	}
	s.member.State = state
	s.memberBytes = memberSize(s.member)
	h.announceLocked(ch, s, "update")
	if h.modeLocked(ch) == PresenceFull {
		h.presenceLocked(ch, "update", s, "")
	}
	return nil
}

// Members returns who is present in a channel (empty for an idle channel),
// in client id order.
func (h *Hub) Members(channelName string) []proto.Member {
	h.mu.Lock()
	ch := h.channels[channelName]
	h.mu.Unlock()
	if ch == nil {
		return []proto.Member{}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]proto.Member, 0, len(ch.order))
	for _, id := range ch.order {
		m, _ := ch.memberLocked(id)
		out = append(out, m)
	}
	return out
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
		chans := make([]*channel, 0, len(h.channels))
		for _, ch := range h.channels {
			chans = append(chans, ch)
		}
		h.mu.Unlock()
		for _, ch := range chans {
			ch.mu.Lock()
			if h.modeLocked(ch) == PresenceCount && len(ch.order) != ch.counted {
				ch.counted = len(ch.order)
				n := ch.counted
				frame := proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: ch.name, Event: "count", Count: &n})
				for _, s := range ch.subs {
					if s.seesPresence {
						s.sendLocked(frame)
					}
				}
			}
			ch.mu.Unlock()
		}
	}
}
