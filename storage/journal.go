package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The journal: appended ops land in one append-only bucket first.
//
// A bbolt commit costs about one fsync'd page write per page it dirties.
// Written straight into the op log and the uid index, a commit of ops for
// fifty documents dirties about fifty op-log leaves (each document's tail
// lies on its own page) and as many uid-index leaves (uids are random), so
// group commit would gain less the more documents share a transaction. An
// append therefore writes its op to journal/<seq>, a bucket keyed by one
// sequence, where the ops of one commit share a leaf or two, plus the
// document's head (a small, dense bucket). The committer later moves the
// whole journal into the op log and the uid index in one transaction (when
// it holds journalMax entries, when writes pause, before a compaction or a
// deletion, and on Close), so each leaf is rewritten once per drain rather
// than once per commit.
//
// Readers see both halves consistently in one read transaction: a
// document's head record says up to which version its ops are in the op log
// (indexed) and the sequence of its first op still in the journal; the rest
// is found by a bounded walk of the journal from there.

// bucketJournal holds the ops not yet moved into ops and uids.
var bucketJournal = []byte("journal")

// journalMax is the number of journal entries at which the next commit
// drains the journal first. It bounds the walk a reader makes for a
// document's journaled ops (a few hundred microseconds at most) and the
// work of one drain.
const journalMax = 4096

// headRec is the value of heads/<N>: the document's current version, and
// where its ops are. Ops below Indexed are in the op log; ops from Indexed
// to Head are in the journal, the first of them at journal/<FirstSeq>.
//
// Encoded as be64 Head when Indexed == Head (every op in the log), else as
// be64 Head, be64 Indexed, be64 FirstSeq.
type headRec struct {
	Head, Indexed int
	FirstSeq      uint64
}

func (h headRec) encode() []byte {
	if h.Indexed == h.Head {
		return be64(uint64(h.Head))
	}
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b, uint64(h.Head))
	binary.BigEndian.PutUint64(b[8:], uint64(h.Indexed))
	binary.BigEndian.PutUint64(b[16:], h.FirstSeq)
	return b
}

func decodeHeadRec(v []byte) (headRec, bool) {
	switch len(v) {
	case 8:
		h := int(binary.BigEndian.Uint64(v))
		return headRec{Head: h, Indexed: h}, true
	case 24:
		h := headRec{
			Head:     int(binary.BigEndian.Uint64(v)),
			Indexed:  int(binary.BigEndian.Uint64(v[8:])),
			FirstSeq: binary.BigEndian.Uint64(v[16:]),
		}
		return h, h.Indexed <= h.Head
	}
	return headRec{}, false
}

// journalValue encodes a journal entry: be64 N, be64 version, op value.
func journalValue(num uint64, ver int, val []byte) []byte {
	b := make([]byte, 16, 16+len(val))
	binary.BigEndian.PutUint64(b, num)
	binary.BigEndian.PutUint64(b[8:], uint64(ver))
	return append(b, val...)
}

// splitJournalValue decodes a journal entry.
func splitJournalValue(v []byte) (num uint64, ver int, val []byte, ok bool) {
	if len(v) < 17 {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint64(v), int(binary.BigEndian.Uint64(v[8:])), v[16:], true
}

// journalState is what the committer knows about the journal between
// transactions. It is owned by the committer goroutine: only write
// transactions, which run there, read or change it.
type journalState struct {
	// entries is the number of entries in the journal bucket.
	entries int
	// uids holds the uids of the journaled ops (document number → uid →
	// version), so that an append checks for a duplicate without walking
	// the journal.
	uids map[uint64]map[string]int
	// drains counts the drains since Open.
	drains uint64
}

// journalTx is a write transaction's change to the journal, applied to the
// committer's journalState once the transaction commits.
type journalTx struct {
	drained bool // the journal was moved into the log in this transaction
	entries int  // entries added since (or without) the drain
	uids    map[uint64]map[string]int
}

// loadJournal reads the journal bucket's entries into a journalState, at
// Open, and checks them against the heads: every entry belongs to a
// document whose head says it has journaled ops, each document's entries
// run from its Indexed version to its head without a gap, the first at its
// FirstSeq. A journal that fails the check would fail every drain, so the
// file is reported corrupt instead.
func loadJournal(tx *bolt.Tx) (journalState, error) {
	st := journalState{uids: make(map[uint64]map[string]int)}
	heads := tx.Bucket(bucketHeads)
	next := make(map[uint64]int) // document number → next journaled version
	bad := func(k []byte, format string, args ...any) error {
		return corrupt(fmt.Sprintf("journal entry %x", k), fmt.Errorf(format, args...))
	}
	c := tx.Bucket(bucketJournal).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		num, ver, val, ok := splitJournalValue(v)
		if !ok {
			return st, bad(k, "%d bytes", len(v))
		}
		uid, err := opValueUID(val)
		if err != nil {
			return st, bad(k, "%v", err)
		}
		want, seen := next[num]
		if !seen {
			h, ok := decodeHeadRec(heads.Get(be64(num)))
			switch {
			case !ok:
				return st, bad(k, "document %d has no head", num)
			case h.Indexed == h.Head:
				return st, bad(k, "document %d has no journaled ops (head v%d)", num, h.Head)
			case !bytes.Equal(k, be64(h.FirstSeq)):
				return st, bad(k, "document %d's first journaled op is at %x", num, be64(h.FirstSeq))
			}
			want = h.Indexed
		}
		if ver != want {
			return st, bad(k, "document %d: v%d, want v%d", num, ver, want)
		}
		next[num] = ver + 1
		st.entries++
		if uid != "" {
			addUID(st.uids, num, uid, ver)
		}
	}
	err := heads.ForEach(func(k, v []byte) error {
		h, ok := decodeHeadRec(v)
		num, _ := unbe64(k)
		switch {
		case !ok:
			return corrupt(fmt.Sprintf("head %x", k), fmt.Errorf("%d bytes", len(v)))
		case h.Indexed < h.Head && next[num] != h.Head:
			return corrupt(fmt.Sprintf("head of document %d", num), fmt.Errorf("v%d, its journaled ops end at v%d", h.Head, max(next[num], h.Indexed)))
		}
		return nil
	})
	return st, err
}

func addUID(m map[uint64]map[string]int, num uint64, uid string, ver int) {
	d := m[num]
	if d == nil {
		d = make(map[string]int)
		m[num] = d
	}
	d[uid] = ver
}

// journaledUID reports whether uid belongs to an op of document num that
// is in the journal, committed or added earlier in this transaction.
func (w *writeTx) journaledUID(num uint64, uid string) bool {
	if _, ok := w.jtx.uids[num][uid]; ok {
		return true
	}
	if w.jtx.drained {
		return false // the committed journal is in the uid index now
	}
	_, ok := w.db.commits.journal.uids[num][uid]
	return ok
}

// journalOp appends the op of version ver (the document's head) to the
// journal and advances the head.
func (w *writeTx) journalOp(d *docRef, h headRec, uid string, val []byte) error {
	jb := w.tx.Bucket(bucketJournal)
	seq, err := jb.NextSequence()
	if err != nil {
		return err
	}
	if err := jb.Put(be64(seq), journalValue(d.num, h.Head, val)); err != nil {
		return err
	}
	if h.Indexed == h.Head {
		h.FirstSeq = seq
	}
	ver := h.Head
	h.Head++
	if err := d.setHeadRec(h); err != nil {
		return err
	}
	w.jtx.entries++
	if uid != "" {
		if w.jtx.uids == nil {
			w.jtx.uids = make(map[uint64]map[string]int)
		}
		addUID(w.jtx.uids, d.num, uid, ver)
	}
	return nil
}

// journalEntries returns the number of entries the journal holds in this
// transaction.
func (w *writeTx) journalEntries() int {
	n := w.jtx.entries
	if !w.jtx.drained {
		n += w.db.commits.journal.entries
	}
	return n
}

// drainJournal moves every journal entry into the op log and the uid index
// and empties the journal. Errors are bbolt's: the caller aborts.
func (w *writeTx) drainJournal() error {
	if w.journalEntries() == 0 {
		return nil
	}
	jb := w.tx.Bucket(bucketJournal)
	ops, uids, heads := w.tx.Bucket(bucketOps), w.tx.Bucket(bucketUIDs), w.tx.Bucket(bucketHeads)
	indexed := make(map[uint64]int)
	c := jb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		num, ver, val, ok := splitJournalValue(v)
		if !ok {
			return corrupt(fmt.Sprintf("journal entry %x", k), fmt.Errorf("%d bytes", len(v)))
		}
		uid, err := opValueUID(val)
		if err != nil {
			return corrupt(fmt.Sprintf("journal entry %x", k), err)
		}
		pfx := be64(num)
		if err := ops.Put(append(pfx, be64(uint64(ver))...), val); err != nil {
			return err
		}
		if uid != "" {
			if err := uids.Put(append(pfx[:8:8], uid...), be64(uint64(ver))); err != nil {
				return err
			}
		}
		indexed[num] = ver + 1
	}
	for num, ix := range indexed {
		w.packDue = append(w.packDue, num)
		key := be64(num)
		h, ok := decodeHeadRec(heads.Get(key))
		if !ok {
			return corrupt(fmt.Sprintf("head of document %d", num), fmt.Errorf("missing or malformed while its ops are journaled"))
		}
		if ix != h.Head {
			return corrupt(fmt.Sprintf("head of document %d", num), fmt.Errorf("v%d, its journaled ops end at v%d", h.Head, ix))
		}
		h.Indexed = ix
		if err := heads.Put(key, h.encode()); err != nil {
			return err
		}
	}
	// Dropping the bucket frees its pages in one go; the sequence restarts,
	// which is fine: no head refers to a journal entry any more.
	if err := w.tx.DeleteBucket(bucketJournal); err != nil {
		return err
	}
	if _, err := w.tx.CreateBucket(bucketJournal); err != nil {
		return err
	}
	w.jtx = journalTx{drained: true}
	return nil
}

// commitJournal applies a committed transaction's journal changes to the
// committer's state. Called on the committer goroutine.
func (c *committer) commitJournal(j journalTx) {
	st := &c.journal
	if st.uids == nil {
		st.uids = make(map[uint64]map[string]int)
	}
	if j.drained {
		st.drains++
		st.entries = 0
		clear(st.uids)
	}
	st.entries += j.entries
	for num, m := range j.uids {
		for uid, ver := range m {
			addUID(st.uids, num, uid, ver)
		}
	}
}

// journaled calls fn for each of the document's journaled ops with a
// version in [from, to), in order, reading the journal from h.FirstSeq.
func (d *docRef) journaled(h headRec, from, to int, fn func(ver int, val []byte) error) error {
	if from < h.Indexed {
		from = h.Indexed
	}
	to = min(to, h.Head)
	if from >= to {
		return nil
	}
	want := h.Indexed
	c := d.tx.Bucket(bucketJournal).Cursor()
	for k, v := c.Seek(be64(h.FirstSeq)); k != nil; k, v = c.Next() {
		if !bytes.HasPrefix(v, d.pfx) {
			continue // another document's
		}
		_, ver, val, ok := splitJournalValue(v)
		if !ok || ver != want {
			return corrupt(fmt.Sprintf("doc %q journal", d.id), fmt.Errorf("want v%d, found entry %x", want, k))
		}
		want++
		if ver >= from {
			if err := fn(ver, val); err != nil {
				return err
			}
		}
		if want >= to {
			return nil
		}
	}
	return corrupt(fmt.Sprintf("doc %q journal", d.id), fmt.Errorf("ends before v%d", want))
}
