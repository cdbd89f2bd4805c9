package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// Packing: a document's durable ops older than its live tail move from one
// op-log value each (ops/, with an entry each in uids/) into blocks
// (block.go), a few bytes an op instead of a few dozen.
//
// A document's history then lies in three runs, each starting where the
// one before ends: blocks from its base up to the packed point, ops/ from
// there up to the indexed point, the journal from there up to its head.
// The packer goroutine, woken when ops reach ops/ (a journal drain, an
// import, Open), packs whole blocks of Config.blockOps ops from the start
// of the ops/ run once that run holds at least Config.packTail ops more
// than a block, so the newest packTail ops, which sessions read to
// transform incoming ops and to open documents, stay one value each. It
// reads and encodes outside any write transaction, then submits one write
// that checks nothing moved meanwhile and swaps the ops for the blocks:
// the same group commit, so a crash leaves either the ops or the blocks.
//
// The uid index keeps the uids of the ops/ run only (a bounded window);
// packed uids are found through the block uid index, one value per
// document and uid prefix:
//
//	buids/<N><kind><key>  per block holding such uids: uvarint first version
//	                      of the block, and for kind 0 (key is a uid prefix)
//	                      uvarint smallest counter and uvarint largest −
//	                      smallest; for kind 1 (key is a whole uid) nothing
//
// A lookup reads the one value of its uid's prefix and decodes only the
// blocks whose counter range holds the uid's counter: clients number their
// ops, so that is one block.
//
// The packer also thins the snapshots of the run it packs, and compresses
// those it keeps: history old enough to be packed is read for time travel,
// diff and export, not to open the document, so it keeps a snapshot only
// where the ops since the previous one kept outnumber a quarter of the
// snapshot's text bytes (snapTextPerOp), and at least every maxSnapGap ops.
// Reading an old version then replays more ops, from blocks that decode
// fast.

// Buckets of packed history.
var (
	bucketBlocks    = []byte("blocks")
	bucketBlockUIDs = []byte("buids")
)

// Packing defaults (Config.blockOps, Config.packTail).
const (
	defaultBlockOps = 4096
	defaultPackTail = 1024
	// maxPackBlocks bounds the blocks one packing write swaps in, and with
	// them the time it holds the committer (deleting a block's ops and
	// uid entries takes a few milliseconds) when a long history is packed
	// at once, after an upgrade or an import.
	maxPackBlocks = 2
)

// Snapshot thinning in packed history: keep a snapshot when the ops since
// the previous kept one are at least its text's bytes / snapTextPerOp (and
// SnapshotEvery), or maxSnapGap. Compressed, text takes about a quarter of
// its bytes: packed history then spends about a byte of snapshot an op,
// and reading an old version replays at most a quarter as many ops as the
// document has bytes, and never more than maxSnapGap.
const (
	snapTextPerOp = 4
	maxSnapGap    = 1 << 14
)

// errPackStale: the run a packer read changed before its write (a
// compaction, a deletion); nothing was written.
var errPackStale = errors.New("storage: packing raced with a change")

// docByNum finds document num by its head, or returns nil when it is gone.
// Its id is unknown: messages name it by number.
func docByNum(tx *bolt.Tx, num uint64) *docRef {
	if tx.Bucket(bucketHeads).Get(be64(num)) == nil {
		return nil
	}
	return &docRef{tx: tx, id: fmt.Sprintf("#%d", num), num: num, pfx: be64(num)}
}

// packedEnd returns the version where the document's blocks end, or its
// base when it has none: where its ops/ run starts.
func (d *docRef) packedEnd() (int, error) {
	c := d.tx.Bucket(bucketBlocks).Cursor()
	k, v := c.Seek(be64(d.num + 1))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	first, ok := d.version(k)
	if !ok {
		return d.base()
	}
	n, err := blockLen(v)
	if err != nil {
		return 0, corrupt(fmt.Sprintf("doc %q block v%d", d.id, first), err)
	}
	return first + n, nil
}

// readBlocks appends the packed ops [from, to) to out; the caller checked
// that they are all packed.
func (d *docRef) readBlocks(out []doc.OpRecord, from, to int) ([]doc.OpRecord, error) {
	c := d.tx.Bucket(bucketBlocks).Cursor()
	k, v := c.Seek(d.vkey(from))
	if first, ok := d.version(k); !ok || first > from {
		k, v = c.Prev()
	}
	want := from
	for ; want < to; k, v = c.Next() {
		first, ok := d.version(k)
		if !ok || first > want {
			return nil, corrupt(fmt.Sprintf("doc %q blocks", d.id), fmt.Errorf("no block holds v%d (found %x)", want, k))
		}
		n, err := blockLen(v)
		if err != nil {
			return nil, corrupt(fmt.Sprintf("doc %q block v%d", d.id, first), err)
		}
		if first+n <= want {
			return nil, corrupt(fmt.Sprintf("doc %q blocks", d.id), fmt.Errorf("block v%d of %d ops, want v%d", first, n, want))
		}
		hi := min(to, first+n)
		if out, err = appendBlock(out, first, v, want-first, hi-first); err != nil {
			return nil, err
		}
		want = hi
	}
	return out, nil
}

// ukey returns the key of a block uid index entry of this document.
func (d *docRef) ukey(kind byte, key string) []byte {
	k := make([]byte, 9, 9+len(key))
	copy(k, d.pfx)
	k[8] = kind
	return append(k, key...)
}

// blockRef is one entry of a block uid index value.
type blockRef struct {
	first    int
	min, max uint64
}

// parseBlockRefs decodes a block uid index value.
func parseBlockRefs(kind byte, v []byte) ([]blockRef, error) {
	var out []blockRef
	err := eachBlockRef(kind, v, func(e blockRef) bool {
		out = append(out, e)
		return true
	})
	return out, err
}

// eachBlockRef calls fn with each entry of a block uid index value, in
// order, until fn returns false.
func eachBlockRef(kind byte, v []byte, fn func(blockRef) bool) error {
	r := opReader{b: v}
	for len(r.b) > 0 {
		e := blockRef{first: int(r.uvarint())}
		if kind == uidCounter {
			e.min = r.uvarint()
			e.max = e.min + r.uvarint()
		}
		if r.err != nil {
			return r.err
		}
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// appendBlockRef encodes one entry of a block uid index value.
func appendBlockRef(b []byte, kind byte, e blockRef) []byte {
	b = binary.AppendUvarint(b, uint64(e.first))
	if kind == uidCounter {
		b = binary.AppendUvarint(b, e.min)
		b = binary.AppendUvarint(b, e.max-e.min)
	}
	return b
}

// packedUID finds the packed op with uid, reading the block uid index and
// then only the blocks it points to.
func (d *docRef) packedUID(uid string) (doc.OpRecord, bool, error) {
	kind, key := byte(uidLiteral), uid
	prefix, counter, isCounter := splitUID(uid)
	if isCounter {
		kind, key = uidCounter, prefix
	}
	v := d.tx.Bucket(bucketBlockUIDs).Get(d.ukey(kind, key))
	if v == nil {
		return doc.OpRecord{}, false, nil
	}
	// The blocks that may hold it: for a counter, those whose range does
	// (clients number their ops, so that is one block, or none for a new
	// uid: appends pay for this lookup).
	var cand []int
	err := eachBlockRef(kind, v, func(e blockRef) bool {
		if kind == uidLiteral || e.min <= counter && counter <= e.max {
			cand = append(cand, e.first)
		}
		return true
	})
	if err != nil {
		return doc.OpRecord{}, false, corrupt(fmt.Sprintf("doc %q block uid index %q", d.id, key), err)
	}
	blocks := d.tx.Bucket(bucketBlocks)
	for _, first := range cand {
		e := blockRef{first: first}
		bv := blocks.Get(d.vkey(e.first))
		if bv == nil {
			return doc.OpRecord{}, false, corrupt(fmt.Sprintf("doc %q block uid index %q", d.id, key), fmt.Errorf("names a missing block v%d", e.first))
		}
		b, err := openBlock(bv)
		if err != nil {
			return doc.OpRecord{}, false, corrupt(fmt.Sprintf("doc %q block v%d", d.id, e.first), err)
		}
		i, found, err := b.findUID(uid)
		if err != nil {
			return doc.OpRecord{}, false, corrupt(fmt.Sprintf("doc %q block v%d", d.id, e.first), err)
		}
		if !found {
			continue
		}
		recs, err := b.records(e.first, i, i+1)
		if err != nil {
			return doc.OpRecord{}, false, corrupt(fmt.Sprintf("doc %q block v%d", d.id, e.first), err)
		}
		return recs[0], true, nil
	}
	return doc.OpRecord{}, false, nil
}

// indexBlock adds a block's uid spans to the block uid index.
func (d *docRef) indexBlock(first int, spans []uidSpan) error {
	ub := d.tx.Bucket(bucketBlockUIDs)
	for _, s := range spans {
		k := d.ukey(s.kind, s.key)
		old := ub.Get(k)
		v := make([]byte, len(old), len(old)+3*binary.MaxVarintLen64)
		copy(v, old)
		v = appendBlockRef(v, s.kind, blockRef{first: first, min: s.min, max: s.max})
		if err := ub.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// dropBlockRefs removes from the document's block uid index every entry of
// a block starting before version before, and the values left empty.
func (d *docRef) dropBlockRefs(before int) error {
	ub := d.tx.Bucket(bucketBlockUIDs)
	type change struct {
		key []byte
		val []byte // nil: delete
	}
	var changes []change
	c := ub.Cursor()
	for k, v := c.Seek(d.pfx); k != nil && len(k) > 8 && string(k[:8]) == string(d.pfx); k, v = c.Next() {
		kind := k[8]
		refs, err := parseBlockRefs(kind, v)
		if err != nil {
			return corrupt(fmt.Sprintf("doc %q block uid index %q", d.id, k[9:]), err)
		}
		kept := slices.DeleteFunc(refs, func(e blockRef) bool { return e.first < before })
		if len(kept) == len(refs) {
			continue
		}
		var nv []byte
		for _, e := range kept {
			nv = appendBlockRef(nv, kind, e)
		}
		changes = append(changes, change{key: slices.Clone(k), val: nv})
	}
	for _, ch := range changes {
		var err error
		if ch.val == nil {
			err = ub.Delete(ch.key)
		} else {
			err = ub.Put(ch.key, ch.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// packedBlock is a block the packer built: its first version, its ops'
// count and uids, its value and its uid spans.
type packedBlock struct {
	first int
	uids  []string
	val   []byte
	spans []uidSpan
}

// packWrite swaps the ops [p, q) of document num, which the packer read
// from ops/ and encoded as blocks, for the blocks: it writes them and their
// uid index entries, deletes the ops and their uid entries, and thins the
// snapshots in (p, q]. It changes nothing and returns errPackStale when the
// run moved meanwhile.
func packWrite(num uint64, p, q int, blocks []packedBlock, every int) writeFunc {
	return func(w *writeTx) error {
		d := docByNum(w.tx, num)
		if d == nil {
			return errPackStale // deleted meanwhile
		}
		h, err := d.headRec()
		if err != nil {
			return err
		}
		end, err := d.packedEnd()
		if err != nil {
			return err
		}
		base, err := d.base()
		if err != nil {
			return err
		}
		if end != p || base > p || h.Indexed < q {
			return errPackStale
		}
		bb, ob, ub := w.tx.Bucket(bucketBlocks), w.tx.Bucket(bucketOps), w.tx.Bucket(bucketUIDs)
		for _, b := range blocks {
			if err := bb.Put(d.vkey(b.first), b.val); err != nil {
				return abort(err)
			}
			if err := d.indexBlock(b.first, b.spans); err != nil {
				return abort(err)
			}
			for i, uid := range b.uids {
				if uid == "" {
					continue
				}
				k := d.skey(uid)
				if v, ok := unbe64(ub.Get(k)); ok && int(v) == b.first+i {
					if err := ub.Delete(k); err != nil {
						return abort(err)
					}
				}
			}
		}
		for v := p; v < q; v++ {
			if err := ob.Delete(d.vkey(v)); err != nil {
				return abort(err)
			}
		}
		return abort(d.thinSnapshots(p, q, every))
	}
}

// thinSnapshots deletes the snapshots in (p, q] that packed history does
// not need (see the top of this file), but never the latest, which opens
// the document.
func (d *docRef) thinSnapshots(p, q, every int) error {
	last, _, ok := d.snapAtOrBelow(p)
	if !ok {
		return corrupt(fmt.Sprintf("doc %q snapshots", d.id), fmt.Errorf("none at or below v%d", p))
	}
	latest, _, _ := d.snapAtOrBelow(math.MaxInt)
	q = min(q, latest-1)
	sb := d.tx.Bucket(bucketSnaps)
	var drop [][]byte
	type kv struct{ k, v []byte }
	var squeeze []kv
	c := sb.Cursor()
	for k, v := c.Seek(d.vkey(p + 1)); k != nil; k, v = c.Next() {
		ver, ok := d.version(k)
		if !ok || ver > q {
			break
		}
		gap := ver - last
		if gap >= maxSnapGap || gap >= every && gap >= snapTextLen(v)/snapTextPerOp {
			last = ver
			if z := compressSnap(v); len(z) < len(v) {
				squeeze = append(squeeze, kv{slices.Clone(k), z})
			}
			continue
		}
		drop = append(drop, slices.Clone(k))
	}
	for _, k := range drop {
		if err := sb.Delete(k); err != nil {
			return err
		}
	}
	for _, e := range squeeze {
		if err := sb.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// packDoc packs document num's ops that are due, a few blocks a write,
// until none is due or stop returns true, and returns how many ops it
// packed. With all, every op of its op log is due, the live tail too, the
// last block holding what is left (CompactFile: no session is live).
func (db *DB) packDoc(num uint64, all bool, stop func() bool) (int, error) {
	packed := 0
	for !stop() {
		var p int
		var recs []doc.OpRecord
		err := db.view(func(tx *bolt.Tx) error {
			d := docByNum(tx, num)
			if d == nil {
				return nil
			}
			h, err := d.headRec()
			if err != nil {
				return err
			}
			if p, err = d.packedEnd(); err != nil {
				return err
			}
			avail, n := h.Indexed-p, 0
			switch {
			case all:
				n = min(avail, maxPackBlocks*db.cfg.blockOps)
			case avail >= db.cfg.packTail+db.cfg.blockOps:
				n = min((avail-db.cfg.packTail)/db.cfg.blockOps, maxPackBlocks) * db.cfg.blockOps
			}
			if n == 0 {
				return nil
			}
			recs, err = d.readOps(p, p+n)
			return err
		})
		if err != nil || len(recs) == 0 {
			return packed, err
		}
		var blocks []packedBlock
		for i := 0; i < len(recs); {
			j, raw := i, 0
			for j < len(recs) && j-i < db.cfg.blockOps && (j == i || raw < blockRawTarget) {
				raw += 16 + len(recs[j].UID) + len(recs[j].User) + len(recs[j].ClientID)
				for _, c := range recs[j].Op {
					raw += 2 + len(c.Text())
				}
				j++
			}
			val, spans := encodeBlock(recs[i:j])
			uids := make([]string, j-i)
			for k := range uids {
				uids[k] = recs[i+k].UID
			}
			blocks = append(blocks, packedBlock{first: recs[i].Version, uids: uids, val: val, spans: spans})
			i = j
		}
		q := p + len(recs)
		err = db.update(context.Background(), packWrite(num, p, q, blocks, db.cfg.SnapshotEvery))
		if errors.Is(err, errPackStale) {
			return packed, nil // it moved; a later notice packs what is due then
		}
		if err != nil {
			return packed, err
		}
		packed += len(recs)
	}
	return packed, nil
}

// packer is the background goroutine that packs documents' ops into
// blocks. The committer tells it which documents got ops in ops/; it
// checks each and packs what is due.
type packer struct {
	db *DB

	mu      sync.Mutex
	pending map[uint64]struct{} // guarded by mu: documents (by number) to check
	busy    bool                // guarded by mu: a pass is running
	failed  map[uint64]bool     // guarded by mu: documents whose packing failed; skipped until restart
	idle    *sync.Cond          // on mu: signalled when pending is empty and no pass runs

	wake   chan struct{} // cap 1
	quit   chan struct{}
	exited chan struct{}
}

func newPacker(db *DB) *packer {
	p := &packer{
		db:      db,
		pending: make(map[uint64]struct{}),
		failed:  make(map[uint64]bool),
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	p.idle = sync.NewCond(&p.mu)
	return p
}

// notify marks documents to check. It never blocks.
func (p *packer) notify(nums []uint64) {
	if p.db.cfg.noPack {
		return
	}
	p.mu.Lock()
	for _, n := range nums {
		if !p.failed[n] {
			p.pending[n] = struct{}{}
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the packer goroutine. On stop it finishes the pass it is in and
// exits; what was not packed is packed after the next Open.
func (p *packer) run() {
	defer close(p.exited)
	for {
		select {
		case <-p.wake:
			p.pass()
		case <-p.quit:
			return
		}
	}
}

// stop makes run exit and waits for it.
func (p *packer) stop() {
	close(p.quit)
	<-p.exited
	p.mu.Lock()
	clear(p.pending)
	p.idle.Broadcast()
	p.mu.Unlock()
}

// pass checks and packs every pending document, in number order.
func (p *packer) pass() {
	p.mu.Lock()
	nums := make([]uint64, 0, len(p.pending))
	for n := range p.pending {
		nums = append(nums, n)
	}
	clear(p.pending)
	p.busy = true
	p.mu.Unlock()

	slices.Sort(nums)
	for _, n := range nums {
		if p.closing() {
			break // the rest waits for the next Open
		}
		packed, err := p.db.packDoc(n, false, p.closing)
		if err != nil {
			p.db.log.Error().Err(err).Uint64("doc_number", n).Msg("packing history failed; not retried until restart")
			p.mu.Lock()
			p.failed[n] = true
			p.mu.Unlock()
		}
		p.db.commits.addPackStat(packed)
	}

	p.mu.Lock()
	p.busy = false
	if len(p.pending) == 0 {
		p.idle.Broadcast()
	}
	p.mu.Unlock()
}

// closing reports whether stop was called.
func (p *packer) closing() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// waitIdle blocks until the packer has nothing pending and no pass
// running.
func (p *packer) waitIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.pending) > 0 || p.busy {
		p.idle.Wait()
	}
}

// allDocNums returns the number of every document, from the heads bucket.
func allDocNums(tx *bolt.Tx) []uint64 {
	var out []uint64
	_ = tx.Bucket(bucketHeads).ForEach(func(k, _ []byte) error {
		if n, ok := unbe64(k); ok {
			out = append(out, n)
		}
		return nil
	})
	return out
}

// compactBlocks drops the document's packed ops before version before, for
// Compact: the blocks that end at or before it go, and a block holding ops
// on both sides is packed anew from before. The block uid index follows.
func (d *docRef) compactBlocks(before int) error {
	bb := d.tx.Bucket(bucketBlocks)
	keys := d.keys(bucketBlocks, before)
	if len(keys) == 0 {
		return nil
	}
	var repacked []byte
	var spans []uidSpan
	for _, k := range keys {
		first, _ := d.version(k)
		v := bb.Get(k)
		n, err := blockLen(v)
		if err != nil {
			return corrupt(fmt.Sprintf("doc %q block v%d", d.id, first), err)
		}
		if first+n > before {
			recs, err := decodeBlock(first, v, before-first, n)
			if err != nil {
				return err
			}
			repacked, spans = encodeBlock(recs)
		}
	}
	for _, k := range keys {
		if err := bb.Delete(k); err != nil {
			return err
		}
	}
	if err := d.dropBlockRefs(before); err != nil {
		return err
	}
	if repacked == nil {
		return nil
	}
	if err := bb.Put(d.vkey(before), repacked); err != nil {
		return err
	}
	return d.indexBlock(before, spans)
}
