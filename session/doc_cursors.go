package session

import (
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// setCursor stores a client's cursor, moved to the durable head, and
// broadcasts it at most once per CursorInterval (the latest wins).
func (s *docSession) setCursor(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	v := *r.version
	if v > s.acked && s.park(r, v) {
		return
	}
	if v < 0 || v > s.acked {
		r.fail(fmt.Errorf("cursor on %s at v%d, head is v%d: %w", s.id, v, s.acked, ErrFutureVersion))
		return
	}
	if len(r.ranges) > 100 {
		r.fail(fmt.Errorf("%w: at most 100 ranges", ErrBadCursor))
		return
	}
	ranges := slices.Clone(r.ranges)
	if ranges == nil {
		ranges = []ot.Selection{}
	}
	if v < s.acked {
		recs, err := s.opsBetween(v, s.acked)
		if err != nil {
			r.fail(err)
			return
		}
		for _, rec := range recs {
			ranges = transformSelections(rec.Op, ranges, rec.ClientID == m.client.Sub.ClientID())
		}
	}
	// Clamp into the durable text, which is what the others have seen.
	n := s.durableLen()
	for i := range ranges {
		ranges[i].Anchor = min(max(ranges[i].Anchor, 0), n)
		ranges[i].Head = min(max(ranges[i].Head, 0), n)
	}
	m.cursor = ranges
	interval := s.docs.cfg.CursorInterval
	now := s.docs.cfg.Now()
	if now.Sub(m.lastCursor) >= interval {
		s.sendCursor(m)
		return
	}
	if !m.pending {
		m.pending = true
		s.cursorDue.Reset(interval - now.Sub(m.lastCursor))
	}
}

// durableLen is the length of the text at the durable head: the in-memory
// length minus what the in-flight ops changed.
func (s *docSession) durableLen() int {
	n := s.doc.Len()
	for v := s.acked; v < s.doc.Version(); v++ {
		n -= s.recent[v-s.recent[0].Version].Op.Delta()
	}
	return n
}

func (s *docSession) sendCursor(m *docMember) {
	m.pending = false
	m.lastCursor = s.docs.cfg.Now()
	cid := m.client.Sub.ClientID()
	user := m.client.User
	frame := proto.Encode(proto.Cursor{Type: proto.TypeCursor, Doc: s.id, Version: s.acked,
		ClientID: cid, User: &user, Ranges: m.cursor})
	s.broadcast(frame, cid)
	s.publishCursor(frame)
}

// flushCursors broadcasts the coalesced cursors that are due.
func (s *docSession) flushCursors() {
	interval := s.docs.cfg.CursorInterval
	now := s.docs.cfg.Now()
	var next time.Duration
	for _, m := range s.members {
		if !m.pending {
			continue
		}
		if wait := interval - now.Sub(m.lastCursor); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		s.sendCursor(m)
	}
	if next > 0 {
		s.cursorDue.Reset(next)
	}
}

func transformSelections(op ot.Op, sel []ot.Selection, own bool) []ot.Selection {
	out := make([]ot.Selection, len(sel))
	for i, r := range sel {
		out[i] = ot.TransformSelection(op, r, own)
	}
	return out
}

// cursorFrames lists the other members' cursors for a snapshot.
func (s *docSession) cursorFrames(self string) []proto.Cursor {
	out := []proto.Cursor{}
	for cid, m := range s.members {
		if cid != self && m.cursor != nil {
			u := m.client.User
			out = append(out, proto.Cursor{Doc: s.id, Version: s.acked, ClientID: cid, User: &u, Ranges: m.cursor})
		}
	}
	if s.cl != nil {
		for cid, rm := range s.cl.remote {
			if cid != self && rm.cursor != nil {
				u := rm.user
				out = append(out, proto.Cursor{Doc: s.id, Version: s.acked, ClientID: cid, User: &u, Ranges: rm.cursor})
			}
		}
	}
	return out
}
