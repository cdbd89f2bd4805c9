package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
)

// A snapshot is stored under <doc>.<epoch>.<version as 16 hex digits> in
// the snaps bucket. Its value is 'I' and the content when the content fits
// one chunk, else 'C' and a JSON manifest; the chunks then sit under the
// same key plus .<index as 4 hex digits>, written before the manifest, so
// that a manifest is never seen without its chunks. (A key-value value is
// one message, bounded by the server's max_payload, 1 MiB by default,
// and a document may be 16 MiB of UTF-8.)
type snapManifest struct {
	Size   int    `json:"size"`
	Chunks int    `json:"chunks"`
	Sum    string `json:"sha256"`
}

func (r *docRef) snapKey(v int) string { return fmt.Sprintf("%s.%016x", r.keyPrefix(), v) }

// PutSnapshot stores the content of document docID at snap.Version, which
// must lie between the compaction point and the current version; a
// snapshot already there is replaced. It trusts the content to be what
// replaying the log gives.
func (s *Store) PutSnapshot(ctx context.Context, docID string, snap doc.Snapshot) error {
	if err := checkID("doc id", docID); err != nil {
		return fmt.Errorf("put snapshot: %w", err)
	}
	if snap.Version < 0 || !utf8.ValidString(snap.Content) {
		return fmt.Errorf("put snapshot v%d of %q: negative version or invalid UTF-8: %w", snap.Version, docID, ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return fmt.Errorf("put snapshot: %w", err)
	}
	switch {
	case snap.Version > head:
		return fmt.Errorf("put snapshot v%d of %q at v%d: %w", snap.Version, docID, head, ErrInvalid)
	case snap.Version < r.meta.Base:
		return fmt.Errorf("put snapshot v%d of %q, history starts at v%d: %w", snap.Version, docID, r.meta.Base, ErrCompacted)
	}
	return s.putSnap(ctx, r, snap)
}

// putSnap writes a snapshot's chunks, then its manifest.
func (s *Store) putSnap(ctx context.Context, r *docRef, snap doc.Snapshot) error {
	key := r.snapKey(snap.Version)
	content := []byte(snap.Content)
	var val []byte
	if len(content) <= s.chunk {
		val = append([]byte{'I'}, content...)
	} else {
		n := (len(content) + s.chunk - 1) / s.chunk
		for i := 0; i < n; i++ {
			part := content[i*s.chunk : min((i+1)*s.chunk, len(content))]
			if _, err := s.kvPut(ctx, s.kvSnaps, fmt.Sprintf("%s.%04x", key, i), part); err != nil {
				return fmt.Errorf("put snapshot v%d of %q chunk %d: %w", snap.Version, r.meta.ID, i, err)
			}
		}
		sum := sha256.Sum256(content)
		js, _ := json.Marshal(snapManifest{Size: len(content), Chunks: n, Sum: hex.EncodeToString(sum[:])})
		val = append([]byte{'C'}, js...)
	}
	if _, err := s.kvPut(ctx, s.kvSnaps, key, val); err != nil {
		return fmt.Errorf("put snapshot v%d of %q: %w", snap.Version, r.meta.ID, err)
	}
	return nil
}

// getSnap reads the snapshot at v; ok is false when there is none.
func (s *Store) getSnap(ctx context.Context, r *docRef, v int) (string, bool, error) {
	key := r.snapKey(v)
	e, err := s.kvGet(ctx, s.kvSnaps, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("snapshot v%d of %q: %w", v, r.meta.ID, err)
	}
	return s.decodeSnap(ctx, key, e.Value())
}

// decodeSnap decodes a snapshot's value, reading its chunks.
func (s *Store) decodeSnap(ctx context.Context, key string, val []byte) (string, bool, error) {
	if len(val) == 0 {
		return "", false, corrupt("snapshot "+key, errors.New("empty value"))
	}
	switch val[0] {
	case 'I':
		return string(val[1:]), true, nil
	case 'C':
		var man snapManifest
		if err := json.Unmarshal(val[1:], &man); err != nil {
			return "", false, corrupt("snapshot "+key, err)
		}
		var b strings.Builder
		b.Grow(man.Size)
		for i := 0; i < man.Chunks; i++ {
			e, err := s.kvGet(ctx, s.kvSnaps, fmt.Sprintf("%s.%04x", key, i))
			if err != nil {
				return "", false, fmt.Errorf("snapshot %s chunk %d: %w", key, i, err)
			}
			b.Write(e.Value())
		}
		sum := sha256.Sum256([]byte(b.String()))
		if b.Len() != man.Size || hex.EncodeToString(sum[:]) != man.Sum {
			return "", false, corrupt("snapshot "+key, errors.New("chunks do not match the manifest"))
		}
		return b.String(), true, nil
	}
	return "", false, corrupt("snapshot "+key, fmt.Errorf("kind %q", val[0]))
}

// latestSnap returns the snapshot written last (the highest, but for
// races between writers, which cost only a longer replay): the last
// message on the document's snapshot keys, one request.
func (s *Store) latestSnap(ctx context.Context, r *docRef) (int, string, bool, error) {
	st, err := s.js.Stream(ctx, "KV_"+s.kvSnaps.Bucket())
	if err != nil {
		return 0, "", false, err
	}
	m, err := s.lastMsg(ctx, st, "$KV."+s.kvSnaps.Bucket()+"."+r.keyPrefix()+".*")
	if err != nil || m == nil || m.Header.Get("KV-Operation") != "" {
		return 0, "", false, err
	}
	key := strings.TrimPrefix(m.Subject, "$KV."+s.kvSnaps.Bucket()+".")
	v, err := strconv.ParseUint(key[strings.LastIndexByte(key, '.')+1:], 16, 62)
	if err != nil {
		return 0, "", false, corrupt("snapshot key "+key, err)
	}
	content, ok, err := s.decodeSnap(ctx, key, m.Data)
	return int(v), content, ok, err
}

// snapAtOrBelow finds the nearest snapshot at or below v: the latest one
// if it is, else the periodic ones (every SnapshotEvery ops) walking down,
// else the one at the compaction point (the empty text at 0 for a document
// never compacted, which is not stored).
func (s *Store) snapAtOrBelow(ctx context.Context, r *docRef, v int) (doc.Snapshot, error) {
	if lv, content, ok, err := s.latestSnap(ctx, r); err != nil {
		return doc.Snapshot{}, err
	} else if ok && lv <= v && lv >= r.meta.Base {
		return doc.Snapshot{Version: lv, Content: content}, nil
	}
	every := s.cfg.SnapshotEvery
	for c := v / every * every; c > r.meta.Base; c -= every {
		content, ok, err := s.getSnap(ctx, r, c)
		if err != nil {
			return doc.Snapshot{}, err
		}
		if ok {
			return doc.Snapshot{Version: c, Content: content}, nil
		}
	}
	content, ok, err := s.getSnap(ctx, r, r.meta.Base)
	if err != nil {
		return doc.Snapshot{}, err
	}
	if !ok && r.meta.Base != 0 {
		return doc.Snapshot{}, corrupt(fmt.Sprintf("doc %q", r.meta.ID), fmt.Errorf("no snapshot at its compaction point v%d", r.meta.Base))
	}
	return doc.Snapshot{Version: r.meta.Base, Content: content}, nil
}

// ContentAt returns the content of document docID at version v: the
// nearest snapshot at or below v with the ops up to v replayed on it. It
// fails with ErrInvalid unless 0 <= v <= the current version and with
// ErrCompacted when v lies before the compaction point.
func (s *Store) ContentAt(docID string, v int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return "", err
	}
	return s.contentAt(ctx, r, head, v)
}

func (s *Store) contentAt(ctx context.Context, r *docRef, head, v int) (string, error) {
	if v < 0 || v > head {
		return "", fmt.Errorf("content of %q at v%d, head is v%d: %w", r.meta.ID, v, head, ErrInvalid)
	}
	if v < r.meta.Base {
		return "", fmt.Errorf("content of %q at v%d, history starts at v%d: %w", r.meta.ID, v, r.meta.Base, ErrCompacted)
	}
	snap, err := s.snapAtOrBelow(ctx, r, v)
	if err != nil {
		return "", err
	}
	if snap.Version == v {
		return snap.Content, nil
	}
	ops, err := s.readOps(ctx, r, snap.Version, v)
	if err != nil {
		return "", err
	}
	content, err := doc.Replay(snap, ops, v)
	if err != nil {
		return "", corrupt(fmt.Sprintf("replay of %q to v%d", r.meta.ID, v), err)
	}
	return content, nil
}

// Head returns what opening document docID needs: its latest snapshot and
// the ops after it, up to the current version.
func (s *Store) Head(docID string) (doc.Snapshot, []doc.OpRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return doc.Snapshot{}, nil, err
	}
	snap, err := s.snapAtOrBelow(ctx, r, head)
	if err != nil {
		return doc.Snapshot{}, nil, err
	}
	tail, err := s.readOps(ctx, r, snap.Version, head)
	if err != nil {
		return doc.Snapshot{}, nil, err
	}
	return snap, tail, nil
}

// snapshotter writes the periodic snapshots: an append that crosses a
// multiple of SnapshotEvery marks its document, and the snapshotter
// goroutine writes the snapshot at the highest such multiple (rebuilt from
// the snapshot below and the ops between). Only the node whose append
// crossed the multiple does it; two nodes doing it anyway write the same
// content.
type snapshotter struct {
	s       *Store
	mu      sync.Mutex     // guards pending
	pending map[string]int // doc id → version to snapshot
	wake    chan struct{}  // cap 1
}

func newSnapshotter(s *Store) *snapshotter {
	return &snapshotter{s: s, pending: make(map[string]int), wake: make(chan struct{}, 1)}
}

// crossed notes that versions [from, to) of a document were appended.
func (sn *snapshotter) crossed(docID string, from, to int) {
	every := sn.s.cfg.SnapshotEvery
	if to/every == from/every || to/every == 0 {
		return
	}
	sn.mu.Lock()
	sn.pending[docID] = max(sn.pending[docID], to/every*every)
	sn.mu.Unlock()
	select {
	case sn.wake <- struct{}{}:
	default:
	}
}

func (sn *snapshotter) run() {
	defer sn.s.wg.Done()
	for {
		select {
		case <-sn.s.quit:
			return
		case <-sn.wake:
		}
		sn.mu.Lock()
		work := sn.pending
		sn.pending = make(map[string]int)
		sn.mu.Unlock()
		for id, v := range work {
			if err := sn.write(id, v); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrClosed) {
				// The next crossing writes every snapshot still missing.
				sn.s.log.Warn().Err(err).Str("doc", id).Int("version", v).Msg("periodic snapshot postponed")
			}
		}
	}
}

// write writes the periodic snapshots of document id up to v that are
// missing (at most 64 in one pass, the oldest first).
func (sn *snapshotter) write(id string, v int) error {
	s := sn.s
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, id)
	if err != nil {
		return err
	}
	every := s.cfg.SnapshotEvery
	var due []int
	for c := v; c > r.meta.Base && len(due) < 64; c -= every {
		_, ok, err := s.getSnap(ctx, r, c)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		due = append(due, c)
	}
	for i := len(due) - 1; i >= 0; i-- {
		content, err := s.contentAt(ctx, r, head, due[i])
		if err != nil {
			return err
		}
		if err := s.putSnap(ctx, r, doc.Snapshot{Version: due[i], Content: content}); err != nil {
			return err
		}
		s.count(func(st *Stats) { st.Snapshots++ })
	}
	return nil
}

// Compact drops the history of document docID before version before: it
// writes a snapshot at before, moves every comment anchored earlier to
// before (so it can still be carried to the head), records before as the
// compaction point in the metadata (the step that makes the older versions
// unreadable), then purges the op messages that end at or before it and
// the older snapshots. The message holding version before is kept (a
// message may hold several ops), and so is the last message of the
// subject, which anchors the next append. before must lie between the
// current compaction point and the current version.
func (s *Store) Compact(ctx context.Context, docID string, before int) error {
	ctx, cancel := context.WithTimeout(ctx, 6*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	switch {
	case before < 0 || before > head:
		return fmt.Errorf("compact %q before v%d, head is v%d: %w", docID, before, head, ErrInvalid)
	case before < r.meta.Base:
		return fmt.Errorf("compact %q before v%d, history starts at v%d: %w", docID, before, r.meta.Base, ErrCompacted)
	case before == r.meta.Base:
		return nil
	}
	oldBase := r.meta.Base
	content, err := s.contentAt(ctx, r, head, before)
	if err != nil {
		return fmt.Errorf("compact %q: %w", docID, err)
	}
	if err := s.putSnap(ctx, r, doc.Snapshot{Version: before, Content: content}); err != nil {
		return fmt.Errorf("compact %q: %w", docID, err)
	}
	if err := s.moveComments(ctx, r, before); err != nil {
		return fmt.Errorf("compact %q: %w", docID, err)
	}
	err = s.updateMeta(ctx, docID, func(m *DocMeta) error {
		if m.Epoch != r.meta.Epoch {
			return fmt.Errorf("compact %q: deleted and created anew meanwhile: %w", docID, ErrNotFound)
		}
		if m.Base != oldBase {
			return fmt.Errorf("compact %q: compaction point moved to v%d meanwhile: %w", docID, m.Base, ErrConflict)
		}
		m.Base = before
		return nil
	})
	if err != nil {
		return err
	}
	// Purge the messages wholly before before, keeping the last one.
	keep, _, err := s.seek(ctx, s.ops, r.subj, uint64(before), opSpan)
	if err != nil {
		return fmt.Errorf("compact %q: %w", docID, err)
	}
	if keep == nil {
		if keep, err = s.lastMsg(ctx, s.ops, r.subj); err != nil {
			return fmt.Errorf("compact %q: %w", docID, err)
		}
	}
	if keep != nil {
		if err := s.ops.Purge(ctx, jetstream.WithPurgeSubject(r.subj), jetstream.WithPurgeSequence(keep.Sequence)); err != nil {
			return fmt.Errorf("compact %q: purge ops: %w", docID, err)
		}
	}
	s.tails.drop(r.subj)
	// Older snapshots: the periodic ones and the old base.
	every := s.cfg.SnapshotEvery
	for c := oldBase; c < before; c = (c/every + 1) * every {
		if err := s.purgeKeys(ctx, s.kvSnaps, r.snapKey(c)); err != nil {
			return fmt.Errorf("compact %q: purge snapshot v%d: %w", docID, c, err)
		}
		_ = s.purgeKeys(ctx, s.kvSnaps, r.snapKey(c)+".*")
	}
	s.log.Info().Str("doc", docID).Int("before", before).Msg("compacted")
	return nil
}
