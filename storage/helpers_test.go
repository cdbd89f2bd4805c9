package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// openTestDB opens a fresh store in t.TempDir(). Its cleanup checks the
// store's invariants and bbolt's page structure, then closes it.
func openTestDB(t testing.TB, cfg Config) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "tandem.db"), cfg)
}

// openAt opens the store at path with a test logger; its cleanup checks and
// closes it (closing twice is harmless, so tests may close it themselves).
func openAt(t testing.TB, path string, cfg Config) *DB {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	db, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			if err := checkStore(db); err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("store invariants at cleanup: %v", err)
			}
		}
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// ctx returns a context that ends with the test (and after a minute).
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// mustCreate creates an empty document.
func mustCreate(t testing.TB, db *DB, id string) {
	t.Helper()
	if _, err := db.CreateDoc(ctx(t), doc.Info{ID: id, Title: "title of " + id}); err != nil {
		t.Fatalf("CreateDoc(%q): %v", id, err)
	}
}

// history is an in-memory document: its ops and the content at every
// version, the oracle the store is compared with.
type history struct {
	id       string
	typist   *doc.Typist
	recs     []doc.OpRecord
	contents []string // contents[v] is the content at version v
	// uid makes the uid of version v; nil: "<id>-u<v>".
	uid func(v int) string
}

func newHistory(id string, seed uint64) *history {
	return &history{id: id, typist: doc.NewTypist(seed), contents: []string{""}}
}

// next makes the next op record (not yet appended).
func (h *history) next() doc.OpRecord {
	cur := h.contents[len(h.contents)-1]
	op := h.typist.Next(utf8.RuneCountInString(cur))
	v := len(h.recs)
	uid := fmt.Sprintf("%s-u%d", h.id, v)
	if h.uid != nil {
		uid = h.uid(v)
	}
	return doc.OpRecord{
		Version:  v,
		Op:       op,
		UID:      uid,
		User:     fmt.Sprintf("user%d", v%3),
		ClientID: "c1",
		Time:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(v) * time.Second),
	}
}

// commit records rec as appended.
func (h *history) commit(t testing.TB, rec doc.OpRecord) {
	t.Helper()
	s, err := ot.Apply(h.contents[len(h.contents)-1], rec.Op)
	if err != nil {
		t.Fatalf("oracle: op v%d %v does not apply: %v", rec.Version, rec.Op, err)
	}
	h.recs = append(h.recs, rec)
	h.contents = append(h.contents, s)
}

// head is the oracle's current version.
func (h *history) head() int { return len(h.recs) }

// appendN appends n ops to the store and the oracle, pipelined through
// AppendOpAsync as a session does, and waits for them all.
func (h *history) appendN(t testing.TB, db *DB, n int) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		rec := h.next()
		h.commit(t, rec)
		db.AppendOpAsync(h.id, rec, func(err error) { errs <- err })
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("append to %q: %v", h.id, err)
		}
	}
}

// checkStore verifies every document's invariants: ops contiguous from the
// base to the head, each uid indexed once and pointing at its op, snapshots
// between base and head that match replaying the log, and no key in the
// per-document buckets left from a deleted document. It waits for the
// snapshotter first, and runs bbolt's page check.
func checkStore(db *DB) error {
	db.snaps.waitIdle()
	// The committer's view of the journal, read on its own goroutine by a
	// write that changes nothing, must match the bucket.
	err := db.update(context.Background(), func(w *writeTx) error {
		// What the committer knows: its state after the last commit, plus
		// what earlier requests of this transaction added.
		known := map[uint64]map[string]int{}
		if !w.jtx.drained {
			for num, m := range w.db.commits.journal.uids {
				for uid, v := range m {
					addUID(known, num, uid, v)
				}
			}
		}
		for num, m := range w.jtx.uids {
			for uid, v := range m {
				addUID(known, num, uid, v)
			}
		}
		st := journalState{entries: w.journalEntries(), uids: known}
		entries, uids := 0, 0
		for _, m := range st.uids {
			uids += len(m)
		}
		seen := 0
		err := w.tx.Bucket(bucketJournal).ForEach(func(k, v []byte) error {
			entries++
			num, ver, val, _ := splitJournalValue(v)
			uid, err := opValueUID(val)
			if err != nil || uid == "" {
				return err
			}
			seen++
			if got, ok := st.uids[num][uid]; !ok || got != ver {
				return fmt.Errorf("journaled uid %q of document %d at v%d: the committer has v%d (%t)", uid, num, ver, got, ok)
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case entries != st.entries || seen != uids:
			return fmt.Errorf("the committer counts %d journal entries and %d uids, the bucket holds %d and %d", st.entries, uids, entries, seen)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// bbolt's Check reads the freelist, which a concurrent commit writes:
	// run it in a write transaction (rolled back) to keep writers out.
	tx, err := db.bolt.Begin(true)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	} else if err != nil {
		return err
	}
	defer tx.Rollback()
	for err := range tx.Check() {
		return fmt.Errorf("bbolt check: %w", err)
	}
	live := map[string]bool{}
	journaled := 0 // ops the heads say are in the journal
	err = tx.Bucket(bucketDocs).ForEach(func(k, _ []byte) error {
		d, err := mustDoc(tx, string(k))
		if err != nil {
			return err
		}
		live[string(d.pfx)] = true
		h, err := d.headRec()
		if err != nil {
			return err
		}
		journaled += h.Head - h.Indexed
		if err := checkDoc(d); err != nil {
			return fmt.Errorf("doc %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	entries := 0
	err = tx.Bucket(bucketJournal).ForEach(func(k, v []byte) error {
		entries++
		if len(v) < 8 || !live[string(v[:8])] {
			return fmt.Errorf("journal entry %x of no document", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if entries != journaled {
		return fmt.Errorf("journal holds %d entries, the heads say %d", entries, journaled)
	}
	for _, name := range [][]byte{bucketHeads, bucketOps, bucketUIDs, bucketBlocks, bucketBlockUIDs, bucketSnaps, bucketComments} {
		err := tx.Bucket(name).ForEach(func(k, _ []byte) error {
			if len(k) < 8 || !live[string(k[:8])] {
				return fmt.Errorf("bucket %s: key %x of no document", name, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkDoc verifies one document; see checkStore.
func checkDoc(d *docRef) error {
	head, err := d.head()
	if err != nil {
		return err
	}
	base, err := d.base()
	if err != nil {
		return err
	}
	if base > head {
		return fmt.Errorf("base v%d past head v%d", base, head)
	}
	ops, err := d.readOps(base, head)
	if err != nil {
		return err
	}
	h, err := d.headRec()
	if err != nil {
		return err
	}
	if h.Indexed < base {
		return fmt.Errorf("ops indexed up to v%d, below the base v%d", h.Indexed, base)
	}
	end, err := d.packedEnd()
	if err != nil {
		return err
	}
	if end < base || end > h.Indexed {
		return fmt.Errorf("blocks end at v%d, outside [base v%d, indexed v%d]", end, base, h.Indexed)
	}
	if err := checkBlocks(d, base, end); err != nil {
		return err
	}
	if n := len(d.keys(bucketOps, -1)); n != h.Indexed-end {
		return fmt.Errorf("%d ops in the op log, want [packed v%d, indexed v%d)", n, end, h.Indexed)
	}
	uids := map[string]int{}
	indexed := 0
	for _, rec := range ops {
		if rec.UID == "" {
			continue
		}
		if prev, ok := uids[rec.UID]; ok {
			return fmt.Errorf("uid %q at v%d and v%d", rec.UID, prev, rec.Version)
		}
		uids[rec.UID] = rec.Version
		v, ok := unbe64(d.tx.Bucket(bucketUIDs).Get(d.skey(rec.UID)))
		if rec.Version >= h.Indexed || rec.Version < end { // in the journal or packed: not in the index
			if ok {
				return fmt.Errorf("op v%d's uid %q in the uid index (packed to v%d, indexed to v%d)", rec.Version, rec.UID, end, h.Indexed)
			}
			continue
		}
		indexed++
		if !ok || int(v) != rec.Version {
			return fmt.Errorf("uid %q of v%d indexed at v%d (%t)", rec.UID, rec.Version, v, ok)
		}
	}
	if n := len(d.keys(bucketUIDs, -1)); n != indexed {
		return fmt.Errorf("uid index holds %d entries, the op log %d uids", n, indexed)
	}
	var snaps []doc.Snapshot
	for _, k := range d.keys(bucketSnaps, -1) {
		v, _ := d.version(k)
		content, err := snapContent(d.tx.Bucket(bucketSnaps).Get(k))
		if err != nil {
			return fmt.Errorf("snapshot v%d: %w", v, err)
		}
		snaps = append(snaps, doc.Snapshot{Version: v, Content: content})
	}
	r := doc.NewRope(snaps[0].Content)
	next := 1
	for _, rec := range ops {
		if err := ot.ApplyTo(r, rec.Op); err != nil {
			return fmt.Errorf("op v%d does not apply: %w", rec.Version, err)
		}
		if next < len(snaps) && snaps[next].Version == rec.Version+1 {
			if r.String() != snaps[next].Content {
				return fmt.Errorf("snapshot v%d differs from the replay", snaps[next].Version)
			}
			next++
		}
	}
	if next != len(snaps) {
		return fmt.Errorf("snapshot v%d past head v%d", snaps[next].Version, head)
	}
	return nil
}

// checkBlocks verifies a document's blocks: contiguous from base to end,
// each uid of each block named by its entry in the block uid index, and
// every index entry naming a block that holds a uid of its key.
func checkBlocks(d *docRef, base, end int) error {
	type ref struct {
		kind  byte
		key   string
		first int
	}
	want := map[ref]bool{} // index entries the blocks call for
	next := base
	bb := d.tx.Bucket(bucketBlocks)
	for _, k := range d.keys(bucketBlocks, -1) {
		first, _ := d.version(k)
		if first != next {
			return fmt.Errorf("block at v%d, want v%d", first, next)
		}
		b, err := openBlock(bb.Get(k))
		if err != nil {
			return fmt.Errorf("block v%d: %w", first, err)
		}
		uids, err := b.uids()
		if err != nil {
			return fmt.Errorf("block v%d: %w", first, err)
		}
		if _, err := b.records(first, 0, b.n); err != nil {
			return fmt.Errorf("block v%d: %w", first, err)
		}
		for _, uid := range uids {
			if uid == "" {
				continue
			}
			kind, key := byte(uidLiteral), uid
			prefix, counter, ok := splitUID(uid)
			if ok {
				kind, key = uidCounter, prefix
			}
			want[ref{kind, key, first}] = true
			refs, err := parseBlockRefs(kind, d.tx.Bucket(bucketBlockUIDs).Get(d.ukey(kind, key)))
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(refs, func(e blockRef) bool {
				return e.first == first && (kind == uidLiteral || e.min <= counter && counter <= e.max)
			}) {
				return fmt.Errorf("uid %q of block v%d: not in the block uid index (%+v)", uid, first, refs)
			}
		}
		next = first + b.n
	}
	if next != end {
		return fmt.Errorf("blocks end at v%d, packedEnd says v%d", next, end)
	}
	c := d.tx.Bucket(bucketBlockUIDs).Cursor()
	for k, v := c.Seek(d.pfx); k != nil && bytes.HasPrefix(k, d.pfx); k, v = c.Next() {
		refs, err := parseBlockRefs(k[8], v)
		if err != nil || len(refs) == 0 {
			return fmt.Errorf("block uid index %x: %d entries, %v", k, len(refs), err)
		}
		for _, e := range refs {
			if !want[ref{k[8], string(k[9:]), e.first}] {
				return fmt.Errorf("block uid index %x names block v%d, which holds no such uid", k, e.first)
			}
		}
	}
	return nil
}
