package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// Tests of comments (doc_comments.go), driven directly.

// commentAs performs a comment action as r, a moderator or not, and
// returns the answer.
func commentAs(r *recorder, docs *session.Docs, docID string, cr session.CommentRequest, moderate bool) map[string]json.RawMessage {
	r.t.Helper()
	id := r.newID()
	docs.Comment(r.client(), id, docID, cr, moderate)
	return r.answer(id)
}

func text(s string) *string { return &s }

// commentOf returns the comment a comment frame carries.
func commentOf(t *testing.T, f map[string]json.RawMessage) (c struct {
	ID       string   `json:"id"`
	Range    ot.Range `json:"range"`
	Text     string   `json:"text"`
	Parent   *string  `json:"parent"`
	Resolved bool     `json:"resolved"`
}) {
	t.Helper()
	if str(f["type"]) != "comment" {
		t.Fatalf("answer %s, want a comment", mustJSON(t, f))
	}
	if err := json.Unmarshal(f["comment"], &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCommentLifecycle: a comment made against an older version lands on
// its words at the head and follows them through later ops; a reply sits
// on its thread's range; only the author (or a moderator) edits or deletes
// it, anyone with the grant resolves it; the others hear of each change;
// and everything survives the document's unload.
func TestCommentLifecycle(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, 50*time.Millisecond)
	const id = "comments"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("the quick fox")}, "ann-1"))
	ann.answer(ann.op(docs, id, 1, ot.Op{ot.Insert("see: ")}, "ann-2"))

	// Bob comments on "quick" as he saw it at v1: it is at [9,14) now.
	c := commentOf(t, commentAs(bob, docs, id, session.CommentRequest{Action: "add", Version: 1, Range: &ot.Range{From: 4, To: 9}, Text: text("why quick?")}, false))
	if c.Range != (ot.Range{From: 9, To: 14}) || c.Text != "why quick?" || c.Parent != nil {
		t.Fatalf("comment %+v, want [9,14) at the head", c)
	}
	ann.wait("bob's comment", func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "comment" && str(m["action"]) == "add"
	})
	reply := commentOf(t, commentAs(ann, docs, id, session.CommentRequest{Action: "add", Version: 2, Range: &ot.Range{}, Text: text("it is"), Parent: &c.ID}, false))
	if reply.Range != c.Range || reply.Parent == nil || *reply.Parent != c.ID {
		t.Fatalf("reply %+v, want it on its thread's range", reply)
	}

	// Ann may resolve it, not edit or delete it; bob may edit it.
	if f := commentAs(ann, docs, id, session.CommentRequest{Action: "edit", CommentID: c.ID, Text: text("no")}, false); str(f["type"]) != "error" || !strings.Contains(str(f["message"]), "not your comment") {
		t.Fatalf("ann editing bob's comment: %s", mustJSON(t, f))
	}
	if f := commentAs(ann, docs, id, session.CommentRequest{Action: "delete", CommentID: c.ID}, false); str(f["type"]) != "error" {
		t.Fatalf("ann deleting bob's comment: %s", mustJSON(t, f))
	}
	if r := commentOf(t, commentAs(ann, docs, id, session.CommentRequest{Action: "resolve", CommentID: c.ID}, false)); !r.Resolved {
		t.Fatalf("resolve gave %+v", r)
	}
	if e := commentOf(t, commentAs(bob, docs, id, session.CommentRequest{Action: "edit", CommentID: c.ID, Text: text("why so quick?")}, false)); e.Text != "why so quick?" || !e.Resolved {
		t.Fatalf("edit gave %+v", e)
	}
	for _, bad := range []session.CommentRequest{
		{Action: "add", Version: 2, Range: &ot.Range{From: 5, To: 3}, Text: text("backwards")},
		{Action: "add", Version: 9, Range: &ot.Range{}, Text: text("future")},
		{Action: "add", Version: 2, Range: &ot.Range{}, Text: text("")},
		{Action: "add", Version: 2, Range: &ot.Range{}, Text: text("orphan"), Parent: text("cm_nope")},
		{Action: "edit", CommentID: "cm_nope", Text: text("x")},
		{Action: "pin", CommentID: c.ID},
	} {
		if f := commentAs(bob, docs, id, bad, false); str(f["type"]) != "error" {
			t.Errorf("%+v: answer %s, want an error", bad, mustJSON(t, f))
		}
	}

	// The words move; the comments follow.
	bob.answer(bob.op(docs, id, 2, ot.Op{ot.Insert(">>")}, "bob-1"))
	ann.close(docs, id)
	bob.close(docs, id)
	waitFor(t, "the document to unload", func() bool { return docs.Loaded() == 0 })
	snap := newRecorder(t, "cat").open(docs, id)
	var cs []struct {
		ID       string   `json:"id"`
		Range    ot.Range `json:"range"`
		Text     string   `json:"text"`
		Resolved bool     `json:"resolved"`
	}
	if err := json.Unmarshal(snap["comments"], &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("after the reload: %s", snap["comments"])
	}
	for _, got := range cs {
		if got.Range != (ot.Range{From: 11, To: 16}) {
			t.Errorf("comment %q at %+v after the reload, want [11,16) (\"quick\")", got.Text, got.Range)
		}
		if got.ID == c.ID && (got.Text != "why so quick?" || !got.Resolved) {
			t.Errorf("comment after the reload: %+v", got)
		}
	}
	if content := str(snap["content"]); content[11:16] != "quick" {
		t.Fatalf("content %q", content)
	}

	// A moderator deletes anyone's.
	ann.open(docs, id)
	if f := commentAs(ann, docs, id, session.CommentRequest{Action: "delete", CommentID: c.ID}, true); str(f["type"]) != "comment" {
		t.Fatalf("a moderator's delete: %s", mustJSON(t, f))
	}
}
