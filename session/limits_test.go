package session_test

// The limits of live documents, on the session with real storage and
// recording clients: replays, large replies a connection cannot take yet,
// comment counts, and server-side edits over the op and document limits.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReplayBounded: an open with a version replays at most MaxReplayOps
// ops and MaxReplayBytes of their text; past either it gets the history-gone
// error (the wire's conflict), which clients answer by reopening without a
// version.
func TestReplayBounded(t *testing.T) {
	docs, _ := newFaultyDocsWith(t, func(c *session.DocsConfig) { c.MaxReplayOps, c.MaxReplayBytes = 5, 250 })
	const id = "replay"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	for v := range 10 {
		if f := ann.answer(ann.op(docs, id, v, ot.Op{ot.Insert(strings.Repeat("a", 100))}, fmt.Sprint("u", v))); str(f["type"]) != "ack" {
			t.Fatal(show(f))
		}
	}
	for _, tc := range []struct {
		version int
		gone    bool
	}{
		{0, true},  // 10 ops
		{4, true},  // 6 ops
		{7, true},  // 3 ops, 300 bytes
		{8, false}, // 2 ops, 200 bytes
		{10, false},
	} {
		bob := newRecorder(t, "bob")
		id64 := bob.newID()
		v := tc.version
		docs.Open(bob.client(), id64, id, &v, "", false)
		f := bob.answer(id64)
		gone := str(f["type"]) == "error" && strings.Contains(str(f["message"]), session.ErrHistoryGone.Error())
		if gone != tc.gone {
			t.Fatalf("open at v%d: %s, want history gone %v", v, show(f), tc.gone)
		}
		if !tc.gone {
			var ops []json.RawMessage
			if err := json.Unmarshal(f["ops"], &ops); err != nil || len(ops) != 10-v {
				t.Fatalf("open at v%d: %d ops, %v", v, len(ops), err)
			}
		}
	}
}

// busySub is a recording client that can take large frames, and refuses
// the first one as a connection with its budget spent would.
type busySub struct {
	*recorder
	mu      sync.Mutex // guards refused and large
	refused bool
	large   int
}

func (b *busySub) SendLarge(f session.LargeFrame, reply bool) error {
	b.mu.Lock()
	if !b.refused && reply {
		b.refused = true
		b.mu.Unlock()
		return session.ErrBusy
	}
	b.large++
	b.mu.Unlock()
	var buf strings.Builder
	if _, err := f.WriteTo(&buf); err != nil {
		return err
	}
	b.recorder.Send([]byte(buf.String()))
	return nil
}

// TestLargeReplyRefusedWhenBusy: a snapshot too large to encode at once
// goes to the connection as a large frame; when the connection has no
// room for it yet, the open is answered with ErrBusy (unavailable on the
// wire), the client is not made a member, and opening again works.
func TestLargeReplyRefusedWhenBusy(t *testing.T) {
	docs, _ := newFaultyDocs(t, time.Minute)
	const id = "big"
	content := strings.Repeat("<", 100_000)
	if res := docs.Create(ctxFor(t), id, content, "", "setup"); res.Err != nil {
		t.Fatal(res.Err)
	}
	sub := &busySub{recorder: newRecorder(t, "ann")}
	dc := session.DocClient{Sub: sub, User: sub.user, Fail: sub.client().Fail}
	id1 := sub.newID()
	docs.Open(dc, id1, id, nil, "", false)
	if f := sub.answer(id1); str(f["type"]) != "error" || !strings.Contains(str(f["message"]), "too many large replies") {
		t.Fatalf("the first open: %s", show(f))
	}
	op := sub.newID()
	docs.Submit(dc, op, id, 0, ot.Op{ot.Insert("x")}, "x1")
	if f := sub.answer(op); str(f["type"]) != "error" || !strings.Contains(str(f["message"]), "not open") {
		t.Fatalf("an op after the refused open: %s", show(f))
	}
	id2 := sub.newID()
	docs.Open(dc, id2, id, nil, "", false)
	if f := sub.answer(id2); str(f["type"]) != "snapshot" || str(f["content"]) != content {
		t.Fatalf("the second open: %.200s", show(f))
	}
	if sub.large != 1 {
		t.Fatalf("%d large frames sent, want the snapshot", sub.large)
	}
}

// TestCommentCountCapped: a document holds at most MaxComments comments,
// replies included; past it an add is refused with ErrTooLarge.
func TestCommentCountCapped(t *testing.T) {
	docs, st := newFaultyDocsWith(t, func(c *session.DocsConfig) { c.MaxComments, c.MaxCommentBytes = 3, 10 })
	const id = "capped"
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	if f := ann.answer(ann.op(docs, id, 0, ot.Op{ot.Insert("hello")}, "u0")); str(f["type"]) != "ack" {
		t.Fatal(show(f))
	}
	text := func(s string) *string { return &s }
	var first string
	for i := range 3 {
		cr := session.CommentRequest{Action: "add", Version: 1, Range: &ot.Range{From: 0, To: 1}, Text: text("ok")}
		if i > 0 {
			cr.Parent = &first // a reply counts too
		}
		f := ann.comment(docs, id, cr)
		if str(f["type"]) != "comment" {
			t.Fatal(show(f))
		}
		if i == 0 {
			var c struct{ Comment struct{ ID string } }
			_ = json.Unmarshal(mustJSON(t, f), &c)
			first = c.Comment.ID
		}
	}
	for _, cr := range []session.CommentRequest{
		{Action: "add", Version: 1, Range: &ot.Range{From: 0, To: 1}, Text: text("four")},
		{Action: "add", Version: 1, Range: &ot.Range{From: 0, To: 1}, Text: text("reply"), Parent: &first},
		{Action: "edit", CommentID: first, Text: text("eleven byte")},
	} {
		if f := ann.comment(docs, id, cr); str(f["type"]) != "error" || !strings.Contains(str(f["message"]), "payload too large") {
			t.Fatalf("%s over the limits: %s", cr.Action, show(f))
		}
	}
	if cs, err := st.Comments(id); err != nil || len(cs) != 3 {
		t.Fatalf("stored comments: %d, %v", len(cs), err)
	}
}

// TestServerEditLimits: a server-side edit over MaxDocLen is refused whole
// (ErrDocTooLarge) and changes nothing; one inserting more than MaxOpBytes
// is applied as consecutive ops within it, which a member receives as
// ordinary ops.
func TestServerEditLimits(t *testing.T) {
	docs, st := newFaultyDocsWith(t, func(c *session.DocsConfig) { c.MaxDocLen, c.MaxOpBytes = 100, 10 })
	const id = "edits"
	ctx := ctxFor(t)
	if res := docs.Create(ctx, "toolong", strings.Repeat("a", 101), "", "u"); !errors.Is(res.Err, session.ErrDocTooLarge) {
		t.Fatalf("Create over the limit: %+v", res)
	}
	if _, err := st.GetDoc("toolong"); err == nil {
		t.Fatal("a refused Create made the document")
	}
	res := docs.Create(ctx, id, "0123456789abcdefghij-", "", "u") // 21 bytes: 3 ops
	if res.Err != nil || res.Version != 2 {
		t.Fatalf("Create of 21 bytes with ops of 10: %+v, want the last op at v2", res)
	}
	ann := newRecorder(t, "ann")
	ann.open(docs, id)
	res = docs.Replace(ctx, id, nil, "start "+strings.Repeat("é", 30)+" end", "", "u", false)
	if res.Err != nil || res.Version < 3+5 {
		t.Fatalf("Replace inserting 60 bytes with ops of 10: %+v", res)
	}
	ann.wait("the last op", func(m map[string]json.RawMessage) bool {
		return str(m["type"]) == "op" && num(m["version"]) == res.Version
	})
	ops, err := st.Ops(id, 0, res.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range ops {
		n := 0
		for _, c := range rec.Op {
			n += len(c.Text())
		}
		if n > 10 {
			t.Fatalf("op v%d inserts %d bytes, over the op limit", rec.Version, n)
		}
	}
	if s, _ := st.ContentAt(id, res.Version+1); s != "start "+strings.Repeat("é", 30)+" end" {
		t.Fatalf("content %q", s)
	}
	before := res.Version + 1
	if res := docs.Replace(ctx, id, nil, strings.Repeat("b", 101), "", "u", false); !errors.Is(res.Err, session.ErrDocTooLarge) {
		t.Fatalf("Replace over the limit: %+v", res)
	}
	if res := docs.Edit(ctx, id, nil, ot.Op{ot.Insert(strings.Repeat("c", 70))}, "", "u", false); !errors.Is(res.Err, session.ErrDocTooLarge) {
		t.Fatalf("Edit over the limit: %+v", res)
	}
	if info, _ := st.GetDoc(id); info.Version != before {
		t.Fatalf("refused edits changed the document: v%d, want v%d", info.Version, before)
	}
}
