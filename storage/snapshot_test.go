package storage

import (
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// snapVersions lists the versions of a document's stored snapshots.
func snapVersions(t *testing.T, db *DB, id string) []int {
	t.Helper()
	var out []int
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, id)
		if err != nil {
			return err
		}
		for _, k := range d.keys(bucketSnaps, -1) {
			v, _ := d.version(k)
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAutomaticSnapshots(t *testing.T) {
	db := openTestDB(t, Config{SnapshotEvery: 10})
	mustCreate(t, db, "d")
	h := newHistory("d", 11)
	h.appendN(t, db, 5)
	if err := db.PutSnapshot(ctx(t), "d", doc.Snapshot{Version: 5, Content: h.contents[5]}); err != nil {
		t.Fatal(err)
	}
	h.appendN(t, db, 47) // one pipeline: the snapshotter may lag and catch up
	db.snaps.waitIdle()
	got := snapVersions(t, db, "d")
	want := []int{0, 5, 15, 25, 35, 45}
	if !slices.Equal(got, want) {
		t.Fatalf("snapshots at %v, want %v", got, want)
	}
	if n := db.Stats().Snapshots; n != 4 {
		t.Errorf("Stats.Snapshots = %d, want 4", n)
	}
	snap, tail, err := db.Head("d")
	if err != nil || snap.Version != 45 || len(tail) != 7 || snap.Content != h.contents[45] {
		t.Fatalf("Head = v%d, %d ops, %v", snap.Version, len(tail), err)
	}
	// Reopening keeps them; new appends go on from the latest.
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{SnapshotEvery: 10})
	h.appendN(t, db, 3)
	db.snaps.waitIdle()
	if got := snapVersions(t, db, "d"); !slices.Equal(got, append(want, 55)) {
		t.Fatalf("after reopen: snapshots at %v", got)
	}
}

func TestPutSnapshotRejects(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	h := newHistory("d", 12)
	h.appendN(t, db, 10)
	if err := db.Compact(ctx(t), "d", 4); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		doc  string
		snap doc.Snapshot
		want error
	}{
		{"past head", "d", doc.Snapshot{Version: 11}, ErrInvalid},
		{"negative", "d", doc.Snapshot{Version: -1}, ErrInvalid},
		{"invalid UTF-8", "d", doc.Snapshot{Version: 5, Content: "\xff"}, ErrInvalid},
		{"before compaction", "d", doc.Snapshot{Version: 3}, ErrCompacted},
		{"missing doc", "x", doc.Snapshot{}, ErrNotFound},
	} {
		if err := db.PutSnapshot(ctx(t), tc.doc, tc.snap); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := snapVersions(t, db, "d"); !slices.Equal(got, []int{4}) {
		t.Fatalf("snapshots at %v after rejected puts", got)
	}
}

func TestCompact(t *testing.T) {
	db := openTestDB(t, Config{SnapshotEvery: 20})
	mustCreate(t, db, "d")
	h := newHistory("d", 13)
	h.appendN(t, db, 30)
	// A comment on text that later ops move, one after the compaction point.
	text := []rune(h.contents[30])
	if len(text) < 6 {
		t.Fatalf("content too short: %q", h.contents[30])
	}
	early := doc.Comment{ID: "early", Range: ot.Range{From: 1, To: 3}, Version: 2, User: "u"}
	for len([]rune(h.contents[early.Version])) < 3 { // anchor it where there is text
		early.Version++
	}
	late := doc.Comment{ID: "late", Range: ot.Range{From: 2, To: 5}, Version: 30, User: "u"}
	for _, c := range []doc.Comment{early, late} {
		if err := db.PutComment(ctx(t), "d", c); err != nil {
			t.Fatal(err)
		}
	}
	h.appendN(t, db, 30) // head 60, snapshots 0, 20, 40, 60

	for _, tc := range []struct {
		before int
		want   error
	}{{-1, ErrInvalid}, {61, ErrInvalid}} {
		if err := db.Compact(ctx(t), "d", tc.before); !errors.Is(err, tc.want) {
			t.Errorf("Compact(%d): got %v, want %v", tc.before, err, tc.want)
		}
	}
	if err := db.Compact(ctx(t), "nope", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Compact of a missing doc: got %v", err)
	}

	db.snaps.waitIdle()
	if err := db.Compact(ctx(t), "d", 25); err != nil {
		t.Fatal(err)
	}
	if got := snapVersions(t, db, "d"); !slices.Equal(got, []int{25, 40, 60}) {
		t.Fatalf("snapshots at %v after Compact(25), want [25 40 60]", got)
	}
	for v := 25; v <= 60; v++ {
		if s, err := db.ContentAt("d", v); err != nil || s != h.contents[v] {
			t.Fatalf("ContentAt(%d) = %q, %v after compaction", v, s, err)
		}
	}
	if _, err := db.ContentAt("d", 24); !errors.Is(err, ErrCompacted) {
		t.Fatalf("ContentAt(24): got %v, want ErrCompacted", err)
	}
	if _, err := db.Ops("d", 24, 30); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Ops(24, 30): got %v, want ErrCompacted", err)
	}
	if err := db.Compact(ctx(t), "d", 10); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Compact below the compaction point: got %v, want ErrCompacted", err)
	}
	if _, found, _ := db.OpByUID("d", "d-u24"); found {
		t.Fatal("uid of a compacted op still indexed")
	}
	if _, found, _ := db.OpByUID("d", "d-u25"); !found {
		t.Fatal("uid of a kept op lost")
	}

	// Comments: the early one was moved to v25 through the ops between,
	// the late one is untouched.
	cs, err := db.Comments("d")
	if err != nil || len(cs) != 2 {
		t.Fatalf("Comments = %v, %v", cs, err)
	}
	byID := map[string]doc.Comment{cs[0].ID: cs[0], cs[1].ID: cs[1]}
	wantEarly := early.Range
	for _, rec := range h.recs[early.Version:25] {
		wantEarly = ot.TransformRange(rec.Op, wantEarly)
	}
	if got := byID["early"]; got.Version != 25 || got.Range != wantEarly {
		t.Fatalf("early comment = v%d %v, want v25 %v", got.Version, got.Range, wantEarly)
	}
	if got := byID["late"]; got.Version != 30 || got.Range != late.Range {
		t.Fatalf("late comment = v%d %v, want unchanged", got.Version, got.Range)
	}

	// Compacting to the head leaves no ops; the document goes on.
	if err := db.Compact(ctx(t), "d", 60); err != nil {
		t.Fatal(err)
	}
	snap, tail, err := db.Head("d")
	if err != nil || snap.Version != 60 || len(tail) != 0 || snap.Content != h.contents[60] {
		t.Fatalf("Head after Compact(head) = v%d, %d ops, %v", snap.Version, len(tail), err)
	}
	h.appendN(t, db, 5)
	if s, err := db.ContentAt("d", 65); err != nil || s != h.contents[65] {
		t.Fatalf("ContentAt(65) = %q, %v", s, err)
	}
}
