package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// keepJournal is a Config whose committer never drains the journal for
// being idle, so that tests see ops in it until a drain they cause.
func keepJournal() Config { return Config{journalIdle: time.Hour} }

// verifyHistory checks every query against the oracle: Ops over the whole
// log and over slices crossing every boundary, ContentAt at every version,
// OpByUID for every op, and Head.
func verifyHistory(t *testing.T, db *DB, h *history) {
	t.Helper()
	all, err := db.Ops(h.id, 0, h.head())
	if err != nil || len(all) != h.head() {
		t.Fatalf("%s: Ops(0, %d): %d ops, %v", h.id, h.head(), len(all), err)
	}
	for i, got := range all {
		want := h.recs[i]
		if got.Version != i || !got.Op.Equal(want.Op) || got.UID != want.UID || got.User != want.User || !got.Time.Equal(want.Time) {
			t.Fatalf("%s: op %d = %+v, want %+v", h.id, i, got, want)
		}
	}
	for from := 0; from < h.head(); from += 7 {
		to := min(h.head(), from+13)
		got, err := db.Ops(h.id, from, to)
		if err != nil || len(got) != to-from || got[0].Version != from {
			t.Fatalf("%s: Ops(%d, %d): %d ops, %v", h.id, from, to, len(got), err)
		}
	}
	for v := 0; v <= h.head(); v += max(1, h.head()/40) {
		got, err := db.ContentAt(h.id, v)
		if err != nil || got != h.contents[v] {
			t.Fatalf("%s: ContentAt(%d) = %q, %v; want %q", h.id, v, got, err, h.contents[v])
		}
	}
	for _, want := range h.recs {
		got, found, err := db.OpByUID(h.id, want.UID)
		if err != nil || !found || got.Version != want.Version || !got.Op.Equal(want.Op) {
			t.Fatalf("%s: OpByUID(%q) = v%d %t %v; want v%d", h.id, want.UID, got.Version, found, err, want.Version)
		}
	}
	if _, found, err := db.OpByUID(h.id, "no-such-uid"); found || err != nil {
		t.Fatalf("%s: OpByUID(no-such-uid): found %t, %v", h.id, found, err)
	}
	snap, tail, err := db.Head(h.id)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := doc.Replay(snap, tail, h.head()); err != nil || got != h.contents[h.head()] {
		t.Fatalf("%s: Head replays to %q, %v", h.id, got, err)
	}
}

// appendInterleaved appends n ops to each history, round robin, pipelined
// through AppendOpAsync, so that the journal interleaves the documents.
func appendInterleaved(t *testing.T, db *DB, hs []*history, n int) {
	t.Helper()
	errs := make(chan error, n*len(hs))
	for range n {
		for _, h := range hs {
			rec := h.next()
			h.commit(t, rec)
			db.AppendOpAsync(h.id, rec, func(err error) { errs <- err })
		}
	}
	for range n * len(hs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestJournal: ops of several documents sit interleaved in the journal and
// every query reads them, alone and together with ops already moved into
// the op log; a uid in the journal is a duplicate; a deletion drains the
// journal and leaves the other documents whole.
func TestJournal(t *testing.T) {
	db := openTestDB(t, Config{SnapshotEvery: 25, journalIdle: time.Hour})
	var hs []*history
	for i := range 3 {
		h := newHistory(fmt.Sprint("j", i), uint64(i))
		mustCreate(t, db, h.id)
		hs = append(hs, h)
	}
	appendInterleaved(t, db, hs, 60)
	if st := db.Stats(); st.Journal != 180 || st.JournalDrains != 0 {
		t.Fatalf("journal holds %d ops after %d drains, want 180 and 0", st.Journal, st.JournalDrains)
	}
	for _, h := range hs {
		verifyHistory(t, db, h)
	}

	// A uid in the journal, and one earlier in the same transaction, are
	// duplicates; nothing is written for them.
	dup := hs[0].recs[42]
	dup.Version = hs[0].head()
	if err := db.AppendOp(ctx(t), hs[0].id, dup); !errors.Is(err, ErrDuplicateUID) {
		t.Fatalf("journaled uid appended again: %v, want ErrDuplicateUID", err)
	}
	first, second := hs[1].next(), hs[1].next()
	second.Version, second.UID = first.Version+1, first.UID
	errs := make(chan error, 2)
	db.AppendOpAsync(hs[1].id, first, func(err error) { errs <- err })
	db.AppendOpAsync(hs[1].id, second, func(err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrDuplicateUID) {
		t.Fatalf("uid repeated within a group: %v, want ErrDuplicateUID", err)
	}
	hs[1].commit(t, first)

	// Deleting a document drains the journal first.
	if err := db.DeleteDoc(ctx(t), hs[2].id); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Journal != 0 || st.JournalDrains != 1 {
		t.Fatalf("after a deletion the journal holds %d ops after %d drains, want 0 and 1", st.Journal, st.JournalDrains)
	}
	hs = hs[:2]
	for _, h := range hs {
		verifyHistory(t, db, h)
	}
	// New ops go to the journal again; reads span both halves.
	appendInterleaved(t, db, hs, 30)
	if st := db.Stats(); st.Journal != 60 {
		t.Fatalf("journal holds %d ops, want 60", st.Journal)
	}
	for _, h := range hs {
		verifyHistory(t, db, h)
	}
	if err := checkStore(db); err != nil {
		t.Fatal(err)
	}
}

// TestJournalDrainsWhenFull: the journal never grows past journalMax.
func TestJournalDrainsWhenFull(t *testing.T) {
	db := openTestDB(t, keepJournal())
	h := newHistory("full", 1)
	mustCreate(t, db, h.id)
	for h.head() < journalMax+500 {
		h.appendN(t, db, 500)
		if st := db.Stats(); st.Journal > journalMax+500 {
			t.Fatalf("journal holds %d ops", st.Journal)
		}
	}
	if st := db.Stats(); st.JournalDrains == 0 || st.Journal >= h.head() {
		t.Fatalf("%d ops appended, journal holds %d after %d drains", h.head(), st.Journal, st.JournalDrains)
	}
	verifyHistory(t, db, h)
}

// TestJournalIdleDrain: when writes pause the committer drains the journal
// by itself.
func TestJournalIdleDrain(t *testing.T) {
	db := openTestDB(t, Config{journalIdle: 5 * time.Millisecond})
	h := newHistory("idle", 2)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 40)
	deadline := time.Now().Add(30 * time.Second)
	for db.Stats().JournalDrains == 0 || db.Stats().Journal != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("journal not drained after a pause: %+v", db.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	verifyHistory(t, db, h)
}

// TestJournalReopen: a file opened with ops in its journal (as after a
// crash) reads them, refuses their uids again, and drains them on Close.
func TestJournalReopen(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "a.db"), keepJournal())
	hs := []*history{newHistory("r0", 5), newHistory("r1", 6)}
	for _, h := range hs {
		mustCreate(t, db, h.id)
	}
	appendInterleaved(t, db, hs, 50)
	// A consistent copy of the file as it is now: the journal not drained.
	copyPath := filepath.Join(dir, "copy.db")
	if err := db.bolt.View(func(tx *bolt.Tx) error { return tx.CopyFile(copyPath, 0o600) }); err != nil {
		t.Fatal(err)
	}
	db2 := openAt(t, copyPath, keepJournal())
	if st := db2.Stats(); st.Journal != 100 {
		t.Fatalf("reopened with %d ops in the journal, want 100", st.Journal)
	}
	for _, h := range hs {
		verifyHistory(t, db2, h)
	}
	dup := hs[1].recs[7]
	dup.Version = hs[1].head()
	if err := db2.AppendOp(ctx(t), hs[1].id, dup); !errors.Is(err, ErrDuplicateUID) {
		t.Fatalf("uid from the reopened journal appended again: %v, want ErrDuplicateUID", err)
	}
	appendInterleaved(t, db2, hs, 5)
	if st := db2.Stats(); st.Journal != 110 {
		t.Fatalf("journal holds %d ops after reopening, want 110", st.Journal)
	}
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	db3 := openAt(t, copyPath, keepJournal())
	if err := db3.bolt.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketJournal).Cursor().First(); k != nil {
			return fmt.Errorf("journal not empty after Close")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		verifyHistory(t, db3, h)
	}
}

// TestJournalCompact: compacting a document whose newest ops are in the
// journal drops the old ops and their uids and keeps the rest readable.
func TestJournalCompact(t *testing.T) {
	db := openTestDB(t, keepJournal())
	h := newHistory("c", 9)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 200)
	if err := db.Compact(ctx(t), h.id, 150); err != nil {
		t.Fatal(err)
	}
	if _, found, err := db.OpByUID(h.id, h.recs[10].UID); found || err != nil {
		t.Fatalf("compacted op's uid: found %t, %v", found, err)
	}
	got, err := db.Ops(h.id, 150, 200)
	if err != nil || len(got) != 50 || got[0].UID != h.recs[150].UID {
		t.Fatalf("Ops(150, 200) after compaction: %d ops, %v", len(got), err)
	}
	for _, v := range []int{150, 199} { // journaled before, found after
		if rec, found, err := db.OpByUID(h.id, h.recs[v].UID); !found || err != nil || rec.Version != v {
			t.Fatalf("OpByUID(v%d) after compaction: v%d %t %v", v, rec.Version, found, err)
		}
	}
	// The uid of an op compacted away while it was journaled is free again:
	// the committer forgot it with the drain.
	rec := h.next()
	rec.UID = h.recs[10].UID
	if err := db.AppendOp(ctx(t), h.id, rec); err != nil {
		t.Fatalf("appending with a compacted op's uid: %v", err)
	}
	h.commit(t, rec)
	h.appendN(t, db, 20)
	if s, err := db.ContentAt(h.id, h.head()); err != nil || s != h.contents[h.head()] {
		t.Fatalf("ContentAt(head) = %q, %v", s, err)
	}
	if err := checkStore(db); err != nil {
		t.Fatal(err)
	}
}

// TestJournalCorruptAtOpen: a journal that disagrees with the heads fails
// Open with ErrCorrupt (a drain would fail on it forever) and names what
// is wrong.
func TestJournalCorruptAtOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx, num uint64, h headRec) error
		want   string
	}{
		{"an entry of a document with nothing journaled", func(tx *bolt.Tx, _ uint64, _ headRec) error {
			d, _ := lookupDoc(tx, "other")
			return tx.Bucket(bucketJournal).Put(be64(1<<40), journalValue(d.num, 0, encodeOpValue(doc.OpRecord{Op: ot.Op{ot.Insert("x")}})))
		}, "no journaled ops"},
		{"an entry of no document", func(tx *bolt.Tx, _ uint64, _ headRec) error {
			return tx.Bucket(bucketJournal).Put(be64(1<<40), journalValue(999, 0, encodeOpValue(doc.OpRecord{Op: ot.Op{ot.Insert("x")}})))
		}, "has no head"},
		{"a gap", func(tx *bolt.Tx, _ uint64, h headRec) error {
			return tx.Bucket(bucketJournal).Delete(be64(h.FirstSeq + 1))
		}, "want v"},
		{"the head past the journaled ops", func(tx *bolt.Tx, num uint64, h headRec) error {
			h.Head += 2
			return tx.Bucket(bucketHeads).Put(be64(num), h.encode())
		}, "journaled ops end"},
		{"the first seq wrong", func(tx *bolt.Tx, num uint64, h headRec) error {
			h.FirstSeq++
			return tx.Bucket(bucketHeads).Put(be64(num), h.encode())
		}, "first journaled op"},
		{"a malformed entry", func(tx *bolt.Tx, _ uint64, h headRec) error {
			return tx.Bucket(bucketJournal).Put(be64(h.FirstSeq), []byte{1, 2, 3})
		}, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := openAt(t, filepath.Join(dir, "a.db"), keepJournal())
			h := newHistory("j", 1)
			mustCreate(t, db, h.id)
			mustCreate(t, db, "other")
			h.appendN(t, db, 10)
			path := filepath.Join(dir, "copy.db")
			if err := db.bolt.View(func(tx *bolt.Tx) error { return tx.CopyFile(path, 0o600) }); err != nil {
				t.Fatal(err)
			}
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = bdb.Update(func(tx *bolt.Tx) error {
				d, _ := lookupDoc(tx, h.id)
				hr, ok := decodeHeadRec(tx.Bucket(bucketHeads).Get(d.pfx))
				if !ok || hr.Indexed == hr.Head {
					return fmt.Errorf("nothing journaled: %+v", hr)
				}
				return tc.damage(tx, d.num, hr)
			})
			bdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path, Config{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want ErrCorrupt saying %q", err, tc.want)
			}
		})
	}
}

// TestSchemaUpgrade: a file of layout version 2 (no journal) opens, reads
// and takes appends.
func TestSchemaUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := openAt(t, path, Config{})
	h := newHistory("old", 4)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 30)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a version 2 file: no journal bucket.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketJournal); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{})
	verifyHistory(t, db, h)
	rec := h.next()
	if err := db.AppendOp(ctx(t), h.id, rec); err != nil {
		t.Fatal(err)
	}
	h.commit(t, rec)
	verifyHistory(t, db, h)
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != schemaVersion {
			return fmt.Errorf("schema %q after the upgrade", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestHeadRecCodec: head records round trip; malformed ones are refused.
func TestHeadRecCodec(t *testing.T) {
	for _, h := range []headRec{{}, {Head: 7, Indexed: 7}, {Head: 9, Indexed: 3, FirstSeq: 42}} {
		got, ok := decodeHeadRec(h.encode())
		if h.Indexed == h.Head {
			h.FirstSeq = 0 // not kept when nothing is journaled
		}
		if !ok || got != h {
			t.Errorf("decode(encode(%+v)) = %+v, %t", h, got, ok)
		}
	}
	bad := headRec{Head: 3, Indexed: 5, FirstSeq: 1}.encode()
	for _, v := range [][]byte{nil, {1, 2, 3}, make([]byte, 16), bad} {
		if _, ok := decodeHeadRec(v); ok {
			t.Errorf("decodeHeadRec(%x) accepted", v)
		}
	}
}
