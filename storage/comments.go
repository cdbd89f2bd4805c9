package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// PutComment creates or replaces (by c.ID) a comment of document docID.
// c.Range must be a valid range (0 <= From <= To) at c.Version, which must
// lie between the compaction point and the current version. It blocks until
// the write is durable.
func (db *DB) PutComment(ctx context.Context, docID string, c doc.Comment) error {
	return db.PutComments(ctx, docID, []doc.Comment{c})
}

// PutComments is PutComment for several comments in one transaction (one
// fsync): all are written, or, when one is invalid, none.
func (db *DB) PutComments(ctx context.Context, docID string, cs []doc.Comment) error {
	if err := checkID("doc id", docID); err != nil {
		return fmt.Errorf("put comment: %w", err)
	}
	vals := make([][]byte, len(cs))
	for i, c := range cs {
		if err := checkID("comment id", c.ID); err != nil {
			return fmt.Errorf("put comment on %q: %w", docID, err)
		}
		if c.Range.From < 0 || c.Range.To < c.Range.From {
			return fmt.Errorf("put comment %q on %q: range [%d, %d): %w", c.ID, docID, c.Range.From, c.Range.To, ErrInvalid)
		}
		val, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("put comment %q on %q: %w", c.ID, docID, err)
		}
		vals[i] = val
	}
	if len(cs) == 0 {
		return nil
	}
	return db.update(ctx, func(w *writeTx) error {
		d, err := mustDoc(w.tx, docID)
		if err != nil {
			return fmt.Errorf("put comment %q: %w", cs[0].ID, err)
		}
		head, err := d.head()
		if err != nil {
			return err
		}
		base, err := d.base()
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Version < base || c.Version > head {
				return fmt.Errorf("put comment %q on %q at v%d, history is [v%d, v%d]: %w", c.ID, docID, c.Version, base, head, ErrInvalid)
			}
		}
		b := w.tx.Bucket(bucketComments)
		for i, c := range cs {
			if err := b.Put(d.skey(c.ID), vals[i]); err != nil {
				return abort(err)
			}
		}
		return nil
	})
}

// DeleteComment deletes comment id of document docID, or fails with
// ErrNotFound. Replies are the caller's to delete. It blocks until the
// deletion is durable.
func (db *DB) DeleteComment(ctx context.Context, docID, id string) error {
	return db.update(ctx, func(w *writeTx) error {
		d, err := mustDoc(w.tx, docID)
		if err != nil {
			return fmt.Errorf("delete comment %q: %w", id, err)
		}
		cb := w.tx.Bucket(bucketComments)
		if id == "" || cb.Get(d.skey(id)) == nil {
			return fmt.Errorf("delete comment %q of %q: %w", id, docID, ErrNotFound)
		}
		return abort(cb.Delete(d.skey(id)))
	})
}

// Comments returns the comments of document docID ordered by creation time,
// then id. Each Range is valid at its comment's Version; the session moves
// it through the later ops.
func (db *DB) Comments(docID string) ([]doc.Comment, error) {
	var out []doc.Comment
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		out, err = d.sortedComments()
		return err
	})
	return out, err
}

// sortedComments returns the document's comments ordered by creation
// time, then id.
func (d *docRef) sortedComments() ([]doc.Comment, error) {
	out, err := d.comments()
	slices.SortFunc(out, func(a, b doc.Comment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, err
}
