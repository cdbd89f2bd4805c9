package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// PutSnapshot stores the content of document docID at snap.Version, as a
// session does when it closes. The version must lie between the document's
// compaction point and its current version; the content must be valid UTF-8.
// A snapshot already stored at that version is replaced. PutSnapshot trusts
// the content: it must be what replaying the log gives. It blocks until the
// snapshot is durable.
func (db *DB) PutSnapshot(ctx context.Context, docID string, snap doc.Snapshot) error {
	if err := checkID("doc id", docID); err != nil {
		return fmt.Errorf("put snapshot: %w", err)
	}
	if snap.Version < 0 || !utf8.ValidString(snap.Content) {
		return fmt.Errorf("put snapshot v%d of %q: negative version or invalid UTF-8: %w", snap.Version, docID, ErrInvalid)
	}
	val := snapValue(snap.Content)
	return db.update(ctx, func(w *writeTx) error {
		d, err := mustDoc(w.tx, docID)
		if err != nil {
			return fmt.Errorf("put snapshot: %w", err)
		}
		head, err := d.head()
		if err != nil {
			return err
		}
		base, err := d.base()
		if err != nil {
			return err
		}
		switch {
		case snap.Version > head:
			return fmt.Errorf("put snapshot v%d of %q at v%d: %w", snap.Version, docID, head, ErrInvalid)
		case snap.Version < base:
			return fmt.Errorf("put snapshot v%d of %q, history starts at v%d: %w", snap.Version, docID, base, ErrCompacted)
		}
		return abort(w.tx.Bucket(bucketSnaps).Put(d.vkey(snap.Version), val))
	})
}

// ContentAt returns the content of document docID at version v: the
// nearest snapshot at or below v, then the ops up to v replayed on it. It
// fails with ErrInvalid unless 0 <= v <= the current version and with
// ErrCompacted when v lies before the compaction point.
func (db *DB) ContentAt(docID string, v int) (string, error) {
	var content string
	err := db.viewDoc(docID, func(tx *bolt.Tx, d *docRef, head int) error {
		if v < 0 || v > head {
			return fmt.Errorf("content of %q at v%d, head is v%d: %w", docID, v, head, ErrInvalid)
		}
		var err error
		content, err = d.contentAt(v)
		return err
	})
	return content, err
}

// contentAt rebuilds the document's content at v from the nearest
// snapshot at or below it.
func (d *docRef) contentAt(v int) (string, error) {
	sv, val, ok := d.snapAtOrBelow(v)
	if !ok {
		return "", fmt.Errorf("content at v%d: %w", v, ErrCompacted)
	}
	content, err := snapContent(val)
	if err != nil {
		return "", corrupt(fmt.Sprintf("doc %q snapshot v%d", d.id, sv), err)
	}
	if sv == v {
		return content, nil
	}
	ops, err := d.readOps(sv, v)
	if err != nil {
		return "", err
	}
	s, err := doc.Replay(doc.Snapshot{Version: sv, Content: content}, ops, v)
	if err != nil {
		return "", corrupt(fmt.Sprintf("replay to v%d", v), err)
	}
	return s, nil
}

// Head returns what opening document docID needs: its latest snapshot and
// the ops after it, up to the current version. Its cost depends on the
// distance from the latest snapshot (at most about SnapshotEvery ops once
// the snapshotter has caught up), not on the length of the history.
func (db *DB) Head(docID string) (doc.Snapshot, []doc.OpRecord, error) {
	var snap doc.Snapshot
	var tail []doc.OpRecord
	err := db.viewDoc(docID, func(tx *bolt.Tx, d *docRef, head int) error {
		sv, content, err := d.lastSnap()
		if err != nil {
			return err
		}
		snap = doc.Snapshot{Version: sv, Content: content}
		tail, err = d.readOps(sv, head)
		return err
	})
	return snap, tail, err
}

// snapshotsDue returns the documents that grew in this transaction and are
// now SnapshotEvery or more ops past their latest snapshot.
func (w *writeTx) snapshotsDue() []string {
	var due []string
	for id := range w.grew {
		d, err := lookupDoc(w.tx, id)
		if err != nil || d == nil {
			continue
		}
		head, err := d.head()
		if err != nil {
			continue
		}
		if last, _, ok := d.snapAtOrBelow(math.MaxInt); ok && head-last >= w.db.cfg.SnapshotEvery { // the version alone: no decoding
			due = append(due, id)
		}
	}
	return due
}

// snapshotter is the background goroutine that writes automatic snapshots.
// The committer tells it which documents are due; it replays each from its
// latest snapshot outside any write transaction and submits the new
// snapshots to the committer, one every SnapshotEvery ops, so that no
// version is more than SnapshotEvery-1 ops from a snapshot below it.
type snapshotter struct {
	db *DB

	mu      sync.Mutex
	pending map[string]struct{} // guarded by mu: documents due
	busy    bool                // guarded by mu: a pass is running
	failed  map[string]bool     // guarded by mu: documents whose replay failed; skipped until restart
	idle    *sync.Cond          // on mu: signalled when pending is empty and no pass runs

	wake   chan struct{} // cap 1
	quit   chan struct{}
	exited chan struct{}
}

func newSnapshotter(db *DB) *snapshotter {
	s := &snapshotter{
		db:      db,
		pending: make(map[string]struct{}),
		failed:  make(map[string]bool),
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// notify marks documents as due. It never blocks.
func (s *snapshotter) notify(ids []string) {
	s.mu.Lock()
	for _, id := range ids {
		if !s.failed[id] {
			s.pending[id] = struct{}{}
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the snapshotter goroutine. On stop it finishes the documents it
// has been told about, then exits.
func (s *snapshotter) run() {
	defer close(s.exited)
	for {
		select {
		case <-s.wake:
			s.pass()
		case <-s.quit:
			s.pass()
			return
		}
	}
}

// stop makes run finish its pending work and waits for it.
func (s *snapshotter) stop() {
	close(s.quit)
	<-s.exited
	s.mu.Lock()
	clear(s.pending)
	s.idle.Broadcast()
	s.mu.Unlock()
}

// pass writes the due snapshots of every pending document.
func (s *snapshotter) pass() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.pending))
	for id := range s.pending {
		ids = append(ids, id)
	}
	clear(s.pending)
	s.busy = true
	s.mu.Unlock()

	slices.Sort(ids)
	for _, id := range ids {
		n, err := s.db.writeDueSnapshots(id)
		if err != nil {
			s.db.log.Error().Err(err).Str("doc", id).Msg("automatic snapshot failed; not retried until restart")
			s.mu.Lock()
			s.failed[id] = true
			s.mu.Unlock()
		}
		s.db.commits.addSnapshotStat(n)
	}

	s.mu.Lock()
	s.busy = false
	if len(s.pending) == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// waitIdle blocks until the snapshotter has nothing pending and no pass
// running. Tests and benchmarks use it to let snapshots settle.
func (s *snapshotter) waitIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) > 0 || s.busy {
		s.idle.Wait()
	}
}

// writeDueSnapshots writes document id's missing automatic snapshots: one
// at every SnapshotEvery ops past its latest snapshot, up to its head. It
// returns how many it wrote. A document deleted (or deleted and created
// anew) meanwhile is left alone.
func (db *DB) writeDueSnapshots(id string) (int, error) {
	every := db.cfg.SnapshotEvery
	var snaps []storedSnap
	var num uint64 // the document's number: tells it from a later one of the same id
	err := db.view(func(tx *bolt.Tx) error {
		d, err := lookupDoc(tx, id)
		if err != nil || d == nil {
			return err
		}
		num = d.num
		head, err := d.head()
		if err != nil {
			return err
		}
		last, v, err := d.lastSnap()
		if err != nil {
			return err
		}
		n := (head - last) / every
		if n == 0 {
			return nil
		}
		ops, err := d.readOps(last, last+n*every)
		if err != nil {
			return err
		}
		rope := doc.NewRope(v)
		for i, rec := range ops {
			if err := ot.ApplyTo(rope, rec.Op); err != nil {
				return corrupt(fmt.Sprintf("op v%d", rec.Version), err)
			}
			if (i+1)%every == 0 {
				snaps = append(snaps, storedSnap{version: rec.Version + 1, val: snapValue(rope.String())})
			}
		}
		return nil
	})
	if err != nil || len(snaps) == 0 {
		return 0, err
	}
	written := 0
	err = db.update(context.Background(), func(w *writeTx) error {
		d, err := lookupDoc(w.tx, id)
		if err != nil || d == nil || d.num != num {
			return err // deleted, or deleted and created anew, meanwhile
		}
		base, err := d.base()
		if err != nil {
			return err
		}
		sb := w.tx.Bucket(bucketSnaps)
		for _, s := range snaps {
			if s.version < base {
				continue // compacted meanwhile
			}
			if err := sb.Put(d.vkey(s.version), s.val); err != nil {
				return abort(err)
			}
			written++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// Compact drops the history of document docID before version before: it
// keeps (or writes) a snapshot at before, deletes older ops with their uid
// entries (a block holding ops on both sides of before is packed anew
// without the older ones) and older snapshots, and moves every comment anchored at an older
// version to version before, so it can still be transformed to the head.
// Afterwards ContentAt, Ops and Export start at before. before must lie
// between the current compaction point and the current version. It blocks
// until the compaction is durable; the write happens in one transaction.
func (db *DB) Compact(ctx context.Context, docID string, before int) error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()

	var content string
	var base int
	var num uint64
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		num = d.num
		head, err := d.head()
		if err != nil {
			return err
		}
		if base, err = d.base(); err != nil {
			return err
		}
		switch {
		case before < 0 || before > head:
			return fmt.Errorf("before v%d, head is v%d: %w", before, head, ErrInvalid)
		case before < base:
			return fmt.Errorf("before v%d, history starts at v%d: %w", before, base, ErrCompacted)
		}
		content, err = d.contentAt(before)
		return err
	})
	if err != nil {
		return fmt.Errorf("compact %q: %w", docID, err)
	}
	if before == base {
		return nil // nothing older to drop
	}
	snapVal := snapValue(content)
	err = db.update(ctx, func(w *writeTx) error {
		d, err := mustDoc(w.tx, docID)
		if err != nil {
			return err
		}
		if d.num != num {
			return fmt.Errorf("deleted and created anew meanwhile: %w", ErrNotFound)
		}
		if b2, err := d.base(); err != nil || b2 != base {
			return fmt.Errorf("compaction point moved to v%d meanwhile (%v): %w", b2, err, ErrConflict)
		}

		// Validate and compute everything first.
		comments, err := d.commentsToMove(before)
		if err != nil {
			return err
		}

		// Then mutate: first move the journal into the log, where the ops
		// to drop are found by key.
		if err := w.drainJournal(); err != nil {
			return abort(err)
		}
		opKeys := d.keys(bucketOps, before)
		var uids [][]byte
		ops := w.tx.Bucket(bucketOps)
		for _, k := range opKeys {
			ver, _ := d.version(k)
			uid, err := opValueUID(ops.Get(k))
			if err != nil {
				return abort(corrupt(fmt.Sprintf("doc %q op v%d", docID, ver), err))
			}
			if uid != "" {
				uids = append(uids, d.skey(uid))
			}
		}
		snapKeys := d.keys(bucketSnaps, before)
		if err := w.tx.Bucket(bucketSnaps).Put(d.vkey(before), snapVal); err != nil {
			return abort(err)
		}
		if err := d.compactBlocks(before); err != nil {
			return abort(err)
		}
		for id, val := range comments {
			if err := w.tx.Bucket(bucketComments).Put(d.skey(id), val); err != nil {
				return abort(err)
			}
		}
		for _, batch := range []struct {
			bucket []byte
			keys   [][]byte
		}{{bucketOps, opKeys}, {bucketUIDs, uids}, {bucketSnaps, snapKeys}} {
			b := w.tx.Bucket(batch.bucket)
			for _, k := range batch.keys {
				if err := b.Delete(k); err != nil {
					return abort(err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compact %q before v%d: %w", docID, before, err)
	}
	db.log.Info().Str("doc", docID).Int("before", before).Msg("compacted")
	return nil
}

// commentsToMove returns the document's comments anchored before version
// before, moved to before through the ops between, encoded, by id.
func (d *docRef) commentsToMove(before int) (map[string][]byte, error) {
	all, err := d.comments()
	if err != nil {
		return nil, err
	}
	var old []doc.Comment
	minV := before
	for _, cm := range all {
		if cm.Version < before {
			old = append(old, cm)
			minV = min(minV, cm.Version)
		}
	}
	if len(old) == 0 {
		return nil, nil
	}
	ops, err := d.readOps(minV, before)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(old))
	for _, cm := range old {
		for _, rec := range ops[cm.Version-minV:] {
			cm.Range = ot.TransformRange(rec.Op, cm.Range)
		}
		cm.Version = before
		val, err := json.Marshal(cm)
		if err != nil {
			return nil, err
		}
		out[cm.ID] = val
	}
	return out, nil
}

// snapCompressMin is the size from which the packer stores a snapshot
// compressed.
const snapCompressMin = 512

// snapValue returns the stored form of a new snapshot: its text. Opening a
// document reads its latest snapshot, which decoding would make several
// times slower; the packer compresses the snapshots it keeps in packed
// history (compressSnap), where their size matters more than their speed.
func snapValue(content string) []byte { return []byte(content) }

// compressSnap returns the stored form of a snapshot in packed history: a
// zstd frame of its text from snapCompressMin bytes, told apart from text
// by its first bytes, which text never starts with (see zstdMagic).
func compressSnap(text []byte) []byte {
	if len(text) < snapCompressMin || isZstd(text) {
		return text
	}
	return zEncoder().EncodeAll(text, nil)
}

// snapTextLen returns the length of a stored snapshot's text, reading only
// a compressed one's frame header.
func snapTextLen(v []byte) int {
	if !isZstd(v) {
		return len(v)
	}
	var hdr zstd.Header
	if err := hdr.Decode(v); err != nil || !hdr.HasFCS || hdr.FrameContentSize > maxBlockRaw {
		return len(v)
	}
	return int(hdr.FrameContentSize)
}

// snapContent decodes a stored snapshot. A compressed one is checked by
// the frame's checksum, as a plain one is by nothing: both were valid
// UTF-8 when written.
func snapContent(v []byte) (string, error) {
	if !isZstd(v) {
		return string(v), nil
	}
	// Decoding into a buffer of the size the frame gives is several times
	// faster than letting the decoder grow one.
	out, err := zDecoder().DecodeAll(v, make([]byte, 0, snapTextLen(v)))
	if err != nil {
		return "", err
	}
	return string(out), nil
}
