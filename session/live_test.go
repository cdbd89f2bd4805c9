package session_test

// Integration tests of live documents: the real server (server) on
// 127.0.0.1, a real bbolt file, real WebSockets speaking the protocol, and
// on the client side the OT client algorithm of PROTOCOL.md (one op in
// flight, later edits composed, incoming ops transformed over both).

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childServerEnv) != "" {
		runChildServer()
		return
	}
	goleak.VerifyTestMain(m)
}

// liveServer is a real server in this process (server/servertest).
type liveServer = servertest.Server

// startLive starts a server with its config changed by edit (if not nil);
// the test's cleanup stops it.
func startLive(tb testing.TB, edit func(*server.Config)) *liveServer {
	tb.Helper()
	return servertest.Start(tb, servertest.WithConfig(func(c *server.Config) {
		if edit != nil {
			edit(c)
		}
	}))
}

// wsConn is a raw protocol connection: frames out, objects in.
type wsConn struct {
	tb   testing.TB
	ws   *websocket.Conn
	in   chan map[string]json.RawMessage
	done chan struct{}
	wmu  sync.Mutex // guards writes and nextID
	next int64
	// closeCode is the close code the server sent, once done is closed.
	closeCode int
}

func dialWS(tb testing.TB, url, user string) *wsConn {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	c := &wsConn{tb: tb, ws: ws, in: make(chan map[string]json.RawMessage, 1<<16), done: make(chan struct{})}
	go c.readLoop()
	tb.Cleanup(func() { c.close() })
	c.send(map[string]any{"type": "connect", "token": "", "user": user, "name": strings.ToUpper(user[:1]) + user[1:]})
	c.expect("connected")
	return c
}

func (c *wsConn) readLoop() {
	defer close(c.done)
	defer close(c.in)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				c.closeCode = ce.Code
			}
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				c.tb.Errorf("server sent bad JSON %q: %v", line, err)
				return
			}
			c.in <- m
		}
	}
}

func (c *wsConn) send(v map[string]any) int64 {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.next++
	if _, ok := v["id"]; !ok {
		v["id"] = c.next
	}
	if err := c.ws.WriteJSON(v); err != nil {
		return 0 // the connection is gone; the reader reports it
	}
	return c.next
}

func (c *wsConn) close() { _ = c.ws.Close(); <-c.done }

// drop closes the TCP connection without a close frame.
func (c *wsConn) drop() { _ = c.ws.UnderlyingConn().Close(); <-c.done }

// expect returns the next object of type typ, failing on an error frame or
// a timeout; objects of other types are skipped.
func (c *wsConn) expect(typ string) map[string]json.RawMessage {
	c.tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.tb.Fatalf("connection closed (code %d) waiting for %s", c.closeCode, typ)
			}
			t := str(m["type"])
			if t == typ {
				return m
			}
			if t == "error" && typ != "error" {
				c.tb.Fatalf("waiting for %s, got error %s: %s", typ, m["code"], m["message"])
			}
		case <-timeout:
			c.tb.Fatalf("timed out waiting for %s", typ)
		}
	}
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func num(raw json.RawMessage) int {
	var n int
	_ = json.Unmarshal(raw, &n)
	return n
}

// editor is a document replica that runs the OT client algorithm over a
// wsConn: at most one op in flight, later edits composed into a buffer,
// incoming ops transformed over both (the incoming op's inserts first).
type editor struct {
	tb  testing.TB
	c   *wsConn
	doc string
	uid string

	mu       sync.Mutex // guards the fields below
	text     string
	version  int // server versions seen
	inflight ot.Op
	inUID    string
	buffer   ot.Op
	seq      int
	acked    []string // uids acked
	cursors  map[string][]ot.Selection
	left     map[string]bool // client ids that left
	notify   chan struct{}   // cap 1: something arrived
}

func openEditor(tb testing.TB, c *wsConn, docID, uidPrefix string) *editor {
	tb.Helper()
	c.send(map[string]any{"type": "open", "doc": docID})
	snap := c.expectWithin("snapshot", time.Minute) // a large document takes the race detector a while
	e := &editor{tb: tb, c: c, doc: docID, uid: uidPrefix, text: str(snap["content"]), version: num(snap["version"]),
		cursors: map[string][]ot.Selection{}, left: map[string]bool{}, notify: make(chan struct{}, 1)}
	go e.loop()
	return e
}

// loop applies what the server sends on c.
func (e *editor) loop() {
	e.mu.Lock()
	c := e.c
	e.mu.Unlock()
	for m := range c.in {
		e.mu.Lock()
		switch str(m["type"]) {
		case "ack":
			if str(m["uid"]) != e.inUID || e.inflight == nil {
				break // a resend's ack whose op arrived already as an op
			}
			if v := num(m["version"]); v != e.version {
				e.tb.Errorf("%s: ack for v%d at v%d", e.uid, v, e.version)
			}
			e.ackLocked()
		case "op":
			if v := num(m["version"]); v != e.version {
				e.tb.Errorf("%s: op for v%d at v%d", e.uid, v, e.version)
			}
			var op ot.Op
			if err := json.Unmarshal(m["op"], &op); err != nil {
				e.tb.Errorf("bad op: %v", err)
			}
			e.incomingLocked(op, str(m["uid"]))
		case "cursor":
			var rs []ot.Selection
			_ = json.Unmarshal(m["ranges"], &rs)
			e.cursors[str(m["client_id"])] = rs
		case "presence":
			var mem proto.Member
			_ = json.Unmarshal(m["member"], &mem)
			if str(m["event"]) == "leave" {
				e.left[mem.ClientID] = true
				delete(e.cursors, mem.ClientID)
			}
		case "error":
			e.tb.Errorf("%s: error %s: %s", e.uid, m["code"], m["message"])
		}
		e.mu.Unlock()
		select {
		case e.notify <- struct{}{}:
		default:
		}
	}
}

// incomingLocked applies an op from the server: our own op in flight (seen
// again after a reconnect) acks; anyone else's is transformed over what is
// pending, the incoming op's inserts first.
func (e *editor) incomingLocked(op ot.Op, uid string) {
	if e.inflight != nil && uid == e.inUID {
		e.ackLocked()
		return
	}
	var err error
	if e.inflight != nil {
		op, e.inflight, err = ot.Transform(op, e.inflight)
	}
	if err == nil && e.buffer != nil {
		op, e.buffer, err = ot.Transform(op, e.buffer)
	}
	if err == nil {
		e.text, err = ot.Apply(e.text, op)
	}
	if err != nil {
		e.tb.Errorf("%s: incoming op: %v", e.uid, err)
	}
	e.version++
}

// reconnect replaces a dropped connection: it dials until the server
// answers, reopens the document at the version it knows, applies what it
// missed (finding its own op in flight by uid) and resends what is pending
// with the same uid.
func (e *editor) reconnect(url, user string) {
	var c *wsConn
	deadline := time.Now().Add(20 * time.Second)
	for {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			c = &wsConn{tb: e.tb, ws: ws, in: make(chan map[string]json.RawMessage, 1<<16), done: make(chan struct{})}
			go c.readLoop()
			e.tb.Cleanup(func() { c.close() })
			break
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("reconnect: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.send(map[string]any{"type": "connect", "token": "", "user": user})
	c.expect("connected")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.c = c
	c.send(map[string]any{"type": "open", "doc": e.doc, "version": e.version})
	opened := c.expect("opened")
	var ops []proto.DocOp
	if err := json.Unmarshal(opened["ops"], &ops); err != nil {
		e.tb.Fatal(err)
	}
	for _, o := range ops {
		e.incomingLocked(o.Op, o.UID)
	}
	if e.inflight != nil {
		c.send(map[string]any{"type": "op", "doc": e.doc, "version": e.version, "op": e.inflight, "uid": e.inUID})
	}
	go e.loop()
}

// ackLocked completes the op in flight and sends the buffer.
func (e *editor) ackLocked() {
	e.version++
	e.acked = append(e.acked, e.inUID)
	e.inflight = nil
	if e.buffer != nil {
		e.sendLocked(e.buffer)
		e.buffer = nil
	}
}

func (e *editor) sendLocked(op ot.Op) {
	e.seq++
	e.inflight, e.inUID = op, fmt.Sprintf("%s-%d", e.uid, e.seq)
	e.c.send(map[string]any{"type": "op", "doc": e.doc, "version": e.version, "op": op, "uid": e.inUID})
}

// edit makes a local edit and sends or buffers it.
func (e *editor) edit(op ot.Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.editLocked(op)
}

// editWith makes the edit that compute derives from the current text, both
// under the lock, so that no remote op lands between reading the text and
// applying the edit (which would shift its position). compute returns false
// for no edit.
func (e *editor) editWith(compute func(text string) (ot.Op, bool)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if op, ok := compute(e.text); ok {
		e.editLocked(op)
	}
}

// editLocked applies a local edit and sends or buffers it.
func (e *editor) editLocked(op ot.Op) {
	var err error
	if e.text, err = ot.Apply(e.text, op); err != nil {
		e.tb.Fatalf("local edit %v on %q: %v", op, e.text, err)
	}
	switch {
	case e.inflight == nil:
		e.sendLocked(op)
	case e.buffer == nil:
		e.buffer = op
	default:
		if e.buffer, err = ot.Compose(e.buffer, op); err != nil {
			e.tb.Fatal(err)
		}
	}
}

// randomEdit makes a random edit (multi-byte text included).
func (e *editor) randomEdit(r *rand.Rand) {
	e.editWith(func(text string) (ot.Op, bool) {
		n := utf8.RuneCountInString(text)
		pos := r.IntN(n + 1)
		pieces := []string{"a", "b", " ", "é", "漢", "😀", "e\u0301", "\n", "word "}
		if n > 0 && r.IntN(3) == 0 {
			return ot.Splice(min(pos, n-1), 1+r.IntN(min(3, n-min(pos, n-1))), ""), true
		}
		return ot.Splice(pos, 0, pieces[r.IntN(len(pieces))]), true
	})
}

// settled reports whether nothing is pending.
func (e *editor) settled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inflight == nil && e.buffer == nil
}

func (e *editor) state() (string, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.text, e.version
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testwait.For(tb, 20*time.Second, what, cond)
}

// serverText opens the document on a fresh connection and returns its text
// and version.
func serverText(tb testing.TB, url, docID string) (string, int) {
	tb.Helper()
	c := dialWS(tb, url, "checker")
	defer c.close()
	c.send(map[string]any{"type": "open", "doc": docID})
	snap := c.expect("snapshot")
	return str(snap["content"]), num(snap["version"])
}

// replayLog rebuilds the document from an empty text through the stored op
// log, read over the protocol (open at version 0).
func replayLog(tb testing.TB, url, docID string) (string, []string) {
	tb.Helper()
	c := dialWS(tb, url, "replayer")
	defer c.close()
	c.send(map[string]any{"type": "open", "doc": docID, "version": 0})
	opened := c.expect("opened")
	var ops []proto.DocOp
	if err := json.Unmarshal(opened["ops"], &ops); err != nil {
		tb.Fatal(err)
	}
	recs := make([]doc.OpRecord, len(ops))
	uids := make([]string, len(ops))
	for i, o := range ops {
		recs[i] = doc.OpRecord{Version: o.Version, Op: o.Op}
		uids[i] = o.UID
	}
	text, err := doc.Replay(doc.Snapshot{}, recs, num(opened["version"]))
	if err != nil {
		tb.Fatalf("replay the log: %v", err)
	}
	return text, uids
}

// converge runs clients editing docs at random and checks that they all end
// on the server's text, which equals a replay of the log.
func converge(t *testing.T, ls *liveServer, docs, perDoc, edits int) {
	var editors [][]*editor
	for d := range docs {
		var eds []*editor
		for i := range perDoc {
			c := dialWS(t, ls.URL, fmt.Sprintf("u%d", i))
			eds = append(eds, openEditor(t, c, fmt.Sprintf("conv-%d", d), fmt.Sprintf("d%dc%d", d, i)))
		}
		editors = append(editors, eds)
	}
	var wg sync.WaitGroup
	for d, eds := range editors {
		for i, e := range eds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(d), uint64(i)))
				for range edits {
					e.randomEdit(r)
					if r.IntN(4) == 0 {
						time.Sleep(time.Duration(r.IntN(1500)) * time.Microsecond)
					}
				}
			}()
		}
	}
	wg.Wait()
	for d, eds := range editors {
		docID := fmt.Sprintf("conv-%d", d)
		waitFor(t, "every edit acked", func() bool {
			for _, e := range eds {
				if !e.settled() {
					return false
				}
			}
			return true
		})
		want, v := serverText(t, ls.URL, docID)
		waitFor(t, "every replica at the head", func() bool {
			for _, e := range eds {
				if _, ev := e.state(); ev != v {
					return false
				}
			}
			return true
		})
		for i, e := range eds {
			if got, _ := e.state(); got != want {
				t.Fatalf("doc %d client %d: %q, server %q", d, i, got, want)
			}
		}
		replayed, uids := replayLog(t, ls.URL, docID)
		if replayed != want {
			t.Fatalf("doc %d: replaying the log gives %q, server has %q", d, replayed, want)
		}
		if len(uids) != v {
			t.Fatalf("doc %d: %d ops in the log, version %d", d, len(uids), v)
		}
	}
	for _, eds := range editors {
		for _, e := range eds {
			e.c.close()
		}
	}
}

func TestConvergenceOneDocument(t *testing.T) {
	edits := 500
	if testing.Short() {
		edits = 100
	}
	ls := startLive(t, nil)
	converge(t, ls, 1, 20, edits)
}

// TestConvergenceBroadcastWindow: twenty editors of one document converge
// over the protocol with a broadcast window holding their ops and acks.
func TestConvergenceBroadcastWindow(t *testing.T) {
	edits := 200
	if testing.Short() {
		edits = 50
	}
	ls := startLive(t, func(c *server.Config) {
		c.File.DocBroadcast = server.DocBroadcastConfig{Window: server.Duration(20 * time.Millisecond), Members: 10}
	})
	converge(t, ls, 1, 20, edits)
}

func TestConvergenceManyDocuments(t *testing.T) {
	edits := 100
	if testing.Short() {
		edits = 30
	}
	ls := startLive(t, nil)
	converge(t, ls, 50, 4, edits)
}

// childServerEnv makes the test binary run a server instead of the tests:
// the crash test kills that child with SIGKILL.
const childServerEnv = "TANDEM_TEST_CHILD_SERVER"

func runChildServer() {
	cfg := server.DefaultConfig()
	cfg.Addr = os.Getenv("TANDEM_TEST_ADDR")
	cfg.Data = os.Getenv("TANDEM_TEST_DATA")
	srv := server.New(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err := srv.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		os.Exit(1)
	}
	fmt.Println("listening", srv.Addr())
	select {} // until killed
}
