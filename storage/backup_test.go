package storage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestBackup: a backup taken while appends run opens as a store holding a
// consistent prefix of every document, with the size it announced.
func TestBackup(t *testing.T) {
	db := openTestDB(t, keepJournal())
	hs := []*history{newHistory("b0", 1), newHistory("b1", 2)}
	for _, h := range hs {
		mustCreate(t, db, h.id)
	}
	appendInterleaved(t, db, hs, 100)
	done := make(chan struct{})
	go func() { // appends racing the backup
		defer close(done)
		for range 20 {
			appendInterleaved(t, db, hs, 5)
		}
	}()
	var buf bytes.Buffer
	var announced int64
	n, err := db.Backup(func(size int64) io.Writer { announced = size; return &buf })
	<-done
	if err != nil || n != announced || int64(buf.Len()) != n {
		t.Fatalf("Backup: %d bytes written, %d announced, %d buffered, %v", n, announced, buf.Len(), err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := openAt(t, path, keepJournal())
	for _, h := range hs {
		info, err := restored.GetDoc(h.id)
		if err != nil || info.Version < 100 || info.Version > h.head() {
			t.Fatalf("%s in the backup: %+v, %v (live head v%d)", h.id, info, err, h.head())
		}
		if s, err := restored.ContentAt(h.id, info.Version); err != nil || s != h.contents[info.Version] {
			t.Fatalf("%s in the backup: content at v%d %q, %v; want %q", h.id, info.Version, s, err, h.contents[info.Version])
		}
	}
	if err := checkStore(restored); err != nil {
		t.Fatal(err)
	}
}
