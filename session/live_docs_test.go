package session_test

// Integration tests of live documents through a real server: cursors and
// comments as editors see them, and ops a server must refuse.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestCursors checks that a cursor made before someone else's insertion
// arrives shifted, that a new opener sees it, and that closing the document
// or disconnecting makes it disappear for the others.
func TestCursors(t *testing.T) {
	ls := startLive(t, nil)
	a := openEditor(t, dialWS(t, ls.URL, "ann"), "cur", "ann")
	a.edit(ot.Splice(0, 0, "hello world"))
	waitFor(t, "ann's text acked", a.settled)
	bc := dialWS(t, ls.URL, "bob")
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
	cc := dialWS(t, ls.URL, "cy")
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
	dc := dialWS(t, ls.URL, "dan")
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
	ac := dialWS(t, ls.URL, "ann")
	a := openEditor(t, ac, "cmt", "ann")
	a.edit(ot.Splice(0, 0, "lorem ipsum TARGET dolor sit"))
	waitFor(t, "text acked", a.settled)
	_, v := a.state()
	ac.send(map[string]any{"type": "comment", "doc": "cmt", "action": "add", "version": v,
		"range": ot.Range{From: 12, To: 18}, "text": "Why? @bob"})
	waitFor(t, "the comment", func() bool {
		got, _ := commentTextNoFail(ls.URL, "cmt")
		return got == "TARGET"
	})
	b := openEditor(t, dialWS(t, ls.URL, "bob"), "cmt", "bob")
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
	if got, rg := commentText(t, ls.URL, "cmt"); got != "TARGET" {
		t.Fatalf("after %d edits the comment is on %q at %v", edits, got, rg)
	}
	a.c.close()
	b.c.close()
	ls.Restart()
	if got, rg := commentText(t, ls.URL, "cmt"); got != "TARGET" {
		t.Fatalf("after a restart the comment is on %q at %v", got, rg)
	}
	// Delete the word and a space: the comment collapses and stays.
	a2 := openEditor(t, dialWS(t, ls.URL, "ann"), "cmt", "ann2")
	a2.mu.Lock()
	at := utf8.RuneCountInString(a2.text[:strings.Index(a2.text, "TARGET")])
	a2.mu.Unlock()
	a2.edit(ot.Splice(at, 7, ""))
	waitFor(t, "delete acked", a2.settled)
	got, rg := commentText(t, ls.URL, "cmt")
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
	c := dialWS(t, ls.URL, "ann")
	e := openEditor(t, c, "bad", "ann")
	e.edit(ot.Splice(0, 0, "abc"))
	waitFor(t, "seed acked", e.settled)
	e.c.close()
	c = dialWS(t, ls.URL, "ann")
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
	if text, v := serverText(t, ls.URL, "bad"); text != "abc" || v != 1 {
		t.Fatalf("after bad ops the document is %q at v%d, want \"abc\" at v1", text, v)
	}
}
