package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// storedInfo is the JSON value under docs/<id>/info. The version is not in
// it: docs/<id>/head holds it, so an append does not rewrite the metadata.
type storedInfo struct {
	ID      string    `json:"id"`
	Title   string    `json:"title,omitempty"`
	Created time.Time `json:"created"`
	// Incarnation tells a document from an earlier one of the same id that
	// was deleted, so that background work started on the old one (a
	// snapshot, a compaction) does not land on the new one.
	Incarnation string `json:"incarnation"`
}

// docBucket returns the bucket of document id, or nil.
func docBucket(tx *bolt.Tx, id string) *bolt.Bucket {
	return tx.Bucket(bucketDocs).Bucket([]byte(id))
}

// mustDoc returns the bucket of document id or an ErrNotFound error.
func mustDoc(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	if b := docBucket(tx, id); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("doc %q: %w", id, ErrNotFound)
}

// readHead returns the document's current version.
func readHead(b *bolt.Bucket) (int, error) {
	v, ok := unbe64(b.Get(keyHead))
	if !ok {
		return 0, corrupt("head", fmt.Errorf("%d bytes", len(b.Get(keyHead))))
	}
	return int(v), nil
}

// readInfo decodes the document's metadata.
func readInfo(b *bolt.Bucket) (storedInfo, error) {
	var si storedInfo
	if err := json.Unmarshal(b.Get(keyInfo), &si); err != nil {
		return si, corrupt("doc info", err)
	}
	return si, nil
}

// readBase returns the document's base: the version of its oldest
// snapshot. Every version from base to head can be rebuilt; ops before base
// were compacted away.
func readBase(b *bolt.Bucket) (int, error) {
	k, _ := b.Bucket(bucketSnaps).Cursor().First()
	v, ok := unbe64(k)
	if !ok {
		return 0, corrupt("snapshots", fmt.Errorf("no snapshot"))
	}
	return int(v), nil
}

// CreateDoc creates an empty document at version 0, with a snapshot of the
// empty text. info.ID is required; info.Version must be 0; a zero
// info.Created is set to now. It returns the stored metadata, or ErrExists
// when the id is taken. It blocks until the creation is durable.
func (db *DB) CreateDoc(ctx context.Context, info doc.Info) (doc.Info, error) {
	if err := checkID("doc id", info.ID); err != nil {
		return doc.Info{}, fmt.Errorf("create doc: %w", err)
	}
	if info.Version != 0 {
		return doc.Info{}, fmt.Errorf("create doc %q at version %d, want 0: %w", info.ID, info.Version, ErrInvalid)
	}
	if info.Created.IsZero() {
		info.Created = db.cfg.Now().UTC()
	}
	si := storedInfo{ID: info.ID, Title: info.Title, Created: info.Created, Incarnation: randomID()}
	val, err := json.Marshal(si)
	if err != nil {
		return doc.Info{}, fmt.Errorf("create doc %q: %w", info.ID, err)
	}
	err = db.update(ctx, func(w *writeTx) error {
		docs := w.tx.Bucket(bucketDocs)
		if docs.Bucket([]byte(info.ID)) != nil {
			return fmt.Errorf("create doc %q: %w", info.ID, ErrExists)
		}
		return abort(createDocTx(docs, info.ID, val, []doc.Snapshot{{}}, 0))
	})
	if err != nil {
		return doc.Info{}, err
	}
	return info, nil
}

// createDocTx creates the bucket tree of a new document with its
// metadata, snapshots and head. It runs inside a write transaction; the
// caller checked that the id is free.
func createDocTx(docs *bolt.Bucket, id string, info []byte, snaps []doc.Snapshot, head int) error {
	b, err := docs.CreateBucket([]byte(id))
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bucketOps, bucketUIDs, bucketSnaps, bucketComms} {
		if _, err := b.CreateBucket(name); err != nil {
			return err
		}
	}
	if err := b.Put(keyInfo, info); err != nil {
		return err
	}
	sb := b.Bucket(bucketSnaps)
	for _, s := range snaps {
		if err := sb.Put(be64(uint64(s.Version)), []byte(s.Content)); err != nil {
			return err
		}
	}
	return b.Put(keyHead, be64(uint64(head)))
}

// GetDoc returns a document's metadata with its current version, or
// ErrNotFound.
func (db *DB) GetDoc(id string) (doc.Info, error) {
	var info doc.Info
	err := db.view(func(tx *bolt.Tx) error {
		b, err := mustDoc(tx, id)
		if err != nil {
			return err
		}
		info, err = infoOf(b)
		return err
	})
	return info, err
}

// infoOf reads a document's metadata and version.
func infoOf(b *bolt.Bucket) (doc.Info, error) {
	si, err := readInfo(b)
	if err != nil {
		return doc.Info{}, err
	}
	head, err := readHead(b)
	if err != nil {
		return doc.Info{}, err
	}
	return doc.Info{ID: si.ID, Title: si.Title, Created: si.Created, Version: head}, nil
}

// ListDocs returns every document's metadata, ordered by id.
func (db *DB) ListDocs() ([]doc.Info, error) {
	var out []doc.Info
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDocs).ForEachBucket(func(k []byte) error {
			info, err := infoOf(tx.Bucket(bucketDocs).Bucket(k))
			if err != nil {
				return fmt.Errorf("doc %q: %w", k, err)
			}
			out = append(out, info)
			return nil
		})
	})
	return out, err
}

// DeleteDoc deletes a document and everything attached to it: its op log,
// uid index, snapshots and comments. It fails with ErrNotFound when there is
// no such document. It blocks until the deletion is durable.
func (db *DB) DeleteDoc(ctx context.Context, id string) error {
	return db.update(ctx, func(w *writeTx) error {
		docs := w.tx.Bucket(bucketDocs)
		if docs.Bucket([]byte(id)) == nil {
			return fmt.Errorf("delete doc %q: %w", id, ErrNotFound)
		}
		return abort(docs.DeleteBucket([]byte(id)))
	})
}

// AppendOp appends rec to document docID's op log and returns once it is
// durable. rec.Version must equal the document's current version, else it
// fails with ErrConflict (a [*ConflictError]); a uid the log already holds
// fails with ErrDuplicateUID. A zero rec.Time is set to now. On any error
// nothing was written for rec. If ctx ends first AppendOp returns ctx's
// error, and the op may still commit.
func (db *DB) AppendOp(ctx context.Context, docID string, rec doc.OpRecord) error {
	ch := make(chan error, 1)
	db.AppendOpAsync(docID, rec, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("append op v%d to %q: %w (it may still commit)", rec.Version, docID, ctx.Err())
	}
}

// AppendOpAsync queues rec for appending like AppendOp and returns at once.
// done is called exactly once with the outcome: nil once the op is durable.
// Appends submitted in order from one goroutine are committed in that
// order, so a caller can submit version N+1 before N is durable; if N fails,
// N+1 then fails with ErrConflict.
//
// done runs on the committer goroutine (or, for input rejected up front or a
// closed DB, on the caller's goroutine before AppendOpAsync returns). It
// must be quick and must not wait for another write of this DB: hand the
// result to a channel with room and return.
func (db *DB) AppendOpAsync(docID string, rec doc.OpRecord, done func(error)) {
	val, err := db.encodeOp(docID, &rec)
	if err != nil {
		done(err)
		return
	}
	db.commits.submit(appendOpWrite(docID, rec, val), done)
}

// encodeOp validates rec and returns its stored form. A zero rec.Time is set
// to now.
func (db *DB) encodeOp(docID string, rec *doc.OpRecord) ([]byte, error) {
	if err := checkID("doc id", docID); err != nil {
		return nil, fmt.Errorf("append op: %w", err)
	}
	if rec.Version < 0 {
		return nil, fmt.Errorf("append op v%d to %q: negative version: %w", rec.Version, docID, ErrInvalid)
	}
	if rec.UID != "" {
		if err := checkID("op uid", rec.UID); err != nil {
			return nil, fmt.Errorf("append op v%d to %q: %w", rec.Version, docID, err)
		}
	}
	if rec.Op == nil {
		rec.Op = ot.Op{} // a no-op; nil would encode as null
	}
	if err := rec.Op.Validate(); err != nil {
		return nil, fmt.Errorf("append op v%d to %q: %v: %w", rec.Version, docID, err, ErrInvalid)
	}
	if rec.Time.IsZero() {
		rec.Time = db.cfg.Now().UTC()
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("append op v%d to %q: %w", rec.Version, docID, err)
	}
	return val, nil
}

// appendOpWrite returns the write of one op-log entry.
func appendOpWrite(docID string, rec doc.OpRecord, val []byte) writeFunc {
	return func(w *writeTx) error {
		b, err := mustDoc(w.tx, docID)
		if err != nil {
			return fmt.Errorf("append op v%d: %w", rec.Version, err)
		}
		head, err := readHead(b)
		if err != nil {
			return err
		}
		if rec.Version != head {
			return fmt.Errorf("append op to %q: %w", docID, &ConflictError{Key: docID, Have: uint64(head), Got: uint64(rec.Version)})
		}
		uids := b.Bucket(bucketUIDs)
		if rec.UID != "" && uids.Get([]byte(rec.UID)) != nil {
			return fmt.Errorf("append op v%d to %q: uid %q: %w", rec.Version, docID, rec.UID, ErrDuplicateUID)
		}
		key := be64(uint64(head))
		if err := b.Bucket(bucketOps).Put(key, val); err != nil {
			return abort(err)
		}
		if rec.UID != "" {
			if err := uids.Put([]byte(rec.UID), key); err != nil {
				return abort(err)
			}
		}
		if err := b.Put(keyHead, be64(uint64(head+1))); err != nil {
			return abort(err)
		}
		w.grew[docID] = struct{}{}
		return nil
	}
}

// decodeOp decodes an op-log entry stored under key k.
func decodeOp(k, v []byte) (doc.OpRecord, error) {
	var rec doc.OpRecord
	ver, ok := unbe64(k)
	if !ok {
		return rec, corrupt("op key", fmt.Errorf("%d bytes", len(k)))
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, corrupt(fmt.Sprintf("op v%d", ver), err)
	}
	if rec.Version != int(ver) {
		return rec, corrupt(fmt.Sprintf("op v%d", ver), fmt.Errorf("holds version %d", rec.Version))
	}
	return rec, nil
}

// OpByUID returns the op of document docID with the given uid, and whether
// there is one; an op compacted away is not found. It reads the uid index,
// not the log. It fails with ErrNotFound only when the document does not
// exist.
func (db *DB) OpByUID(docID, uid string) (doc.OpRecord, bool, error) {
	var rec doc.OpRecord
	var found bool
	err := db.view(func(tx *bolt.Tx) error {
		b, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		if uid == "" {
			return nil
		}
		k := b.Bucket(bucketUIDs).Get([]byte(uid))
		if k == nil {
			return nil
		}
		v := b.Bucket(bucketOps).Get(k)
		if v == nil {
			return corrupt(fmt.Sprintf("uid %q", uid), fmt.Errorf("indexes a missing op"))
		}
		rec, err = decodeOp(k, v)
		found = err == nil
		return err
	})
	return rec, found, err
}

// Ops returns the ops of document docID with versions in [from, to), in
// order. It fails with ErrInvalid unless 0 <= from <= to <= the current
// version, and with ErrCompacted when from lies before the compaction
// point.
func (db *DB) Ops(docID string, from, to int) ([]doc.OpRecord, error) {
	var out []doc.OpRecord
	err := db.view(func(tx *bolt.Tx) error {
		b, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		head, err := readHead(b)
		if err != nil {
			return err
		}
		if from < 0 || from > to || to > head {
			return fmt.Errorf("ops [%d, %d) of %q at v%d: %w", from, to, docID, head, ErrInvalid)
		}
		base, err := readBase(b)
		if err != nil {
			return err
		}
		if from < base {
			return fmt.Errorf("ops from v%d of %q, history starts at v%d: %w", from, docID, base, ErrCompacted)
		}
		out, err = readOps(b, from, to)
		return err
	})
	return out, err
}

// readOps reads ops [from, to) of a document bucket, checking that they are
// all there.
func readOps(b *bolt.Bucket, from, to int) ([]doc.OpRecord, error) {
	if from == to {
		return nil, nil
	}
	out := make([]doc.OpRecord, 0, to-from)
	c := b.Bucket(bucketOps).Cursor()
	want := from
	for k, v := c.Seek(be64(uint64(from))); k != nil && want < to; k, v = c.Next() {
		rec, err := decodeOp(k, v)
		if err != nil {
			return nil, err
		}
		if rec.Version != want {
			return nil, corrupt("op log", fmt.Errorf("want v%d, found v%d", want, rec.Version))
		}
		out = append(out, rec)
		want++
	}
	if want != to {
		return nil, corrupt("op log", fmt.Errorf("ends at v%d, want v%d", want, to))
	}
	return out, nil
}
