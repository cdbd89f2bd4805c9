package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

// startServerWith starts a server with its config changed by edit.
// Publishers and editors here go as fast as they can: the frame rate is
// not the subject.
func startServerWith(t *testing.T, edit func(*server.Config)) *testServer {
	t.Helper()
	return servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.File.Limits.FrameRate, c.File.Limits.FrameBurst = 1e5, 1e5
		edit(c)
	}))
}

func openDoc(t *testing.T, c *client.Client, id string) *client.Document {
	t.Helper()
	d, err := c.OpenDoc(ctxT(t), id)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	return d
}

// waitFor polls cond until it holds, failing after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 20*time.Second, what, cond)
}

var pieces = []string{"a", "b", " ", "é", "漢", "😀", "e\u0301", "\n", "word "}

// randomEdit makes a random edit, multi-byte text included, on the local
// text as it is (Edit: others' ops cannot come between reading its length
// and the edit).
func randomEdit(r *rand.Rand, d *client.Document) error {
	return d.Edit(func(text client.LocalText) ot.Op {
		n := text.Len()
		if n > 0 && r.IntN(3) == 0 {
			pos := r.IntN(n)
			return ot.Splice(pos, 1+r.IntN(min(3, n-pos)), "")
		}
		return ot.Splice(r.IntN(n+1), 0, pieces[r.IntN(len(pieces))])
	})
}

// opLog opens the document at version 0 on a raw connection and returns
// the uids of its whole history and the head version.
func opLog(t *testing.T, url, id string) ([]string, int) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	send := func(v any) {
		if err := ws.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	next := func(typ string) []byte {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			for line := range strings.SplitSeq(string(data), "\n") {
				var f struct{ Type string }
				_ = json.Unmarshal([]byte(line), &f)
				if f.Type == typ {
					return []byte(line)
				}
				if f.Type == "error" {
					t.Fatalf("waiting for %s: %s", typ, line)
				}
			}
		}
	}
	send(map[string]any{"type": "connect", "token": "", "user": "auditor"})
	next("connected")
	send(map[string]any{"id": 1, "type": "open", "doc": id, "version": 0})
	var opened proto.Opened
	if err := json.Unmarshal(next("opened"), &opened); err != nil {
		t.Fatal(err)
	}
	uids := make([]string, len(opened.Ops))
	for i, o := range opened.Ops {
		if o.Version != i {
			t.Fatalf("op %d has version %d", i, o.Version)
		}
		uids[i] = o.UID
	}
	return uids, opened.Version
}

// checkConverged checks convergence (see converged), and that the log
// holds each op once.
func checkConverged(t *testing.T, ts *testServer, id string, docs ...*client.Document) string {
	t.Helper()
	want := converged(t, ts, id, docs...)
	uids, head := opLog(t, ts.URL, id)
	if head != len(uids) {
		t.Fatalf("log: %d ops, head v%d", len(uids), head)
	}
	seen := map[string]bool{}
	for i, u := range uids {
		if seen[u] {
			t.Fatalf("uid %s applied twice (again at v%d)", u, i)
		}
		seen[u] = true
	}
	return want
}

// converged waits until every replica has its edits acknowledged and has
// caught up with the server, then checks that they all hold the server's
// text.
func converged(t *testing.T, ts *testServer, id string, docs ...*client.Document) string {
	t.Helper()
	ctx := ctxT(t)
	for i, d := range docs {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	chk := dial(t, ts.URL, func(c *client.Config) { c.User = "checker" })
	sd := openDoc(t, chk, id)
	want, v := sd.Text(), sd.Version()
	waitFor(t, fmt.Sprintf("every replica at v%d", v), func() bool {
		for _, d := range docs {
			if d.Version() != v {
				return false
			}
		}
		return true
	})
	for i, d := range docs {
		if got := d.Text(); got != want {
			t.Fatalf("replica %d at v%d: %q, server %q", i, v, got, want)
		}
	}
	if err := chk.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// mirror rebuilds a replica's text from its initial text and OnChange,
// for a replica that makes no edits of its own.
type mirror struct {
	mu   sync.Mutex
	text string
	err  error
}

func (m *mirror) apply(c client.Change) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return
	}
	if m.text, m.err = ot.Apply(m.text, c.Op); m.err == nil && c.Kind != client.ChangeRemote {
		m.err = fmt.Errorf("change of kind %v", c.Kind)
	}
}

func (m *mirror) get() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.text, m.err
}

// TestDocConverge: five clients edit one document at random, at once,
// with multi-byte text and moving cursors; all end on the server's text,
// every op is in the log once, and a sixth client that only watches
// rebuilds the same text from its OnChange ops.
func TestDocConverge(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id, writers = "converge", 5
	edits := 300
	if testing.Short() {
		edits = 60
	}
	watcher := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = "watcher" }), id)
	m := &mirror{text: watcher.Text()}
	watcher.OnChange(m.apply)
	docs := make([]*client.Document, writers)
	for i := range docs {
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = fmt.Sprintf("w%d", i) }), id)
	}
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for range edits {
				if err := randomEdit(r, d); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				switch r.IntN(4) {
				case 0:
					n := d.Len()
					_ = d.SetCursor([]ot.Selection{{Anchor: r.IntN(n + 1), Head: r.IntN(n + 1)}})
				case 1, 2:
					// Pace: some edits go out alone, others pile up in the
					// buffer.
					time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	want := checkConverged(t, ts, id, append(docs, watcher)...)
	waitFor(t, "the watcher's mirror", func() bool { got, err := m.get(); return err != nil || got == want })
	if _, err := m.get(); err != nil {
		t.Fatalf("mirror: %v", err)
	}
	t.Logf("%d code points, %d ops for %d edits", utf8.RuneCountInString(want), watcher.Version(), writers*edits)
}

// TestDocEdit: edits made with Edit land where they were meant on the
// local text they were made from, however remote ops interleave. Three
// writers each put tokens at the start or the end of the text while the
// others do the same; in the end the text is a run of whole tokens, each
// once. (Made from Len and then Insert, a remote op between the two
// moves the end, and tokens land inside others.) Edit also refuses what
// Submit refuses, changing nothing, and a nil op submits nothing.
func TestDocEdit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id, writers = "edit", 3
	edits := 200
	if testing.Short() {
		edits = 60
	}
	token := func(w, k int) string { return fmt.Sprintf("<%d.%d>", w, k) }
	docs := make([]*client.Document, writers)
	for i := range docs {
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = fmt.Sprintf("w%d", i) }), id)
	}
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			for k := range edits {
				atEnd := r.IntN(2) == 0
				err := d.Edit(func(text client.LocalText) ot.Op {
					if atEnd {
						return ot.Splice(text.Len(), 0, token(i, k))
					}
					return ot.Splice(0, 0, token(i, k))
				})
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				if r.IntN(3) == 0 {
					time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	text := checkConverged(t, ts, id, docs...)
	rest := text
	seen := map[string]bool{}
	for rest != "" {
		end := strings.IndexByte(rest, '>')
		tok := rest[:end+1]
		if end < 0 || !strings.HasPrefix(tok, "<") || strings.Count(tok, "<") != 1 || seen[tok] {
			t.Fatalf("the text is not a run of whole tokens, each once: %q at %d", rest[:min(len(rest), 40)], len(text)-len(rest))
		}
		seen[tok] = true
		rest = rest[end+1:]
	}
	if len(seen) != writers*edits {
		t.Fatalf("%d tokens in the text, %d made", len(seen), writers*edits)
	}

	d := docs[0]
	before, v := d.Text(), d.Version()
	if err := d.Edit(func(client.LocalText) ot.Op { return nil }); err != nil {
		t.Fatalf("a nil op: %v", err)
	}
	err := d.Edit(func(text client.LocalText) ot.Op { return ot.Splice(text.Len()+1, 0, "x") })
	if !errors.Is(err, ot.ErrPastEnd) {
		t.Fatalf("an op past the end: %v, want ErrPastEnd", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a panic in Edit's function did not go on up")
			}
		}()
		_ = d.Edit(func(text client.LocalText) ot.Op { return ot.Splice(0, 0, text.Slice(text.Len(), 1)) })
	}()
	if d.Text() != before || d.Version() != v || !d.Synced() { // (Text would block on a held lock)
		t.Fatal("a refused Edit changed the document")
	}
	if err := d.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	called := false
	err = d.Edit(func(client.LocalText) ot.Op { called = true; return ot.Splice(0, 0, "x") })
	if !errors.Is(err, client.ErrDocClosed) || called {
		t.Fatalf("Edit after Close: %v (f called: %v), want ErrDocClosed without calling f", err, called)
	}
}

// TestDocReconnectExactlyOnce cuts a writer's connection right after it
// submits, again and again, and sometimes keeps it away while it edits:
// after each reconnection the op in flight is resent with its uid, and in
// the end every edit is in the text exactly once and every uid in the log
// once, while another writer kept typing.
func TestDocReconnectExactlyOnce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id = "flaky"
	g := &gatedDialer{}
	statuses := make(chan client.Status, 64)
	ann := openDoc(t, dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "ann", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	}), id)
	waitStatus(t, statuses, client.StatusConnected)
	bob := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = "bob" }), id)

	stop := make(chan struct{})
	var bobEdits atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // bob types at the start of the text
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := bob.Insert(0, "b"); err != nil {
				t.Errorf("bob: %v", err)
				return
			}
			bobEdits.Add(1)
			if err := bob.WaitSynced(ctxT(t)); err != nil {
				t.Errorf("bob: %v", err)
				return
			}
		}
	})
	token := func(i int) string { return fmt.Sprintf("<%d>", i) }
	n := 0
	for round := range 12 {
		if round%3 == 2 {
			// Away for a while: edits pile up in the buffer.
			g.shut()
			g.cut()
			waitStatus(t, statuses, client.StatusReconnecting)
			for range 3 {
				if err := ann.Insert(ann.Len(), token(n)); err != nil {
					t.Fatal(err)
				}
				n++
			}
			g.open()
		} else {
			if err := ann.Insert(ann.Len(), token(n)); err != nil {
				t.Fatal(err)
			}
			n++
			g.cut() // right after the op went out
			waitStatus(t, statuses, client.StatusReconnecting)
		}
		waitStatus(t, statuses, client.StatusConnected)
	}
	close(stop)
	wg.Wait()
	text := checkConverged(t, ts, id, ann, bob)
	for i := range n {
		if c := strings.Count(text, token(i)); c != 1 {
			t.Fatalf("%s appears %d times in %q", token(i), c, text)
		}
	}
	if c := strings.Count(text, "b"); c != int(bobEdits.Load()) {
		t.Fatalf("bob typed %d times, the text has %d", bobEdits.Load(), c)
	}
	t.Logf("%d edits by ann, %d by bob", n, bobEdits.Load())
}

// TestDocServerRestart restarts the server while three clients edit: they
// reconnect, reopen from their versions, resend what was in flight, and
// converge.
func TestDocServerRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id, writers, edits = "restart", 3, 200
	docs := make([]*client.Document, writers)
	for i := range docs {
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = fmt.Sprintf("r%d", i) }), id)
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			for range edits {
				if err := randomEdit(r, d); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				done.Add(1)
				time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond) // pace: the restarts fall mid-editing
			}
		})
	}
	for k := range 2 {
		waitFor(t, "edits before the restart", func() bool { return done.Load() >= int64((k+1)*writers*edits/3) })
		ts.Restart()
	}
	wg.Wait()
	checkConverged(t, ts, id, docs...)
}

// TestDocCursors: a member's cursor reaches the others in their own
// positions: moved through their local edits, through their pending ops
// when they reopen after a reconnection, and past text its owner types at
// it.
func TestDocCursors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id = "cursors"
	ann := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = "ann" }), id)
	g := &gatedDialer{}
	statuses := make(chan client.Status, 16)
	bob := openDoc(t, dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "bob", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	}), id)
	waitStatus(t, statuses, client.StatusConnected)
	cursors := make(chan client.Cursor, 16)
	bob.OnCursor(func(c client.Cursor) { cursors <- c })
	ctx := ctxT(t)

	if err := ann.Insert(0, "héllo wörld"); err != nil {
		t.Fatal(err)
	}
	if err := ann.SetCursor([]ot.Selection{{Anchor: 6, Head: 11}}); err != nil { // "wörld"
		t.Fatal(err)
	}
	c := recv(t, cursors, "ann's cursor")
	if c.User.ID != "ann" || !slices.Equal(c.Ranges, []ot.Selection{{Anchor: 6, Head: 11}}) {
		t.Fatalf("bob got %+v, want ann's selection 6..11", c)
	}
	if bob.Text() != "héllo wörld" {
		t.Fatalf("bob has %q", bob.Text())
	}

	// Bob's own edit before the selection moves it at once.
	if err := bob.Insert(0, "¡"); err != nil {
		t.Fatal(err)
	}
	if got := bob.Cursors(); len(got) != 1 || got[0].Ranges[0] != (ot.Selection{Anchor: 7, Head: 12}) {
		t.Fatalf("after bob's edit, bob sees %+v, want 7..12", got)
	}
	if err := bob.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	// Bob goes away and edits; when he comes back the server gives him
	// ann's cursor at its version, and he moves it through his pending op.
	g.shut()
	g.cut()
	waitStatus(t, statuses, client.StatusReconnecting)
	if err := bob.Insert(1, "¡¡"); err != nil {
		t.Fatal(err)
	}
	g.open()
	waitStatus(t, statuses, client.StatusConnected)
	c = recv(t, cursors, "ann's cursor after the reopen")
	if c.Ranges[0] != (ot.Selection{Anchor: 9, Head: 14}) {
		t.Fatalf("after the reopen bob got %+v, want 9..14 (through his pending op)", c)
	}
	if err := bob.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	// Ann types at her caret (a bare caret at the end of "wörld"): her
	// caret moves past her text on bob's side too.
	waitFor(t, "ann at bob's version", func() bool { return ann.Version() == bob.Version() })
	if err := ann.SetCursor([]ot.Selection{{Anchor: 14, Head: 14}}); err != nil {
		t.Fatal(err)
	}
	c = recv(t, cursors, "ann's caret")
	if c.Ranges[0] != (ot.Selection{Anchor: 14, Head: 14}) {
		t.Fatalf("bob got %+v, want a caret at 14", c)
	}
	if err := ann.Insert(14, "!"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ann's edit at bob", func() bool { return bob.Text() == "¡¡¡héllo wörld!" })
	if got := bob.Cursors(); got[0].Ranges[0] != (ot.Selection{Anchor: 15, Head: 15}) {
		t.Fatalf("bob sees ann's caret at %+v, want 15", got[0].Ranges)
	}

	// Bob's own cursor reaches ann, and leaves with bob.
	acur := make(chan client.Cursor, 4)
	ann.OnCursor(func(c client.Cursor) { acur <- c })
	left := make(chan client.PresenceEvent, 4)
	ann.OnPresence(func(e client.PresenceEvent) { left <- e })
	if err := bob.SetCursor([]ot.Selection{{Anchor: 3, Head: 3}}); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, acur, "bob's caret"); c.User.ID != "bob" || c.Ranges[0] != (ot.Selection{Anchor: 3, Head: 3}) {
		t.Fatalf("ann got %+v", c)
	}
	if n := len(ann.Members()); n != 2 {
		t.Fatalf("ann sees %d members, want 2", n)
	}
	if err := bob.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, left, "bob leaving"); e.Event != "leave" || e.Member.User.ID != "bob" {
		t.Fatalf("ann got %+v", e)
	}
	if n := len(ann.Cursors()); n != 0 {
		t.Fatalf("ann still sees %d cursors", n)
	}
}

// TestDocComments: add, reply, edit, resolve, reopen and delete round
// trip between two clients; ranges follow the text. (Development-mode
// guests are admins, so TestDocBadSubmissions checks that someone else's
// comment cannot be deleted.)
func TestDocComments(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id = "comments"
	ctx := ctxT(t)
	ann := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = "ann" }), id)
	bob := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = "bob" }), id)
	events := make(chan client.CommentEvent, 16)
	bob.OnComment(func(e client.CommentEvent) { events <- e })

	// Ann comments on text she has just typed, not yet acknowledged.
	if err := ann.Insert(0, "hello wörld"); err != nil {
		t.Fatal(err)
	}
	cm, err := ann.AddComment(ctx, ot.Range{From: 6, To: 11}, "which world? @bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Range != (ot.Range{From: 6, To: 11}) || cm.User.ID != "ann" || cm.Parent != "" {
		t.Fatalf("ann's comment: %+v", cm)
	}
	e := recv(t, events, "the comment at bob")
	if e.Action != "add" || e.Comment.ID != cm.ID || e.Comment.Range != cm.Range {
		t.Fatalf("bob got %+v, want %+v", e, cm)
	}
	if bob.Text() != "hello wörld" {
		t.Fatalf("bob has %q", bob.Text())
	}

	// Text typed before the range moves it.
	if err := bob.Insert(0, "¡"); err != nil {
		t.Fatal(err)
	}
	if got := bob.Comments(); len(got) != 1 || got[0].Range != (ot.Range{From: 7, To: 12}) {
		t.Fatalf("bob's comments after his edit: %+v", got)
	}
	reply, err := bob.AddComment(ctx, ot.Range{}, "this one", cm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Parent != cm.ID || reply.Range != (ot.Range{From: 7, To: 12}) {
		t.Fatalf("reply %+v: want it on its thread's text", reply)
	}
	recv(t, events, "bob's own reply")
	waitFor(t, "ann to see the reply", func() bool { return len(ann.Comments()) == 2 })

	if err := ann.EditComment(ctx, cm.ID, "which wörld?"); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "the edit"); e.Action != "edit" || e.Comment.Text != "which wörld?" {
		t.Fatalf("bob got %+v", e)
	}
	if err := bob.ResolveComment(ctx, cm.ID); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "the resolve"); e.Action != "resolve" || !e.Comment.Resolved {
		t.Fatalf("bob got %+v", e)
	}
	waitFor(t, "ann to see it resolved", func() bool {
		for _, c := range ann.Comments() {
			if c.ID == cm.ID {
				return c.Resolved
			}
		}
		return false
	})
	if err := ann.ReopenComment(ctx, cm.ID); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "the reopen"); e.Action != "reopen" || e.Comment.Resolved {
		t.Fatalf("bob got %+v", e)
	}

	var ce *client.Error
	if err := bob.EditComment(ctx, "cm_nope", "x"); !errors.As(err, &ce) || ce.Code != proto.CodeBadRequest {
		t.Fatalf("editing a missing comment: %v, want bad_request", err)
	}
	if _, err := bob.AddComment(ctx, ot.Range{From: 5, To: 99}, "x", ""); !errors.Is(err, ot.ErrPastEnd) {
		t.Fatalf("a range past the end: %v", err)
	}
	if err := ann.DeleteComment(ctx, cm.ID); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "the delete"); e.Action != "delete" || e.Comment.ID != cm.ID {
		t.Fatalf("bob got %+v", e)
	}
	if got := bob.Comments(); len(got) != 1 || got[0].ID != reply.ID {
		t.Fatalf("bob's comments after the delete: %+v, want the reply only", got)
	}

	// A deleted document ends for everyone in it.
	closed := make(chan error, 1)
	bob.OnClosed(func(err error) { closed <- err })
	if err := ts.Server().Docs.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, closed, "bob's document to close"); !errors.Is(err, client.ErrDocDeleted) {
		t.Fatalf("closed with %v", err)
	}
	<-ann.Done()
	if err := ann.Insert(0, "x"); !errors.Is(err, client.ErrDocDeleted) {
		t.Fatalf("insert into a deleted document: %v", err)
	}
}

// TestDocBadSubmissions: edits the client can check are refused at once;
// an edit over the server's op limit is split; an edit the server rejects
// (the document would be too large) is undone and reported once while the
// edits after it stand, and when it was split the rest of it is undone with
// it, unsent; a read-only user's edits are undone; the document keeps
// working and converges.
func TestDocBadSubmissions(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *server.Config) {
		c.JWTSecret = secret
		c.File.Limits.MaxOpBytes = 1000
		c.File.Limits.MaxDocLen = 1300
	})
	const id = "bad"
	ctx := ctxT(t)
	token := func(user string, allow ...string) string {
		tok, err := auth.NewVerifier([]byte(secret)).Mint(user, user, allow, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	writer := func(user string) string { return token(user, "read:doc:*", "write:doc:*", "comment:doc:*") }

	ann := dial(t, ts.URL, func(c *client.Config) { c.Token = writer("ann") })
	if _, err := ann.OpenDoc(ctx, "bad id!"); !isCode(err, proto.CodeBadRequest) {
		t.Fatalf("open with a bad id: %v", err)
	}
	da := openDoc(t, ann, id)
	if _, err := ann.OpenDoc(ctx, id); !errors.Is(err, client.ErrDocOpen) {
		t.Fatalf("open twice: %v", err)
	}
	errs := make(chan error, 4)
	changes := make(chan client.Change, 4)
	da.OnError(func(err error) { errs <- err })
	da.OnChange(func(c client.Change) { changes <- c })

	// Refused locally; nothing changes.
	if err := da.Insert(0, "héllo"); err != nil {
		t.Fatal(err)
	}
	for _, op := range []ot.Op{
		{ot.Retain(9), ot.Insert("x")}, // past the end
		{ot.Delete(6)},                 // past the end
		{ot.Insert("x"), ot.Retain(0)}, // zero length
		{ot.Insert("\xff")},            // invalid UTF-8
		{ot.Retain(2), ot.Delete(0)},   // zero length
	} {
		if err := da.Submit(op); err == nil {
			t.Fatalf("Submit(%v) on %q succeeded", op, da.Text())
		}
	}
	if err := da.Delete(3, 9); !errors.Is(err, ot.ErrPastEnd) {
		t.Fatalf("delete past the end: %v", err)
	}
	if err := da.SetCursor([]ot.Selection{{Anchor: 0, Head: 7}}); !errors.Is(err, ot.ErrPastEnd) {
		t.Fatalf("cursor past the end: %v", err)
	}

	// Over the server's op limit (1000 bytes, which the client learnt
	// from connected): split, and every piece lands.
	if l := ann.Limits(); l.MaxOpBytes != 1000 || l.MaxDocLen != 1300 || l.MaxFrameBytes != 64<<10 {
		t.Fatalf("ann's limits %+v, want the server's", l)
	}
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("é", 600) // 1200 bytes
	if err := da.Insert(5, big); err != nil {
		t.Fatal(err)
	}
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("the split edit was refused: %v", <-errs)
	}

	// Over the document limit (1300 code points): rejected, undone, and
	// reported once; the edit made after it stands.
	if err := da.Insert(0, strings.Repeat("x", 800)); err != nil {
		t.Fatal(err)
	}
	if err := da.Insert(0, "¡"); err != nil { // buffered behind the big one
		t.Fatal(err)
	}
	var oe *client.OpError
	if err := recv(t, errs, "the rejection"); !errors.As(err, &oe) || oe.Err.Code != proto.CodeTooLarge || len(oe.Rest) != 0 {
		t.Fatalf("OnError got %v, want an *OpError with too_large", err)
	}
	if c := recv(t, changes, "the undo"); c.Kind != client.ChangeUndo || c.UID != oe.UID {
		t.Fatalf("OnChange got %+v, want the undo of %s", c, oe.UID)
	}
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got := da.Text(); got != "¡héllo"+big {
		t.Fatalf("after the rejection ann has %q, want %q", got, "¡héllo"+big)
	}

	// A split edit over the document limit: its first piece is refused,
	// and the rest is undone with it without being sent: one error.
	if err := da.Insert(7, strings.Repeat("y", 2500)); err != nil { // three pieces
		t.Fatal(err)
	}
	if err := recv(t, errs, "the split edit's rejection"); !errors.As(err, &oe) || oe.Err.Code != proto.CodeTooLarge || len(oe.Rest) != 2 {
		t.Fatalf("OnError got %v, want an *OpError with too_large and two pieces undone with it", err)
	}
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("a second error for the same edit: %v", <-errs)
	}
	if got := da.Text(); got != "¡héllo"+big {
		t.Fatalf("after the rejection of the split edit ann has %q, want %q", got, "¡héllo"+big)
	}
	for len(changes) > 0 {
		<-changes
	}

	// A client configured below the server's op limit splits by its own.
	bob := dial(t, ts.URL, func(c *client.Config) { c.Token, c.MaxOpBytes = writer("bob"), 300 })
	if l := bob.Limits(); l.MaxOpBytes != 300 {
		t.Fatalf("bob's op limit %d, want 300", l.MaxOpBytes)
	}
	db := openDoc(t, bob, id)
	if err := db.Insert(6, strings.Repeat("ü", 200)); err != nil {
		t.Fatal(err)
	}

	// A reader may not write: the edit is undone.
	cat := dial(t, ts.URL, func(c *client.Config) { c.Token = token("cat", "read:doc:*") })
	if _, err := cat.OpenDoc(ctx, "missing"); !isCode(err, proto.CodeNotFound) {
		t.Fatalf("a reader opening a missing document: %v, want not_found", err)
	}
	dc := openDoc(t, cat, id)
	cerrs := make(chan error, 4)
	dc.OnError(func(err error) { cerrs <- err })
	if err := dc.Insert(0, "cat was here"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, cerrs, "cat's rejection"); !errors.As(err, &oe) || oe.Err.Code != proto.CodeForbidden {
		t.Fatalf("cat got %v, want forbidden", err)
	}
	if _, err := dc.AddComment(ctx, ot.Range{}, "meow", ""); !isCode(err, proto.CodeForbidden) {
		t.Fatalf("a reader commenting: %v, want forbidden", err)
	}
	cm, err := da.AddComment(ctx, ot.Range{From: 1, To: 3}, "ann's", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteComment(ctx, cm.ID); !isCode(err, proto.CodeForbidden) {
		t.Fatalf("bob deleting ann's comment: %v, want forbidden", err)
	}
	if err := db.ResolveComment(ctx, cm.ID); err != nil {
		t.Fatalf("bob resolving ann's comment: %v", err)
	}

	if got := checkConvergedProd(t, ts, id, token("checker", "read:doc:*"), da, db, dc); got != "¡héllo"+strings.Repeat("ü", 200)+big {
		t.Fatalf("final text %q", got)
	}
}

func isCode(err error, code string) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == code
}

// checkConvergedProd checks convergence on a production server (no op
// log over a guest connection there).
func checkConvergedProd(t *testing.T, ts *testServer, id, token string, docs ...*client.Document) string {
	t.Helper()
	ctx := ctxT(t)
	for i, d := range docs {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	sd := openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.Token = token }), id)
	want, v := sd.Text(), sd.Version()
	waitFor(t, "every replica at the head", func() bool {
		for _, d := range docs {
			if d.Version() != v {
				return false
			}
		}
		return true
	})
	for i, d := range docs {
		if got := d.Text(); got != want {
			t.Fatalf("replica %d: %q, server %q", i, got, want)
		}
	}
	return want
}

// TestDocHistoryGone: a client comes back after the history it needs was
// compacted away; it reloads from a snapshot and reports its pending edit
// as lost.
func TestDocHistoryGone(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *server.Config) { c.DocIdleTimeout = 50 * time.Millisecond })
	const id = "compacted"
	ctx := ctxT(t)
	g := &gatedDialer{}
	statuses := make(chan client.Status, 16)
	ann := openDoc(t, dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "ann", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	}), id)
	waitStatus(t, statuses, client.StatusConnected)
	if err := ann.Insert(0, "one "); err != nil {
		t.Fatal(err)
	}
	if err := ann.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	lost := make(chan client.Lost, 1)
	ann.OnLost(func(l client.Lost) { lost <- l })
	changes := make(chan client.Change, 8)
	ann.OnChange(func(c client.Change) { changes <- c })

	g.shut()
	g.cut()
	waitStatus(t, statuses, client.StatusReconnecting)
	if err := ann.Insert(4, "two"); err != nil { // pending while away
		t.Fatal(err)
	}
	bob := dial(t, ts.URL, func(c *client.Config) { c.User = "bob" })
	db := openDoc(t, bob, id)
	for i := range 5 {
		if err := db.Insert(0, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	head := db.Version()
	waitFor(t, "the document to unload", func() bool { return ts.Server().Docs.Loaded() == 0 })
	if err := ts.Server().DB.Compact(ctx, id, head); err != nil {
		t.Fatal(err)
	}
	g.open()
	l := recv(t, lost, "the lost edit")
	if l.Version != 1 || l.Text != "one two" || len(l.Ops) != 1 {
		t.Fatalf("lost %+v", l)
	}
	if c := recv(t, changes, "the reload"); c.Kind != client.ChangeReload || c.Version != head {
		t.Fatalf("change %+v, want a reload at v%d", c, head)
	}
	if got := ann.Text(); got != "43210one " {
		t.Fatalf("ann has %q after the reload", got)
	}
	if err := ann.Insert(0, "ok "); err != nil {
		t.Fatal(err)
	}
	converged(t, ts, id, ann)
}

// TestDocChaos: four clients edit at random while their connections are
// cut at random and the server restarts twice; they converge and every op
// is in the log once.
func TestDocChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of chaos")
	}
	t.Parallel()
	ts := startServer(t, false)
	const id, n = "chaos", 4
	gates := make([]*gatedDialer, n)
	docs := make([]*client.Document, n)
	for i := range n {
		gates[i] = &gatedDialer{}
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) {
			c.User, c.Dialer = fmt.Sprintf("x%d", i), gates[i].dialer()
		}), id)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 13))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := randomEdit(r, d); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				if r.IntN(5) == 0 {
					n := d.Len()
					_ = d.SetCursor([]ot.Selection{{Anchor: r.IntN(n + 1), Head: r.IntN(n + 1)}})
				}
				time.Sleep(time.Duration(r.IntN(1500)) * time.Microsecond) // pace
			}
		})
	}
	r := rand.New(rand.NewPCG(99, 13))
	for k := range 60 {
		time.Sleep(time.Duration(r.IntN(40)) * time.Millisecond) // pace
		if k == 20 || k == 40 {
			ts.Restart()
			continue
		}
		g := gates[r.IntN(n)]
		g.mu.Lock()
		if g.last != nil {
			_ = g.last.Close()
		}
		g.mu.Unlock()
	}
	close(stop)
	wg.Wait()
	text := checkConverged(t, ts, id, docs...)
	t.Logf("%d code points at v%d", utf8.RuneCountInString(text), docs[0].Version())
}

// TestDocRejectedConcurrently: with a server document limit that the
// writers soon reach, ops are rejected and undone while others edit; the
// replicas still converge.
func TestDocRejectedConcurrently(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *server.Config) { c.File.Limits.MaxDocLen = 100 })
	const id, n = "rejected", 4
	docs := make([]*client.Document, n)
	var rejected atomic.Int64
	for i := range n {
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) { c.User = fmt.Sprintf("j%d", i) }), id)
		docs[i].OnError(func(err error) {
			var oe *client.OpError
			if !errors.As(err, &oe) || oe.Err.Code != proto.CodeTooLarge {
				t.Errorf("OnError: %v", err)
			}
			rejected.Add(1)
		})
	}
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 17))
			for range 200 {
				if err := randomEdit(r, d); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				time.Sleep(time.Duration(r.IntN(1500)) * time.Microsecond) // pace
			}
		})
	}
	wg.Wait()
	checkConverged(t, ts, id, docs...)
	if rejected.Load() == 0 {
		t.Fatal("no op was rejected")
	}
	t.Logf("%d ops rejected", rejected.Load())
}

// TestDocRateLimited: ops the server refuses for now (rate_limited) are
// sent again later with their uid, with no error for the user.
func TestDocRateLimited(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *server.Config) { c.File.Limits.OpRate, c.File.Limits.OpBurst = 30, 3 })
	const id, n = "limited", 3
	var retries atomic.Int64
	hook := zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		if strings.HasPrefix(msg, "op refused for now") {
			retries.Add(1)
		}
	})
	docs := make([]*client.Document, n)
	for i := range n {
		docs[i] = openDoc(t, dial(t, ts.URL, func(c *client.Config) {
			c.User = "same" // the limit is per user
			c.Logger = zerolog.Nop().Level(zerolog.DebugLevel).Hook(hook)
		}), id)
		docs[i].OnError(func(err error) { t.Errorf("OnError: %v", err) })
	}
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 19))
			for range 100 {
				if err := randomEdit(r, d); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond) // pace
			}
		})
	}
	wg.Wait()
	checkConverged(t, ts, id, docs...)
	if retries.Load() == 0 {
		t.Fatal("the server never rate limited")
	}
}

// TestDocEpochReset is the reproduction of issue 13's "documents have no
// epoch": while ann is away, her document is deleted and created again
// under the same id, and the new one gets more ops than her version. She
// reopens with her version and the old epoch: the server answers with the
// new document's snapshot marked reset (not its ops, which on her old text
// made "heldeflo"), she converges to the new text, her pending edit of the
// dead document goes to OnLost, and the app hears a ChangeReset.
func TestDocEpochReset(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id = "reborn"
	ctx := ctxT(t)
	g := &gatedDialer{}
	statuses := make(chan client.Status, 16)
	ann := openDoc(t, dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "ann", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	}), id)
	waitStatus(t, statuses, client.StatusConnected)
	if err := ann.Insert(0, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := ann.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	oldEpoch := ann.Epoch()
	if oldEpoch == "" {
		t.Fatal("no epoch after the snapshot")
	}
	lost := make(chan client.Lost, 1)
	ann.OnLost(func(l client.Lost) { lost <- l })
	changes := make(chan client.Change, 8)
	ann.OnChange(func(c client.Change) { changes <- c })

	g.shut()
	g.cut()
	waitStatus(t, statuses, client.StatusReconnecting)
	if err := ann.Insert(5, "!"); err != nil { // pending while away
		t.Fatal(err)
	}
	if err := ts.Server().Docs.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	bob := dial(t, ts.URL, func(c *client.Config) { c.User = "bob" })
	bd := openDoc(t, bob, id)
	for i, ch := range "abcdef" { // one op each: the new document passes ann's version
		if err := bd.Insert(i, string(ch)); err != nil {
			t.Fatal(err)
		}
		if err := bd.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if bd.Version() <= ann.Version() {
		t.Fatalf("setup: the new document is at v%d, ann at v%d", bd.Version(), ann.Version())
	}
	g.open()
	if c := recv(t, changes, "the reset"); c.Kind != client.ChangeReset || c.Version != bd.Version() {
		t.Fatalf("change %+v (%v), want a reset to v%d", c, c.Kind, bd.Version())
	}
	if l := recv(t, lost, "the lost edit"); l.Text != "hello!" || len(l.Ops) != 1 {
		t.Fatalf("lost %+v", l)
	}
	if got := ann.Text(); got != "abcdef" {
		t.Fatalf("ann has %q after the reset, want %q", got, "abcdef")
	}
	if e := ann.Epoch(); e == oldEpoch || e == "" || e != bd.Epoch() {
		t.Fatalf("ann's epoch %q, old %q, bob's %q", e, oldEpoch, bd.Epoch())
	}
	if err := ann.Insert(6, "!"); err != nil {
		t.Fatal(err)
	}
	if got := converged(t, ts, id, ann, bd); got != "abcdef!" {
		t.Fatalf("converged on %q", got)
	}
}

// TestDocLargeEdit: a 1 MB paste, much of it escaped six-fold in JSON, is
// sent as ops whose frames fit the server's frame limit (here 32 KiB, below
// the op limit, so that the encoded size is what binds): it reaches another
// client and the connection is never closed for a frame too large.
func TestDocLargeEdit(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *server.Config) { c.File.Limits.MaxFrameBytes = 32 << 10 })
	const id = "large"
	var drops atomic.Int64
	ann := dial(t, ts.URL, func(c *client.Config) {
		c.User = "ann"
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusReconnecting {
				drops.Add(1)
				t.Errorf("ann's connection dropped: %v", err)
			}
		}
	})
	if l := ann.Limits(); l.MaxFrameBytes != 32<<10 || l.MaxOpBytes != 64<<10 {
		t.Fatalf("limits %+v, want the server's", l)
	}
	bob := dial(t, ts.URL, func(c *client.Config) { c.User = "bob" })
	da, db := openDoc(t, ann, id), openDoc(t, bob, id)
	var sb strings.Builder
	r := rand.New(rand.NewPCG(3, 4))
	chars := []string{"a", "<", "\x01", "\n", "\"", "é", "😀", "\u2028"}
	for sb.Len() < 1<<20 {
		sb.WriteString(chars[r.IntN(len(chars))])
	}
	paste := sb.String()
	if err := da.Insert(0, "start "); err != nil {
		t.Fatal(err)
	}
	if err := da.Insert(6, paste); err != nil {
		t.Fatal(err)
	}
	if err := da.Insert(0, "» "); err != nil { // typed while the paste goes out
		t.Fatal(err)
	}
	want := "» start " + paste
	// A generous bound for the hundred-odd ops, one round trip each, on a
	// busy machine (ctxT's 20 s is for small edits).
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, d := range []*client.Document{da, db} {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := checkConverged(t, ts, id, da, db); got != want {
		t.Fatalf("the server has %d bytes, want %d", len(got), len(want))
	}
	if v := da.Version(); v < (1<<20)/(32<<10) {
		t.Fatalf("the paste took %d versions: it was not split to the frame limit", v)
	}
	if drops.Load() != 0 {
		t.Fatalf("%d drops", drops.Load())
	}
}

// TestDocHandlersFromOpen: the callbacks passed to OpenDoc get the events
// that arrive right after the snapshot, before OpenDoc returns: here a
// remote op, a cursor and a member joining arrive, and are dispatched,
// while OpenDoc is held between the snapshot and its return. A caller that
// set its callbacks after OpenDoc returned would have missed all three.
func TestDocHandlersFromOpen(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const id = "early"
	ann := dial(t, ts.URL, func(c *client.Config) { c.User = "ann" })
	bob := dial(t, ts.URL, func(c *client.Config) { c.User = "bob" })
	cat := dial(t, ts.URL, func(c *client.Config) { c.User = "cat" })
	da := openDoc(t, ann, id)
	if err := da.Insert(0, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := da.WaitSynced(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		changes  []client.Change
		cursors  []client.Cursor
		presence []client.PresenceEvent
	)
	client.SetOpenedHook(bob, func(db *client.Document) {
		// The snapshot is in; OpenDoc has not returned yet.
		if got := db.Text(); got != "hello" {
			t.Errorf("snapshot %q, want %q", got, "hello")
		}
		if err := da.Insert(5, " world"); err != nil {
			t.Error(err)
		}
		if err := da.SetCursor([]ot.Selection{{Anchor: 0, Head: 5}}); err != nil {
			t.Error(err)
		}
		if _, err := cat.OpenDoc(ctxT(t), id); err != nil {
			t.Error(err)
		}
		waitFor(t, "the op, the cursor and the join to reach bob", func() bool {
			return db.Text() == "hello world" && len(db.Cursors()) == 1 && len(db.Members()) == 3
		})
		client.DrainCallbacks(bob) // their callbacks have run
	})
	db, err := bob.OpenDoc(ctxT(t), id, client.DocHandlers{
		OnChange: func(ch client.Change) { mu.Lock(); changes = append(changes, ch); mu.Unlock() },
		OnCursor: func(c client.Cursor) { mu.Lock(); cursors = append(cursors, c); mu.Unlock() },
		OnPresence: func(e client.PresenceEvent) {
			if e.Member.User.ID == "cat" {
				mu.Lock()
				presence = append(presence, e)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || changes[0].Kind != client.ChangeRemote || changes[0].User != "ann" || changes[0].Version != 2 {
		t.Fatalf("changes before OpenDoc returned: %+v, want ann's op to v2", changes)
	}
	if got, err := ot.Apply("hello", changes[0].Op); err != nil || got != "hello world" {
		t.Errorf("the change applied to the snapshot gives %q (%v)", got, err)
	}
	if len(cursors) == 0 || cursors[len(cursors)-1].User.ID != "ann" || cursors[len(cursors)-1].Ranges[0] != (ot.Selection{Anchor: 0, Head: 5}) {
		t.Errorf("cursors before OpenDoc returned: %+v, want ann's [0,5]", cursors)
	}
	if len(presence) != 1 || presence[0].Event != "join" {
		t.Errorf("presence before OpenDoc returned: %+v, want cat's join", presence)
	}
	if db.Text() != "hello world" {
		t.Errorf("text %q", db.Text())
	}
}
