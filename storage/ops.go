package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// CreateDoc creates an empty document at version 0, with a snapshot of the
// empty text and a new epoch. info.ID is required and must pass
// doc.ValidID, info.Title doc.ValidTitle; info.Version must be 0; a zero
// info.Created is set to now; info.Epoch is ignored. It returns the stored
// metadata, or ErrExists when the id is taken. It blocks until the creation
// is durable.
func (db *DB) CreateDoc(ctx context.Context, info doc.Info) (doc.Info, error) {
	if err := doc.ValidID(info.ID); err != nil {
		return doc.Info{}, fmt.Errorf("create doc: %v: %w", err, ErrInvalid)
	}
	if err := doc.ValidTitle(info.Title); err != nil {
		return doc.Info{}, fmt.Errorf("create doc %q: %v: %w", info.ID, err, ErrInvalid)
	}
	if info.Version != 0 {
		return doc.Info{}, fmt.Errorf("create doc %q at version %d, want 0: %w", info.ID, info.Version, ErrInvalid)
	}
	if info.Created.IsZero() {
		info.Created = db.cfg.Now().UTC()
	}
	info.Epoch = randomID()
	si := storedInfo{ID: info.ID, Title: info.Title, Created: info.Created, Epoch: info.Epoch}
	err := db.update(ctx, func(w *writeTx) error {
		if w.tx.Bucket(bucketDocs).Get([]byte(info.ID)) != nil {
			return fmt.Errorf("create doc %q: %w", info.ID, ErrExists)
		}
		_, err := createDoc(w.tx, si, []storedSnap{{version: 0, val: []byte{}}}, 0)
		return abort(err)
	})
	if err != nil {
		return doc.Info{}, err
	}
	return info, nil
}

// GetDoc returns a document's metadata with its current version, or
// ErrNotFound.
func (db *DB) GetDoc(id string) (doc.Info, error) {
	var info doc.Info
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, id)
		if err != nil {
			return err
		}
		info, err = d.fullInfo()
		return err
	})
	return info, err
}

// ListDocs returns every document's metadata, ordered by id.
func (db *DB) ListDocs() ([]doc.Info, error) {
	var out []doc.Info
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDocs).ForEach(func(k, _ []byte) error {
			d, err := mustDoc(tx, string(k))
			if err != nil {
				return err
			}
			info, err := d.fullInfo()
			if err != nil {
				return err
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
		d, err := mustDoc(w.tx, id)
		if err != nil {
			return fmt.Errorf("delete doc: %w", err)
		}
		if err := w.drainJournal(); err != nil {
			return abort(err)
		}
		return abort(d.delete())
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
	return encodeOpValue(*rec), nil
}

// appendOpWrite returns the write of one op-log entry.
func appendOpWrite(docID string, rec doc.OpRecord, val []byte) writeFunc {
	return func(w *writeTx) error {
		d, err := mustDoc(w.tx, docID)
		if err != nil {
			return fmt.Errorf("append op v%d: %w", rec.Version, err)
		}
		h, err := d.headRec()
		if err != nil {
			return err
		}
		if rec.Version != h.Head {
			return fmt.Errorf("append op to %q: %w", docID, &ConflictError{Key: docID, Have: uint64(h.Head), Got: uint64(rec.Version)})
		}
		if rec.UID != "" {
			dup := w.tx.Bucket(bucketUIDs).Get(d.skey(rec.UID)) != nil || w.journaledUID(d.num, rec.UID)
			if !dup {
				if _, dup, err = d.packedUID(rec.UID); err != nil {
					return err
				}
			}
			if dup {
				return fmt.Errorf("append op v%d to %q: uid %q: %w", rec.Version, docID, rec.UID, ErrDuplicateUID)
			}
		}
		if err := w.journalOp(d, h, rec.UID, val); err != nil {
			return abort(err)
		}
		w.grew[docID] = struct{}{}
		return nil
	}
}

// decodeOp decodes the op-log entry of version ver (see codec.go).
func decodeOp(ver int, v []byte) (doc.OpRecord, error) {
	return decodeOpValue(ver, v)
}

// OpByUID returns the op of document docID with the given uid, and whether
// there is one; an op compacted away is not found. It reads the uid index
// of the recent ops, the journal for ops not yet moved out of it, and for
// packed ops the block uid index and the one block it names (pack.go); it
// finds any op of the history, whatever its age. It fails with ErrNotFound
// only when the document does not exist.
func (db *DB) OpByUID(docID, uid string) (doc.OpRecord, bool, error) {
	return db.OpByUIDBefore(docID, uid, math.MaxInt)
}

// OpByUIDBefore is OpByUID for a caller that knows the uids of the ops
// from version before on (a document's session keeps them in memory): it
// finds the op with uid if its version is below before, and may find it
// above. It reads the uid index (one lookup) and walks only the journaled
// ops below before, so that asking about every incoming op stays cheap
// however many of the document's newest ops the journal holds.
func (db *DB) OpByUIDBefore(docID, uid string, before int) (doc.OpRecord, bool, error) {
	var rec doc.OpRecord
	var found bool
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		if uid == "" {
			return nil
		}
		if ver, ok := unbe64(tx.Bucket(bucketUIDs).Get(d.skey(uid))); ok {
			v := tx.Bucket(bucketOps).Get(d.vkey(int(ver)))
			if v == nil {
				return corrupt(fmt.Sprintf("uid %q", uid), fmt.Errorf("indexes a missing op"))
			}
			rec, err = decodeOp(int(ver), v)
			found = err == nil
			return err
		}
		h, err := d.headRec()
		if err != nil {
			return err
		}
		errFound := errors.New("found")
		err = d.journaled(h, h.Indexed, min(h.Head, before), func(ver int, val []byte) error {
			if u, err := opValueUID(val); err != nil || u != uid {
				return err
			}
			if rec, err = decodeOp(ver, val); err != nil {
				return err
			}
			return errFound
		})
		if err == errFound {
			found, err = true, nil
		}
		if err != nil || found {
			return err
		}
		rec, found, err = d.packedUID(uid)
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
	err := db.viewDoc(docID, func(tx *bolt.Tx, d *docRef, head int) error {
		if from < 0 || from > to || to > head {
			return fmt.Errorf("ops [%d, %d) of %q at v%d: %w", from, to, docID, head, ErrInvalid)
		}
		base, err := d.base()
		if err != nil {
			return err
		}
		if from < base {
			return fmt.Errorf("ops from v%d of %q, history starts at v%d: %w", from, docID, base, ErrCompacted)
		}
		out, err = d.readOps(from, to)
		return err
	})
	return out, err
}

// SetTitle renames a document: it replaces the title in its metadata. A
// title is at most doc.MaxTitleBytes bytes of valid UTF-8 (doc.ValidTitle).
func (db *DB) SetTitle(ctx context.Context, id, title string) error {
	if err := doc.ValidTitle(title); err != nil {
		return fmt.Errorf("%q: %v: %w", id, err, ErrInvalid)
	}
	return db.update(ctx, func(w *writeTx) error {
		d, err := mustDoc(w.tx, id)
		if err != nil {
			return err
		}
		si, err := d.info()
		if err != nil {
			return err
		}
		si.Title = title
		js, err := json.Marshal(si)
		if err != nil {
			return err
		}
		return abort(w.tx.Bucket(bucketDocs).Put([]byte(id), append(be64(d.num), js...)))
	})
}
