package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func TestCreateGetListDelete(t *testing.T) {
	db := openTestDB(t, Config{})
	created := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	info, err := db.CreateDoc(ctx(t), doc.Info{ID: "b", Title: "Bee", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Epoch) != 16 {
		t.Fatalf("CreateDoc gave epoch %q, want 16 hex digits", info.Epoch)
	}
	epoch := info.Epoch
	info.Epoch = ""
	if want := (doc.Info{ID: "b", Title: "Bee", Created: created}); info != want {
		t.Fatalf("CreateDoc = %+v, want %+v", info, want)
	}
	mustCreate(t, db, "a")
	if _, err := db.CreateDoc(ctx(t), doc.Info{ID: "a"}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateDoc of an existing id: got %v, want ErrExists", err)
	}
	got, err := db.GetDoc("b")
	if err != nil || !got.Created.Equal(created) || got.Title != "Bee" || got.Version != 0 || got.Epoch != epoch {
		t.Fatalf("GetDoc(b) = %+v, %v", got, err)
	}
	list, err := db.ListDocs()
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("ListDocs = %+v, %v; want a, b", list, err)
	}
	if s, err := db.ContentAt("a", 0); err != nil || s != "" {
		t.Fatalf("ContentAt(a, 0) = %q, %v; want empty", s, err)
	}

	// Delete removes everything: a new document of the same id starts empty.
	h := newHistory("b", 1)
	h.appendN(t, db, 10)
	if err := db.PutComment(ctx(t), "b", doc.Comment{ID: "c1", Version: 3}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDoc(ctx(t), "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDoc(ctx(t), "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteDoc: got %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"GetDoc":    func() error { _, err := db.GetDoc("b"); return err }(),
		"Ops":       func() error { _, err := db.Ops("b", 0, 0); return err }(),
		"ContentAt": func() error { _, err := db.ContentAt("b", 0); return err }(),
		"Comments":  func() error { _, err := db.Comments("b"); return err }(),
		"OpByUID":   func() error { _, _, err := db.OpByUID("b", "b-u1"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after delete: got %v, want ErrNotFound", name, err)
		}
	}
	mustCreate(t, db, "b")
	if _, found, err := db.OpByUID("b", "b-u1"); found || err != nil {
		t.Fatalf("OpByUID on the recreated doc: found %t, %v", found, err)
	}
	if cs, err := db.Comments("b"); err != nil || len(cs) != 0 {
		t.Fatalf("Comments on the recreated doc = %v, %v", cs, err)
	}
}

func TestCreateDocBadInput(t *testing.T) {
	db := openTestDB(t, Config{})
	for _, tc := range []struct {
		name string
		info doc.Info
	}{
		{"empty id", doc.Info{}},
		{"id too long", doc.Info{ID: strings.Repeat("x", maxIDLen+1)}},
		{"invalid UTF-8", doc.Info{ID: "a\xff"}},
		{"non-zero version", doc.Info{ID: "a", Version: 3}},
	} {
		if _, err := db.CreateDoc(ctx(t), tc.info); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if list, _ := db.ListDocs(); len(list) != 0 {
		t.Fatalf("bad creates left %v", list)
	}
}

func TestAppendOpRejects(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	h := newHistory("d", 2)
	h.appendN(t, db, 3) // at v3

	good := func() doc.OpRecord { return doc.OpRecord{Version: 3, Op: ot.Op{ot.Insert("x")}, UID: "fresh"} }
	with := func(f func(*doc.OpRecord)) doc.OpRecord { r := good(); f(&r); return r }
	for _, tc := range []struct {
		name string
		doc  string
		rec  doc.OpRecord
		want error
	}{
		{"gap", "d", with(func(r *doc.OpRecord) { r.Version = 4 }), ErrConflict},
		{"duplicate version", "d", with(func(r *doc.OpRecord) { r.Version = 2 }), ErrConflict},
		{"version 0 again", "d", with(func(r *doc.OpRecord) { r.Version = 0 }), ErrConflict},
		{"negative version", "d", with(func(r *doc.OpRecord) { r.Version = -1 }), ErrInvalid},
		{"duplicate uid", "d", with(func(r *doc.OpRecord) { r.UID = "d-u1" }), ErrDuplicateUID},
		{"uid too long", "d", with(func(r *doc.OpRecord) { r.UID = strings.Repeat("u", maxIDLen+1) }), ErrInvalid},
		{"non-canonical op", "d", with(func(r *doc.OpRecord) { r.Op = ot.Op{ot.Retain(1), ot.Retain(1), ot.Insert("x")} }), ErrInvalid},
		{"trailing retain", "d", with(func(r *doc.OpRecord) { r.Op = ot.Op{ot.Insert("x"), ot.Retain(2)} }), ErrInvalid},
		{"missing doc", "nope", good(), ErrNotFound},
		{"empty doc id", "", good(), ErrInvalid},
	} {
		err := db.AppendOp(ctx(t), tc.doc, tc.rec)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	var ce *ConflictError
	if err := db.AppendOp(ctx(t), "d", with(func(r *doc.OpRecord) { r.Version = 7 })); !errors.As(err, &ce) || ce.Have != 3 || ce.Got != 7 || ce.Key != "d" {
		t.Fatalf("conflict error = %#v (%v), want Have 3 Got 7", ce, err)
	}
	info, _ := db.GetDoc("d")
	if info.Version != 3 {
		t.Fatalf("rejected appends moved the version to %d", info.Version)
	}
	if err := db.AppendOp(ctx(t), "d", good()); err != nil {
		t.Fatalf("good append after rejects: %v", err)
	}
	if _, found, _ := db.OpByUID("d", "fresh"); !found {
		t.Fatal("good append not indexed")
	}
}

func TestAppendOpAndQueries(t *testing.T) {
	db := openTestDB(t, Config{SnapshotEvery: 7})
	mustCreate(t, db, "d")
	h := newHistory("d", 3)
	for range 20 { // blocking appends
		rec := h.next()
		if err := db.AppendOp(ctx(t), "d", rec); err != nil {
			t.Fatal(err)
		}
		h.commit(t, rec)
	}
	h.appendN(t, db, 30)
	// An op without uid or time is stored with the time set.
	rec := doc.OpRecord{Version: h.head(), Op: ot.Op{ot.Insert("Z")}}
	if err := db.AppendOp(ctx(t), "d", rec); err != nil {
		t.Fatal(err)
	}
	h.commit(t, rec)
	db.snaps.waitIdle()

	all, err := db.Ops("d", 0, h.head())
	if err != nil || len(all) != h.head() {
		t.Fatalf("Ops(0, %d): %d ops, %v", h.head(), len(all), err)
	}
	for i, got := range all {
		want := h.recs[i]
		if got.Version != i || !got.Op.Equal(want.Op) || got.UID != want.UID || got.User != want.User || got.ClientID != want.ClientID {
			t.Fatalf("op %d = %+v, want %+v", i, got, want)
		}
		if !want.Time.IsZero() && !got.Time.Equal(want.Time) {
			t.Fatalf("op %d time %v, want %v", i, got.Time, want.Time)
		}
	}
	if all[len(all)-1].Time.IsZero() {
		t.Fatal("zero time not filled in")
	}
	for v := 0; v <= h.head(); v++ {
		got, err := db.ContentAt("d", v)
		if err != nil || got != h.contents[v] {
			t.Fatalf("ContentAt(%d) = %q, %v; want %q", v, got, err, h.contents[v])
		}
	}
	for _, uid := range []string{"d-u0", "d-u17", "d-u49"} {
		got, found, err := db.OpByUID("d", uid)
		if err != nil || !found || got.UID != uid {
			t.Fatalf("OpByUID(%q) = %+v, %t, %v", uid, got, found, err)
		}
	}
	if _, found, err := db.OpByUID("d", "nope"); found || err != nil {
		t.Fatalf("OpByUID(nope): found %t, %v", found, err)
	}

	for _, tc := range []struct {
		from, to int
		want     error
	}{
		{0, 0, nil},
		{5, 9, nil},
		{h.head(), h.head(), nil},
		{-1, 3, ErrInvalid},
		{4, 3, ErrInvalid},
		{0, h.head() + 1, ErrInvalid},
	} {
		got, err := db.Ops("d", tc.from, tc.to)
		if !errors.Is(err, tc.want) {
			t.Errorf("Ops(%d, %d): got %v, want %v", tc.from, tc.to, err, tc.want)
		}
		if err == nil && len(got) != tc.to-tc.from {
			t.Errorf("Ops(%d, %d): %d ops", tc.from, tc.to, len(got))
		}
	}
	for _, v := range []int{-1, h.head() + 1} {
		if _, err := db.ContentAt("d", v); !errors.Is(err, ErrInvalid) {
			t.Errorf("ContentAt(%d): got %v, want ErrInvalid", v, err)
		}
	}

	snap, tail, err := db.Head("d")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 49 || len(tail) != h.head()-49 {
		t.Fatalf("Head: snapshot v%d and %d ops; want v49 and %d", snap.Version, len(tail), h.head()-49)
	}
	got, err := doc.Replay(snap, tail, h.head())
	if err != nil || got != h.contents[h.head()] {
		t.Fatalf("Head replays to %q, %v; want %q", got, err, h.contents[h.head()])
	}
}

// TestReopen proves durability: everything is there after close and reopen.
func TestReopen(t *testing.T) {
	db := openTestDB(t, Config{SnapshotEvery: 10})
	path := db.Path()
	mustCreate(t, db, "d")
	h := newHistory("d", 4)
	h.appendN(t, db, 25)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendOp(ctx(t), "d", h.next()); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendOp after Close: got %v, want ErrClosed", err)
	}
	if _, err := db.GetDoc("d"); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetDoc after Close: got %v, want ErrClosed", err)
	}

	db = openAt(t, path, Config{SnapshotEvery: 10})
	info, err := db.GetDoc("d")
	if err != nil || info.Version != 25 {
		t.Fatalf("after reopen: %+v, %v", info, err)
	}
	if s, err := db.ContentAt("d", 25); err != nil || s != h.contents[25] {
		t.Fatalf("after reopen: ContentAt(25) = %q, %v", s, err)
	}
	h.appendN(t, db, 5)
}

// TestGroupCommit checks that concurrent appends share transactions and
// that one bad request in a transaction fails alone.
func TestGroupCommit(t *testing.T) {
	db := openTestDB(t, Config{})
	const docs, per = 8, 40
	hs := make([]*history, docs)
	for i := range hs {
		hs[i] = newHistory(fmt.Sprintf("d%d", i), uint64(i))
		mustCreate(t, db, hs[i].id)
	}
	before := db.Stats()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() {
			for range per {
				rec := h.next()
				if err := db.AppendOp(ctx(t), h.id, rec); err != nil {
					t.Error(err)
					return
				}
				h.commit(t, rec)
			}
		})
	}
	wg.Wait()
	st := db.Stats()
	commits, reqs := st.Commits-before.Commits, st.Requests-before.Requests
	if reqs != docs*per {
		t.Fatalf("%d requests counted, want %d", reqs, docs*per)
	}
	if commits >= reqs {
		t.Errorf("%d commits for %d concurrent requests: no grouping", commits, reqs)
	}
	t.Logf("%d requests in %d commits, max group %d, mean commit %v", reqs, commits, st.MaxGroup, st.CommitTime/time.Duration(st.Commits))
	for _, h := range hs {
		if s, err := db.ContentAt(h.id, h.head()); err != nil || s != h.contents[h.head()] {
			t.Fatalf("%s: ContentAt(head) = %q, %v", h.id, s, err)
		}
	}
}

// TestOneTransactionIsolation holds the committer so that several requests
// land in one transaction, and checks that the rejected and the aborted one
// change nothing while the others commit.
func TestOneTransactionIsolation(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	mustCreate(t, db, "e")

	release := make(chan struct{})
	held := make(chan struct{})
	db.commits.submit(func(*writeTx) error { close(held); <-release; return nil }, func(error) {})
	<-held

	errs := make([]chan error, 5)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	done := func(i int) func(error) { return func(err error) { errs[i] <- err } }
	op := ot.Op{ot.Insert("a")}
	db.AppendOpAsync("d", doc.OpRecord{Version: 0, Op: op, UID: "u0"}, done(0))
	db.AppendOpAsync("d", doc.OpRecord{Version: 5, Op: op, UID: "u5"}, done(1)) // gap
	db.commits.submit(func(w *writeTx) error {                                  // writes, then fails
		d, _ := mustDoc(w.tx, "e")
		if err := d.setHead(99); err != nil {
			return abort(err)
		}
		return abort(errors.New("disk on fire"))
	}, done(2))
	db.AppendOpAsync("d", doc.OpRecord{Version: 1, Op: op, UID: "u1"}, done(3))
	db.AppendOpAsync("e", doc.OpRecord{Version: 0, Op: op, UID: "u0"}, done(4))
	before := db.Stats()
	close(release)

	for i, want := range []error{nil, ErrConflict, nil, nil, nil} {
		err := <-errs[i]
		switch {
		case i == 2:
			if err == nil || !strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("request 2: got %v, want the abort error", err)
			}
		case !errors.Is(err, want) || (want == nil && err != nil):
			t.Errorf("request %d: got %v, want %v", i, err, want)
		}
	}
	after := db.Stats()
	if after.Commits-before.Commits != 2 || after.LastGroup != 5 { // the held one, then the 5
		t.Errorf("want the 5 requests in one commit; stats before %+v after %+v", before, after)
	}
	if after.Rejected-before.Rejected != 1 || after.Failed-before.Failed != 1 {
		t.Errorf("want 1 rejected and 1 failed; stats before %+v after %+v", before, after)
	}
	for id, want := range map[string]int{"d": 2, "e": 1} {
		if info, err := db.GetDoc(id); err != nil || info.Version != want {
			t.Errorf("GetDoc(%s) = %+v, %v; want version %d", id, info, err, want)
		}
	}
}

// TestAsyncOrder submits a long pipeline from one goroutine and checks that
// it commits in order, and that a failure fails everything after it.
func TestAsyncOrder(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	h := newHistory("d", 5)
	const n = 500
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		rec := h.next()
		h.commit(t, rec)
		v := rec.Version
		db.AppendOpAsync("d", rec, func(err error) {
			if err != nil {
				t.Errorf("v%d: %v", v, err)
			}
			mu.Lock()
			order = append(order, v)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("completion %d is v%d", i, v)
		}
	}

	// A pipeline whose first op fails: all later ones conflict.
	errs := make(chan error, 3)
	for _, v := range []int{n + 1, n + 2, n + 3} {
		db.AppendOpAsync("d", doc.OpRecord{Version: v, Op: ot.Op{ot.Insert("q")}}, func(err error) { errs <- err })
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
	}
}

func TestAppendOpContext(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	release := make(chan struct{})
	held := make(chan struct{})
	db.commits.submit(func(*writeTx) error { close(held); <-release; return nil }, func(error) {})
	<-held
	c, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.AppendOp(c, "d", doc.OpRecord{Version: 0, Op: ot.Op{ot.Insert("a")}})
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestEpochs: every document gets an epoch of its own at creation, a
// document created again under a deleted one's id gets another, and a file
// written before epochs existed gets one per document when opened, once
// (it stays across reopens).
func TestEpochs(t *testing.T) {
	path := t.TempDir() + "/tandem.db"
	db := openAt(t, path, Config{})
	mustCreate(t, db, "a")
	mustCreate(t, db, "b")
	a, _ := db.GetDoc("a")
	b, _ := db.GetDoc("b")
	if a.Epoch == "" || b.Epoch == "" || a.Epoch == b.Epoch {
		t.Fatalf("epochs %q and %q: want two different ones", a.Epoch, b.Epoch)
	}
	if err := db.DeleteDoc(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, "a")
	if a2, _ := db.GetDoc("a"); a2.Epoch == "" || a2.Epoch == a.Epoch {
		t.Fatalf("recreated document has epoch %q, the deleted one had %q", a2.Epoch, a.Epoch)
	}
	if err := db.SetTitle(ctx(t), "b", "renamed"); err != nil {
		t.Fatal(err)
	}
	if b2, _ := db.GetDoc("b"); b2.Epoch != b.Epoch {
		t.Fatalf("a rename changed the epoch from %q to %q", b.Epoch, b2.Epoch)
	}

	// Make the file look like one from before epochs: records without one,
	// no marker.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		docs := tx.Bucket(bucketDocs)
		for _, id := range []string{"a", "b"} {
			v := docs.Get([]byte(id))
			var si storedInfo
			if err := json.Unmarshal(v[8:], &si); err != nil {
				return err
			}
			si.Epoch = ""
			js, _ := json.Marshal(si)
			if err := docs.Put([]byte(id), append(append([]byte(nil), v[:8]...), js...)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyEpochs)
	})
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := db.GetDoc("b"); old.Epoch != "" {
		t.Fatalf("setup: epoch %q left", old.Epoch)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{})
	a3, _ := db.GetDoc("a")
	b3, _ := db.GetDoc("b")
	if a3.Epoch == "" || b3.Epoch == "" || a3.Epoch == b3.Epoch {
		t.Fatalf("after the upgrade: epochs %q and %q", a3.Epoch, b3.Epoch)
	}
	if b3.Title != "renamed" || b3.Version != 0 {
		t.Fatalf("the upgrade changed the record: %+v", b3)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{})
	if a4, _ := db.GetDoc("a"); a4.Epoch != a3.Epoch {
		t.Fatalf("epoch changed on reopen: %q then %q", a3.Epoch, a4.Epoch)
	}
}

// TestOpByUIDBefore: the uid index answers wherever the op is (log or
// journal); the journal is walked only below before.
func TestOpByUIDBefore(t *testing.T) {
	db := openTestDB(t, Config{journalIdle: time.Hour}) // ops stay in the journal
	mustCreate(t, db, "d")
	for v := range 5 {
		if err := db.AppendOp(ctx(t), "d", doc.OpRecord{Version: v, Op: ot.Op{ot.Insert("x")}, UID: fmt.Sprint("u", v)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		uid    string
		before int
		found  bool
	}{
		{"u1", 5, true},
		{"u4", 5, true},
		{"u4", 4, false}, // journaled at v4: not looked for below v4
		{"u3", 4, true},
		{"nope", 5, false},
	} {
		rec, ok, err := db.OpByUIDBefore("d", tc.uid, tc.before)
		if err != nil || ok != tc.found || ok && rec.UID != tc.uid {
			t.Errorf("OpByUIDBefore(%q, %d) = %+v, %v, %v; want found %v", tc.uid, tc.before, rec, ok, err, tc.found)
		}
	}
}

// TestPutComments: several comments in one write, or none when one is bad.
func TestPutComments(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	ok := []doc.Comment{{ID: "c1", Text: "a"}, {ID: "c2", Text: "b"}}
	if err := db.PutComments(ctx(t), "d", ok); err != nil {
		t.Fatal(err)
	}
	bad := []doc.Comment{{ID: "c3", Text: "c"}, {ID: "c4", Version: 9}}
	if err := db.PutComments(ctx(t), "d", bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutComments with a comment past the head: %v", err)
	}
	cs, err := db.Comments("d")
	if err != nil || len(cs) != 2 {
		t.Fatalf("Comments = %+v, %v; want c1 and c2 only", cs, err)
	}
}
