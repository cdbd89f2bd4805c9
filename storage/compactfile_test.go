package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCompactFile: the copy holds every document's whole history (packed
// into blocks, the live tail too), nothing of deleted documents, passes the
// store's checks, is smaller than a file that grew and shrank, and takes
// appends; a file a server holds is refused, and so is an existing copy.
func TestCompactFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tandem.db")
	cfg := packedConfig()
	db := openAt(t, src, cfg)
	var keep []*history
	for i, n := range []int{3, 40, 200} {
		h := newHistory(string(rune('a'+i)), uint64(i))
		mustCreate(t, db, h.id)
		h.appendN(t, db, n)
		keep = append(keep, h)
	}
	gone := newHistory("gone", 9)
	mustCreate(t, db, gone.id)
	gone.appendN(t, db, 500)
	if err := db.DeleteDoc(ctx(t), gone.id); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "copy.db")
	lockedCfg := cfg
	lockedCfg.LockTimeout = -1
	if _, err := CompactFile(src, dst, lockedCfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("CompactFile of a file in use: %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := CompactFile(src, dst, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.After != fi.Size() || st.After >= st.Before {
		t.Errorf("stats %+v, copy of %d bytes: want a smaller copy", st, fi.Size())
	}
	if _, err := CompactFile(src, dst, cfg); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CompactFile onto an existing copy: %v, want fs.ErrExist", err)
	}

	db = openAt(t, dst, cfg)
	if err := checkStore(db); err != nil {
		t.Fatal(err)
	}
	for _, h := range keep {
		verifyHistory(t, db, h)
		if n := countKeys(t, db, h.id, bucketOps); n != 0 {
			t.Errorf("%s: %d ops left in ops/ after an offline compaction", h.id, n)
		}
		h.appendN(t, db, 30)
	}
	drainAndPack(t, db)
	for _, h := range keep {
		verifyHistory(t, db, h)
	}
	if _, err := db.GetDoc(gone.id); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted document in the copy: %v", err)
	}
}

// TestCompactFileInPlace: compacting a file onto itself replaces it with
// the compacted copy and leaves nothing else beside it.
func TestCompactFileInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.db")
	db := openAt(t, path, packedConfig())
	h := newHistory("x", 1)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 100)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := CompactFile(path, path, packedConfig())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != st.After || st.After >= st.Before {
		t.Fatalf("after compacting in place: %v, %+v", err, st)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the data file alone", len(entries))
	}
	db = openAt(t, path, packedConfig())
	verifyHistory(t, db, h)
}
