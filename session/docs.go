package session

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// MaxDocID is the longest document id, in bytes.
const MaxDocID = doc.MaxIDLen

// ValidDocID checks a document id with doc.ValidID, the one rule that
// storage and import apply too; the error wraps ErrBadDocID.
func ValidDocID(id string) error {
	if err := doc.ValidID(id); err != nil {
		return fmt.Errorf("%w: %s", ErrBadDocID, strings.TrimPrefix(err.Error(), doc.ErrBadID.Error()+": "))
	}
	return nil
}

// DocsConfig configures live documents. The storage fields and Hub are
// required; zero limits take the defaults their comments give.
type DocsConfig struct {
	Documents Documents
	OpLog     OpLog
	Snapshots Snapshots
	Comments  Comments
	// Hub delivers @mention notifications of comments.
	Hub *Hub
	// Presence and Ephemeral carry document presence and cursors between
	// nodes in cluster mode (an OpLog that is a SharedOpLog); nil: this
	// node's members and cursors only.
	Presence  PresenceBus
	Ephemeral EphemeralBus

	// IdleTimeout is how long a document with nobody in it stays loaded
	// before it writes a snapshot and unloads. By default 30 * time.Second.
	IdleTimeout time.Duration
	// MaxDocLen bounds a document's length in code points. By default
	// 4,000,000.
	MaxDocLen int
	// MaxOpBytes bounds the text one op inserts, in bytes. By default 64 KiB.
	// A client's op over it is refused; a server-side edit (the HTTP API)
	// is split into ops under it.
	MaxOpBytes int
	// MaxCommentBytes bounds one comment's text and MaxComments the
	// comments (replies included) of one document; over either a comment
	// is refused with an error wrapping ErrTooLarge. By default
	// doc.DefaultMaxCommentBytes (4 KiB) and doc.DefaultMaxComments (1000),
	// so that the snapshot of the largest document stays within what a
	// client reads (see doc.DefaultMaxComments).
	MaxCommentBytes int
	MaxComments     int
	// MaxReplayOps and MaxReplayBytes bound the ops an `opened` reply (or
	// an op or cursor made against an old version) may need: past either
	// the request gets ErrHistoryGone (the client reopens without a
	// version). By default 50,000 ops and 32 MiB of op text.
	MaxReplayOps   int
	MaxReplayBytes int
	// DiffTimeout bounds the diff of a server-side Replace (go-diff's
	// deadline), MaxDiffWork the size of what it diffs (see
	// doc.DiffBudget.MaxWork), and MaxDiffEdits the edits it may find;
	// past them the edit replaces the changed range whole. By default
	// 500 ms, 1<<26 and 10,000. DiffConcurrency bounds the diffs running at
	// once (CPU-bound, off the documents' goroutines); further ones wait.
	// By default half of GOMAXPROCS, at least 1.
	DiffTimeout     time.Duration
	MaxDiffWork     int
	MaxDiffEdits    int
	DiffConcurrency int
	// OpRate and OpBurst limit the ops one user sends to one document per
	// second. By default 500 and 1000.
	OpRate  float64
	OpBurst int
	// CursorInterval is the shortest time between two broadcasts of one
	// client's cursor; later updates within it are coalesced (the latest
	// wins). By default 50 * time.Millisecond.
	CursorInterval time.Duration
	// BroadcastWindow, when positive, makes a document with at least
	// BroadcastMembers members (by default DefaultBroadcastMembers) send
	// its members the ops that become durable once per window instead of
	// as each commit ends (acks included: a member's frames stay in
	// order): fewer, larger writes in a big room whose editors type at a
	// human pace, for up to one window of latency. Anything else the
	// document sends first sends what it holds. Off (0) by default; a
	// cluster node ignores it. See docs/operations.md, "Big documents".
	BroadcastWindow  time.Duration
	BroadcastMembers int
	// RecentOps is how many recent ops each document keeps in memory for
	// transforming late ops and answering reopens. By default 1024.
	RecentOps int
	// QueueLen bounds each document's request queue; when it is full the
	// sending connection's read loop waits. By default 1024.
	QueueLen int
	// Metrics records ops applied and ack latency; nil makes a private set.
	Metrics *metrics.Metrics
	// Notifier hears of changes, joins, leaves and comments; nil: nobody.
	Notifier Notifier
	// Watcher hears of every version made durable, with the document's
	// epoch (the doc_store hook); nil: nobody.
	Watcher DocWatcher
	Logger  zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
}

func (c *DocsConfig) setDefaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.MaxDocLen <= 0 {
		c.MaxDocLen = doc.DefaultMaxLen
	}
	if c.MaxOpBytes <= 0 {
		c.MaxOpBytes = doc.DefaultMaxOpBytes
	}
	if c.MaxCommentBytes <= 0 {
		c.MaxCommentBytes = doc.DefaultMaxCommentBytes
	}
	if c.MaxComments <= 0 {
		c.MaxComments = doc.DefaultMaxComments
	}
	if c.MaxReplayOps <= 0 {
		c.MaxReplayOps = 50_000
	}
	if c.MaxReplayBytes <= 0 {
		c.MaxReplayBytes = 32 << 20
	}
	if c.DiffTimeout <= 0 {
		c.DiffTimeout = 500 * time.Millisecond
	}
	if c.MaxDiffWork <= 0 {
		c.MaxDiffWork = 1 << 26
	}
	if c.MaxDiffEdits <= 0 {
		c.MaxDiffEdits = 10_000
	}
	if c.DiffConcurrency <= 0 {
		c.DiffConcurrency = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.OpRate <= 0 {
		c.OpRate = 500
	}
	if c.OpBurst <= 0 {
		c.OpBurst = 1000
	}
	if c.BroadcastMembers <= 0 {
		c.BroadcastMembers = DefaultBroadcastMembers
	}
	if c.CursorInterval <= 0 {
		c.CursorInterval = 50 * time.Millisecond
	}
	if c.RecentOps <= 0 {
		c.RecentOps = 1024
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// DocClient is a connection as live documents see it.
type DocClient struct {
	Sub  Subscriber
	User proto.User
	// Fail sends an error frame answering request id; it must not block.
	Fail func(id *int64, err error)
}

// Docs runs one goroutine per open document. It is safe for concurrent use.
type Docs struct {
	cfg DocsConfig
	log zerolog.Logger

	mu       sync.Mutex             // guards sessions and closed
	sessions map[string]*docSession // loaded documents
	closed   bool
	wg       sync.WaitGroup // one per session goroutine, and resubmitters

	// diffs holds a token per diff running (cap DiffConcurrency).
	diffs chan struct{}
}

// NewDocs returns the live-document manager.
func NewDocs(cfg DocsConfig) *Docs {
	cfg.setDefaults()
	return &Docs{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "docs").Logger(),
		sessions: make(map[string]*docSession),
		diffs:    make(chan struct{}, cfg.DiffConcurrency),
	}
}

// Limits returns the op and document limits in force: the text one op may
// insert, in bytes, and a document's length in code points.
func (d *Docs) Limits() (maxOpBytes, maxDocLen int) {
	return d.cfg.MaxOpBytes, d.cfg.MaxDocLen
}

// Loaded returns how many documents are loaded.
func (d *Docs) Loaded() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sessions)
}

// DocStat is one loaded document's activity.
type DocStat struct {
	ID string `json:"id"`
	// Ops is how many ops it has applied since it was loaded.
	Ops     int64 `json:"ops"`
	Members int   `json:"members"`
}

// Stats returns the activity of every loaded document.
func (d *Docs) Stats() []DocStat {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DocStat, 0, len(d.sessions))
	for id, s := range d.sessions {
		out = append(out, DocStat{ID: id, Ops: s.opsApplied.Load(), Members: int(s.memberCount.Load())})
	}
	return out
}

// Close flushes and unloads every document (each writes a snapshot) and
// waits for their goroutines. Requests after Close fail with ErrClosed.
func (d *Docs) Close() {
	d.mu.Lock()
	d.closed = true
	sessions := make([]*docSession, 0, len(d.sessions))
	for _, s := range d.sessions {
		sessions = append(sessions, s)
	}
	d.mu.Unlock()
	for _, s := range sessions {
		close(s.stop)
	}
	d.wg.Wait()
}

// submit hands r to the document's goroutine, loading the document first
// if needed. It blocks while the document's queue is full.
func (d *Docs) submit(docID string, r *docRequest) {
	if r.received.IsZero() {
		r.received = time.Now()
	}
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			r.fail(ErrClosed)
			return
		}
		s := d.sessions[docID]
		if s == nil {
			s = newDocSession(d, docID)
			d.sessions[docID] = s
			d.wg.Add(1)
			go s.run()
		}
		d.mu.Unlock()
		select {
		case s.reqs <- r:
			return
		case <-s.done: // it unloaded as we came; the next one takes r
		}
	}
}

// Open opens a document for a client: a snapshot, or with version the ops
// since then. epoch, when not empty, names the incarnation the version
// belongs to: a version of another incarnation (the document was deleted
// and created again) gets a snapshot marked reset instead of ops. A
// document that does not exist is created empty when create is true,
// otherwise the client gets ErrDocNotFound. Replies go to c.Sub.
func (d *Docs) Open(c DocClient, id *int64, docID string, version *int, epoch string, create bool) {
	d.submit(docID, &docRequest{kind: reqOpen, client: c, id: id, version: version, epoch: epoch, create: create})
}

// Submit sends an op made against version.
func (d *Docs) Submit(c DocClient, id *int64, docID string, version int, op ot.Op, uid string) {
	d.submit(docID, &docRequest{kind: reqOp, client: c, id: id, version: &version, op: op, uid: uid})
}

// Cursor sets the client's cursor: ranges in the document at version.
// Errors answer request id.
func (d *Docs) Cursor(c DocClient, id *int64, docID string, version int, ranges []ot.Selection) {
	d.submit(docID, &docRequest{kind: reqCursor, client: c, id: id, version: &version, ranges: ranges})
}

// CommentRequest is a comment action.
type CommentRequest struct {
	Action string // add, edit, resolve, reopen, delete
	// CommentID names the comment for every action but add.
	CommentID string
	// Version is the version Range was made against (add).
	Version int
	Range   *ot.Range
	Text    *string
	Parent  *string
}

// Comment performs a comment action; mayModerate lets the client edit and
// delete others' comments (an admin).
func (d *Docs) Comment(c DocClient, id *int64, docID string, cr CommentRequest, mayModerate bool) {
	d.submit(docID, &docRequest{kind: reqComment, client: c, id: id, comment: cr, moderate: mayModerate})
}

// CloseDoc closes a document for a client; id, when set, is answered with
// closed.
func (d *Docs) CloseDoc(c DocClient, id *int64, docID string) {
	d.submit(docID, &docRequest{kind: reqClose, client: c, id: id})
}

// Leave removes a disconnected client from a document, without a reply.
// It never loads a document that is not loaded.
func (d *Docs) Leave(clientID, docID string) {
	d.mu.Lock()
	s := d.sessions[docID]
	d.mu.Unlock()
	if s == nil {
		return
	}
	r := &docRequest{kind: reqLeave, client: DocClient{Sub: leftClient(clientID)}}
	select {
	case s.reqs <- r:
	case <-s.done:
	}
}

// leftClient is the Subscriber of a Leave request: only its id matters.
type leftClient string

func (l leftClient) ClientID() string { return string(l) }

func (l leftClient) Send(_ []byte) bool { return false }

type reqKind uint8

const (
	reqOpen reqKind = iota
	reqOp
	reqCursor
	reqComment
	reqClose
	reqLeave
	reqServerEdit
	reqDelete
	reqRead
)

// docRequest is one request to a document's goroutine.
type docRequest struct {
	kind     reqKind
	client   DocClient
	id       *int64
	version  *int
	epoch    string // open: the client's; server edit: the one read
	create   bool
	op       ot.Op
	uid      string
	ranges   []ot.Selection
	comment  CommentRequest
	moderate bool

	// Server-side edits.
	user       string
	mustCreate bool
	done       chan<- EditResult // cap 1
	head       *headText         // reqRead: filled in before done

	received time.Time // when the request was handed over
	// parkedOut: the request waited for the log to reach its version
	// (cluster mode) and is answered now, whatever the log reached.
	parkedOut bool
}

func (r *docRequest) fail(err error) {
	if r.client.Fail != nil && r.kind != reqLeave {
		r.client.Fail(r.id, err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, doc.ErrNotFound) }

func isExists(err error) bool { return errors.Is(err, doc.ErrExists) }
