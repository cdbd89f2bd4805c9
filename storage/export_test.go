package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

var fixedNow = func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }

// exportOf exports a document to memory.
func exportOf(t *testing.T, db *DB, id string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := db.Export(id, &buf); err != nil {
		t.Fatalf("Export(%q): %v", id, err)
	}
	return buf.Bytes()
}

func TestExportImportRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of ops")
	}
	src := openTestDB(t, Config{SnapshotEvery: 250, Now: fixedNow})
	mustCreate(t, src, "big")
	h := newHistory("big", 31)
	for h.head() < 2000 {
		h.appendN(t, src, 100)
		if h.head() == 1200 { // a session's close snapshot at an odd version
			if err := src.PutSnapshot(ctx(t), "big", doc.Snapshot{Version: 1137, Content: h.contents[1137]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var comments []doc.Comment
	for i, v := range []int{0, 17, 500, 1500, 1999, 2000} {
		n := len([]rune(h.contents[v]))
		c := doc.Comment{
			ID: fmt.Sprintf("c%d", i), Range: ot.Range{From: n / 3, To: n / 2}, Version: v,
			User: "u1", UserName: "Ann", Text: "comment " + fmt.Sprint(i), Resolved: i%2 == 0,
			CreatedAt: fixedNow().Add(time.Duration(i) * time.Minute),
		}
		if i > 0 {
			c.Parent = "c0"
		}
		if err := src.PutComment(ctx(t), "big", c); err != nil {
			t.Fatal(err)
		}
		comments = append(comments, c)
	}
	src.snaps.waitIdle()
	exp := exportOf(t, src, "big")
	if !bytes.HasPrefix(exp, []byte(`{"format":"tandem-export","format_version":1,`)) {
		t.Fatalf("export starts %.80q", exp)
	}

	dst := openTestDB(t, Config{SnapshotEvery: 100, Now: fixedNow})
	info, err := dst.Import(bytes.NewReader(exp))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	want, _ := src.GetDoc("big")
	got, _ := dst.GetDoc("big")
	if info.Version != 2000 || got.Version != want.Version || got.Title != want.Title || !got.Created.Equal(want.Created) {
		t.Fatalf("imported %+v (Import said %+v), want %+v", got, info, want)
	}
	for v := 0; v <= h.head(); v++ {
		s, err := dst.ContentAt("big", v)
		if err != nil || s != h.contents[v] {
			t.Fatalf("imported ContentAt(%d) = %.40q, %v; want %.40q", v, s, err, h.contents[v])
		}
	}
	ops, err := dst.Ops("big", 0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range ops {
		w := h.recs[i]
		if !rec.Op.Equal(w.Op) || rec.UID != w.UID || rec.User != w.User || rec.ClientID != w.ClientID || !rec.Time.Equal(w.Time) {
			t.Fatalf("imported op %d = %+v, want %+v", i, rec, w)
		}
	}
	if rec, ok, err := dst.OpByUID("big", "big-u1234"); !ok || err != nil || rec.Version != 1234 {
		t.Fatalf("imported uid index: %+v, %t, %v", rec, ok, err)
	}
	gotC, err := dst.Comments("big")
	if err != nil || len(gotC) != len(comments) {
		t.Fatalf("imported comments: %v, %v", gotC, err)
	}
	for i, c := range gotC {
		w := comments[i]
		if c.ID != w.ID || c.Range != w.Range || c.Version != w.Version || c.Text != w.Text || c.Parent != w.Parent ||
			c.Resolved != w.Resolved || c.UserName != w.UserName || !c.CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("imported comment %d = %+v, want %+v", i, c, w)
		}
	}
	// The export's snapshots are kept, and the gaps filled every 100 ops.
	snaps := snapVersions(t, dst, "big")
	for _, v := range snapVersions(t, src, "big") {
		if !slices.Contains(snaps, v) {
			t.Errorf("imported snapshots %v lack v%d", snaps, v)
		}
	}
	for i := 1; i < len(snaps); i++ {
		if snaps[i]-snaps[i-1] > 100 {
			t.Errorf("imported snapshots v%d and v%d are more than 100 apart", snaps[i-1], snaps[i])
		}
	}

	// With the same snapshot interval, exporting the import gives the same bytes.
	same := openTestDB(t, Config{SnapshotEvery: 250, Now: fixedNow})
	if _, err := same.Import(bytes.NewReader(exp)); err != nil {
		t.Fatal(err)
	}
	if again := exportOf(t, same, "big"); !bytes.Equal(again, exp) {
		t.Fatalf("export of the import differs: %d vs %d bytes", len(again), len(exp))
	}
}

func TestExportCompacted(t *testing.T) {
	src := openTestDB(t, Config{SnapshotEvery: 10, Now: fixedNow})
	mustCreate(t, src, "d")
	h := newHistory("d", 32)
	h.appendN(t, src, 45)
	src.snaps.waitIdle()
	if err := src.Compact(ctx(t), "d", 23); err != nil {
		t.Fatal(err)
	}
	exp := exportOf(t, src, "d")
	dst := openTestDB(t, Config{SnapshotEvery: 10})
	if _, err := dst.Import(bytes.NewReader(exp)); err != nil {
		t.Fatal(err)
	}
	for v := 23; v <= 45; v++ {
		if s, err := dst.ContentAt("d", v); err != nil || s != h.contents[v] {
			t.Fatalf("ContentAt(%d) = %q, %v", v, s, err)
		}
	}
	if _, err := dst.ContentAt("d", 22); !errors.Is(err, ErrCompacted) {
		t.Fatalf("ContentAt(22) of the imported compacted doc: %v", err)
	}
	if err := src.Export("nope", &bytes.Buffer{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Export of a missing doc: %v", err)
	}
}

// TestImportRejects feeds Import broken exports: each fails with a clear
// error and the store is unchanged.
func TestImportRejects(t *testing.T) {
	src := openTestDB(t, Config{SnapshotEvery: 10, Now: fixedNow})
	mustCreate(t, src, "d")
	h := newHistory("d", 33)
	h.appendN(t, src, 30)
	for i, v := range []int{5, 30} {
		c := doc.Comment{ID: fmt.Sprint("c", i), Range: ot.Range{From: 0, To: 1}, Version: v}
		if err := src.PutComment(ctx(t), "d", c); err != nil {
			t.Fatal(err)
		}
	}
	src.snaps.waitIdle()
	valid := exportOf(t, src, "d")

	// mutate decodes the valid export, applies f and encodes it again.
	mutate := func(f func(*exportFile)) []byte {
		var e exportFile
		if err := json.Unmarshal(valid, &e); err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dst := openTestDB(t, Config{})
	mustCreate(t, dst, "other")
	stats := dst.Stats()

	for _, tc := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "not a readable export"},
		{"not JSON", []byte("hello"), "not a readable export"},
		{"truncated", valid[:len(valid)/2], "not a readable export"},
		{"trailing data", append(slices.Clone(valid), `{}`...), "data after"},
		{"unknown field", bytes.Replace(valid, []byte(`"base":`), []byte(`"extra":1,"base":`), 1), "unknown field"},
		{"null op", bytes.Replace(valid, []byte(`"op":[`), []byte(`"op":null,"x":[`), 1), "not a readable export"},
		{"other format", mutate(func(e *exportFile) { e.Format = "zip" }), "not a tandem export"},
		{"future version", mutate(func(e *exportFile) { e.FormatVersion = 2 }), "format_version 2"},
		{"no doc id", mutate(func(e *exportFile) { e.Doc.ID = "" }), "bad document id: must be 1 to 200 bytes"},
		// The API's id rule (doc.ValidID), not a weaker one: these are keys
		// storage could hold but no request could name.
		{"doc id with a slash", mutate(func(e *exportFile) { e.Doc.ID = "a/b" }), "character '/' not allowed"},
		{"doc id ..", mutate(func(e *exportFile) { e.Doc.ID = ".." }), `".." is not a document id`},
		{"doc id too long", mutate(func(e *exportFile) { e.Doc.ID = strings.Repeat("x", 201) }), "must be 1 to 200 bytes"},
		{"title too long", mutate(func(e *exportFile) { e.Doc.Title = strings.Repeat("t", 201) }), "title: at most 200 bytes"},
		{"version gap", mutate(func(e *exportFile) { e.Ops[5].Version = 6 }), "version gap"},
		{"missing op", mutate(func(e *exportFile) { e.Ops = slices.Delete(e.Ops, 10, 11) }), "29 ops"},
		{"version past ops", mutate(func(e *exportFile) { e.Doc.Version++ }), "30 ops"},
		{"negative base", mutate(func(e *exportFile) { e.Base = -1 }), "base v-1"},
		{"op does not apply", mutate(func(e *exportFile) { e.Ops[3].Op = ot.Op{ot.Retain(100000), ot.Insert("x")} }), "op v3 does not apply"},
		{"zero-length component", bytes.Replace(valid, []byte(`"op":[`), []byte(`"op":[0,`), 1), "zero-length"},
		{"snapshot mismatch", mutate(func(e *exportFile) { e.Snapshots[1].Content += "x" }), "snapshot v10 does not match"},
		{"no base snapshot", mutate(func(e *exportFile) { e.Snapshots = e.Snapshots[1:] }), "no snapshot at base"},
		{"snapshot past head", mutate(func(e *exportFile) { e.Snapshots = append(e.Snapshots, doc.Snapshot{Version: 31}) }), "past the document's version"},
		{"snapshots out of order", mutate(func(e *exportFile) { e.Snapshots[1], e.Snapshots[2] = e.Snapshots[2], e.Snapshots[1] }), "not in order"},
		{"duplicate uid", mutate(func(e *exportFile) { e.Ops[7].UID = e.Ops[2].UID }), "share uid"},
		{"comment past head", mutate(func(e *exportFile) { e.Comments[0].Version = 31 }), "comment \"c0\" at v31"},
		{"comment past text", mutate(func(e *exportFile) { e.Comments[0].Range.To = 100000 }), "past the end of the text"},
		{"comment twice", mutate(func(e *exportFile) { e.Comments[1].ID = e.Comments[0].ID }), "two comments"},
		{"comment without id", mutate(func(e *exportFile) { e.Comments[1].ID = "" }), "empty comment id"},
		{"existing document", mutate(func(e *exportFile) { e.Doc.ID = "other" }), "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dst.Import(bytes.NewReader(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if !errors.Is(err, ErrBadExport) && !errors.Is(err, ErrExists) {
				t.Fatalf("got %v, want ErrBadExport or ErrExists", err)
			}
			list, _ := dst.ListDocs()
			if len(list) != 1 || list[0].ID != "other" || list[0].Version != 0 {
				t.Fatalf("store changed: %+v", list)
			}
			if dst.Stats().Requests != stats.Requests {
				t.Fatalf("a rejected import reached the committer")
			}
		})
	}
	// The valid export imports, once.
	if _, err := dst.Import(bytes.NewReader(valid)); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(bytes.NewReader(valid)); !errors.Is(err, ErrExists) {
		t.Fatalf("second import: got %v, want ErrExists", err)
	}
}

// TestImportLimits: an import keeps the limits the sessions keep (the
// store's Config.Limits): the text's length at every version, the number
// of comments and each comment's size. Within them it imports, and it gets
// an epoch of its own, not the exporter's.
func TestImportLimits(t *testing.T) {
	src := openTestDB(t, Config{})
	mustCreate(t, src, "d")
	// "0123456789" at v1, then "0123456789abcdefghij" at v2, then back to
	// 10 code points at v3: only v2 is over a limit of 15.
	for v, op := range []ot.Op{
		{ot.Insert("0123456789")},
		{ot.Retain(10), ot.Insert("abcdefghij")},
		{ot.Retain(10), ot.Delete(10)},
	} {
		if err := src.AppendOp(ctx(t), "d", doc.OpRecord{Version: v, Op: op, UID: fmt.Sprint("u", v)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, text := range []string{"short", "a comment of 27 bytes, here"} {
		c := doc.Comment{ID: fmt.Sprint("c", i), Range: ot.Range{From: 0, To: 1}, Version: 3, Text: text}
		if err := src.PutComment(ctx(t), "d", c); err != nil {
			t.Fatal(err)
		}
	}
	exp := exportOf(t, src, "d")
	srcInfo, _ := src.GetDoc("d")
	for _, tc := range []struct {
		name string
		lim  doc.Limits
		want string
	}{
		{"text too long at some version", doc.Limits{MaxLen: 15}, "the text at v2 has 20 code points, at most 15"},
		{"too many comments", doc.Limits{MaxComments: 1}, "2 comments, at most 1"},
		{"comment too long", doc.Limits{MaxCommentBytes: 26}, `comment "c1" has 27 bytes of text, at most 26`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openTestDB(t, Config{Limits: tc.lim})
			_, err := dst.Import(bytes.NewReader(exp))
			if !errors.Is(err, ErrBadExport) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import = %v, want ErrBadExport saying %q", err, tc.want)
			}
			if list, _ := dst.ListDocs(); len(list) != 0 {
				t.Fatalf("a refused import stored %+v", list)
			}
		})
	}
	dst := openTestDB(t, Config{Limits: doc.Limits{MaxLen: 20, MaxComments: 2, MaxCommentBytes: 27}})
	info, err := dst.Import(bytes.NewReader(exp))
	if err != nil {
		t.Fatalf("an import just within the limits: %v", err)
	}
	got, _ := dst.GetDoc("d")
	if info.Epoch == "" || got.Epoch != info.Epoch || got.Epoch == srcInfo.Epoch {
		t.Fatalf("imported epoch %q (stored %q), exporter's %q: want a new one", info.Epoch, got.Epoch, srcInfo.Epoch)
	}
	if bytes.Contains(exp, []byte(srcInfo.Epoch)) {
		t.Fatalf("the export carries the epoch %q", srcInfo.Epoch)
	}
}
