package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/storage"
)

// TestBackup: `tandem backup` copies a running server's data file through
// its HTTP API and a stopped server's from its data directory; each copy
// opens as a store with the document whole. Bad use writes no file.
func TestBackup(t *testing.T) {
	src, content := makeStore(t)
	url, _ := runRemoteServer(t, src)

	check := func(path string) {
		t.Helper()
		db, err := storage.Open(path, storage.Config{})
		if err != nil {
			t.Fatalf("open the backup: %v", err)
		}
		defer db.Close()
		if got, err := db.ContentAt("notes", 50); err != nil || got != content {
			t.Fatalf("backup content: %q, %v; want %q", got, err, content)
		}
		if cs, err := db.Comments("notes"); err != nil || len(cs) != 1 {
			t.Fatalf("backup comments: %+v, %v", cs, err)
		}
	}

	live := filepath.Join(t.TempDir(), "live.db")
	_, errOut, err := runCmd("backup", "--server", url, "--key", remoteTestKey, "-o", live)
	if err != nil || !strings.Contains(errOut, "bytes written to "+live) {
		t.Fatalf("backup --server: %v, stderr %q", err, errOut)
	}
	check(live)

	// A wrong key: an error naming the refusal, and no file.
	refused := filepath.Join(t.TempDir(), "refused.db")
	if _, _, err := runCmd("backup", "--server", url, "--key", "nope-nope-nope-nope", "-o", refused); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("backup with a bad key: %v, want a 401", err)
	}
	if _, err := os.Stat(refused); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left a file: %v", err)
	}

	// A stopped server's directory (here: a copy, since the server holds
	// the original's lock).
	stopped := t.TempDir()
	b, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stopped, dataFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	offline := filepath.Join(t.TempDir(), "offline.db")
	if _, errOut, err := runCmd("backup", "--data", stopped, "-o", offline); err != nil {
		t.Fatalf("backup --data: %v, stderr %q", err, errOut)
	}
	check(offline)

	for _, args := range [][]string{
		{"backup", "-o", offline},
		{"backup", "--data", stopped},
		{"backup", "--data", stopped, "--server", url, "-o", offline},
		{"backup", "--data", stopped, "-o", offline, "extra"},
	} {
		if _, _, err := runCmd(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
