package natsstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// Comments are stored one per key, <doc>.<epoch>.<comment id>, in the
// comments bucket, as JSON doc.Comment.

func (r *docRef) commentKey(id string) string { return r.keyPrefix() + "." + encode(id) }

// PutComment creates or replaces (by c.ID) a comment of document docID.
// c.Range must be a valid range at c.Version, which must lie between the
// compaction point and the current version.
func (s *Store) PutComment(ctx context.Context, docID string, c doc.Comment) error {
	if err := checkID("doc id", docID); err != nil {
		return fmt.Errorf("put comment: %w", err)
	}
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
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return fmt.Errorf("put comment %q: %w", c.ID, err)
	}
	if c.Version < r.meta.Base || c.Version > head {
		return fmt.Errorf("put comment %q on %q at v%d, history is [v%d, v%d]: %w", c.ID, docID, c.Version, r.meta.Base, head, ErrInvalid)
	}
	if _, err := s.kvPut(ctx, s.kvCmts, r.commentKey(c.ID), val); err != nil {
		return fmt.Errorf("put comment %q on %q: %w", c.ID, docID, err)
	}
	return nil
}

// PutComments writes several comments of one document (a session's
// comments on unload). Each is its own key-value write: a failure partway
// leaves the ones before it written, which the session treats like any
// failed write (it keeps the comments in memory and reports the error).
func (s *Store) PutComments(ctx context.Context, docID string, cs []doc.Comment) error {
	for _, c := range cs {
		if err := s.PutComment(ctx, docID, c); err != nil {
			return err
		}
	}
	return nil
}

// DeleteComment deletes comment id of document docID, or fails with
// ErrNotFound.
func (s *Store) DeleteComment(ctx context.Context, docID, id string) error {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, _, err := s.ref(ctx, docID)
	if err != nil {
		return fmt.Errorf("delete comment %q: %w", id, err)
	}
	if id == "" {
		return fmt.Errorf("delete comment %q of %q: %w", id, docID, ErrNotFound)
	}
	key := r.commentKey(id)
	e, err := s.kvGet(ctx, s.kvCmts, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete comment %q of %q: %w", id, docID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete comment %q of %q: %w", id, docID, err)
	}
	if err := s.kvCmts.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		if isRevMismatch(err) {
			return fmt.Errorf("delete comment %q of %q: changed meanwhile: %w", id, docID, ErrConflict)
		}
		return fmt.Errorf("delete comment %q of %q: %w", id, docID, err)
	}
	return nil
}

// Comments returns the comments of document docID ordered by creation
// time, then id. Each Range is valid at its comment's Version.
func (s *Store) Comments(docID string) ([]doc.Comment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	r, _, err := s.ref(ctx, docID)
	if err != nil {
		return nil, err
	}
	return s.comments(ctx, r)
}

// comments reads every comment of an incarnation through one watcher.
func (s *Store) comments(ctx context.Context, r *docRef) ([]doc.Comment, error) {
	w, err := s.kvCmts.Watch(ctx, r.keyPrefix()+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("comments of %q: %w", r.meta.ID, err)
	}
	defer func() { _ = w.Stop() }()
	var out []doc.Comment
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var c doc.Comment
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return nil, corrupt(fmt.Sprintf("comment %s", e.Key()), err)
		}
		out = append(out, c)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("comments of %q: %w", r.meta.ID, err)
	}
	slices.SortFunc(out, func(a, b doc.Comment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// moveComments carries every comment anchored before version before to
// it, through the ops between, for compaction.
func (s *Store) moveComments(ctx context.Context, r *docRef, before int) error {
	all, err := s.comments(ctx, r)
	if err != nil {
		return err
	}
	minV := before
	for _, c := range all {
		if c.Version < before {
			minV = min(minV, max(c.Version, r.meta.Base))
		}
	}
	if minV == before {
		return nil
	}
	ops, err := s.readOps(ctx, r, minV, before)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Version >= before {
			continue
		}
		for _, rec := range ops[max(c.Version, minV)-minV:] {
			c.Range = ot.TransformRange(rec.Op, c.Range)
		}
		c.Version = before
		val, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := s.kvPut(ctx, s.kvCmts, r.commentKey(c.ID), val); err != nil {
			return err
		}
	}
	return nil
}

// WatchComments calls fn with every change of document docID's comments
// stored after the call, by any node, in the order the bucket stored
// them: the comment as stored (its Range valid at its Version), or, for a
// deletion, deleted true and a Comment carrying only the ID. fn runs on
// one goroutine at a time and may block (delivery waits). stop ends the
// watch and returns once fn is no longer running. A document deleted
// meanwhile simply stops changing.
func (s *Store) WatchComments(ctx context.Context, docID string, fn func(c doc.Comment, deleted bool)) (stop func(), err error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, _, err := s.ref(rctx, docID)
	if err != nil {
		return nil, err
	}
	wctx, wcancel := context.WithCancel(context.Background())
	w, err := s.kvCmts.Watch(wctx, r.keyPrefix()+".*", jetstream.UpdatesOnly())
	if err != nil {
		wcancel()
		return nil, fmt.Errorf("watch comments of %q: %w", docID, err)
	}
	prefix := r.keyPrefix() + "."
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				if id, ok := decode(strings.TrimPrefix(e.Key(), prefix)); ok {
					fn(doc.Comment{ID: id}, true)
				}
				continue
			}
			var c doc.Comment
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				s.log.Warn().Err(err).Str("key", e.Key()).Msg("undecodable comment")
				continue
			}
			fn(c, false)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = w.Stop()
			wcancel()
			<-done
		})
	}, nil
}
