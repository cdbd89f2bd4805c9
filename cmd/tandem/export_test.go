package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/storage"
)

// makeStore creates a data directory holding document "notes" with some
// history and a comment, and returns the directory and the final content.
func makeStore(t *testing.T) (dir, content string) {
	t.Helper()
	dir = t.TempDir()
	db, err := storage.Open(filepath.Join(dir, dataFileName), storage.Config{SnapshotEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.CreateDoc(ctx, doc.Info{ID: "notes", Title: "Notes"}); err != nil {
		t.Fatal(err)
	}
	typist := doc.NewTypist(1)
	for v := range 50 {
		op := typist.Next(len([]rune(content)))
		if content, err = ot.Apply(content, op); err != nil {
			t.Fatal(err)
		}
		if err := db.AppendOp(ctx, "notes", doc.OpRecord{Version: v, Op: op, UID: fmt.Sprint("u", v), User: "ann"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutComment(ctx, "notes", doc.Comment{ID: "c1", Version: 50, Range: ot.Range{From: 0, To: 1}, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, content
}

// runCmd runs tandem with args and returns its stdout, stderr and error.
func runCmd(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestExportImport(t *testing.T) {
	src, content := makeStore(t)
	file := filepath.Join(t.TempDir(), "notes.json")
	if out, errOut, err := runCmd("export", "--data", src, "--doc", "notes", "-o", file); err != nil || out != "" {
		t.Fatalf("export -o: %v, stdout %q, stderr %q", err, out, errOut)
	}
	exported, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(exported, []byte(`{"format":"tandem-export","format_version":1,`)) {
		t.Fatalf("export file: %.60q, %v", exported, err)
	}
	// To stdout: the same, up to the export time.
	out, _, err := runCmd("export", "--data", src, "--doc", "notes")
	stamp := regexp.MustCompile(`"exported_at":"[^"]*"`)
	if err != nil || stamp.ReplaceAllString(out, "") != stamp.ReplaceAllString(string(exported), "") {
		t.Fatalf("export to stdout: %v, %d bytes differ from the file's %d", err, len(out), len(exported))
	}

	dst := filepath.Join(t.TempDir(), "new", "data") // created by import
	out, errOut, err := runCmd("import", "--data", dst, file)
	if err != nil || out != "imported document \"notes\" at version 50\n" {
		t.Fatalf("import: %v, stdout %q, stderr %q", err, out, errOut)
	}
	db, err := storage.Open(filepath.Join(dst, dataFileName), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.ContentAt("notes", 50)
	cs, _ := db.Comments("notes")
	info, _ := db.GetDoc("notes")
	db.Close()
	if err != nil || got != content || len(cs) != 1 || cs[0].Text != "hi" || info.Title != "Notes" {
		t.Fatalf("imported: content %q (%v), comments %+v, info %+v; want %q", got, err, cs, info, content)
	}

	// Importing it again fails: the document exists.
	if _, _, err := runCmd("import", "--data", dst, file); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second import: %v", err)
	}
}

func TestExportImportErrors(t *testing.T) {
	src, _ := makeStore(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"format":"tandem-export","format_version":1,"doc":{"id":"x","version":2},"base":0,"snapshots":[{"version":0,"content":""}],"ops":[{"version":0,"op":["a"]},{"version":2,"op":["b"]}],"comments":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool   // fails with errUsage, the problem on stderr
		want  string // in the error, or on stderr for usage errors
	}{
		{"export without --doc", []string{"export", "--data", src}, true, "--doc is required"},
		{"export without --data", []string{"export", "--doc", "notes"}, true, "--data is required"},
		{"export extra argument", []string{"export", "--data", src, "--doc", "notes", "more"}, true, "unexpected argument"},
		{"export bad flag", []string{"export", "--nope"}, true, "flag provided but not defined"},
		{"export missing data dir", []string{"export", "--data", filepath.Join(src, "nope"), "--doc", "notes"}, false, "no data file"},
		{"export missing doc", []string{"export", "--data", src, "--doc", "nope"}, false, "not found"},
		{"export to a missing dir", []string{"export", "--data", src, "--doc", "notes", "-o", filepath.Join(src, "no", "f.json")}, false, "no such file"},
		{"import without file", []string{"import", "--data", src}, true, "exactly one FILE"},
		{"import without --data", []string{"import", bad}, true, "--data is required"},
		{"import missing file", []string{"import", "--data", src, filepath.Join(src, "nope.json")}, false, "no such file"},
		{"import version gap", []string{"import", "--data", src, bad}, false, "version gap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runCmd(tc.args...)
			if tc.usage {
				if !errors.Is(err, errUsage) || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Usage: tandem "+tc.args[0]) {
					t.Fatalf("got %v, stderr %q; want errUsage and %q with the usage", err, stderr, tc.want)
				}
				return
			}
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
	// The failed import wrote nothing.
	db, err := storage.Open(filepath.Join(src, dataFileName), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := db.ListDocs()
	db.Close()
	if len(list) != 1 || list[0].ID != "notes" {
		t.Fatalf("after failed imports the store holds %+v", list)
	}
}

func TestExportImportHelp(t *testing.T) {
	for _, cmd := range []string{"export", "import"} {
		_, stderr, err := runCmd(cmd, "-h")
		if err != nil || !strings.Contains(stderr, "Usage: tandem "+cmd) || !strings.Contains(stderr, "-data") {
			t.Errorf("%s -h: %v, stderr %q", cmd, err, stderr)
		}
	}
}

// TestExportLocked runs export against a file a server (here, an open DB)
// holds: it fails within the lock timeout, saying so.
func TestExportLocked(t *testing.T) {
	src, _ := makeStore(t)
	db, err := storage.Open(filepath.Join(src, dataFileName), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, _, err = runCmd("export", "--data", src, "--doc", "notes", "--lock-timeout", "200ms")
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), dataFileName) {
		t.Fatalf("got %v, want ErrLocked naming the file", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("export took %v to give up", took)
	}
}
