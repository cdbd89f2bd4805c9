package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/storage"
)

// TestCompact: `tandem compact` writes a compacted copy with -o, or
// replaces the data file; either opens with the document whole. A running
// server's file and bad use are refused.
func TestCompact(t *testing.T) {
	src, content := makeStore(t)
	check := func(path string) {
		t.Helper()
		db, err := storage.Open(path, storage.Config{})
		if err != nil {
			t.Fatalf("open the compacted file: %v", err)
		}
		defer db.Close()
		if got, err := db.ContentAt("notes", 50); err != nil || got != content {
			t.Fatalf("compacted content: %q, %v; want %q", got, err, content)
		}
	}
	data := filepath.Join(src, dataFileName)
	before, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}

	copyPath := filepath.Join(t.TempDir(), "copy.db")
	_, errOut, err := runCmd("compact", "--data", src, "-o", copyPath)
	if err != nil || !strings.Contains(errOut, "compacted to") {
		t.Fatalf("compact -o: %v, stderr %q", err, errOut)
	}
	check(copyPath)
	if fi, err := os.Stat(copyPath); err != nil || fi.Size() >= before.Size() {
		t.Fatalf("copy: %v, %d bytes from %d", err, fi.Size(), before.Size())
	}
	if _, _, err := runCmd("compact", "--data", src, "-o", copyPath); err == nil {
		t.Error("compact onto an existing file: no error")
	}

	if _, errOut, err := runCmd("compact", "--data", src); err != nil {
		t.Fatalf("compact in place: %v, stderr %q", err, errOut)
	}
	check(data)

	// A running server holds the file.
	db, err := storage.Open(data, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd("compact", "--data", src, "--lock-timeout", "10ms")
	db.Close()
	if err == nil || !strings.Contains(err.Error(), "another process") && !strings.Contains(err.Error(), "locked") {
		t.Errorf("compact of a file in use: %v", err)
	}

	for _, args := range [][]string{
		{"compact"},
		{"compact", "--data", src, "extra"},
		{"compact", "--data", t.TempDir()}, // no data file
	} {
		if _, _, err := runCmd(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
