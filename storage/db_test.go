package storage

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// Child processes: a test re-executes its own binary with -test.run naming
// a child test and these variables set; the child test skips otherwise.
const (
	envChild = "TANDEM_STORAGE_CHILD" // the child's role: "hold" or "crash"
	envPath  = "TANDEM_STORAGE_PATH"  // the data file
)

// startChild starts this test binary as a child running test name in role,
// on the data file path, and returns it with its stdout.
func startChild(t *testing.T, name, role, path string, extraEnv ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+role, envPath+"="+path)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// TestHoldChild is the child of TestLockedByAnotherProcess: it opens the
// file, says "ready" and holds it until killed.
func TestHoldChild(t *testing.T) {
	if os.Getenv(envChild) != "hold" {
		t.Skip("child process only")
	}
	db, err := Open(os.Getenv(envPath), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute) // the parent kills it long before
}

func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	_, out := startChild(t, "TestHoldChild", "hold", path)
	line, err := out.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	start := time.Now()
	db, err := Open(path, Config{LockTimeout: 300 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("Open of a file another process holds succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want ErrLocked naming %s", err, path)
	}
	if took > 2*time.Second {
		t.Fatalf("Open took %v with a 300ms lock timeout", took)
	}
	t.Logf("Open failed after %v: %v", took, err)
}

// TestLockedInProcess checks that bbolt's flock, which is per open file
// description, also keeps a second Open in the same process out.
func TestLockedInProcess(t *testing.T) {
	db := openTestDB(t, Config{})
	_, err := Open(db.Path(), Config{LockTimeout: -1})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(db.Path(), Config{LockTimeout: -1})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db2.Close()
}

// TestCorruptFile damages a real data file in several ways; each Open must
// fail with a clear ErrCorrupt, never panic or crash.
func TestCorruptFile(t *testing.T) {
	// A real file with some history, big enough to truncate in the middle.
	src := filepath.Join(t.TempDir(), "tandem.db")
	db := openAt(t, src, Config{SnapshotEvery: 50})
	mustCreate(t, db, "d")
	h := newHistory("d", 9)
	h.appendN(t, db, 400)
	if err := db.PutSnapshot(ctx(t), "d", doc.Snapshot{Version: 400, Content: h.contents[400]}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) < 64<<10 {
		t.Fatalf("test file only %d bytes", len(orig))
	}
	garbage := func(n int) []byte {
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	const page = 4096
	for _, tc := range []struct {
		name    string
		content []byte
		ok      bool // bbolt recovers
		want    string
	}{
		{"not a data file", []byte("hello, I am a text file\n"), false, "not a valid data file"},
		{"random bytes", garbage(64 << 10), false, "not a valid data file"},
		{"both meta pages overwritten", append(garbage(2*page), orig[2*page:]...), false, "not a valid data file"},
		{"first meta page overwritten", append(garbage(page), orig[page:]...), true, ""},
		{"truncated after four pages", orig[:4*page], false, "truncated"}, // the file grows ahead of its pages: cut well below them
		{"truncated to one page", orig[:page], false, "file size too small"},
		{"empty", nil, false, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tandem.db")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
			if tc.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want ErrCorrupt saying %q and naming the file", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestSchemaMismatch: a file of another layout version fails Open clearly.
func TestSchemaMismatch(t *testing.T) {
	db := openTestDB(t, Config{})
	path := db.Path()
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Config{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `schema version "1"`) {
		t.Fatalf("got %v, want ErrCorrupt naming the schema version", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Config{}); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a directory: got %v, want a plain error", err)
	}
	if _, err := Open(filepath.Join(dir, "no", "such", "dir", "x.db"), Config{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open in a missing directory: got %v, want ErrNotExist", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{}.withDefaults()
	if cfg.SnapshotEvery != DefaultSnapshotEvery || cfg.LockTimeout != DefaultLockTimeout || cfg.Now == nil {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg := (Config{LockTimeout: -1}).withDefaults(); cfg.LockTimeout <= 0 {
		t.Fatalf("negative LockTimeout became %v; bbolt would wait forever", cfg.LockTimeout)
	}
}

func TestCloseTwice(t *testing.T) {
	db := openTestDB(t, Config{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	done := make(chan error, 1)
	db.AppendOpAsync("d", doc.OpRecord{}, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrClosed) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("AppendOpAsync after Close: %v", err)
	}
	if err := db.PutUser(ctx(t), doc.User{ID: "u"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutUser after Close: got %v, want ErrClosed", err)
	}
}
