package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/trace"
	"github.com/tandemhq/tandem/ot"
)

// TestMain runs the tests, closes the benchmarks' shared histories, and
// then checks that no goroutine is left behind: every DB the tests open
// starts a committer, a packer and a snapshotter, which Close must stop.
func TestMain(m *testing.M) {
	code := m.Run()
	benchHistories.close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// soloMu makes appendOpSolo's callers take turns.
var soloMu sync.Mutex

// appendOpSolo appends rec through the same path as AppendOp, but never
// while another appendOpSolo is in flight: every commit holds one op, one
// fsync per op, the baseline group commit is measured against.
func (db *DB) appendOpSolo(docID string, rec doc.OpRecord) error {
	soloMu.Lock()
	defer soloMu.Unlock()
	return db.AppendOp(context.Background(), docID, rec)
}

// BenchmarkAppend measures durable appends per second (fsync on) with 1,
// 10 and 100 concurrent writers, each on its own document or all on one
// document, through the group commit and, for comparison, with one
// transaction and fsync per op. On one document the writers behave as
// sessions do: a mutex assigns the versions and submits in order, and each
// writer waits for its own op's commit.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"group", "fsync-per-op"} {
		for _, docs := range []string{"own-doc", "one-doc"} {
			for _, writers := range []int{1, 10, 100} {
				b.Run(fmt.Sprintf("%s/%s/writers=%d", mode, docs, writers), func(b *testing.B) {
					benchAppend(b, mode == "group", docs == "one-doc", writers)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, group, oneDoc bool, writers int) {
	benchAppendDB(b, openTestDB(b, Config{}), group, oneDoc, writers)
}

func benchAppendDB(b *testing.B, db *DB, group, oneDoc bool, writers int) {
	ndocs := writers
	if oneDoc {
		ndocs = 1
	}
	for i := range ndocs {
		db.DeleteDoc(context.Background(), fmt.Sprint("d", i))
		mustCreate(b, db, fmt.Sprint("d", i))
	}
	per := max(1, b.N/writers)
	op := ot.Op{ot.Insert("a")} // applies to any content
	var (
		mu   sync.Mutex // one-doc: assigns versions, submits in order
		next int
	)
	before := db.Stats()
	boltBefore := db.bolt.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			done := make(chan error, 1)
			v := 0 // own-doc: this writer's next version
			for n := range per {
				uid := fmt.Sprintf("w%d-%d", w, n)
				var err error
				switch {
				case !oneDoc && group:
					err = db.AppendOp(context.Background(), fmt.Sprint("d", w), doc.OpRecord{Version: v, Op: op, UID: uid})
					v++
				case !oneDoc:
					err = db.appendOpSolo(fmt.Sprint("d", w), doc.OpRecord{Version: v, Op: op, UID: uid})
					v++
				case group:
					mu.Lock()
					db.AppendOpAsync("d0", doc.OpRecord{Version: next, Op: op, UID: uid}, func(err error) { done <- err })
					next++
					mu.Unlock()
					err = <-done
				default: // one doc, one transaction per op: in order, so under the lock
					mu.Lock()
					err = db.appendOpSolo("d0", doc.OpRecord{Version: next, Op: op, UID: uid})
					next++
					mu.Unlock()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := b.Elapsed()
	b.StopTimer()
	total := per * writers
	b.ReportMetric(float64(total)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(0, "ns/op")
	if st := db.Stats(); group && st.Commits > before.Commits {
		b.ReportMetric(float64(st.Requests-before.Requests)/float64(st.Commits-before.Commits), "ops/commit")
		b.ReportMetric(float64(st.CommitTime-before.CommitTime)/float64(elapsed)*100, "busy%")
		boltAfter := db.bolt.Stats()
		writes := boltAfter.TxStats.GetWrite() - boltBefore.TxStats.GetWrite()
		b.ReportMetric(float64(writes)/float64(st.Commits-before.Commits), "pages/commit")
	}
}

// benchHistories holds the long histories the read benchmarks share, built
// once with NoSync in a temporary file.
var benchHistories sharedHistories

type sharedHistories struct {
	once sync.Once
	dir  string
	db   *DB
	err  error
}

func (h *sharedHistories) close() {
	if h.db != nil {
		h.db.Close()
	}
	if h.dir != "" {
		os.RemoveAll(h.dir)
	}
}

// Read benchmark histories: documents "h1000" and "h100000" with that many
// ops. Both start with a pasted text of benchText code points and stay
// around that size (a realistic document under long editing), so that the
// two differ in the length of their history, not in their size.
const benchText = 8000

// historyDB returns the store holding the read benchmarks' histories.
func historyDB(b *testing.B) *DB {
	h := &benchHistories
	h.once.Do(func() {
		start := time.Now()
		h.dir, h.err = os.MkdirTemp("", "tandem-bench-")
		if h.err != nil {
			return
		}
		h.db, h.err = Open(filepath.Join(h.dir, "tandem.db"), Config{NoSync: true})
		for _, n := range []int{1000, 100000} {
			if h.err == nil {
				h.err = buildHistory(h.db, fmt.Sprint("h", n), n)
			}
		}
		if h.err == nil {
			// Settle as a server left alone would: the journal drained,
			// the history older than the live tail packed.
			h.err = h.db.update(context.Background(), func(w *writeTx) error { return abort(w.drainJournal()) })
			h.db.snaps.waitIdle()
			h.db.packs.waitIdle()
		}
		if h.err == nil {
			fmt.Fprintf(os.Stderr, "built the read benchmarks' histories in %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if h.err != nil {
		b.Fatal(h.err)
	}
	return h.db
}

// buildHistory appends n edits to a new document: a paste of benchText
// code points, then a Typist's edits, with a cut of a random stretch
// whenever the text grows 5% past benchText.
func buildHistory(db *DB, id string, n int) error {
	if _, err := db.CreateDoc(context.Background(), doc.Info{ID: id}); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(uint64(n), 1))
	words := strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua café 漢字 😀")
	var sb strings.Builder
	for n := 0; n < benchText; {
		w := words[r.IntN(len(words))] + " "
		sb.WriteString(w)
		n += len([]rune(w))
	}
	rope := doc.NewRope("")
	typist := doc.NewTypist(uint64(n))
	errs := make(chan error, n)
	for v := range n {
		var op ot.Op
		switch {
		case v == 0:
			op = ot.Op{ot.Insert(sb.String())}
		case rope.Len() > benchText*21/20:
			k := 50 + r.IntN(200)
			op = ot.Splice(r.IntN(rope.Len()-k), k, "")
			typist.Observe(op)
		default:
			op = typist.Next(rope.Len())
		}
		if err := ot.ApplyTo(rope, op); err != nil {
			return err
		}
		db.AppendOpAsync(id, doc.OpRecord{Version: v, Op: op, UID: fmt.Sprint("u", v), User: "bench", Time: time.Now()}, func(err error) { errs <- err })
		if v%1000 == 999 || v == n-1 { // bound the pipeline
			for range v%1000 + 1 {
				if err := <-errs; err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// BenchmarkOpen measures opening a document, Head plus the replay of the
// ops after its latest snapshot, for histories of 1,000 and 100,000 ops.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("ops=%d", n), func(b *testing.B) {
			db := historyDB(b)
			id := fmt.Sprint("h", n)
			b.ResetTimer()
			for b.Loop() {
				snap, tail, err := db.Head(id)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := doc.Replay(snap, tail, snap.Version+len(tail)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
			reportSize(b, db, id)
		})
	}
}

// BenchmarkContentAt measures the content at a random version for
// histories of 1,000 and 100,000 ops.
func BenchmarkContentAt(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("ops=%d", n), func(b *testing.B) {
			db := historyDB(b)
			id := fmt.Sprint("h", n)
			r := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for b.Loop() {
				if _, err := db.ContentAt(id, r.IntN(n+1)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
			reportSize(b, db, id)
		})
	}
}

// reportSize reports the length of a document's text at its head.
func reportSize(b *testing.B, db *DB, id string) {
	info, err := db.GetDoc(id)
	if err != nil {
		b.Fatal(err)
	}
	s, err := db.ContentAt(id, info.Version)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(utf8.RuneCountInString(s)), "chars")
}

// BenchmarkReadHistory reads the whole history of the automerge-paper
// trace (259,778 ops from 3 authors, with uids and times) through DB.Ops
// from a compacted data file, one op a value (the packer off: the layout
// before blocks) against packed into blocks, in the same process.
func BenchmarkReadHistory(b *testing.B) {
	dir, err := trace.Dir()
	if err != nil {
		b.Skip(err)
	}
	tr, err := trace.Load(dir, "automerge-paper")
	if err != nil {
		b.Fatal(err)
	}
	for _, packed := range []bool{false, true} {
		name := "format=values"
		if packed {
			name = "format=blocks"
		}
		b.Run(name, func(b *testing.B) {
			db := openTestDB(b, Config{NoSync: true, noPack: !packed})
			mustCreate(b, db, "trace")
			r := rand.New(rand.NewPCG(1, 2))
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var counters [3]int
			errs := make(chan error, len(tr.Patches))
			for i, p := range tr.Patches {
				a := r.IntN(3)
				counters[a]++
				now = now.Add(time.Duration(20_000 + r.IntN(80_000)))
				client := fmt.Sprintf("c%09d", a)
				db.AppendOpAsync("trace", doc.OpRecord{Version: i, Op: ot.Splice(p.Pos, p.Del, p.Ins),
					UID: fmt.Sprintf("%s-%d", client, counters[a]), User: fmt.Sprint("author", a), ClientID: client, Time: now},
					func(err error) { errs <- err })
			}
			for range tr.Patches {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			// Read a compacted copy, as tandem bench history does: pages
			// full and in order.
			cfg := Config{NoSync: true, noPack: !packed}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			copyPath := db.Path() + ".compacted"
			if _, err := CompactFile(db.Path(), copyPath, cfg); err != nil {
				b.Fatal(err)
			}
			db = openAt(b, copyPath, cfg)
			b.ResetTimer()
			for b.Loop() {
				ops, err := db.Ops("trace", 0, len(tr.Patches))
				if err != nil || len(ops) != len(tr.Patches) {
					b.Fatalf("%d ops, %v", len(ops), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tr.Patches)), "ns/op-read")
		})
	}
}
