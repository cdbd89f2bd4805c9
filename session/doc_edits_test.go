package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// Tests of edits made on the server side (doc_edits.go): what the HTTP
// API's routes call.

// TestReplaceReachesEditorsAsAnOp: replacing a document's text reaches an
// editor as the small op a diff finds, not a reload, and what the editor
// typed meanwhile is kept.
func TestReplaceReachesEditorsAsAnOp(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, time.Minute)
	ctx := context.Background()
	const id = "replaced"
	if res := docs.Create(ctx, id, "Hello world", "", "api"); res.Err != nil {
		t.Fatal(res.Err)
	}
	ann := newRecorder(t, "ann")
	snap := ann.open(docs, id)
	// Made against v1 ("Hello world"), while ann types at the end at v1.
	base := num(snap["version"])
	ann.answer(ann.op(docs, id, base, ot.Op{ot.Retain(11), ot.Insert("!")}, "ann-1"))
	res := docs.Replace(ctx, id, &base, "Hello, world", "", "api", false)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	op := ann.wait("the replacement", func(m map[string]json.RawMessage) bool { return str(m["type"]) == "op" && str(m["user"]) == "api" })
	if got := string(op["op"]); got != `[5,","]` {
		t.Fatalf("the replacement reached ann as %s, want [5,\",\"]", got)
	}
	if s := newRecorder(t, "cat").open(docs, id); str(s["content"]) != "Hello, world!" {
		t.Fatalf("after the replace: %q, want ann's ! kept", str(s["content"]))
	}
	// Replacing with the same text changes nothing.
	again := docs.Replace(ctx, id, nil, "Hello, world!", "", "api", false)
	if again.Err != nil || len(again.Op) != 0 {
		t.Fatalf("a replace that changes nothing: %+v", again)
	}
}

// TestServerEditsRefused: creating an id that exists, editing a document
// that does not exist without create, or from a version not reached, is
// refused and changes nothing; an edit with a uid used before is answered
// with its version, not applied again.
func TestServerEditsRefused(t *testing.T) {
	t.Parallel()
	docs, _ := newFaultyDocs(t, time.Minute)
	ctx := context.Background()
	if res := docs.Create(ctx, "taken", "x", "", "api"); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := docs.Create(ctx, "taken", "y", "", "api"); !errors.Is(res.Err, doc.ErrExists) {
		t.Fatalf("creating a taken id: %v", res.Err)
	}
	if res := docs.Edit(ctx, "absent", nil, ot.Op{ot.Insert("z")}, "", "api", false); res.Err == nil {
		t.Fatal("editing a missing document without create succeeded")
	}
	future := 7
	if res := docs.Edit(ctx, "taken", &future, ot.Op{ot.Insert("z")}, "", "api", false); res.Err == nil {
		t.Fatal("an edit from a version not reached succeeded")
	}
	first := docs.Edit(ctx, "taken", nil, ot.Op{ot.Insert("z")}, "edit-1", "api", false)
	second := docs.Edit(ctx, "taken", nil, ot.Op{ot.Insert("z")}, "edit-1", "api", false)
	if first.Err != nil || second.Err != nil || second.Version != first.Version {
		t.Fatalf("the same uid twice: %+v then %+v", first, second)
	}
	if s := newRecorder(t, "cat").open(docs, "taken"); str(s["content"]) != "zx" {
		t.Fatalf("content %q, want zx", str(s["content"]))
	}
}
