package session

import "time"

// Held deliveries: a document with a broadcast window (DocsConfig.
// BroadcastWindow) and at least BroadcastMembers members keeps the frames
// of the ops that become durable in each member's held list, and sends
// them all once per window (deliverDue), each member's in one call. In a
// big room whose editors type at a human pace every commit carries an op
// or two, and each is otherwise a write to every member.
//
// Each member's frames stay in order by these rules:
//   - Only a round delivered from the run loop's wake (drainDurable with
//     holding set) starts or joins a window.
//   - While a window runs, a broadcast (broadcast: cursors, mostly) joins
//     the held lists too.
//   - An op or a cursor request sends its requester's held frames before
//     it is handled: its handling answers the requester alone, and
//     anything it sends the others is a broadcast.
//   - Anything else the document's goroutine does that may send a frame
//     (another request, a remote event, a failure, an unload) sends
//     everything held first (sendHeld).

// DefaultBroadcastMembers is the smallest document a broadcast window
// applies to by default.
const DefaultBroadcastMembers = 50

// maxHeldOps bounds the ops held at once: a round that would pass it
// sends what is held first.
const maxHeldOps = 512

// windowed reports whether a round delivered now is held.
func (s *docSession) windowed() bool {
	cfg := &s.docs.cfg
	return s.holding && s.cl == nil && cfg.BroadcastWindow > 0 && len(s.members) >= cfg.BroadcastMembers
}

// holds reports whether a round of n ops being delivered is to be held,
// sending what is held first when the round would pass maxHeldOps.
func (s *docSession) holds(n int) bool {
	if !s.windowed() {
		return false
	}
	if s.heldOps+n > maxHeldOps {
		s.sendHeld()
	}
	return true
}

// held counts a held round of n ops, and starts the window if it is not
// running.
func (s *docSession) held(n int) {
	if s.heldOps == 0 {
		s.deliverDue.Reset(s.docs.cfg.BroadcastWindow)
	}
	s.heldOps += n
}

// sendHeldBefore sends what is held before r is handled: the requester's
// alone for an op or a cursor, everything for anything else.
func (s *docSession) sendHeldBefore(r *docRequest) {
	if s.heldOps == 0 {
		return
	}
	switch r.kind {
	case reqOp, reqCursor:
		if m := s.members[r.client.Sub.ClientID()]; m != nil {
			sendMemberHeld(m)
		}
	default:
		s.sendHeld()
	}
}

// sendMemberHeld sends what is held for m.
func sendMemberHeld(m *docMember) {
	if len(m.held) == 0 {
		return
	}
	sendFrames(m.client.Sub, m.held)
	clear(m.held)
	m.held = m.held[:0]
}

// sendHeld sends every member what is held for it.
func (s *docSession) sendHeld() {
	if s.heldOps == 0 {
		return
	}
	s.heldOps = 0
	s.deliverDue.Stop()
	for _, m := range s.members {
		sendMemberHeld(m)
	}
}

// newDeliverTimer returns the stopped timer of the broadcast window.
func newDeliverTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
