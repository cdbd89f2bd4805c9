package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// oracleDoc is the in-memory model of one stored document.
type oracleDoc struct {
	*history
	base int // compaction point
}

// TestOracle runs random sequences of appends (pipelined and blocking, good
// and bad), snapshots, compactions, deletions, journal drains, packing into
// blocks (small ones, so that most of the history is packed) and reopens
// against the store and an in-memory model, comparing them after every step
// and in full at the end.
func TestOracle(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	steps := 120
	if testing.Short() {
		seeds, steps = seeds[:1], 40
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runOracle(t, seed, steps)
		})
	}
}

func runOracle(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 99))
	cfg := Config{SnapshotEvery: 1 + r.IntN(20), blockOps: 1 + r.IntN(12), packTail: 1 + r.IntN(8)}
	if seed%2 == 1 {
		cfg.journalIdle = time.Hour // the journal drains only when a step makes it
	} else {
		cfg.journalIdle = time.Millisecond // drains, and so packing, run beside the steps
	}
	// uids of every form a block stores: a client's prefix and counter
	// (from several clients, some counters zero-padded), and whole uids
	// that end in no counter.
	uidOf := func(id string) func(v int) string {
		return func(v int) string {
			switch v % 7 {
			case 3:
				return fmt.Sprintf("%s-lit%d-x", id, v)
			case 5:
				return fmt.Sprintf("%s-c2-%04d", id, v)
			default:
				return fmt.Sprintf("%s-c%d-%d", id, v%2, v)
			}
		}
	}
	db := openTestDB(t, cfg)
	path := db.Path()
	model := map[string]*oracleDoc{}
	created := 0
	ids := func() []string {
		var out []string
		for id := range model {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	pick := func() *oracleDoc {
		all := ids()
		if len(all) == 0 {
			return nil
		}
		return model[all[r.IntN(len(all))]]
	}

	for step := range steps {
		d := pick()
		switch k := r.IntN(100); {
		case k < 10 || d == nil: // create
			id := fmt.Sprintf("doc%d", created%5)
			created++
			_, err := db.CreateDoc(ctx(t), doc.Info{ID: id})
			_, exists := model[id]
			if exists != errors.Is(err, ErrExists) || (!exists && err != nil) {
				t.Fatalf("step %d: CreateDoc(%s): %v (exists in model: %t)", step, id, err, exists)
			}
			if !exists {
				h := newHistory(id, r.Uint64())
				h.uid = uidOf(id)
				model[id] = &oracleDoc{history: h}
			}
		case k < 45: // pipelined appends
			d.appendN(t, db, 1+r.IntN(60))
		case k < 55: // blocking appends
			for range 1 + r.IntN(5) {
				rec := d.next()
				if err := db.AppendOp(ctx(t), d.id, rec); err != nil {
					t.Fatalf("step %d: AppendOp: %v", step, err)
				}
				d.commit(t, rec)
			}
		case k < 62: // a bad append changes nothing
			rec := d.next()
			switch r.IntN(3) {
			case 0:
				rec.Version += 1 + r.IntN(3)
			case 1:
				if rec.Version == 0 {
					continue
				}
				rec.Version = r.IntN(rec.Version)
			default:
				if d.head() == d.base {
					continue
				}
				rec.UID = d.recs[d.base+r.IntN(d.head()-d.base)].UID
			}
			if err := db.AppendOp(ctx(t), d.id, rec); !errors.Is(err, ErrConflict) && !errors.Is(err, ErrDuplicateUID) {
				t.Fatalf("step %d: bad append v%d (head %d) uid %q: %v", step, rec.Version, d.head(), rec.UID, err)
			}
		case k < 70: // a session's snapshot
			v := d.base + r.IntN(d.head()-d.base+1)
			if err := db.PutSnapshot(ctx(t), d.id, doc.Snapshot{Version: v, Content: d.contents[v]}); err != nil {
				t.Fatalf("step %d: PutSnapshot(%d): %v", step, v, err)
			}
		case k < 78: // compaction
			v := d.base + r.IntN(d.head()-d.base+1)
			if err := db.Compact(ctx(t), d.id, v); err != nil {
				t.Fatalf("step %d: Compact(%d): %v", step, v, err)
			}
			d.base = v
		case k < 82: // deletion
			if err := db.DeleteDoc(ctx(t), d.id); err != nil {
				t.Fatalf("step %d: DeleteDoc: %v", step, err)
			}
			delete(model, d.id)
		case k < 87: // the journal moved into the op log now, and packed
			if err := db.update(ctx(t), func(w *writeTx) error { return abort(w.drainJournal()) }); err != nil {
				t.Fatalf("step %d: drain: %v", step, err)
			}
			if st := db.Stats(); st.Journal != 0 {
				t.Fatalf("step %d: %d ops in the journal after a drain", step, st.Journal)
			}
			db.packs.waitIdle()
		case k < 90: // reopen, cleanly or from a copy taken mid-flight (as
			// after a crash: the journal not drained)
			if r.IntN(2) == 0 {
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crashed := fmt.Sprintf("%s.crash%d", path, step)
				if err := db.bolt.View(func(tx *bolt.Tx) error { return tx.CopyFile(crashed, 0o600) }); err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				path = crashed
			}
			db = openAt(t, path, cfg)
		default: // a uid lookup, here and there
			if d.head() > 0 {
				v := r.IntN(d.head())
				rec, found, err := db.OpByUID(d.id, d.recs[v].UID)
				if err != nil || found != (v >= d.base) || (found && rec.Version != v) {
					t.Fatalf("step %d: OpByUID(v%d, base %d) = v%d, %t, %v", step, v, d.base, rec.Version, found, err)
				}
			}
		}
		if step%10 == 9 {
			if err := checkStore(db); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		// After every step: versions and heads agree, and a random version's
		// content.
		for _, id := range ids() {
			d := model[id]
			info, err := db.GetDoc(id)
			if err != nil || info.Version != d.head() {
				t.Fatalf("step %d: GetDoc(%s) = %+v, %v; model at v%d", step, id, info, err, d.head())
			}
			v := d.base + r.IntN(d.head()-d.base+1)
			if s, err := db.ContentAt(id, v); err != nil || s != d.contents[v] {
				t.Fatalf("step %d: ContentAt(%s, %d) = %q, %v; want %q", step, id, v, s, err, d.contents[v])
			}
		}
	}

	// In full, once everything due is packed.
	if err := db.update(ctx(t), func(w *writeTx) error { return abort(w.drainJournal()) }); err != nil {
		t.Fatal(err)
	}
	db.packs.waitIdle()
	st := db.Stats()
	if st.PackedOps == 0 {
		t.Errorf("nothing was packed: %+v", st)
	}
	t.Logf("config %+v: %d ops packed, %d journal drains", cfg, st.PackedOps, st.JournalDrains)
	list, err := db.ListDocs()
	if err != nil || len(list) != len(model) {
		t.Fatalf("ListDocs = %v, %v; model has %v", list, err, ids())
	}
	for _, id := range ids() {
		d := model[id]
		for v := d.base; v <= d.head(); v++ {
			if s, err := db.ContentAt(id, v); err != nil || s != d.contents[v] {
				t.Fatalf("%s: ContentAt(%d) = %q, %v; want %q", id, v, s, err, d.contents[v])
			}
		}
		if d.base > 0 {
			if _, err := db.ContentAt(id, d.base-1); !errors.Is(err, ErrCompacted) {
				t.Fatalf("%s: ContentAt(base-1): %v", id, err)
			}
		}
		ops, err := db.Ops(id, d.base, d.head())
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range ops {
			w := d.recs[d.base+i]
			if rec.Version != w.Version || !rec.Op.Equal(w.Op) || rec.UID != w.UID || rec.User != w.User ||
				rec.ClientID != w.ClientID || !rec.Time.Equal(w.Time) {
				t.Fatalf("%s: op %d = %+v, want %+v", id, d.base+i, rec, w)
			}
			got, found, err := db.OpByUID(id, w.UID)
			if err != nil || !found || got.Version != w.Version || !got.Op.Equal(w.Op) {
				t.Fatalf("%s: OpByUID(%q) = v%d, %t, %v; want v%d", id, w.UID, got.Version, found, err, w.Version)
			}
		}
		for v := range d.base { // compacted away: not found
			if _, found, err := db.OpByUID(id, d.recs[v].UID); err != nil || found {
				t.Fatalf("%s: OpByUID(%q) of compacted v%d = %t, %v", id, d.recs[v].UID, v, found, err)
			}
		}
		snap, tail, err := db.Head(id)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := doc.Replay(snap, tail, d.head()); err != nil || s != d.contents[d.head()] {
			t.Fatalf("%s: Head replays to %q, %v", id, s, err)
		}
	}
}
