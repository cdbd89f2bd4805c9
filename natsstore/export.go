package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/storage"
)

// Export and import speak the single-node format (storage.WriteExport,
// storage.ReadExport: tandem-export, version 1), so that a document moves
// between a single node and a cluster, either way, with `tandem export`
// and `tandem import` or the HTTP API.

// Export writes document docID's whole stored history to w in the
// tandem-export format: metadata, the snapshot at the compaction point,
// every op since, and the comments.
func (s *Store) Export(docID string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 6*s.cfg.RequestTimeout)
	defer cancel()
	r, head, err := s.ref(ctx, docID)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	base := r.meta.Base
	content, err := s.contentAt(ctx, r, head, base)
	if err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	ops, err := s.readOps(ctx, r, base, head)
	if err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	comments, err := s.comments(ctx, r)
	if err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	if ops == nil {
		ops = []doc.OpRecord{}
	}
	if comments == nil {
		comments = []doc.Comment{}
	}
	d := storage.ExportData{
		Doc:       doc.Info{ID: r.meta.ID, Title: r.meta.Title, Created: r.meta.Created, Version: head},
		Base:      base,
		Snapshots: []doc.Snapshot{{Version: base, Content: content}},
		Ops:       ops,
		Comments:  comments,
	}
	if err := storage.WriteExport(w, d, s.cfg.Now()); err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	return nil
}

// Import reads an export from r (validated as a single node validates it,
// within Config.Limits) and creates the document it holds with a new
// epoch: its ops (in batches, by compare-and-append on the new
// incarnation's empty subject), snapshots and comments first, its
// metadata last, so that nobody sees the document before it is whole. It
// fails with an error wrapping storage.ErrBadExport for a bad export and
// ErrExists when the id is taken (what it wrote is then removed).
func (s *Store) Import(rd io.Reader) (doc.Info, error) {
	d, snaps, err := storage.ReadExport(rd, s.cfg.SnapshotEvery, s.cfg.Limits)
	if err != nil {
		return doc.Info{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.GetDoc(d.Doc.ID); err == nil {
		return doc.Info{}, fmt.Errorf("import %q: %w", d.Doc.ID, ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return doc.Info{}, fmt.Errorf("import %q: %w", d.Doc.ID, err)
	}
	created := d.Doc.Created
	if created.IsZero() {
		created = s.cfg.Now().UTC()
	}
	meta := DocMeta{ID: d.Doc.ID, Title: d.Doc.Title, Created: created, Epoch: randomID(), Base: d.Base}
	tok := encode(meta.ID)
	r := &docRef{meta: meta, tok: tok, subj: s.n.opsSubject(tok, meta.Epoch)}
	undo := func() {
		uctx, ucancel := context.WithTimeout(context.Background(), 2*s.cfg.RequestTimeout)
		defer ucancel()
		_ = s.ops.Purge(uctx, jetstream.WithPurgeSubject(r.subj))
		s.tails.drop(r.subj)
		s.purgeDocKeys(uctx, r)
	}
	for i := 0; i < len(d.Ops); {
		n, size := 0, 0
		for i+n < len(d.Ops) {
			sz := approxSize(d.Ops[i+n])
			if n > 0 && size+sz > s.maxBatch {
				break
			}
			size += sz
			n++
		}
		if err := s.appendBatch(ctx, r, d.Ops[i:i+n]); err != nil {
			undo()
			return doc.Info{}, fmt.Errorf("import %q: %w", meta.ID, err)
		}
		i += n
	}
	for _, sn := range snaps {
		if sn.Version == 0 && sn.Content == "" {
			continue // the empty text at 0 is implied
		}
		if err := s.putSnap(ctx, r, sn); err != nil {
			undo()
			return doc.Info{}, fmt.Errorf("import %q: %w", meta.ID, err)
		}
	}
	for _, c := range d.Comments {
		val, err := json.Marshal(c)
		if err == nil {
			_, err = s.kvPut(ctx, s.kvCmts, r.commentKey(c.ID), val)
		}
		if err != nil {
			undo()
			return doc.Info{}, fmt.Errorf("import %q: %w", meta.ID, err)
		}
	}
	val, err := json.Marshal(meta)
	if err != nil {
		undo()
		return doc.Info{}, err
	}
	if _, err := s.kvCreate(ctx, s.kvDocs, tok, val); err != nil {
		undo()
		if errors.Is(err, jetstream.ErrKeyExists) {
			return doc.Info{}, fmt.Errorf("import %q: %w", meta.ID, ErrExists)
		}
		return doc.Info{}, fmt.Errorf("import %q: %w", meta.ID, err)
	}
	s.log.Info().Str("doc", meta.ID).Int("version", d.Doc.Version).Msg("imported")
	return doc.Info{ID: meta.ID, Title: meta.Title, Created: meta.Created, Version: d.Doc.Version, Epoch: meta.Epoch}, nil
}
