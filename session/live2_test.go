package session_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestExactlyOnceAcrossDrops drops the connection right after sending an op,
// before its ack, many times, while another client keeps editing. After each
// reconnect the client finds its op by uid or resends it with the same uid;
// in the end every uid is in the log exactly once.
func TestExactlyOnceAcrossDrops(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	ls := startLive(t, nil)
	other := openEditor(t, dialWS(t, ls.url, "bob"), "once", "bob")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // concurrent edits, so resends are transformed too
		defer wg.Done()
		r := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stop:
				return
			default:
			}
			other.randomEdit(r)
			time.Sleep(time.Millisecond)
		}
	}()
	e := openEditor(t, dialWS(t, ls.url, "ann"), "once", "ann")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rounds {
		e.randomEdit(r) // sent at once: nothing is in flight
		if i%3 == 0 {
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond) // sometimes the server got it
		}
		e.c.drop()
		e.reconnect(ls.url, "ann")
		waitFor(t, "the op acked after reconnecting", e.settled)
	}
	close(stop)
	wg.Wait()
	waitFor(t, "bob settled", other.settled)
	_, uids := replayLog(t, ls.url, "once")
	count := map[string]int{}
	for _, u := range uids {
		count[u]++
	}
	e.mu.Lock()
	acked := append([]string(nil), e.acked...)
	e.mu.Unlock()
	if len(acked) != rounds {
		t.Fatalf("%d of %d ops acked", len(acked), rounds)
	}
	for _, u := range acked {
		if count[u] != 1 {
			t.Errorf("uid %s is in the log %d times", u, count[u])
		}
	}
	for u, n := range count {
		if n != 1 {
			t.Errorf("uid %s is in the log %d times", u, n)
		}
	}
	want, _ := serverText(t, ls.url, "once")
	waitFor(t, "ann at the head", func() bool { got, _ := e.state(); return got == want })
}

// TestCursors checks that a cursor made before someone else's insertion
// arrives shifted, that a new opener sees it, and that closing the document
// or disconnecting makes it disappear for the others.
func TestCursors(t *testing.T) {
	ls := startLive(t, nil)
	a := openEditor(t, dialWS(t, ls.url, "ann"), "cur", "ann")
	a.edit(ot.Splice(0, 0, "hello world"))
	waitFor(t, "ann's text acked", a.settled)
	bc := dialWS(t, ls.url, "bob")
	b := openEditor(t, bc, "cur", "bob")
	_, v := b.state()
	// Ann inserts at the start; Bob, not having seen it, puts his caret
	// before "world" at the old version.
	a.edit(ot.Splice(0, 0, "¡¡"))
	waitFor(t, "ann's insert acked", a.settled)
	bc.send(map[string]any{"type": "cursor", "doc": "cur", "version": v, "ranges": []ot.Selection{{Anchor: 6, Head: 11}}})
	bobID := ""
	waitFor(t, "bob's cursor at ann", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for id, rs := range a.cursors {
			if len(rs) == 1 && rs[0] == (ot.Selection{Anchor: 8, Head: 13}) {
				bobID = id
				return true
			}
		}
		return false
	})
	// A newcomer sees the cursor in its snapshot, at the snapshot's version.
	cc := dialWS(t, ls.url, "cy")
	cc.send(map[string]any{"type": "open", "doc": "cur"})
	snap := cc.expect("snapshot")
	var cursors []proto.Cursor
	if err := json.Unmarshal(snap["cursors"], &cursors); err != nil {
		t.Fatal(err)
	}
	if len(cursors) != 1 || cursors[0].ClientID != bobID || cursors[0].Ranges[0] != (ot.Selection{Anchor: 8, Head: 13}) {
		t.Fatalf("snapshot cursors %+v, want bob's at 8..13", cursors)
	}
	// Bob closes the document: his cursor goes.
	bc.send(map[string]any{"type": "close", "doc": "cur"})
	waitFor(t, "bob's leave", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.left[bobID] })
	cc.send(map[string]any{"type": "open", "doc": "cur"})
	snap = cc.expect("snapshot")
	if err := json.Unmarshal(snap["cursors"], &cursors); err != nil || len(cursors) != 0 {
		t.Fatalf("cursors after bob closed: %s", snap["cursors"])
	}
	// A client that disconnects abruptly leaves too.
	dc := dialWS(t, ls.url, "dan")
	d := openEditor(t, dc, "cur", "dan")
	_, v = d.state()
	dc.send(map[string]any{"type": "cursor", "doc": "cur", "version": v, "ranges": []ot.Selection{{Anchor: 1, Head: 1}}})
	danID := ""
	waitFor(t, "dan's cursor", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for id, rs := range a.cursors {
			if id != bobID && len(rs) == 1 {
				danID = id
				return true
			}
		}
		return false
	})
	dc.drop()
	waitFor(t, "dan's leave", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		_, has := a.cursors[danID]
		return a.left[danID] && !has
	})
}

// commentRange opens the document afresh and returns the text of the only
// comment's range, and whether it is resolved.
func commentText(t *testing.T, url, docID string) (string, ot.Range) {
	t.Helper()
	c := dialWS(t, url, "reader")
	defer c.close()
	c.send(map[string]any{"type": "open", "doc": docID})
	snap := c.expect("snapshot")
	var comments []proto.Comment
	if err := json.Unmarshal(snap["comments"], &comments); err != nil || len(comments) != 1 {
		t.Fatalf("comments %s: %v", snap["comments"], err)
	}
	rg := comments[0].Range
	runes := []rune(str(snap["content"]))
	if rg.From < 0 || rg.To > len(runes) || rg.From > rg.To {
		t.Fatalf("comment range %v outside a text of %d", rg, len(runes))
	}
	return string(runes[rg.From:rg.To]), rg
}

// TestCommentFollowsItsWord anchors a comment on one word, makes 1,000
// random edits elsewhere, restarts the server, and checks the comment is
// still on that word; deleting the word collapses the comment and keeps it.
func TestCommentFollowsItsWord(t *testing.T) {
	edits := 1000
	if testing.Short() {
		edits = 300
	}
	ls := startLive(t, nil)
	ac := dialWS(t, ls.url, "ann")
	a := openEditor(t, ac, "cmt", "ann")
	a.edit(ot.Splice(0, 0, "lorem ipsum TARGET dolor sit"))
	waitFor(t, "text acked", a.settled)
	_, v := a.state()
	ac.send(map[string]any{"type": "comment", "doc": "cmt", "action": "add", "version": v,
		"range": ot.Range{From: 12, To: 18}, "text": "Why? @bob"})
	waitFor(t, "the comment", func() bool {
		got, _ := commentTextNoFail(ls.url, "cmt")
		return got == "TARGET"
	})
	b := openEditor(t, dialWS(t, ls.url, "bob"), "cmt", "bob")
	r := rand.New(rand.NewPCG(3, 3))
	for i := range edits {
		e := a
		if i%2 == 1 {
			e = b
		}
		// An edit anywhere but on the word or touching it, computed from
		// the text it applies to (a remote op may land at any moment).
		e.editWith(func(text string) (ot.Op, bool) {
			runes := []rune(text)
			at := strings.Index(text, "TARGET")
			if at < 0 {
				t.Errorf("%s: the word is gone from %q", e.uid, text)
				return nil, false
			}
			at = utf8.RuneCountInString(text[:at])
			pos := r.IntN(len(runes) + 1)
			switch {
			case pos >= at && pos <= at+6:
				return nil, false
			case r.IntN(3) == 0 && pos < len(runes) && (pos+1 < at || pos > at+6):
				return ot.Splice(pos, 1, ""), true
			default:
				return ot.Splice(pos, 0, []string{"x", "é", "😀", " "}[r.IntN(4)]), true
			}
		})
	}
	waitFor(t, "edits acked", func() bool { return a.settled() && b.settled() })
	if got, rg := commentText(t, ls.url, "cmt"); got != "TARGET" {
		t.Fatalf("after %d edits the comment is on %q at %v", edits, got, rg)
	}
	a.c.close()
	b.c.close()
	ls.restart()
	if got, rg := commentText(t, ls.url, "cmt"); got != "TARGET" {
		t.Fatalf("after a restart the comment is on %q at %v", got, rg)
	}
	// Delete the word and a space: the comment collapses and stays.
	a2 := openEditor(t, dialWS(t, ls.url, "ann"), "cmt", "ann2")
	a2.mu.Lock()
	at := utf8.RuneCountInString(a2.text[:strings.Index(a2.text, "TARGET")])
	a2.mu.Unlock()
	a2.edit(ot.Splice(at, 7, ""))
	waitFor(t, "delete acked", a2.settled)
	got, rg := commentText(t, ls.url, "cmt")
	if got != "" || rg.From != at {
		t.Fatalf("after deleting the word the comment is %q at %v, want a point at %d", got, rg, at)
	}
}

// commentTextNoFail is commentText for polling: errors read as "".
func commentTextNoFail(url, docID string) (string, error) {
	ws, err := dialRaw(url)
	if err != nil {
		return "", err
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"type": "connect", "token": ""}); err != nil {
		return "", err
	}
	if err := ws.WriteJSON(map[string]any{"type": "open", "doc": docID}); err != nil {
		return "", err
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(data), "\n") {
			var snap proto.Snapshot
			if json.Unmarshal([]byte(line), &snap) != nil || snap.Type != "snapshot" {
				continue
			}
			if len(snap.Comments) != 1 {
				return "", nil
			}
			rg := snap.Comments[0].Range
			runes := []rune(snap.Content)
			if rg.From < 0 || rg.To > len(runes) || rg.From > rg.To {
				return "", fmt.Errorf("bad range")
			}
			return string(runes[rg.From:rg.To]), nil
		}
	}
}

// TestBadOps sends a table of bad op frames; each gets its error code, the
// document is unchanged and the connection still works.
func TestBadOps(t *testing.T) {
	ls := startLive(t, func(c *server.Config) { c.File.Limits.MaxOpBytes = 1000 })
	c := dialWS(t, ls.url, "ann")
	e := openEditor(t, c, "bad", "ann")
	e.edit(ot.Splice(0, 0, "abc"))
	waitFor(t, "seed acked", e.settled)
	e.c.close()
	c = dialWS(t, ls.url, "ann")
	c.send(map[string]any{"type": "open", "doc": "bad"})
	c.expect("snapshot")
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name  string
		frame map[string]any
		code  string
	}{
		{"past the end", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[5,"x"]`), "uid": "u1"}, "bad_request"},
		{"delete past the end", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[-9]`), "uid": "u2"}, "bad_request"},
		{"zero retain", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[0,"x"]`), "uid": "u3"}, "bad_request"},
		{"empty insert", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[""]`), "uid": "u4"}, "bad_request"},
		{"op is a string", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": "abc", "uid": "u5"}, "bad_request"},
		{"component is a bool", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[true]`), "uid": "u6"}, "bad_request"},
		{"float component", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`[1.5]`), "uid": "u7"}, "bad_request"},
		{"version in the future", map[string]any{"type": "op", "doc": "bad", "version": 7, "op": raw(`["x"]`), "uid": "u8"}, "bad_request"},
		{"negative version", map[string]any{"type": "op", "doc": "bad", "version": -1, "op": raw(`["x"]`), "uid": "u9"}, "bad_request"},
		{"version is a string", map[string]any{"type": "op", "doc": "bad", "version": "1", "op": raw(`["x"]`), "uid": "u10"}, "bad_request"},
		{"no version", map[string]any{"type": "op", "doc": "bad", "op": raw(`["x"]`), "uid": "u11"}, "bad_request"},
		{"no op", map[string]any{"type": "op", "doc": "bad", "version": 1, "uid": "u12"}, "bad_request"},
		{"no uid", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": raw(`["x"]`)}, "bad_request"},
		{"invalid document id", map[string]any{"type": "op", "doc": "no/such id", "version": 1, "op": raw(`["x"]`), "uid": "u13"}, "bad_request"},
		{"document not opened", map[string]any{"type": "op", "doc": "other", "version": 0, "op": raw(`["x"]`), "uid": "u14"}, "bad_request"},
		{"op over the size limit", map[string]any{"type": "op", "doc": "bad", "version": 1, "op": []any{strings.Repeat("é", 600)}, "uid": "u15"}, "too_large"},
		{"cursor in the future", map[string]any{"type": "cursor", "doc": "bad", "version": 9, "ranges": []ot.Selection{{Anchor: 0, Head: 0}}}, "bad_request"},
		{"comment with an unknown action", map[string]any{"type": "comment", "doc": "bad", "action": "frob", "comment_id": "x"}, "bad_request"},
		{"comment range past the end", map[string]any{"type": "comment", "doc": "bad", "action": "add", "version": 1, "range": ot.Range{From: 1, To: 50}, "text": "hm"}, "bad_request"},
	}
	for _, tt := range tests {
		id := c.send(tt.frame)
		m := c.expect("error")
		if code := str(m["code"]); code != tt.code || int64(num(m["id"])) != id {
			t.Errorf("%s: error %s (id %s), want %s (id %d): %s", tt.name, code, m["id"], tt.code, id, m["message"])
		}
		c.send(map[string]any{"type": "ping"})
		c.expect("pong")
	}
	if text, v := serverText(t, ls.url, "bad"); text != "abc" || v != 1 {
		t.Fatalf("after bad ops the document is %q at v%d, want \"abc\" at v1", text, v)
	}
}

// TestCrashKill9 runs the server in a child process, edits with several
// clients recording every ack, kills the child with SIGKILL mid-load,
// restarts it on the same data, and checks that every acked uid is in the
// log exactly once and that the clients reconnect and converge.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	data := t.TempDir()
	child, addr := startChild(t, data, "127.0.0.1:0")
	url := "ws://" + addr + "/ws"
	var eds []*editor
	for i := range 5 {
		user := fmt.Sprintf("u%d", i)
		eds = append(eds, openEditor(t, dialWS(t, url, user), "crash", user))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var emu sync.Mutex // guards reconnecting editors' use by the workers
	for i, e := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				emu.Lock()
				e.randomEdit(r)
				emu.Unlock()
				time.Sleep(time.Duration(1+r.IntN(3)) * time.Millisecond)
			}
		}()
	}
	time.Sleep(800 * time.Millisecond) // load
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	emu.Lock() // no edits while the acks are read and the server is down
	var acked []string
	for _, e := range eds {
		<-e.c.done
		e.mu.Lock()
		acked = append(acked, e.acked...)
		e.mu.Unlock()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d ops acked before the kill", len(acked))
	}
	startChild(t, data, addr)
	for i, e := range eds {
		e.reconnect(url, fmt.Sprintf("u%d", i))
	}
	emu.Unlock()
	time.Sleep(200 * time.Millisecond) // edits after the restart too
	close(stop)
	wg.Wait()
	waitFor(t, "every editor settled", func() bool {
		for _, e := range eds {
			if !e.settled() {
				return false
			}
		}
		return true
	})
	want, v := serverText(t, url, "crash")
	replayed, uids := replayLog(t, url, "crash")
	if replayed != want {
		t.Fatalf("the log replays to %q, the head is %q", replayed, want)
	}
	count := map[string]int{}
	for _, u := range uids {
		count[u]++
	}
	for _, u := range acked {
		if count[u] != 1 {
			t.Errorf("acked uid %s is in the log %d times", u, count[u])
		}
	}
	for u, n := range count {
		if n != 1 {
			t.Errorf("uid %s is in the log %d times", u, n)
		}
	}
	for i, e := range eds {
		waitFor(t, "editor at the head", func() bool { _, ev := e.state(); return ev == v })
		if got, _ := e.state(); got != want {
			t.Errorf("editor %d has %q, server %q", i, got, want)
		}
	}
	t.Logf("%d ops acked before the kill, %d in the log at the end", len(acked), len(uids))
}

// startChild runs the server in a child process (this test binary, see
// runChildServer) and returns it with its address; cleanup kills it.
func startChild(t *testing.T, data, addr string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServerEnv+"=1", "TANDEM_TEST_DATA="+data, "TANDEM_TEST_ADDR="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	got, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("child server said %q", line)
	}
	return cmd, got
}

// TestIdleDocumentsUnload opens, edits and closes 10,000 documents and
// checks that they all unload and the heap returns to within 10% of where
// it started. The documents are created in a first pass, so that what
// storage keeps of them (bbolt's freelist grows with the file) is in the
// baseline; the second pass loads each one again from storage.
func TestIdleDocumentsUnload(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	ls := startLive(t, func(c *server.Config) {
		c.NoSync = true
		c.DocIdleTimeout = 20 * time.Millisecond
		c.File.Limits.FrameRate = 1e6
	})
	const workers = 8
	conns := make([]*wsConn, workers)
	for i := range conns {
		conns[i] = dialWS(t, ls.url, fmt.Sprintf("w%d", i))
	}
	pass := func(round int) {
		var wg sync.WaitGroup
		for w, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					id := fmt.Sprintf("doc-%d", i)
					c.send(map[string]any{"type": "open", "doc": id})
					snap := c.expect("snapshot")
					c.send(map[string]any{"type": "op", "doc": id, "version": num(snap["version"]),
						"op": []any{fmt.Sprintf("round %d of %s. ", round, id)}, "uid": fmt.Sprintf("%s-%d", id, round)})
					c.expect("ack")
					c.send(map[string]any{"type": "close", "doc": id})
					c.expect("closed")
				}
			}()
		}
		wg.Wait()
		waitFor(t, "every document unloaded", func() bool { return ls.srv.Docs.Loaded() == 0 })
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	pass(1)
	before := heap()
	pass(2)
	after := heap()
	t.Logf("heap %d KiB before, %d KiB after loading, editing and unloading %d documents", before>>10, after>>10, n)
	if float64(after) > float64(before)*1.10 {
		t.Fatalf("heap grew from %d to %d bytes (over 10%%) after %d documents unloaded", before, after, n)
	}
}

// dialRaw dials the server without the test helpers.
func dialRaw(url string) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	return ws, err
}
