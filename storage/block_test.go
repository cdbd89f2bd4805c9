package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// TestSplitUID: a uid splits into a prefix and a counter that give it back,
// or is kept whole.
func TestSplitUID(t *testing.T) {
	for _, tc := range []struct {
		uid     string
		prefix  string
		counter uint64
		ok      bool
	}{
		{"c_8f2a-17", "c_8f2a-", 17, true},             // what clients send
		{"g0a1b2c3-0", "g0a1b2c3-", 0, true},           // a counter of zero
		{"x-007", "x-00", 7, true},                     // zero padding stays in the prefix
		{"x-000", "x-00", 0, true},                     // all zeros: the last is the counter
		{"42", "", 42, true},                           // digits only
		{"abc", "", 0, false},                          // no counter
		{"abc-", "", 0, false},                         // nothing after the dash
		{"u-" + strings.Repeat("9", 19), "", 0, false}, // too long for a counter
		{"u-" + strings.Repeat("9", 18), "u-", 999_999_999_999_999_999, true},
		{"é-3", "é-", 3, true}, // any UTF-8 before
	} {
		p, c, ok := splitUID(tc.uid)
		if p != tc.prefix || c != tc.counter || ok != tc.ok {
			t.Errorf("splitUID(%q) = %q, %d, %t; want %q, %d, %t", tc.uid, p, c, ok, tc.prefix, tc.counter, tc.ok)
		}
		if ok && p+strconv.FormatUint(c, 10) != tc.uid {
			t.Errorf("splitUID(%q) does not give it back", tc.uid)
		}
	}
}

// randomRecords makes n records of consecutive versions from first, with
// every kind of field a block stores: uids of every form (some missing),
// several authors, zero and non-zero times (some going backwards), no-ops,
// multi-byte inserts, long retains.
func randomRecords(r *rand.Rand, first, n int) []doc.OpRecord {
	texts := []string{"a", "é", "漢字", "😀x", "hello world", strings.Repeat("z", 300)}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]doc.OpRecord, n)
	for i := range out {
		rec := doc.OpRecord{Version: first + i, User: fmt.Sprint("user", r.IntN(3)), ClientID: fmt.Sprint("client", r.IntN(4))}
		switch r.IntN(8) {
		case 0:
			rec.UID = ""
		case 1:
			rec.UID = fmt.Sprintf("literal-%d-z", i)
		case 2:
			rec.UID = fmt.Sprintf("pad-%05d", i)
		default:
			rec.UID = fmt.Sprintf("c%d-%d", r.IntN(3), first+i)
		}
		if r.IntN(10) > 0 {
			rec.Time = t0.Add(time.Duration(r.Int64N(int64(time.Hour))) - 30*time.Minute)
		}
		var b ot.Builder
		for range r.IntN(5) {
			switch r.IntN(3) {
			case 0:
				b.Retain(1 + r.IntN(1<<20))
			case 1:
				b.Delete(1 + r.IntN(50))
			default:
				b.Insert(texts[r.IntN(len(texts))])
			}
		}
		rec.Op = b.Op()
		if rec.Op == nil {
			rec.Op = ot.Op{}
		}
		out[i] = rec
	}
	return out
}

// TestBlockRoundTrip: a block decodes to exactly the records that went in,
// whole or in part, and its uid spans cover its uids.
func TestBlockRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 20 {
		first, n := r.IntN(1000), 1+r.IntN(300)
		recs := randomRecords(r, first, n)
		val, spans := encodeBlock(recs)
		if got, err := blockLen(val); err != nil || got != n {
			t.Fatalf("round %d: blockLen = %d, %v; want %d", round, got, err, n)
		}
		lo := r.IntN(n)
		hi := lo + r.IntN(n-lo+1)
		got, err := decodeBlock(first, val, lo, hi)
		if err != nil {
			t.Fatalf("round %d: decode: %v", round, err)
		}
		if len(got) != hi-lo {
			t.Fatalf("round %d: %d records of [%d, %d)", round, len(got), lo, hi)
		}
		for i, rec := range got {
			w := recs[lo+i]
			if rec.Version != w.Version || !rec.Op.Equal(w.Op) || rec.UID != w.UID || rec.User != w.User ||
				rec.ClientID != w.ClientID || !rec.Time.Equal(w.Time) || rec.Time.IsZero() != w.Time.IsZero() {
				t.Fatalf("round %d: record %d = %+v, want %+v", round, lo+i, rec, w)
			}
		}
		b, err := openBlock(val)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range recs {
			if w.UID == "" {
				continue
			}
			if j, ok, err := b.findUID(w.UID); err != nil || !ok || recs[j].UID != w.UID {
				t.Fatalf("round %d: findUID(%q) = %d, %t, %v; want %d", round, w.UID, j, ok, err, i)
			}
			prefix, c, isCounter := splitUID(w.UID)
			covered := false
			for _, s := range spans {
				if isCounter && s.kind == uidCounter && s.key == prefix && s.min <= c && c <= s.max ||
					!isCounter && s.kind == uidLiteral && s.key == w.UID {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("round %d: uid %q in no span of %+v", round, w.UID, spans)
			}
		}
		if _, ok, _ := b.findUID("absent-1"); ok {
			t.Fatalf("round %d: found an absent uid", round)
		}
	}
}

// TestBlockDamaged: damaged block values are reported corrupt, never a
// panic.
func TestBlockDamaged(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	val, _ := encodeBlock(randomRecords(r, 0, 40))
	more := append([]byte{}, val...)
	more[1]++ // n is one byte here: 41 ops, columns of 40
	for name, v := range map[string][]byte{
		"empty":     {},
		"format":    append([]byte{9}, val[1:]...),
		"truncated": val[:len(val)/2],
		"zero ops":  {blockFormat1, 0, 0},
		"bad frame": {blockFormat1, 1, 10, 1, 2, 3},
		"count":     more,
		"trailing":  append(append([]byte{}, val...), 0),
		"huge body": {blockFormat1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := decodeBlock(0, v, 0, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %v, want ErrCorrupt", name, err)
		}
	}
	// Random flips: decoded or ErrCorrupt, never a panic (the frame's
	// checksum catches most).
	for range 200 {
		v := append([]byte{}, val...)
		v[r.IntN(len(v))] ^= byte(1 + r.IntN(255))
		if _, err := decodeBlock(0, v, 0, 40); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip: %v is not ErrCorrupt", err)
		}
	}
}

// FuzzDecodeBlock: any value either decodes or fails with ErrCorrupt; a
// decoded one encodes back to a value that decodes to the same records.
func FuzzDecodeBlock(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 5, 60} {
		val, _ := encodeBlock(randomRecords(r, 0, n))
		f.Add(val)
	}
	f.Add([]byte{blockFormat1, 1, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := blockLen(v)
		if err != nil {
			return
		}
		recs, err := decodeBlock(10, v, 0, n)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, _ := encodeBlock(recs)
		back, err := decodeBlock(10, again, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if !back[i].Op.Equal(recs[i].Op) || back[i].UID != recs[i].UID || !back[i].Time.Equal(recs[i].Time) {
				t.Fatalf("record %d: %+v then %+v", i, recs[i], back[i])
			}
		}
	})
}

// packedConfig packs blocks of 8 ops behind a tail of 4, and keeps ops in
// the journal until a drain is asked for.
func packedConfig() Config {
	return Config{SnapshotEvery: 10, blockOps: 8, packTail: 4, journalIdle: time.Hour}
}

// drainAndPack moves the journal into the op log and waits for the packer.
func drainAndPack(t testing.TB, db *DB) {
	t.Helper()
	if err := db.update(ctx(t), func(w *writeTx) error { return abort(w.drainJournal()) }); err != nil {
		t.Fatal(err)
	}
	db.packs.waitIdle()
}

// exportOps returns the ops of a document's export, as JSON.
func exportOps(t testing.TB, db *DB, id string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := db.Export(id, &buf); err != nil {
		t.Fatal(err)
	}
	var f exportFile
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f.Ops)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countKeys counts a document's keys in bucket.
func countKeys(t testing.TB, db *DB, id string, bucket []byte) int {
	t.Helper()
	n := 0
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, id)
		if err != nil {
			return err
		}
		n = len(d.keys(bucket, -1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPacking: once the journal drains, whole blocks of the oldest ops move
// out of ops/ and uids/ into blocks, leaving the live tail; reads, uid
// lookups, duplicate checks, time travel, export and reopening see the same
// history; snapshots of packed history are thinned.
func TestPacking(t *testing.T) {
	db := openTestDB(t, packedConfig())
	h := newHistory("p", 11)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 50)
	if n := countKeys(t, db, h.id, bucketBlocks); n != 0 {
		t.Fatalf("%d blocks before any drain", n)
	}
	unpacked := exportOps(t, db, h.id)
	drainAndPack(t, db)
	if got := exportOps(t, db, h.id); got != unpacked {
		t.Errorf("the export's ops differ once packed")
	}
	// 50 ops: blocks of 8 while at least 4 + 8 remain: 5 blocks (40 ops),
	// 10 left in ops/.
	if n := countKeys(t, db, h.id, bucketBlocks); n != 5 {
		t.Errorf("%d blocks, want 5", n)
	}
	if n := countKeys(t, db, h.id, bucketOps); n != 10 {
		t.Errorf("%d ops in ops/, want 10", n)
	}
	if n := countKeys(t, db, h.id, bucketUIDs); n != 10 {
		t.Errorf("%d uids in the uid index, want 10 (the window)", n)
	}
	if st := db.Stats(); st.PackedOps != 40 {
		t.Errorf("Stats.PackedOps = %d, want 40", st.PackedOps)
	}
	verifyHistory(t, db, h)
	for v := range h.head() {
		rec, found, err := db.OpByUID(h.id, h.recs[v].UID)
		if err != nil || !found || rec.Version != v || rec.User != h.recs[v].User || !rec.Time.Equal(h.recs[v].Time) {
			t.Fatalf("OpByUID(v%d) = %+v, %t, %v", v, rec, found, err)
		}
		dup := h.next()
		dup.UID = h.recs[v].UID
		if err := db.AppendOp(ctx(t), h.id, dup); !errors.Is(err, ErrDuplicateUID) {
			t.Fatalf("append with the uid of packed v%d: %v", v, err)
		}
	}
	if _, found, err := db.OpByUID(h.id, "p-u999"); found || err != nil {
		t.Fatalf("OpByUID of an absent uid: %t, %v", found, err)
	}
	exp := exportOps(t, db, h.id)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, db.Path(), packedConfig())
	verifyHistory(t, db, h)
	if got := exportOps(t, db, h.id); got != exp {
		t.Errorf("the export's ops differ after reopening")
	}
	// Appending goes on; the next drain packs the next block.
	h.appendN(t, db, 10)
	drainAndPack(t, db)
	if n := countKeys(t, db, h.id, bucketBlocks); n != 7 {
		t.Errorf("%d blocks after 60 ops, want 7", n)
	}
	verifyHistory(t, db, h)
}

// TestPackingThinsSnapshots: in packed history a snapshot stays only where
// the ops since the previous one kept outnumber a quarter of its text's
// bytes, and is compressed; the live tail's stay as they were; every
// version still reads right.
func TestPackingThinsSnapshots(t *testing.T) {
	cfg := Config{SnapshotEvery: 5, blockOps: 100, packTail: 10, journalIdle: time.Hour}
	db := openTestDB(t, cfg)
	h := newHistory("t", 5)
	mustCreate(t, db, h.id)
	// A paste, then one letter typed at its end at a time: 1,500 ops, a
	// snapshot every 5, of 1 to 2.5 kB of text.
	paste := strings.Repeat("lorem ipsum dolor sit amet ", 40)
	errs := make(chan error, 1500)
	for v := range 1500 {
		rec := h.next()
		rec.Op = ot.Op{ot.Retain(len(paste) + v - 1), ot.Insert("a")}
		if v == 0 {
			rec.Op = ot.Op{ot.Insert(paste)}
		}
		h.commit(t, rec)
		db.AppendOpAsync(h.id, rec, func(err error) { errs <- err })
	}
	for range 1500 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	db.snaps.waitIdle()
	before := snapSizes(t, db, h.id)
	drainAndPack(t, db)
	after := snapSizes(t, db, h.id)
	const end = 1400 // 1,500 ops in blocks of 100 behind a tail of 10: 14 blocks
	var packedBefore, packedAfter int
	for _, s := range before {
		if s.version > 0 && s.version <= end {
			packedBefore++
		}
	}
	for i, s := range after {
		if s.version > 0 && s.version <= end {
			packedAfter++
			if gap := s.version - after[i-1].version; gap < s.text/snapTextPerOp || gap < cfg.SnapshotEvery {
				t.Errorf("snapshot v%d of %d bytes of text kept %d ops after v%d", s.version, s.text, gap, after[i-1].version)
			}
			if !s.compressed || s.size >= s.text/4 {
				t.Errorf("snapshot v%d kept in packed history: %d bytes for %d of text (compressed %t)", s.version, s.size, s.text, s.compressed)
			}
		}
		if s.version > end && s.compressed {
			t.Errorf("snapshot v%d of the live tail compressed", s.version)
		}
	}
	if packedBefore != end/5 || packedAfter == 0 || packedAfter > packedBefore/10 {
		t.Errorf("%d snapshots in the packed run before, %d after", packedBefore, packedAfter)
	}
	for _, s := range before {
		if s.version > end && !slices.ContainsFunc(after, func(a snapSize) bool { return a.version == s.version }) {
			t.Errorf("snapshot v%d of the live tail dropped", s.version)
		}
	}
	for v := 0; v <= h.head(); v += 7 {
		if s, err := db.ContentAt(h.id, v); err != nil || s != h.contents[v] {
			t.Fatalf("ContentAt(%d) = %d bytes, %v; want %d bytes", v, len(s), err, len(h.contents[v]))
		}
	}
	var f exportFile
	if err := json.Unmarshal(exportOf(t, db, h.id), &f); err != nil {
		t.Fatal(err)
	}
	for _, sn := range f.Snapshots {
		if sn.Content != h.contents[sn.Version] {
			t.Errorf("exported snapshot v%d differs", sn.Version)
		}
	}
}

type snapSize struct {
	version, size, text int
	compressed          bool
}

// snapSizes lists a document's snapshots with their stored sizes.
func snapSizes(t *testing.T, db *DB, id string) []snapSize {
	t.Helper()
	var out []snapSize
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, id)
		if err != nil {
			return err
		}
		for _, k := range d.keys(bucketSnaps, -1) {
			v, _ := d.version(k)
			val := tx.Bucket(bucketSnaps).Get(k)
			out = append(out, snapSize{version: v, size: len(val), text: snapTextLen(val), compressed: isZstd(val)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompactBlocks: compacting inside packed history drops the older
// blocks, packs the block holding the new base anew, and keeps every later
// version, uid and lookup.
func TestCompactBlocks(t *testing.T) {
	db := openTestDB(t, packedConfig())
	h := newHistory("c", 3)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 60)
	drainAndPack(t, db)
	const before = 21 // inside the third block [16, 24)
	if err := db.Compact(ctx(t), h.id, before); err != nil {
		t.Fatal(err)
	}
	ops, err := db.Ops(h.id, before, h.head())
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range ops {
		if w := h.recs[before+i]; rec.UID != w.UID || !rec.Op.Equal(w.Op) {
			t.Fatalf("op v%d = %+v, want %+v", before+i, rec, w)
		}
	}
	for v := range h.head() {
		_, found, err := db.OpByUID(h.id, h.recs[v].UID)
		if err != nil || found != (v >= before) {
			t.Fatalf("OpByUID(v%d) after compacting before v%d: %t, %v", v, before, found, err)
		}
	}
	// A compacted uid may be used again.
	rec := h.next()
	rec.UID = h.recs[3].UID
	if err := db.AppendOp(ctx(t), h.id, rec); err != nil {
		t.Fatalf("append reusing a compacted uid: %v", err)
	}
	h.commit(t, rec)
	for v := before; v <= h.head(); v++ {
		if s, err := db.ContentAt(h.id, v); err != nil || s != h.contents[v] {
			t.Fatalf("ContentAt(%d) = %q, %v", v, s, err)
		}
	}
	if _, err := db.ContentAt(h.id, before-1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("ContentAt(before-1): %v", err)
	}
}

// TestDeletePacked: deleting a document removes its blocks and block uid
// index with the rest (the cleanup's checkStore finds any left).
func TestDeletePacked(t *testing.T) {
	db := openTestDB(t, packedConfig())
	h := newHistory("d", 1)
	mustCreate(t, db, h.id)
	h.appendN(t, db, 40)
	drainAndPack(t, db)
	if countKeys(t, db, h.id, bucketBlocks) == 0 {
		t.Fatal("nothing packed")
	}
	if err := db.DeleteDoc(ctx(t), h.id); err != nil {
		t.Fatal(err)
	}
	err := db.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBlocks, bucketBlockUIDs} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				return fmt.Errorf("bucket %s still holds %x", b, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSchema3Upgrade: a file of layout version 3 (no blocks; snapshots
// plain text) opens; the packer packs its history in the background; every
// read sees the same history before and after, and the file says version 4.
func TestSchema3Upgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	cfg := packedConfig()
	cfg.noPack = true
	db := openAt(t, path, cfg)
	h := newHistory("old", 9)
	mustCreate(t, db, h.id)
	rec := h.next()
	rec.Op = ot.Op{ot.Insert(strings.Repeat("a long first paste. ", 60))} // snapshots the packer compresses
	if err := db.AppendOp(ctx(t), h.id, rec); err != nil {
		t.Fatal(err)
	}
	h.commit(t, rec)
	h.typist.Observe(rec.Op)
	h.appendN(t, db, 44)
	db.snaps.waitIdle()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a version 3 file: no block buckets (its snapshots are plain
	// text, as version 3 wrote them).
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBlocks, bucketBlockUIDs} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("3"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, packedConfig())
	db.packs.waitIdle()
	if n := countKeys(t, db, h.id, bucketBlocks); n == 0 {
		t.Fatal("nothing packed after the upgrade")
	}
	verifyHistory(t, db, h)
	for v := 0; v <= h.head(); v++ {
		if s, err := db.ContentAt(h.id, v); err != nil || s != h.contents[v] {
			t.Fatalf("ContentAt(%d) after the upgrade: %v", v, err)
		}
	}
	if err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != schemaVersion {
			return fmt.Errorf("schema %q after the upgrade", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
