package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// Tests of cursors (doc_cursors.go), driven directly.

// cursorsOf returns the cursor frames r got from client cid.
func cursorsOf(r *recorder, cid string) []map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]json.RawMessage
	for _, m := range r.frames {
		if str(m["type"]) == "cursor" && str(m["client_id"]) == cid {
			out = append(out, m)
		}
	}
	return out
}

// TestCursorMovedToTheHead: a cursor made against an older version reaches
// the others moved through the ops since (here an insert before it), at
// the head's version; a collaborator's insert exactly at a caret stays in
// front of it, the caret's owner's own insert moves it along.
func TestCursorMovedToTheHead(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, time.Minute)
	const id = "cursors"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("hello world")}, "ann-1"))
	bob.wait("ann's text", ofType("op"))
	ann.answer(ann.op(docs, id, 1, ot.Op{ot.Insert(">> ")}, "ann-2"))
	// Bob puts his caret on "world" as he saw the text at v1.
	docs.Cursor(bob.client(), nil, id, 1, []ot.Selection{{Anchor: 6, Head: 11}})
	c := ann.wait("bob's cursor", func(m map[string]json.RawMessage) bool { return str(m["type"]) == "cursor" })
	if num(c["version"]) != 2 || string(c["ranges"]) != `[{"anchor":9,"head":14}]` {
		t.Fatalf("ann got bob's cursor %s, want [9,14) at v2", mustJSON(t, c))
	}
	if bob.saw(func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "cursor" && str(m["client_id"]) == bob.id
	}) {
		t.Fatal("bob got his own cursor back")
	}
	// A new member finds it in the snapshot.
	snap := newRecorder(t, "cat").open(docs, id)
	if !strings.Contains(string(snap["cursors"]), `"ranges":[{"anchor":9,"head":14}]`) {
		t.Fatalf("snapshot cursors %s", snap["cursors"])
	}
	// Bob's cursor moves with later ops: ann's insert before it.
	ann.answer(ann.op(docs, id, 2, ot.Op{ot.Insert("!")}, "ann-3"))
	docs.Cursor(bob.client(), nil, id, 2, []ot.Selection{{Anchor: 9, Head: 9}}) // a caret, unmoved by bob
	c = ann.wait("bob's caret", func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "cursor" && num(m["version"]) == 3
	})
	if string(c["ranges"]) != `[{"anchor":10,"head":10}]` {
		t.Fatalf("bob's caret after ann's insert: %s, want 10", c["ranges"])
	}
}

// TestCursorsCoalesced: a client's rapid cursor updates within the
// cursor interval reach the others as few broadcasts, the latest last.
func TestCursorsCoalesced(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocsWith(t, func(c *session.DocsConfig) {
		c.IdleTimeout = time.Minute
		c.CursorInterval = 300 * time.Millisecond
	})
	const id = "coalesced"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("0123456789")}, "ann-1"))
	for i := range 10 {
		docs.Cursor(bob.client(), nil, id, 1, []ot.Selection{{Anchor: i, Head: i}})
	}
	ann.wait("bob's last caret", func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "cursor" && string(m["ranges"]) == `[{"anchor":9,"head":9}]`
	})
	if n := len(cursorsOf(ann, bob.id)); n > 3 {
		t.Fatalf("10 cursor updates within the interval became %d broadcasts, want at most 3", n)
	}
}

// TestCursorRefusals: a cursor on a document the client has not opened,
// at a version not reached, or with too many ranges is refused.
func TestCursorRefusals(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, time.Minute)
	const id = "badcursors"
	ann, stranger := newRecorder(t, "ann"), newRecorder(t, "stranger")
	ann.open(docs, id)
	many := make([]ot.Selection, 101)
	for _, tc := range []struct {
		name    string
		by      *recorder
		version int
		ranges  []ot.Selection
		want    string
	}{
		{"not open", stranger, 0, []ot.Selection{{}}, "not open"},
		{"future version", ann, 4, []ot.Selection{{}}, "v4"},
		{"too many ranges", ann, 0, many, "at most 100"},
	} {
		req := tc.by.newID()
		docs.Cursor(tc.by.client(), req, id, tc.version, tc.ranges)
		if f := tc.by.answer(req); str(f["type"]) != "error" || !strings.Contains(str(f["message"]), tc.want) {
			t.Errorf("%s: answer %s, want an error saying %q", tc.name, mustJSON(t, f), tc.want)
		}
	}
}
