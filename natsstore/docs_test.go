package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/ot"
)

var bg = context.Background()

// insertAt returns an op inserting text at pos in a text of n code points
// (canonical: no trailing retain, so n only documents the call).
func insertAt(_, pos int, text string) ot.Op {
	var op ot.Op
	if pos > 0 {
		op = append(op, ot.Retain(pos))
	}
	return append(op, ot.Insert(text))
}

func TestEncodeTokens(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain-doc_1", "plain-doc_1"}, // kept as is
		{"a.b", "a=2Eb"},               // the subject separator
		{"x@y#z=w", "x=40y=23z=3Dw"},   // @ # = escaped, = included
		{"chat:room", "chat=3Aroom"},   // namespace colon
		{"é", "=C3=A9"},                // each UTF-8 byte
		{"", "="},                      // the default namespace
		{"*>", "=2A=3E"},               // subject wildcards
		{strings.Repeat("x", 240), strings.Repeat("x", 240)}, // at the bound
	} {
		if got := encode(tc.in); got != tc.want {
			t.Errorf("encode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := encode(strings.Repeat("x", 241))
	if !strings.HasPrefix(long, "=_") || len(long) != 66 {
		t.Errorf("long name: %q", long)
	}
	// Injective over names that differ only in escaped characters.
	seen := map[string]string{}
	for _, name := range []string{"a.b", "a=2Eb", "a_b", "a-b", "a@b", "a#b", "a=b", "aéb", "a=C3=A9b"} {
		tok := encode(name)
		if other, dup := seen[tok]; dup {
			t.Errorf("%q and %q both encode to %q", name, other, tok)
		}
		seen[tok] = name
	}
}

func TestNoJetStream(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	_, err := Open(ctx, testConfig(t, srv.ClientURL(), "n1"))
	if !errors.Is(err, ErrNoJetStream) {
		t.Fatalf("Open on a server without JetStream: %v, want ErrNoJetStream", err)
	}
	if !strings.Contains(err.Error(), "-js") {
		t.Errorf("the error should say how to enable JetStream: %v", err)
	}
}

// TestJetStreamSlowToAnswer: a server whose JetStream does not answer the
// first account info request in time (one just restarted, recovering) is
// asked again; here the second answer says JetStream is off, which Open
// reports as such rather than as the first request's timeout.
func TestJetStreamSlowToAnswer(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := rawConn(t, srv.ClientURL())
	var asked atomic.Int64
	if _, err := nc.Subscribe("$JS.API.INFO", func(m *nats.Msg) {
		if asked.Add(1) == 1 {
			return // no answer: the request times out
		}
		_ = m.Respond([]byte(`{"type":"io.nats.jetstream.api.v1.account_info_response","error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv.ClientURL(), "n1")
	cfg.RequestTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	_, err := Open(ctx, cfg)
	if !errors.Is(err, ErrNoJetStream) {
		t.Fatalf("Open: %v, want ErrNoJetStream from the second answer", err)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("asked %d times, want 2", n)
	}
}

func TestReplicasNeedACluster(t *testing.T) {
	srv := natstest.Run(t)
	cfg := testConfig(t, srv.ClientURL(), "n1")
	cfg.Replicas = 3
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	_, err := Open(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("replicas 3 on one server: %v, want an error naming the cluster", err)
	}
}

func TestDocLifecycle(t *testing.T) {
	s, _ := openOne(t)
	ids := []string{"plain", "with.dots", "a@b#c=d-e_f", "résumé", "日本語.doc"}
	for _, id := range ids {
		if _, err := s.CreateDoc(bg, doc.Info{ID: id, Title: "T " + id}); err != nil {
			t.Fatalf("CreateDoc(%q): %v", id, err)
		}
	}
	if _, err := s.CreateDoc(bg, doc.Info{ID: "plain"}); !errors.Is(err, doc.ErrExists) {
		t.Fatalf("second CreateDoc: %v, want ErrExists", err)
	}
	list, err := s.ListDocs()
	if err != nil || len(list) != len(ids) {
		t.Fatalf("ListDocs = %v, %v; want %d docs", list, err, len(ids))
	}
	for _, id := range ids {
		info, err := s.GetDoc(id)
		if err != nil || info.ID != id || info.Version != 0 || info.Title != "T "+id {
			t.Fatalf("GetDoc(%q) = %+v, %v", id, info, err)
		}
	}
	// Two ids that differ in an escaped character stay apart.
	if err := s.AppendOps(bg, "with.dots", []doc.OpRecord{{Version: 0, Op: insertAt(0, 0, "x"), UID: "u1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDoc("with=2Edots"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("GetDoc of the escaped form: %v, want ErrNotFound", err)
	}
	if err := s.SetTitle(bg, "with.dots", "Renamed"); err != nil {
		t.Fatal(err)
	}
	m1, v, err := s.Meta(bg, "with.dots")
	if err != nil || m1.Title != "Renamed" || v != 1 {
		t.Fatalf("Meta = %+v v%d %v", m1, v, err)
	}
	if err := s.PutComment(bg, "with.dots", doc.Comment{ID: "c1", Range: ot.Range{From: 0, To: 1}, Version: 1, Text: "hi"}); err != nil {
		t.Fatal(err)
	}

	// Delete purges everything; a new incarnation starts empty, with a new
	// epoch.
	if err := s.DeleteDoc(bg, "with.dots"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDoc("with.dots"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("GetDoc after delete: %v", err)
	}
	if err := s.DeleteDoc(bg, "with.dots"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("second DeleteDoc: %v", err)
	}
	// A stale appender (it still thinks the document is at v1) loses.
	if err := s.AppendOps(bg, "with.dots", []doc.OpRecord{{Version: 1, Op: insertAt(1, 1, "y"), UID: "u2"}}); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("append to a deleted document: %v, want ErrNotFound", err)
	}
	m2, err := s.CreateDocMeta(bg, doc.Info{ID: "with.dots"})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Epoch == m1.Epoch {
		t.Fatal("a new incarnation kept the old epoch")
	}
	if info, _ := s.GetDoc("with.dots"); info.Version != 0 {
		t.Fatalf("new incarnation at v%d", info.Version)
	}
	if cs, err := s.Comments("with.dots"); err != nil || len(cs) != 0 {
		t.Fatalf("comments of the new incarnation: %v %v", cs, err)
	}
	if c, err := s.ContentAt("with.dots", 0); err != nil || c != "" {
		t.Fatalf("content of the new incarnation: %q %v", c, err)
	}
}

func TestAppendBadInput(t *testing.T) {
	s, _ := openOne(t)
	if _, err := s.CreateDoc(bg, doc.Info{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		doc  string
		recs []doc.OpRecord
		want error
	}{
		{"empty batch", "d", nil, ErrInvalid},
		{"negative version", "d", []doc.OpRecord{{Version: -1, UID: "a"}}, ErrInvalid},
		{"gap in the batch", "d", []doc.OpRecord{{Version: 0, UID: "a"}, {Version: 2, UID: "b"}}, ErrInvalid},
		{"bad op", "d", []doc.OpRecord{{Version: 0, Op: ot.Op{ot.Retain(2)}, UID: "a"}}, ErrInvalid},
		{"empty doc id", "", []doc.OpRecord{{Version: 0, UID: "a"}}, ErrInvalid},
		{"unknown doc", "nope", []doc.OpRecord{{Version: 0, UID: "a"}}, doc.ErrNotFound},
		{"future version", "d", []doc.OpRecord{{Version: 5, UID: "a"}}, ErrConflict},
	} {
		err := s.AppendOps(bg, tc.doc, tc.recs)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if info, _ := s.GetDoc("d"); info.Version != 0 {
		t.Fatalf("bad input changed the document: v%d", info.Version)
	}
	var ce *ConflictError
	if err := s.AppendOps(bg, "d", []doc.OpRecord{{Version: 3, UID: "a"}}); !errors.As(err, &ce) || ce.Have != 0 || ce.Got != 3 {
		t.Fatalf("conflict: %v", err)
	}
}

func TestOpsSnapshotsCompaction(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.MaxPayload = 64 << 10 })
	s := open(t, testConfig(t, srv.ClientURL(), "n1")) // SnapshotEvery 10
	const id = "doc.1"
	if _, err := s.CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	text := ""
	v := 0
	contents := []string{""}
	for v < 45 {
		k := 1 + v%3 // batches of 1, 2, 3 ops
		var recs []doc.OpRecord
		for i := 0; i < k; i++ {
			ins := fmt.Sprintf("%d€ ", v+i)
			n := len([]rune(text))
			recs = append(recs, doc.OpRecord{Version: v + i, Op: insertAt(n, n, ins), UID: fmt.Sprintf("u%d", v+i), User: "alice"})
			text += ins
			contents = append(contents, text)
		}
		if err := s.AppendOps(bg, id, recs); err != nil {
			t.Fatalf("append at v%d: %v", v, err)
		}
		v += k
	}
	recs, err := s.Ops(id, 7, 31)
	if err != nil || len(recs) != 24 || recs[0].Version != 7 || recs[23].Version != 30 {
		t.Fatalf("Ops(7, 31) = %d ops, %v", len(recs), err)
	}
	if _, err := s.Ops(id, 3, 99); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Ops past the head: %v", err)
	}
	for _, at := range []int{0, 1, 9, 10, 11, 29, 45} {
		c, err := s.ContentAt(id, at)
		if err != nil || c != contents[at] {
			t.Fatalf("ContentAt(%d) = %q, %v; want %q", at, c, err, contents[at])
		}
	}
	rec, ok, err := s.FindUID(bg, id, "u17", 12)
	if err != nil || !ok || rec.Version != 17 {
		t.Fatalf("FindUID(u17 from 12) = %+v %v %v", rec, ok, err)
	}
	if _, ok, _ := s.FindUID(bg, id, "u5", 12); ok {
		t.Fatal("FindUID found an op below its base")
	}
	if rec, ok, err := s.OpByUID(id, "u3"); err != nil || !ok || rec.Version != 3 {
		t.Fatalf("OpByUID(u3) = %+v %v %v", rec, ok, err)
	}
	// The periodic snapshots were written in the background.
	testwait.For(t, 10*time.Second, "periodic snapshots", func() bool { return s.Stats().Snapshots >= 4 })
	snap, tail, err := s.Head(id)
	if err != nil || snap.Version+len(tail) != 45 || snap.Version < 40 {
		t.Fatalf("Head = v%d + %d ops, %v", snap.Version, len(tail), err)
	}

	// A snapshot bigger than a message is chunked.
	big := strings.Repeat("ü", 80<<10) // 160 KiB of UTF-8, max_payload 64 KiB
	if err := s.PutSnapshot(bg, id, doc.Snapshot{Version: 45, Content: big}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ContentAt(id, 45); err != nil || c != big {
		t.Fatalf("chunked snapshot read back: %d bytes, %v", len(c), err)
	}
	if err := s.PutSnapshot(bg, id, doc.Snapshot{Version: 45, Content: text}); err != nil {
		t.Fatal(err)
	}

	// Comments move through compaction.
	if err := s.PutComment(bg, id, doc.Comment{ID: "c1", Range: ot.Range{From: 0, To: 2}, Version: 1, Text: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(bg, id, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ops(id, 10, 25); !errors.Is(err, doc.ErrCompacted) {
		t.Fatalf("Ops before the compaction point: %v", err)
	}
	if _, err := s.ContentAt(id, 19); !errors.Is(err, doc.ErrCompacted) {
		t.Fatalf("ContentAt before the compaction point: %v", err)
	}
	for _, at := range []int{20, 21, 33, 45} {
		if c, err := s.ContentAt(id, at); err != nil || c != contents[at] {
			t.Fatalf("after compaction ContentAt(%d) = %q, %v", at, c, err)
		}
	}
	cs, err := s.Comments(id)
	if err != nil || len(cs) != 1 || cs[0].Version != 20 {
		t.Fatalf("comments after compaction: %+v %v", cs, err)
	}
	got, _ := doc.Replay(doc.Snapshot{Version: 20, Content: contents[20]}, nil, 20)
	if r := []rune(got); string(r[cs[0].Range.From:cs[0].Range.To]) != string([]rune(contents[20])[cs[0].Range.From:cs[0].Range.To]) {
		t.Fatalf("comment range %v", cs[0].Range)
	}
	// Appends go on after compaction.
	n := len([]rune(text))
	if err := s.AppendOps(bg, id, []doc.OpRecord{{Version: 45, Op: insertAt(n, 0, "!"), UID: "after"}}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ContentAt(id, 46); err != nil || c != "!"+text {
		t.Fatalf("after compaction and append: %q %v", c, err)
	}
	if err := s.DeleteComment(bg, id, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteComment(bg, id, "c1"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("second DeleteComment: %v", err)
	}
}
