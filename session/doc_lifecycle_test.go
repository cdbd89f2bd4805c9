package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// Tests of a document's life (doc_lifecycle.go): load, unload with a
// snapshot, deletion, and what an open without the write grant finds.

// TestUnloadAndReload: a document nobody has open unloads after the idle
// timeout, writing a snapshot of its head; the next open loads it from
// that snapshot with the same text, version and epoch, and takes new ops.
func TestUnloadAndReload(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, 50*time.Millisecond)
	const id = "lifecycle"
	ann := newRecorder(t, "ann")
	first := ann.open(docs, id)
	for i, s := range []string{"a", "b", "c"} {
		if f := ann.answer(ann.op(docs, id, i, ot.Splice(i, 0, s), "ann-"+s)); str(f["type"]) != "ack" {
			t.Fatalf("op %d: %s", i, mustJSON(t, f))
		}
	}
	ann.close(docs, id)
	waitFor(t, "the document to unload", func() bool { return docs.Loaded() == 0 })
	snap, tail, err := st.Head(id)
	if err != nil || snap.Version != 3 || snap.Content != "abc" || len(tail) != 0 {
		t.Fatalf("stored head: %+v, %d ops after it, %v; want a snapshot of v3", snap, len(tail), err)
	}
	bob := newRecorder(t, "bob")
	again := bob.open(docs, id)
	if str(again["content"]) != "abc" || num(again["version"]) != 3 || str(again["epoch"]) != str(first["epoch"]) {
		t.Fatalf("reopened as %s, first opened as %s", mustJSON(t, again), mustJSON(t, first))
	}
	if f := bob.answer(bob.op(docs, id, 3, ot.Op{ot.Retain(3), ot.Insert("d")}, "bob-1")); str(f["type"]) != "ack" || num(f["version"]) != 3 {
		t.Fatalf("an op after the reload: %s", mustJSON(t, f))
	}
}

// TestOpenMissing: a document that does not exist is created empty for a
// client that may write it, and is not found for one that may only read.
func TestOpenMissing(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	reader := newRecorder(t, "reader")
	id := reader.newID()
	docs.Open(reader.client(), id, "nothing-here", nil, "", false)
	if f := reader.answer(id); str(f["type"]) != "error" {
		t.Fatalf("a reader opening a missing document: %s", mustJSON(t, f))
	}
	if _, err := st.GetDoc("nothing-here"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("a reader's open created the document: %v", err)
	}
	writer := newRecorder(t, "writer")
	if f := writer.open(docs, "made-by-open"); str(f["type"]) != "snapshot" || num(f["version"]) != 0 || str(f["content"]) != "" || str(f["epoch"]) == "" {
		t.Fatalf("a writer opening a missing document: %s", mustJSON(t, f))
	}
}

// TestDeleteClosesForEveryone: deleting a document closes it for its
// members (closed, reason deleted) and removes its history; opening the
// id again makes a new, empty incarnation with another epoch.
func TestDeleteClosesForEveryone(t *testing.T) {
	t.Parallel()
	docs, st := newFaultyDocs(t, time.Minute)
	const id = "doomed"
	ann := newRecorder(t, "ann")
	first := ann.open(docs, id)
	ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("bye")}, "ann-1"))
	if err := docs.Delete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	ann.wait("closed, deleted", func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "closed" && str(m["reason"]) == "deleted"
	})
	if _, err := st.GetDoc(id); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("after the delete, storage has it: %v", err)
	}
	again := newRecorder(t, "bob").open(docs, id)
	if str(again["content"]) != "" || num(again["version"]) != 0 || str(again["epoch"]) == str(first["epoch"]) {
		t.Fatalf("reopened after the delete as %s (first epoch %s)", mustJSON(t, again), first["epoch"])
	}
	if err := docs.Delete(context.Background(), "never-was"); !errors.Is(err, doc.ErrNotFound) && !errors.Is(err, session.ErrDocNotFound) {
		t.Fatalf("deleting a missing document: %v", err)
	}
}
