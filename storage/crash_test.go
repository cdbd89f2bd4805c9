package storage

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

var long = flag.Bool("long", false, "run the long variants (crash test: 200 kill cycles)")

// Crash test parameters.
const (
	crashDocs     = 4
	crashWriters  = 6
	crashChannel  = "chat:crash"
	crashSnapshot = 25 // SnapshotEvery in the child, so snapshots happen
	envCycle      = "TANDEM_CRASH_CYCLE"
	envCycles     = "TANDEM_CRASH_CYCLES" // overrides the number of cycles
)

// crashConfig is the store configuration of the crash test: frequent
// snapshots, journal drains and packing into small blocks, so that a kill
// lands in each of them.
func crashConfig() Config {
	return Config{SnapshotEvery: crashSnapshot, journalMax: 32, blockOps: 16, packTail: 8}
}

// TestCrashChild is the child of TestCrash: from several goroutines it
// appends ops to several documents, as sessions do (a lock per document
// assigns versions; some writers pipeline through AppendOpAsync, others
// block in AppendOp), plus messages to a channel, and prints each
// acknowledged write to stdout as it is acknowledged:
//
//	ack DOC VERSION UID
//	msg CHANNEL OFFSET
//
// It runs until the parent kills it.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envChild) != "crash" {
		t.Skip("child process only")
	}
	db, err := Open(os.Getenv(envPath), crashConfig())
	if err != nil {
		t.Fatal(err)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // one write: a line is never torn
		outMu.Unlock()
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}

	type session struct {
		mu      sync.Mutex
		id      string
		version int
		content []rune
		typist  *doc.Typist
	}
	cycle := os.Getenv(envCycle)
	sessions := make([]*session, crashDocs)
	for i := range sessions {
		id := fmt.Sprint("doc", i)
		if _, err := db.CreateDoc(t.Context(), doc.Info{ID: id}); err != nil && !errors.Is(err, ErrExists) {
			fail(err)
		}
		info, err := db.GetDoc(id)
		if err != nil {
			fail(err)
		}
		s, err := db.ContentAt(id, info.Version)
		if err != nil {
			fail(err)
		}
		seed, _ := strconv.Atoi(cycle)
		sessions[i] = &session{id: id, version: info.Version, content: []rune(s), typist: doc.NewTypist(uint64(seed*100 + i))}
	}
	say("ready\n")

	for g := range crashWriters {
		go func() {
			done := make(chan error, 1)
			for n := 0; ; n++ {
				s := sessions[(g+n)%crashDocs]
				s.mu.Lock()
				op := s.typist.Next(len(s.content))
				next, err := ot.Apply(string(s.content), op)
				if err != nil {
					fail(err)
				}
				rec := doc.OpRecord{Version: s.version, Op: op, UID: fmt.Sprintf("c%s-g%d-n%d", cycle, g, n), User: fmt.Sprint("u", g)}
				s.content = []rune(next)
				s.version++
				if g%2 == 0 { // pipelined: submit in order under the lock, wait outside it
					db.AppendOpAsync(s.id, rec, func(err error) {
						if err == nil {
							say("ack %s %d %s\n", s.id, rec.Version, rec.UID)
						}
						done <- err
					})
					s.mu.Unlock()
					if err := <-done; err != nil {
						fail(err)
					}
				} else { // blocking, under the lock
					if err := db.AppendOp(t.Context(), s.id, rec); err != nil {
						fail(err)
					}
					say("ack %s %d %s\n", s.id, rec.Version, rec.UID)
					s.mu.Unlock()
				}
			}
		}()
	}
	go func() {
		last, _, err := db.ChannelState(crashChannel)
		if err != nil {
			fail(err)
		}
		for off := last + 1; ; off++ {
			m := doc.Message{Channel: crashChannel, Offset: off, Data: []byte(`"hi"`)}
			if err := db.AppendMessage(t.Context(), m, HistoryLimit{MaxCount: 1 << 20}); err != nil {
				fail(err)
			}
			say("msg %s %d\n", crashChannel, off)
		}
	}()
	time.Sleep(time.Minute) // the parent kills it long before
}

// ackedOp is an op the child reported as durable.
type ackedOp struct {
	doc     string
	version int
	uid     string
}

// TestCrash kills a child that appends from several goroutines with
// SIGKILL at random moments, then reopens the file and checks that every
// acknowledged op and message is there, versions are contiguous from 0, no
// uid is stored twice and the uid lookup finds them, every snapshot and the
// head content equal replaying the whole log from empty, and bbolt's page
// check passes. The child drains its journal every 32 ops and packs blocks
// of 16, so kills land in drains and packing too; the test fails if no op
// was ever packed. 20 cycles (about
// 15 s), 200 with -long, or TANDEM_CRASH_CYCLES.
func TestCrash(t *testing.T) {
	cycles := 20
	if *long {
		cycles = 200
	}
	if s := os.Getenv(envCycles); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", envCycles, s, err)
		}
		cycles = n
	}
	if testing.Short() {
		cycles = 3
	}
	path := filepath.Join(t.TempDir(), "tandem.db")
	// Create the file first, so that a kill during the child's first Open
	// cannot leave an empty file behind.
	db, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var acked []ackedOp
	var msgs []uint64
	packed := 0
	start := time.Now()
	for cycle := range cycles {
		cmd, out := startChild(t, "TestCrashChild", "crash", path, fmt.Sprintf("%s=%d", envCycle, cycle))
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			for {
				line, err := out.ReadString('\n')
				if err != nil {
					return // EOF once killed; a torn last line is dropped
				}
				lines <- strings.TrimSuffix(line, "\n")
			}
		}()
		// Kill at a random moment: sometimes before the child is ready,
		// mostly while it writes.
		deadline := time.After(time.Duration(20+r.IntN(700)) * time.Millisecond)
		var got []string
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("cycle %d: child exited on its own (see its stderr)", cycle)
				}
				got = append(got, line)
			case <-deadline:
				break read
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for line := range lines { // what it printed before dying
			got = append(got, line)
		}
		_ = cmd.Wait()

		n := 0
		for _, line := range got {
			f := strings.Fields(line)
			switch {
			case len(f) == 4 && f[0] == "ack":
				v, err := strconv.Atoi(f[2])
				if err != nil {
					t.Fatalf("child line %q", line)
				}
				acked = append(acked, ackedOp{doc: f[1], version: v, uid: f[3]})
				n++
			case len(f) == 3 && f[0] == "msg":
				off, err := strconv.ParseUint(f[2], 10, 64)
				if err != nil {
					t.Fatalf("child line %q", line)
				}
				msgs = append(msgs, off)
			}
		}
		packed = checkCrashed(t, path, acked, msgs)
		t.Logf("cycle %d: %d ops acked (%d in all), %d messages, %d ops in blocks", cycle, n, len(acked), len(msgs), packed)
	}
	if len(acked) == 0 {
		t.Fatal("the child never acknowledged an op")
	}
	// A child slowed down by a loaded machine may ack few ops per cycle;
	// past a few hundred, some must have been packed.
	if packed == 0 && len(acked) >= 500 {
		t.Fatalf("%d ops acknowledged, none ever packed into a block", len(acked))
	}
	t.Logf("%d cycles in %v: %d acknowledged ops and %d messages all present", cycles, time.Since(start).Round(time.Millisecond), len(acked), len(msgs))
}

// checkCrashed reopens the file a killed child left and checks it. It
// returns how many ops the file holds in blocks.
func checkCrashed(t *testing.T, path string, acked []ackedOp, msgs []uint64) (packed int) {
	t.Helper()
	cfg := crashConfig()
	cfg.noPack = true // check what the child left, blocks and all
	db, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := checkStore(db); err != nil { // contiguity, uids, snapshots, bbolt
		t.Fatalf("after kill: %v", err)
	}
	logs := map[string][]doc.OpRecord{}
	for i := range crashDocs {
		id := fmt.Sprint("doc", i)
		info, err := db.GetDoc(id)
		if errors.Is(err, ErrNotFound) {
			continue // killed before it was created
		}
		if err != nil {
			t.Fatal(err)
		}
		ops, err := db.Ops(id, 0, info.Version) // contiguous from 0
		if err != nil {
			t.Fatalf("%s: Ops(0, %d): %v", id, info.Version, err)
		}
		uids := map[string]bool{}
		for _, rec := range ops {
			if uids[rec.UID] {
				t.Fatalf("%s: uid %q twice", id, rec.UID)
			}
			uids[rec.UID] = true
		}
		whole, err := doc.Replay(doc.Snapshot{}, ops, info.Version)
		if err != nil {
			t.Fatalf("%s: replaying the whole log: %v", id, err)
		}
		at, err := db.ContentAt(id, info.Version)
		if err != nil || at != whole {
			t.Fatalf("%s: ContentAt(head) = %d code points, %v; the whole log gives %d", id, utf8.RuneCountInString(at), err, utf8.RuneCountInString(whole))
		}
		snap, tail, err := db.Head(id)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := doc.Replay(snap, tail, info.Version); err != nil || s != whole {
			t.Fatalf("%s: Head (snapshot v%d + %d ops) differs from the whole log: %v", id, snap.Version, len(tail), err)
		}
		logs[id] = ops
	}
	for _, a := range acked {
		ops := logs[a.doc]
		if a.version >= len(ops) {
			t.Fatalf("acknowledged op %s v%d lost: the log ends at v%d", a.doc, a.version, len(ops))
		}
		if ops[a.version].UID != a.uid {
			t.Fatalf("acknowledged op %s v%d has uid %q, stored %q", a.doc, a.version, a.uid, ops[a.version].UID)
		}
	}
	// Exactly-once after a crash: a sample of the acknowledged uids is
	// found at its version, wherever the op lies (journal, op log, block).
	for i := len(acked) - 1; i >= 0; i -= 7 {
		a := acked[i]
		if rec, found, err := db.OpByUID(a.doc, a.uid); err != nil || !found || rec.Version != a.version {
			t.Fatalf("OpByUID(%s, %q) = v%d, %t, %v; acknowledged at v%d", a.doc, a.uid, rec.Version, found, err, a.version)
		}
	}
	err = db.view(func(tx *bolt.Tx) error {
		for id := range logs {
			d, err := mustDoc(tx, id)
			if err != nil {
				return err
			}
			end, err := d.packedEnd()
			if err != nil {
				return err
			}
			packed += end
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) > 0 {
		stored, err := db.MessagesSince(crashChannel, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range stored {
			if m.Offset != uint64(i+1) {
				t.Fatalf("message %d has offset %d", i, m.Offset)
			}
		}
		for _, off := range msgs {
			if off > uint64(len(stored)) {
				t.Fatalf("acknowledged message %d lost: %d stored", off, len(stored))
			}
		}
	}
	return packed
}
