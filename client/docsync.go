package client

import (
	"fmt"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// The OT client algorithm (docs/PROTOCOL.md, Documents), run by the read
// goroutine on the frames of one document and by Submit on local edits:
//
//   - At most one op is in flight. Local edits made meanwhile wait in the
//     buffer, composed while the composition fits the server's limits; an
//     edit larger than the limits waits there in pieces that fit them.
//   - An incoming op is applied to the server text as it is, and to the
//     local text after being transformed over the op in flight and then
//     over each buffered op, the incoming op's inserts first (the server
//     applied it first, so it wins ties). The op in flight and the buffer
//     are replaced by their transformed forms, so they stay in step with
//     the server version.
//   - The ack of the op in flight (or an op frame carrying its uid)
//     applies it to the server text and sends the next buffered op.
//   - On a reconnection the document is reopened from its version; the ops
//     missed come back in `opened` and go through the same path, the op in
//     flight among them acting as its ack; an op still in flight is then
//     resent with the same uid, which the server applies at most once.

// docReq is the kind of a document request waiting for its reply.
type docReq uint8

const (
	docOpen docReq = iota + 1
	docOp
	docComment
)

// addPending registers p as a request on conn and returns its id. It
// fails when conn is no longer the live connection (its requests have been
// failed already).
func (c *Client) addPending(conn *wsConn, p *pending) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.conn != conn {
		return 0, false
	}
	id := c.nextID.Add(1)
	p.conn = conn
	if p.reply == nil {
		p.reply = make(chan result, 1)
	}
	c.pending[id] = p
	return id, true
}

// openLocked asks conn for the document: from the version it knows, or a
// snapshot the first time and after the history was lost. The document is
// not open on any connection until the answer.
func (d *Document) openLocked(conn *wsConn, out *outbox) {
	d.gen++
	d.conn = nil
	d.notifyLocked()
	id, ok := d.c.addPending(conn, &pending{doc: d, kind: docOpen, gen: d.gen})
	if !ok {
		return // lost meanwhile: the next connection opens it
	}
	req := proto.Request{ID: &id, Type: proto.TypeOpen, Doc: d.id}
	if d.loaded && !d.reload {
		v := d.version
		req.Version = &v
		req.Epoch = d.epoch // another incarnation's version gets a reset snapshot
	}
	out.add(conn, req)
}

// reopen opens the document on a new connection (attach).
func (d *Document) reopen(conn *wsConn, out *outbox) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ended {
		d.openLocked(conn, out)
	}
}

// lostConn records that conn is gone.
func (d *Document) lostConn(conn *wsConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == conn {
		d.conn = nil
	}
	d.notifyLocked()
}

// onReply handles the answer to a document request on the read goroutine,
// before any later frame.
func (d *Document) onReply(conn *wsConn, p *pending, f *inbound) {
	var out outbox
	d.mu.Lock()
	if !d.ended {
		switch p.kind {
		case docOpen:
			if p.gen == d.gen {
				d.onOpenReplyLocked(conn, f, &out)
			}
		case docOp:
			if p.gen == d.gen && d.conn == conn {
				d.onOpReplyLocked(conn, p, f, &out)
			} // else stale: the op goes again after the reopen
		case docComment:
			if cf, ok := f.body.(*proto.CommentFrame); ok {
				d.applyCommentLocked(cf.Action, cf.Comment)
			}
		}
	}
	d.mu.Unlock()
	out.write()
}

// onPush handles a frame the server pushed about the document.
func (d *Document) onPush(conn *wsConn, f *inbound) {
	var out outbox
	d.mu.Lock()
	if !d.ended {
		d.onPushLocked(conn, f, &out)
	}
	d.mu.Unlock()
	out.write()
}

func (d *Document) onPushLocked(conn *wsConn, f *inbound, out *outbox) {
	if cl, ok := f.body.(*proto.Closed); ok && cl.Reason == "deleted" {
		d.endByServerLocked(fmt.Errorf("%w: %s", ErrDocDeleted, d.id))
		return
	}
	if d.conn != conn {
		// (Re)opening: the answer to the open covers everything before it.
		return
	}
	switch b := f.body.(type) {
	case *proto.DocOp:
		d.onOpLocked(conn, b, out)
	case *proto.Cursor:
		d.setCursorLocked(*b, true)
	case *proto.Presence:
		d.onPresenceLocked(b)
	case *proto.CommentFrame:
		d.applyCommentLocked(b.Action, b.Comment)
	case *proto.Closed:
		// The server closed the document for us (its storage failed, or
		// any reason but deletion): open it again from where we are.
		d.c.log.Info().Str("doc", d.id).Str("reason", b.Reason).Msg("document closed by the server; reopening")
		d.openLocked(conn, out)
	}
}

// onOpenReplyLocked applies the answer to the latest open.
func (d *Document) onOpenReplyLocked(conn *wsConn, f *inbound, out *outbox) {
	switch b := f.body.(type) {
	case *proto.Snapshot:
		d.applySnapshotLocked(conn, b, out)
	case *proto.Opened:
		d.applyOpenedLocked(conn, b, out)
	case *proto.Error:
		e := f.asError()
		e.Doc = d.id
		d.openFailedLocked(conn, e, out)
	}
}

// applySnapshotLocked takes a snapshot: the first one, or a reload after
// the history was lost, which drops what is pending.
func (d *Document) applySnapshotLocked(conn *wsConn, f *proto.Snapshot, out *outbox) {
	first := !d.loaded
	var lost *Lost
	var change ot.Op
	if !first {
		if ops := d.pendingLocked(); len(ops) > 0 {
			lost = &Lost{Ops: ops, Version: d.version, Text: d.text.String()}
		}
		var b ot.Builder
		b.Delete(d.text.Len()).Insert(f.Content)
		change = b.Op()
	}
	d.text, d.server = doc.NewRope(f.Content), doc.NewRope(f.Content)
	d.version, d.loaded, d.reload = f.Version, true, false
	d.epoch = f.Epoch
	d.inflight, d.inUID, d.buffer = nil, "", nil
	d.acked = d.edits
	n := d.text.Len()
	for i, s := range d.myCursor {
		d.myCursor[i] = ot.Selection{Anchor: min(s.Anchor, n), Head: min(s.Head, n)}
	}
	for a := range d.anchors {
		a.r = ot.Range{From: min(a.r.From, n), To: min(a.r.To, n)}
	}
	d.openedLocked(conn, f.Members, f.Cursors, f.Comments, !first)
	if !first {
		kind := ChangeReload
		if f.Reset {
			kind = ChangeReset
		}
		d.c.log.Warn().Str("doc", d.id).Int("version", d.version).Int("lost", len(lostOps(lost))).Str("kind", kind.String()).Msg("document reloaded from a snapshot")
		ch := Change{Kind: kind, Op: change, Version: d.version}
		d.emitLocked(func(h *DocHandlers) {
			if h.OnChange != nil {
				h.OnChange(ch)
			}
		})
		if lost != nil {
			l := *lost
			d.emitLocked(func(h *DocHandlers) {
				if h.OnLost != nil {
					h.OnLost(l)
				}
			})
		}
	}
	d.cursorLocked(out)
	if first {
		close(d.ready)
	}
}

func lostOps(l *Lost) []ot.Op {
	if l == nil {
		return nil
	}
	return l.Ops
}

// applyOpenedLocked catches up with the ops missed since version, then
// resends the op in flight if the server has not applied it.
func (d *Document) applyOpenedLocked(conn *wsConn, f *proto.Opened, out *outbox) {
	for _, o := range f.Ops {
		switch {
		case o.Version < d.version:
			continue
		case o.Version > d.version:
			d.reloadLocked(conn, fmt.Errorf("opened skips from v%d to v%d", d.version, o.Version), out)
			return
		}
		if d.inflight != nil && o.UID == d.inUID {
			d.ackLocked(out) // applied before the connection dropped
			continue
		}
		if err := d.applyRemoteLocked(o); err != nil {
			d.reloadLocked(conn, err, out)
			return
		}
	}
	if f.Version != d.version {
		d.reloadLocked(conn, fmt.Errorf("opened at v%d, caught up to v%d", f.Version, d.version), out)
		return
	}
	if f.Epoch != "" {
		d.epoch = f.Epoch
	}
	d.openedLocked(conn, f.Members, f.Cursors, f.Comments, true)
	if d.inflight != nil {
		d.sendInflightLocked(out) // same uid: applied at most once
	}
	d.cursorLocked(out)
}

// openedLocked takes the members, cursors and comments of an answer to
// open, and marks the document open on conn.
func (d *Document) openedLocked(conn *wsConn, members []proto.Member, cursors []proto.Cursor, comments []proto.Comment, again bool) {
	d.self = d.c.ClientID()
	d.setMembersLocked(members, again)
	clear(d.cursors)
	for _, c := range cursors {
		d.setCursorLocked(c, again)
	}
	d.setCommentsLocked(comments, again)
	if d.myCursor != nil {
		d.cursorDirty = true // the server forgot it with the old connection
	}
	d.conn = conn
	d.backoff.reset()
	d.notifyLocked()
}

// openFailedLocked handles an error answering an open.
func (d *Document) openFailedLocked(conn *wsConn, e *Error, out *outbox) {
	if !d.loaded {
		if e.Code == proto.CodeRateLimited || e.Code == proto.CodeUnavailable {
			d.retryLocked() // busy for now (large replies pending): OpenDoc waits
			return
		}
		d.endLocked(e) // OpenDoc returns it
		return
	}
	switch e.Code {
	case proto.CodeRateLimited, proto.CodeUnavailable:
		d.retryLocked()
	case proto.CodeConflict, proto.CodeBadRequest, proto.CodeInternal:
		// The history from our version is gone (compacted, or the server
		// lost data and is behind us), or reading it failed.
		if d.reload {
			d.endByServerLocked(e)
			return
		}
		d.reloadLocked(conn, e, out)
	default:
		d.endByServerLocked(e)
	}
}

// reloadLocked asks for a snapshot: the local state cannot be reconciled
// with the server's by transformation.
func (d *Document) reloadLocked(conn *wsConn, why error, out *outbox) {
	d.c.log.Warn().Err(why).Str("doc", d.id).Int("version", d.version).Msg("reloading the document")
	d.reload = true
	d.openLocked(conn, out)
}

// onOpLocked applies an op frame.
func (d *Document) onOpLocked(conn *wsConn, f *proto.DocOp, out *outbox) {
	switch {
	case f.Version < d.version:
		return // seen already
	case f.Version > d.version:
		d.c.log.Warn().Str("doc", d.id).Int("version", d.version).Int("got", f.Version).Msg("gap in document versions; reopening")
		d.openLocked(conn, out) // opened replays what is missing
		return
	}
	if d.inflight != nil && f.UID == d.inUID {
		// Our op, applied from the connection before the last one: its ack.
		d.ackLocked(out)
		return
	}
	if err := d.applyRemoteLocked(*f); err != nil {
		d.reloadLocked(conn, err, out)
	}
}

// applyRemoteLocked applies someone else's op made at d.version. It
// validates everything before it changes anything.
func (d *Document) applyRemoteLocked(o proto.DocOp) error {
	op := o.Op
	if err := op.Check(d.server.Len()); err != nil {
		return fmt.Errorf("op v%d: %w", o.Version, err)
	}
	t, inflight := op, d.inflight
	var err error
	if inflight != nil {
		if t, inflight, err = ot.Transform(t, inflight); err != nil {
			return fmt.Errorf("op v%d over the op in flight: %w", o.Version, err)
		}
	}
	buffer := make([]queued, len(d.buffer))
	for i, q := range d.buffer {
		if t, q.op, err = ot.Transform(t, q.op); err != nil {
			return fmt.Errorf("op v%d over the buffer: %w", o.Version, err)
		}
		buffer[i] = q
	}
	if err := t.Check(d.text.Len()); err != nil {
		return fmt.Errorf("op v%d transformed: %w", o.Version, err)
	}
	_ = ot.ApplyTo(d.server, op)
	_ = ot.ApplyTo(d.text, t)
	d.inflight, d.buffer = inflight, buffer
	d.version++
	d.moveAnchorsLocked(t, o.ClientID, false)
	ch := Change{Kind: ChangeRemote, Op: t, Version: d.version, UID: o.UID, User: o.User, ClientID: o.ClientID, Time: parseTime(o.TS)}
	d.emitLocked(func(h *DocHandlers) {
		if h.OnChange != nil {
			h.OnChange(ch)
		}
	})
	return nil
}

// onOpReplyLocked handles the answer to the op in flight.
func (d *Document) onOpReplyLocked(conn *wsConn, p *pending, f *inbound, out *outbox) {
	if d.inflight == nil || p.uid != d.inUID {
		return // the second answer to a resend
	}
	switch b := f.body.(type) {
	case *proto.Ack:
		switch {
		case b.Version > d.version:
			d.openLocked(conn, out) // ops are missing: opened brings them and ours
		case b.Version < d.version:
			d.reloadLocked(conn, fmt.Errorf("ack at v%d, the document is at v%d", b.Version, d.version), out)
		default:
			d.ackLocked(out)
		}
	case *proto.Error:
		e := f.asError()
		e.Doc = d.id
		switch e.Code {
		case proto.CodeRateLimited, proto.CodeUnavailable:
			d.c.log.Debug().Err(e).Str("doc", d.id).Str("uid", d.inUID).Msg("op refused for now; sending it again later")
			d.retryLocked()
		case proto.CodeConflict, proto.CodeInternal:
			d.reloadLocked(conn, e, out)
		default:
			// too_large, forbidden, bad_request...: sending it again
			// cannot help.
			d.rejectLocked(e, out)
		}
	}
}

// ackLocked completes the op in flight and sends the next.
func (d *Document) ackLocked(out *outbox) {
	if err := ot.ApplyTo(d.server, d.inflight); err != nil {
		panic("client: the op in flight does not apply to the server text: " + err.Error())
	}
	d.version++
	d.acked = d.inLast
	d.inflight, d.inUID = nil, ""
	d.backoff.reset()
	if d.retry != nil && d.retry.Stop() {
		d.c.wg.Done()
	}
	d.retry = nil
	d.cursorLocked(out) // before the buffer goes: it maps back through it
	d.promoteLocked(out)
	d.notifyLocked()
}

// rejectLocked undoes the op in flight, which the server refused for good,
// with the rest of its edit when it is a piece of one cut to the limits
// (the rest would be refused the same way), and moves the buffer over the
// undo.
func (d *Document) rejectLocked(e *Error, out *outbox) {
	undone := d.inflight
	var rest []ot.Op
	for len(d.buffer) > 0 && d.buffer[0].cont {
		q := d.buffer[0]
		d.buffer = d.buffer[1:]
		rest = append(rest, q.op)
		comp, err := ot.Compose(undone, q.op)
		if err != nil {
			panic("client: compose the pieces of an edit: " + err.Error())
		}
		undone, d.inLast = comp, q.last
	}
	undo, err := ot.InvertText(undone, d.server)
	if err != nil {
		panic("client: the op in flight does not apply to the server text: " + err.Error())
	}
	buffer := make([]queued, len(d.buffer))
	for i, q := range d.buffer {
		if undo, q.op, err = ot.Transform(undo, q.op); err != nil {
			panic("client: transform over the buffer: " + err.Error())
		}
		buffer[i] = q
	}
	if err := ot.ApplyTo(d.text, undo); err != nil {
		panic("client: the undo does not apply to the local text: " + err.Error())
	}
	d.moveAnchorsLocked(undo, "", true)
	oe := &OpError{Doc: d.id, UID: d.inUID, Op: d.inflight, Rest: rest, Err: e}
	d.c.log.Warn().Err(e).Str("doc", d.id).Str("uid", d.inUID).Msg("op rejected; undone")
	ch := Change{Kind: ChangeUndo, Op: undo, Version: d.version, UID: d.inUID}
	d.acked = d.inLast
	d.inflight, d.inUID, d.buffer = nil, "", buffer
	d.emitLocked(func(h *DocHandlers) {
		if h.OnChange != nil {
			h.OnChange(ch)
		}
		if h.OnError != nil {
			h.OnError(oe)
		}
	})
	d.cursorLocked(out)
	d.promoteLocked(out)
	d.notifyLocked()
}

// promoteLocked puts the next buffered op in flight when none is, and
// sends it.
func (d *Document) promoteLocked(out *outbox) {
	if d.inflight != nil {
		return
	}
	for len(d.buffer) > 0 && d.inflight == nil {
		q := d.buffer[0]
		d.buffer = d.buffer[1:]
		if q.op.IsNoop() { // its edits were undone by others' ops
			d.acked = q.last
			continue
		}
		d.seq++
		d.inflight, d.inUID, d.inLast = q.op, fmt.Sprintf("%s-%d", d.uid, d.seq), q.last
	}
	if len(d.buffer) == 0 {
		d.buffer = nil
	}
	if d.inflight != nil {
		d.sendInflightLocked(out)
	} else {
		d.notifyLocked()
	}
}

// sendInflightLocked sends the op in flight, if the document is open. An
// op that does not fit the connection's limits (they changed since it was
// cut) is cut again first: the server would have refused it whole, so its
// head keeps its uid.
func (d *Document) sendInflightLocked(out *outbox) {
	if d.conn == nil {
		return // sent after the (re)open
	}
	if b := d.budgetLocked(); !b.fits(d.inflight) {
		pieces := splitOp(d.inflight, b)
		rest := make([]queued, 0, len(pieces)-1+len(d.buffer))
		for _, p := range pieces[1:] {
			rest = append(rest, queued{op: p, last: d.inLast, cont: true})
		}
		d.inflight, d.buffer = pieces[0], append(rest, d.buffer...)
	}
	id, ok := d.c.addPending(d.conn, &pending{doc: d, kind: docOp, gen: d.gen, uid: d.inUID})
	if !ok {
		return
	}
	*out = append(*out, outFrame{d.conn, encodeOpFrame(opRequest{ID: &id, Type: proto.TypeOp, Doc: d.id, Version: d.version, Op: d.inflight, UID: d.inUID})})
}

// retryLocked sends the op in flight, or the open, again after a backoff
// delay (the server was rate limiting or unavailable).
func (d *Document) retryLocked() {
	if d.retry != nil {
		return
	}
	gen := d.gen
	d.retry = d.afterLocked(d.backoff.next(), func() {
		var out outbox
		d.mu.Lock()
		d.retry = nil
		switch {
		case d.ended || gen != d.gen:
		case d.conn == nil:
			if conn := d.c.liveConn(); conn != nil {
				d.openLocked(conn, &out)
			}
		case d.inflight != nil:
			d.sendInflightLocked(&out)
		}
		d.mu.Unlock()
		out.write()
	})
}

// liveConn returns the live connection, or nil.
func (c *Client) liveConn() *wsConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// cursorLocked sends this client's cursor when it changed, the document is
// open, nothing is in flight and CursorInterval has passed since the last
// one; it is mapped back through the buffer to the server version.
func (d *Document) cursorLocked(out *outbox) {
	if !d.cursorDirty || d.conn == nil || d.inflight != nil {
		return
	}
	now := time.Now()
	if wait := d.c.cfg.CursorInterval - now.Sub(d.cursorSent); wait > 0 {
		if d.cursorTimer == nil {
			d.cursorTimer = d.afterLocked(wait, func() {
				var out outbox
				d.mu.Lock()
				d.cursorTimer = nil
				if !d.ended {
					d.cursorLocked(&out)
				}
				d.mu.Unlock()
				out.write()
			})
		}
		return
	}
	ranges := make([]ot.Selection, len(d.myCursor))
	for i, s := range d.myCursor {
		ranges[i] = ot.Selection{Anchor: d.serverIndexLocked(s.Anchor), Head: d.serverIndexLocked(s.Head)}
	}
	out.add(d.conn, cursorRequest{Type: proto.TypeCursor, Doc: d.id, Version: d.version, Ranges: ranges})
	d.cursorSent, d.cursorDirty = now, false
}

// serverIndexLocked maps a position of the local text to the server text,
// back through the buffer and the op in flight.
func (d *Document) serverIndexLocked(i int) int {
	for k := len(d.buffer) - 1; k >= 0; k-- {
		i = baseIndex(d.buffer[k].op, i)
	}
	if d.inflight != nil {
		i = baseIndex(d.inflight, i)
	}
	return i
}

// localRangeLocked moves a range of the server text to the local text,
// through the op in flight and the buffer.
func (d *Document) localRangeLocked(r ot.Range) ot.Range {
	if d.inflight != nil {
		r = ot.TransformRange(d.inflight, r)
	}
	for _, q := range d.buffer {
		r = ot.TransformRange(q.op, r)
	}
	return r
}

// localSelectionsLocked moves someone else's selections of the server text
// to the local text.
func (d *Document) localSelectionsLocked(sel []ot.Selection) []ot.Selection {
	out := make([]ot.Selection, len(sel))
	n := d.server.Len()
	for i, s := range sel {
		s = ot.Selection{Anchor: min(max(s.Anchor, 0), n), Head: min(max(s.Head, 0), n)}
		if d.inflight != nil {
			s = ot.TransformSelection(d.inflight, s, false)
		}
		for _, q := range d.buffer {
			s = ot.TransformSelection(q.op, s, false)
		}
		out[i] = s
	}
	return out
}

// moveAnchorsLocked moves every position kept in local-text terms through
// op, a change of the local text: by this client (local) or by author.
func (d *Document) moveAnchorsLocked(op ot.Op, author string, local bool) {
	for _, c := range d.cursors {
		own := !local && author != "" && c.ClientID == author
		for i, s := range c.Ranges {
			c.Ranges[i] = ot.TransformSelection(op, s, own)
		}
	}
	for i, s := range d.myCursor {
		d.myCursor[i] = ot.TransformSelection(op, s, local)
	}
	for _, c := range d.comments {
		c.Range = ot.TransformRange(op, c.Range)
	}
	for a := range d.anchors {
		a.r = ot.TransformRange(op, a.r)
	}
}

// pendingLocked returns the op in flight and the buffered ops.
func (d *Document) pendingLocked() []ot.Op {
	var ops []ot.Op
	if d.inflight != nil {
		ops = append(ops, d.inflight)
	}
	for _, q := range d.buffer {
		ops = append(ops, q.op)
	}
	return ops
}

// setMembersLocked takes the member list of an answer to open; after a
// reconnection the differences are reported as joins and leaves.
func (d *Document) setMembersLocked(list []proto.Member, again bool) {
	old := d.members
	d.members = make(map[string]proto.Member, len(list))
	for _, m := range list {
		d.members[m.ClientID] = m
	}
	if !again {
		return
	}
	for id, m := range old {
		if _, ok := d.members[id]; !ok && id != d.self {
			d.emitPresenceLocked("leave", m)
		}
	}
	for id, m := range d.members {
		if _, ok := old[id]; !ok && id != d.self {
			d.emitPresenceLocked("join", m)
		}
	}
}

func (d *Document) onPresenceLocked(f *proto.Presence) {
	if f.Member == nil {
		return
	}
	m := *f.Member
	switch f.Event {
	case "join", "update":
		d.members[m.ClientID] = m
	case "leave":
		delete(d.members, m.ClientID)
		delete(d.cursors, m.ClientID)
	default:
		return
	}
	d.emitPresenceLocked(f.Event, m)
}

func (d *Document) emitPresenceLocked(event string, m proto.Member) {
	ev := PresenceEvent{Channel: "doc:" + d.id, Event: event, Member: m}
	d.emitLocked(func(h *DocHandlers) {
		if h.OnPresence != nil {
			h.OnPresence(ev)
		}
	})
}

// setCursorLocked stores someone's cursor, given at the server version.
func (d *Document) setCursorLocked(c proto.Cursor, emit bool) {
	if c.ClientID == "" || c.ClientID == d.self {
		return
	}
	if c.Version != d.version {
		// Cursors come at the version of the ops before them; one that
		// does not is kept as is, clamped into the text.
		d.c.log.Debug().Str("doc", d.id).Int("version", d.version).Int("cursor", c.Version).Msg("cursor at another version")
	}
	cur := &Cursor{ClientID: c.ClientID, Ranges: d.localSelectionsLocked(c.Ranges)}
	if c.User != nil {
		cur.User = *c.User
	} else if m, ok := d.members[c.ClientID]; ok {
		cur.User = m.User
	}
	d.cursors[c.ClientID] = cur
	if emit {
		ev := Cursor{ClientID: cur.ClientID, User: cur.User, Ranges: append([]ot.Selection{}, cur.Ranges...)}
		d.emitLocked(func(h *DocHandlers) {
			if h.OnCursor != nil {
				h.OnCursor(ev)
			}
		})
	}
}
