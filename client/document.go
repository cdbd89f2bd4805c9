package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// ChangeKind says why the local text changed other than by Submit.
type ChangeKind uint8

const (
	// ChangeRemote: an op from someone else (another client, or an edit
	// through the HTTP API), transformed over this client's pending edits.
	ChangeRemote ChangeKind = iota
	// ChangeUndo: the server rejected one of this client's edits for good;
	// Op undoes it, and an *OpError goes to OnError.
	ChangeUndo
	// ChangeReload: the document was reloaded from a snapshot because the
	// history needed to catch up is gone; Op replaces the whole text, and
	// edits that were pending go to OnLost.
	ChangeReload
	// ChangeReset: the document was deleted and created again under its id
	// while this client was away (its epoch changed): the server sent the
	// new incarnation's text, Op replaces the whole text, and the edits
	// pending against the old one are dropped and go to OnLost.
	ChangeReset
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeRemote:
		return "remote"
	case ChangeUndo:
		return "undo"
	case ChangeReset:
		return "reset"
	default:
		return "reload"
	}
}

// Change is a change of a document's local text that this client did not
// make with Submit.
type Change struct {
	Kind ChangeKind
	// Op is the change as applied to the local text: it applies to the
	// text as it was just before.
	Op ot.Op
	// Version is the document's server version after the change.
	Version int
	// UID is the op's uid; User and ClientID say who made it (empty for an
	// edit through the HTTP API, and for ChangeReload).
	UID, User, ClientID string
	Time                time.Time
}

// Cursor is another member's cursor and selections.
type Cursor struct {
	ClientID string
	User     proto.User
	// Ranges are positions in the local text.
	Ranges []ot.Selection
}

// Comment is a comment on a document.
type Comment struct {
	ID string
	// Range is the commented text, in positions of the local text.
	Range ot.Range
	User  proto.User
	Text  string
	// Parent is the id of the thread's first comment for a reply; empty
	// otherwise.
	Parent    string
	Resolved  bool
	CreatedAt time.Time
	// UpdatedAt is zero until the comment is edited, resolved or reopened.
	UpdatedAt time.Time
}

// CommentEvent is a comment action: Action is "add", "edit", "resolve",
// "reopen" or "delete", and Comment the comment after it (as it was, for
// delete).
type CommentEvent struct {
	Action  string
	Comment Comment
}

// Lost describes local edits that the server never confirmed and that were
// dropped when the document was reloaded from a snapshot (its history was
// gone, so they could not be transformed onto it, or the document was
// deleted and created again: ChangeReset).
type Lost struct {
	// Ops are the dropped edits in order, the first against the server
	// text at Version. The first may have reached the server before the
	// history went; the text shows whether it did.
	Ops []ot.Op
	// Version is the last server version the client had seen, and Text
	// the local text, with the edits, before the reload.
	Version int
	Text    string
}

// DocHandlers are a document's callbacks; a nil field is no callback.
// Pass them to OpenDoc, so that they are in place before the first event
// can arrive: the first remote op, a cursor, a member joining may come
// right after the snapshot, before OpenDoc has returned. The methods of
// the same names (Document.OnChange, ...) replace one of them later.
//
// They run on the client's callback goroutine, one at a time, in the order
// of the frames that caused them, and only while the document is open;
// they may call the document's and the client's methods (but not
// Client.Close).
type DocHandlers struct {
	// OnChange gets every change of the local text that this client did
	// not make with Submit: others' ops, undone rejected edits, reloads
	// and resets (see ChangeKind).
	OnChange func(Change)
	// OnCursor gets another member's cursor each time it moves, in
	// positions of the local text at the time it arrived.
	OnCursor func(Cursor)
	// OnPresence gets members joining and leaving (events "join" and
	// "leave", Channel "doc:<id>"). A member that leaves takes its cursor
	// with it.
	OnPresence func(PresenceEvent)
	// OnComment gets comment actions, this client's included. After a
	// reconnection the differences found are reported as actions too.
	OnComment func(CommentEvent)
	// OnError gets errors about the document that no call returns: an
	// *OpError for an edit the server rejected for good (it has been
	// undone locally).
	OnError func(error)
	// OnLost gets the local edits dropped by a reload from a snapshot or a
	// reset (see Lost).
	OnLost func(Lost)
	// OnClosed is called when the server ends the document after OpenDoc
	// returned: it was deleted (ErrDocDeleted), a refreshed token took the
	// grant away, or reopening it failed for good.
	OnClosed func(error)
}

// DocOption is an optional part of opening a document: [DocHandlers] is
// one.
type DocOption interface {
	applyDoc(d *Document)
}

// applyDoc sets the callbacks h names, keeping the others. The document
// is not shared yet.
func (h DocHandlers) applyDoc(d *Document) {
	if h.OnChange != nil {
		d.h.OnChange = h.OnChange
	}
	if h.OnCursor != nil {
		d.h.OnCursor = h.OnCursor
	}
	if h.OnPresence != nil {
		d.h.OnPresence = h.OnPresence
	}
	if h.OnComment != nil {
		d.h.OnComment = h.OnComment
	}
	if h.OnError != nil {
		d.h.OnError = h.OnError
	}
	if h.OnLost != nil {
		d.h.OnLost = h.OnLost
	}
	if h.OnClosed != nil {
		d.h.OnClosed = h.OnClosed
	}
}

// queued is a local edit waiting for the op in flight to be acknowledged.
type queued struct {
	op   ot.Op
	last uint64 // the last local edit composed into op
	// cont: op is a piece of an edit cut to the server's limits, after
	// the op before it; it is rolled back with that one if the server
	// refuses it.
	cont bool
}

// anchor is a range that follows the local text, for a comment being added.
type anchor struct{ r ot.Range }

// Document is a collaborative document open on a client: a local replica
// of its text that Submit edits at once, kept in step with the server by
// the OT client algorithm of docs/PROTOCOL.md. It survives reconnections:
// the client reopens it from the last version it saw and resends what the
// server has not acknowledged. Its methods are safe for concurrent use;
// its callbacks run on the client's callback goroutine.
type Document struct {
	c     *Client
	id    string
	uid   string        // uid prefix, fixed for the document's life
	ready chan struct{} // closed when the first snapshot is applied
	done  chan struct{} // closed when the document ends

	// Lock order: d.mu before c.mu. The reader takes d.mu to apply frames;
	// user calls take it to edit. No callback runs with it held.
	mu sync.Mutex // guards every field below
	h  DocHandlers

	// The replica. server is the text at version, as the server has it;
	// text is server with the op in flight and the buffer applied. The
	// op in flight and the buffer are always in step with version: every
	// incoming op is transformed over them.
	text     *doc.Rope
	server   *doc.Rope
	version  int
	epoch    string // the incarnation version belongs to ("" from an older server)
	loaded   bool   // a snapshot was applied: reopen from version
	reload   bool   // the next open asks for a snapshot (history gone)
	inflight ot.Op
	inUID    string
	inLast   uint64
	buffer   []queued
	seq      uint64 // uids issued
	edits    uint64 // local edits submitted
	acked    uint64 // local edits acknowledged (or dropped)

	conn *wsConn // the connection the document is open on; nil while (re)opening
	gen  uint64  // open requests sent: replies to older ones are stale

	self     string // this connection's client id, as of the last open
	members  map[string]proto.Member
	cursors  map[string]*Cursor
	comments map[string]*Comment
	anchors  map[*anchor]struct{}

	myCursor    []ot.Selection // in the local text; nil: none set
	cursorDirty bool           // myCursor not sent yet
	cursorSent  time.Time
	cursorTimer *time.Timer
	retry       *time.Timer
	backoff     backoff

	changed chan struct{} // closed and replaced on every state change waiters care for
	ended   bool
	err     error
}

func newDocument(c *Client, id string) *Document {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Document{
		c: c, id: id, uid: "g" + hex.EncodeToString(b[:]),
		ready: make(chan struct{}), done: make(chan struct{}),
		text: &doc.Rope{}, server: &doc.Rope{},
		members: map[string]proto.Member{}, cursors: map[string]*Cursor{},
		comments: map[string]*Comment{}, anchors: map[*anchor]struct{}{},
		backoff: backoff{min: c.cfg.ReconnectMin, max: c.cfg.ReconnectMax},
		changed: make(chan struct{}),
	}
}

// OpenDoc opens a document (creating it empty when it does not exist and
// the user may write it) and returns once its snapshot has arrived. One
// Document per id: opening an id that is open fails with ErrDocOpen.
// Errors from the server come back as an *Error (not_found, forbidden,
// bad_request for a bad id).
//
// The callbacks given as [DocHandlers] are set before the open is sent, so
// they get every event after the snapshot, including those that arrive
// before OpenDoc returns; the document's On... methods set them later.
func (c *Client) OpenDoc(ctx context.Context, id string, opts ...DocOption) (*Document, error) {
	d := newDocument(c, id)
	for _, o := range opts {
		if o != nil {
			o.applyDoc(d)
		}
	}
	d.mu.Lock()
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		d.mu.Unlock()
		return nil, ErrClosed
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		d.mu.Unlock()
		return nil, err
	case c.docs[id] != nil:
		c.mu.Unlock()
		d.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrDocOpen, id)
	}
	c.docs[id] = d
	conn := c.conn
	c.mu.Unlock()
	var out outbox
	if conn != nil {
		d.openLocked(conn, &out)
	} // otherwise the next connection opens it (attach)
	d.mu.Unlock()
	out.write()
	select {
	case <-d.ready:
		if h := c.openedHook; h != nil {
			h(d)
		}
		return d, nil
	case <-d.done:
		return nil, d.Err()
	case <-ctx.Done():
		d.mu.Lock()
		d.endLocked(ctx.Err())
		d.mu.Unlock()
		c.closeOnServer(id)
		return nil, ctx.Err()
	}
}

// closeOnServer tells the server, without waiting, that a document is
// closed.
func (c *Client) closeOnServer(id string) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.write(mustEncode(proto.Request{Type: proto.TypeClose, Doc: id}))
	}
}

// document returns the open document id, or nil.
func (c *Client) document(id string) *Document {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs[id]
}

// ID returns the document's id.
func (d *Document) ID() string { return d.id }

// Text returns the local text: the server's with this client's pending
// edits applied.
func (d *Document) Text() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.text.String()
}

// Len returns the local text's length in code points.
func (d *Document) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.text.Len()
}

// Version returns the last server version the document has seen.
func (d *Document) Version() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// Epoch returns the incarnation of the document the local text belongs to
// (empty from a server that keeps no epochs). It changes when the document
// was deleted and created again (a ChangeReset).
func (d *Document) Epoch() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

// Synced reports whether every local edit has been acknowledged.
func (d *Document) Synced() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncedLocked()
}

func (d *Document) syncedLocked() bool { return d.inflight == nil && len(d.buffer) == 0 }

// Done is closed when the document ends; Err then says why.
func (d *Document) Done() <-chan struct{} { return d.done }

// Err returns why the document ended (ErrDocClosed after Close, ErrClosed
// after Client.Close, ErrDocDeleted, an *Error when the server refused to
// reopen it), or nil while it is open.
func (d *Document) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Submit applies op to the local text at once and sends it to the server:
// it goes out at once when nothing is in flight, and otherwise is composed
// with the other edits waiting for the ack of the op in flight. op is
// brought into canonical form first; one that does not apply to the local
// text (it reaches past the end, or has a zero-length component) is
// refused and changes nothing. An op larger than the server's limits (see
// Limits) is sent as several ops, one after the other; if the server
// refuses one of them for good, it and the rest of the edit are undone. Submit never blocks on the
// network; WaitSynced waits for the acks. An edit the server rejects for
// good is undone locally and reported to OnError.
func (d *Document) Submit(op ot.Op) error {
	d.mu.Lock()
	if d.ended {
		err := d.err
		d.mu.Unlock()
		return err
	}
	return d.submitLocked(op)
}

// submitLocked is Submit with d.mu held; it unlocks it.
func (d *Document) submitLocked(op ot.Op) error {
	op, err := ot.Normalize(op)
	if err != nil {
		d.mu.Unlock()
		return fmt.Errorf("client: submit to %s: %w", d.id, err)
	}
	if err := op.Check(d.text.Len()); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("client: submit to %s: %w", d.id, err)
	}
	if op.IsNoop() {
		d.mu.Unlock()
		return nil
	}
	if err := ot.ApplyTo(d.text, op); err != nil {
		panic("client: checked op does not apply: " + err.Error())
	}
	d.moveAnchorsLocked(op, "", true)
	d.edits++
	b := d.budgetLocked()
	for i, piece := range splitOp(op, b) {
		d.queueLocked(piece, i > 0, b)
	}
	var out outbox
	d.promoteLocked(&out)
	d.mu.Unlock()
	out.write()
	return nil
}

// LocalText is a read-only view of a document's local text, given to the
// function of Edit.
type LocalText interface {
	// Len returns the text's length in code points.
	Len() int
	// Slice returns n code points from code point pos; it panics unless
	// 0 <= pos, 0 <= n and pos+n <= Len().
	Slice(pos, n int) string
	// String returns the whole text.
	String() string
}

// Edit submits the op that f makes from the local text, in one step: no
// remote op is applied between f reading the text and the edit, as one can
// be between Len (or Text) and Submit, which would then edit another
// place than the one meant. f runs with the document locked: it must be
// quick and must not call the document's methods (a panic in it unlocks
// the document and goes on up). A nil op submits nothing. See Submit for
// the rest.
func (d *Document) Edit(f func(text LocalText) ot.Op) error {
	d.mu.Lock()
	if d.ended {
		err := d.err
		d.mu.Unlock()
		return err
	}
	op := func() ot.Op {
		defer func() {
			if r := recover(); r != nil {
				d.mu.Unlock() // a panicking f leaves the document usable
				panic(r)
			}
		}()
		return f(d.text)
	}()
	if op == nil {
		d.mu.Unlock()
		return nil
	}
	return d.submitLocked(op)
}

// Insert inserts s at code point pos of the local text; see Submit.
func (d *Document) Insert(pos int, s string) error {
	if pos < 0 {
		return fmt.Errorf("client: insert at %d: %w", pos, ot.ErrPastEnd)
	}
	return d.Submit(ot.Splice(pos, 0, s))
}

// Delete deletes n code points at pos of the local text; see Submit.
func (d *Document) Delete(pos, n int) error {
	if pos < 0 || n < 0 {
		return fmt.Errorf("client: delete %d at %d: %w", n, pos, ot.ErrPastEnd)
	}
	return d.Submit(ot.Splice(pos, n, ""))
}

// queueLocked adds a local edit (or a piece of one, cont) behind the op in
// flight: composed with the last one waiting while their composition fits
// b, except that the pieces of one edit stay apart.
func (d *Document) queueLocked(op ot.Op, cont bool, b opBudget) {
	if n := len(d.buffer); n > 0 && !cont {
		if comp, err := ot.Compose(d.buffer[n-1].op, op); err == nil && b.fits(comp) {
			d.buffer[n-1].op, d.buffer[n-1].last = comp, d.edits
			return
		}
	}
	d.buffer = append(d.buffer, queued{op: op, last: d.edits, cont: cont})
}

// WaitSynced waits until every local edit submitted so far, and every one
// submitted meanwhile, has been acknowledged by the server (or undone
// after a rejection, or dropped by a reload), the document ends, or ctx
// ends.
func (d *Document) WaitSynced(ctx context.Context) error {
	for {
		d.mu.Lock()
		synced, ended, err, ch := d.syncedLocked(), d.ended, d.err, d.changed
		d.mu.Unlock()
		switch {
		case ended:
			return err
		case synced:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SetCursor sets this client's cursor and selections, in positions of the
// local text (nil or empty: none). The other members get it once nothing
// is in flight, at most once per Config.CursorInterval (the latest wins);
// it follows the local text until then, and is sent again after a
// reconnection.
func (d *Document) SetCursor(ranges []ot.Selection) error {
	d.mu.Lock()
	if d.ended {
		err := d.err
		d.mu.Unlock()
		return err
	}
	n := d.text.Len()
	for _, r := range ranges {
		if r.Anchor < 0 || r.Anchor > n || r.Head < 0 || r.Head > n {
			d.mu.Unlock()
			return fmt.Errorf("client: cursor %+v outside the text of %d code points: %w", r, n, ot.ErrPastEnd)
		}
	}
	d.myCursor = append([]ot.Selection{}, ranges...)
	d.cursorDirty = true
	var out outbox
	d.cursorLocked(&out)
	d.mu.Unlock()
	out.write()
	return nil
}

// Cursors returns the other members' cursors, in positions of the local
// text, ordered by client id.
func (d *Document) Cursors() []Cursor {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Cursor, 0, len(d.cursors))
	for _, c := range d.cursors {
		out = append(out, Cursor{ClientID: c.ClientID, User: c.User, Ranges: slices.Clone(c.Ranges)})
	}
	slices.SortFunc(out, func(a, b Cursor) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// Members returns who has the document open (this connection included),
// ordered by client id.
func (d *Document) Members() []proto.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Collect(maps.Values(d.members))
	slices.SortFunc(out, func(a, b proto.Member) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// OnChange replaces the callback for changes of the local text that this
// client did not make with Submit (DocHandlers.OnChange). A callback set
// after OpenDoc returned may miss the changes that came before (Text is
// always current): pass DocHandlers to OpenDoc to see every one.
func (d *Document) OnChange(f func(Change)) { d.setHandler(func(h *DocHandlers) { h.OnChange = f }) }

// OnCursor replaces the callback for other members' cursors
// (DocHandlers.OnCursor).
func (d *Document) OnCursor(f func(Cursor)) { d.setHandler(func(h *DocHandlers) { h.OnCursor = f }) }

// OnPresence replaces the callback for members joining and leaving
// (DocHandlers.OnPresence).
func (d *Document) OnPresence(f func(PresenceEvent)) {
	d.setHandler(func(h *DocHandlers) { h.OnPresence = f })
}

// OnComment replaces the callback for comment actions
// (DocHandlers.OnComment).
func (d *Document) OnComment(f func(CommentEvent)) {
	d.setHandler(func(h *DocHandlers) { h.OnComment = f })
}

// OnError replaces the callback for errors about the document that no
// call returns (DocHandlers.OnError).
func (d *Document) OnError(f func(error)) { d.setHandler(func(h *DocHandlers) { h.OnError = f }) }

// OnLost replaces the callback for local edits dropped by a reload
// (DocHandlers.OnLost).
func (d *Document) OnLost(f func(Lost)) { d.setHandler(func(h *DocHandlers) { h.OnLost = f }) }

// OnClosed replaces the callback called when the server ends the document
// (DocHandlers.OnClosed).
func (d *Document) OnClosed(f func(error)) { d.setHandler(func(h *DocHandlers) { h.OnClosed = f }) }

func (d *Document) setHandler(set func(*DocHandlers)) {
	d.mu.Lock()
	set(&d.h)
	d.mu.Unlock()
}

// emitLocked queues a callback that runs while the document lives, with
// the handlers of that time. Queuing under d.mu keeps callbacks in the
// order of the state changes they report.
func (d *Document) emitLocked(f func(h *DocHandlers)) {
	d.c.cb.push(func() {
		d.mu.Lock()
		h, live := d.h, !d.ended
		d.mu.Unlock()
		if live {
			f(&h)
		}
	})
}

// Close waits until the local edits are acknowledged (or ctx ends), then
// closes the document on the server. Its callbacks are not called once it
// returns. It returns ctx's error when edits were still unacknowledged.
func (d *Document) Close(ctx context.Context) error {
	werr := d.WaitSynced(ctx)
	d.mu.Lock()
	if d.ended {
		d.mu.Unlock()
		return nil
	}
	d.endLocked(ErrDocClosed)
	d.mu.Unlock()
	if d.c.liveConn() == nil {
		return werr // the server forgot the document with the connection
	}
	_, err := d.c.request(ctx, &proto.Request{Type: proto.TypeClose, Doc: d.id})
	if werr != nil {
		return werr
	}
	if err != nil && !errors.Is(err, ErrDisconnected) && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// endLocked ends the document with err: it leaves the client, stops its
// timers and wakes its waiters. It reports whether it was live.
func (d *Document) endLocked(err error) bool {
	if d.ended {
		return false
	}
	d.ended, d.err = true, err
	c := d.c
	c.mu.Lock()
	if c.docs[d.id] == d {
		delete(c.docs, d.id)
	}
	c.mu.Unlock()
	d.conn = nil
	d.stopTimersLocked()
	close(d.done)
	d.notifyLocked()
	return true
}

// end ends the document with err (see endLocked).
func (d *Document) end(err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endLocked(err)
}

// endByServerLocked ends the document for a reason the user learns from
// OnClosed.
func (d *Document) endByServerLocked(err error) {
	h := d.h.OnClosed
	if d.endLocked(err) && h != nil {
		d.c.cb.push(func() { h(err) })
	}
}

func (d *Document) stopTimersLocked() {
	for _, t := range []**time.Timer{&d.retry, &d.cursorTimer} {
		if *t != nil && (*t).Stop() {
			d.c.wg.Done()
		}
		*t = nil
	}
}

// notifyLocked wakes everyone waiting for a change of state.
func (d *Document) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// afterLocked runs f after delay on a timer the client waits for (Close
// waits for f, or for endLocked to stop the timer). It returns nil, and
// does nothing, once the client is closing.
func (d *Document) afterLocked(delay time.Duration, f func()) *time.Timer {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.err != nil {
		return nil
	}
	c.wg.Add(1)
	return time.AfterFunc(delay, func() {
		defer c.wg.Done()
		f()
	})
}

// outbox collects frames built under d.mu, to write once it is released.
type outbox []outFrame

type outFrame struct {
	conn *wsConn
	data []byte
}

func (o *outbox) add(conn *wsConn, v any) { *o = append(*o, outFrame{conn, mustEncode(v)}) }

// write sends the frames in order. A failed write closes its connection:
// the reader notices, and the next connection reopens and resends.
func (o outbox) write() {
	for _, f := range o {
		if err := f.conn.write(f.data); err != nil {
			f.conn.ws.Close()
		}
	}
}

// opRequest is an op frame. Unlike proto.Request it keeps an empty op
// (an op that became a no-op in transformation still takes its version).
type opRequest struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"`
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	Op      ot.Op  `json:"op"`
	UID     string `json:"uid"`
}

// cursorRequest is a cursor frame; empty ranges clear the cursor.
type cursorRequest struct {
	Type    string         `json:"type"`
	Doc     string         `json:"doc"`
	Version int            `json:"version"`
	Ranges  []ot.Selection `json:"ranges"`
}

// baseIndex maps a position in the text after op to the text op applied
// to. A position in text op inserted maps to where the insert is.
func baseIndex(op ot.Op, index int) int {
	out, in := 0, 0
	for _, c := range op {
		switch {
		case c.IsInsert():
			if index <= out+c.Len() {
				return in
			}
			out += c.Len()
		case c.IsRetain():
			if index <= out+c.Len() {
				return in + index - out
			}
			out += c.Len()
			in += c.Len()
		default:
			in += c.Len()
		}
	}
	return in + index - out
}
