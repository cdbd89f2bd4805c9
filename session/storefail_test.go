package session_test

// Tests of what live documents do when storage misbehaves: failures
// injected at the session's storage interfaces (harness_test.go).

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// TestDuplicateUIDFromStorage: when storage refuses an op as a duplicate
// uid that the session took for new (here its uid index is made to forget),
// the op is acked with its original version, never applied twice, and
// the document stays open for every member; an op that was in flight
// behind it is refused with try-again (or, if it came after, applied), and
// goes through when sent again.
func TestDuplicateUIDFromStorage(t *testing.T) {
	docs, st := newFaultyDocs(t, 20*time.Millisecond)
	const id = "dup"
	ann, bob := newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	if f := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("a")}, "U")); str(f["type"]) != "ack" || num(f["version"]) != 0 {
		t.Fatalf("first op: %s", show(f))
	}
	docs.CloseDoc(ann.client(), nil, id)
	waitFor(t, "the document to unload", func() bool { return docs.Loaded() == 0 })

	ann, bob = newRecorder(t, "ann"), newRecorder(t, "bob")
	ann.open(docs, id)
	bob.open(docs, id)
	st.set(func(f *faultyStore) { f.forgetUIDs = true })
	uAck := ann.op(docs, id, 1, ot.Op{ot.Insert("x")}, "U") // U again, made against v1
	bID := bob.op(docs, id, 1, ot.Op{ot.Retain(1), ot.Insert("B")}, "B")
	if f := ann.answer(uAck); str(f["type"]) != "ack" || num(f["version"]) != 0 || str(f["uid"]) != "U" {
		t.Fatalf("the duplicate: got %s, want an ack with version 0", show(f))
	}
	if st.appendsOf("U") != 2 {
		t.Fatalf("U reached storage %d times; the test needs storage's refusal", st.appendsOf("U"))
	}
	f := bob.answer(bID)
	switch {
	case str(f["type"]) == "ack": // came after the reload
	case str(f["type"]) == "error" && string(f["try_again"]) == "true":
		if f := bob.answer(bob.op(docs, id, 1, ot.Op{ot.Retain(1), ot.Insert("B")}, "B")); str(f["type"]) != "ack" || num(f["version"]) != 1 {
			t.Fatalf("bob's op sent again: %s", show(f))
		}
	default:
		t.Fatalf("bob's op behind the duplicate: %s", show(f))
	}
	ann.wait("bob's op", func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && str(m["uid"]) == "B" })
	for _, r := range []*recorder{ann, bob} {
		if r.saw(ofType("closed")) {
			t.Fatalf("%s: the document was closed", r.id)
		}
	}
	if f := ann.answer(ann.op(docs, id, 2, ot.Op{ot.Insert("!")}, "V")); str(f["type"]) != "ack" || num(f["version"]) != 2 {
		t.Fatalf("ann after the duplicate: %s", show(f))
	}
	if s, err := st.ContentAt(id, 3); err != nil || s != "!aB" {
		t.Fatalf("content %q, %v; want %q (U applied once)", s, err, "!aB")
	}
}

// TestResentUIDNeverReachesStorage: after a reload, a uid the session's
// memory does not hold is looked up in storage's index before anything is
// applied, so a resend is acked without an append.
func TestResentUIDNeverReachesStorage(t *testing.T) {
	docs, st := newFaultyDocs(t, 20*time.Millisecond)
	const id = "resent"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	for v := range 3 {
		if f := ann.answer(ann.op(docs, id, v, ot.Op{ot.Insert("a")}, fmt.Sprint("U", v))); str(f["type"]) != "ack" {
			t.Fatal(show(f))
		}
	}
	docs.CloseDoc(ann.client(), nil, id)
	waitFor(t, "the document to unload", func() bool { return docs.Loaded() == 0 })
	bob := newRecorder(t, "bob")
	bob.open(docs, id)
	if f := bob.answer(bob.op(docs, id, 3, ot.Op{ot.Insert("b")}, "B")); str(f["type"]) != "ack" {
		t.Fatal(show(f))
	}
	if f := bob.answer(bob.op(docs, id, 4, ot.Op{ot.Insert("again")}, "U1")); str(f["type"]) != "ack" || num(f["version"]) != 1 {
		t.Fatalf("the resend: %s, want an ack with version 1", show(f))
	}
	if n := st.appendsOf("U1"); n != 1 {
		t.Fatalf("U1 reached storage %d times, want once", n)
	}
}

// TestCommentWriteFails: a comment action whose write fails changes
// nothing, in memory either: the next member to open sees the comments as
// they were.
func TestCommentWriteFails(t *testing.T) {
	docs, st := newFaultyDocs(t, time.Minute)
	const id = "comments"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	if f := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("hello world")}, "u0")); str(f["type"]) != "ack" {
		t.Fatal(show(f))
	}
	text := func(s string) *string { return &s }
	f := ann.comment(docs, id, session.CommentRequest{Action: "add", Version: 1, Range: &ot.Range{From: 0, To: 5}, Text: text("first")})
	if str(f["type"]) != "comment" {
		t.Fatal(show(f))
	}
	var added struct{ Comment proto.Comment }
	if err := json.Unmarshal(mustJSON(t, f), &added); err != nil {
		t.Fatal(err)
	}
	cm := added.Comment.ID
	st.set(func(f *faultyStore) { f.failWrites = true })
	for _, cr := range []session.CommentRequest{
		{Action: "add", Version: 1, Range: &ot.Range{From: 6, To: 11}, Text: text("second")},
		{Action: "edit", CommentID: cm, Text: text("edited")},
		{Action: "resolve", CommentID: cm},
		{Action: "delete", CommentID: cm},
	} {
		if f := ann.comment(docs, id, cr); str(f["type"]) != "error" {
			t.Fatalf("%s with storage failing: %s", cr.Action, show(f))
		}
	}
	st.set(func(f *faultyStore) { f.failWrites = false })
	snap := newRecorder(t, "cat").open(docs, id)
	var s proto.Snapshot
	if err := json.Unmarshal(mustJSON(t, snap), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Comments) != 1 || s.Comments[0].ID != cm || s.Comments[0].Text != "first" || s.Comments[0].Resolved {
		t.Fatalf("comments after failed writes: %+v, want only %q as added", s.Comments, cm)
	}
}

// TestUnloadPersistsBeforeLeaving: a document unloading writes its
// comments before it leaves the session map, so a client that opens it
// meanwhile reaches the same session, and a comment it deletes stays
// deleted (no write of the unloading session lands on top of it).
func TestUnloadPersistsBeforeLeaving(t *testing.T) {
	docs, st := newFaultyDocs(t, 20*time.Millisecond)
	const id = "unload"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	if f := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("hello")}, "u0")); str(f["type"]) != "ack" {
		t.Fatal(show(f))
	}
	text := "doomed"
	f := ann.comment(docs, id, session.CommentRequest{Action: "add", Version: 1, Range: &ot.Range{From: 0, To: 5}, Text: &text})
	var added struct{ Comment proto.Comment }
	if err := json.Unmarshal(mustJSON(t, f), &added); err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	st.set(func(f *faultyStore) { f.holdPuts, f.heldPut = hold, held })
	docs.CloseDoc(ann.client(), nil, id)
	<-held // the unload is writing the comments

	// Bob opens the document and deletes the comment while the unload's
	// write is held: with the write made after leaving the map, a second
	// session would serve him and the held write would bring the comment
	// back when released.
	bob := newRecorder(t, "bob")
	openID, delID := bob.newID(), bob.newID()
	docs.Open(bob.client(), openID, id, nil, "", true)
	docs.Comment(bob.client(), delID, id, session.CommentRequest{Action: "delete", CommentID: added.Comment.ID}, true)
	time.Sleep(20 * time.Millisecond) // time for a second session to serve him, if one would
	close(hold)
	bob.answer(openID)
	if f := bob.answer(delID); str(f["type"]) != "comment" {
		t.Fatalf("delete: %s", show(f))
	}
	docs.CloseDoc(bob.client(), nil, id)
	waitFor(t, "the document to unload", func() bool { return docs.Loaded() == 0 })
	cs, err := st.Comments(id)
	if err != nil || len(cs) != 0 {
		t.Fatalf("stored comments %+v, %v: the deleted comment came back", cs, err)
	}
}

func mustJSON(t *testing.T, m map[string]json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
