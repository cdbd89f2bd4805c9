package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
)

// Headers of the messages on an op subject.
const (
	hdrVersion = "Tandem-Version" // first version the message holds
	hdrCount   = "Tandem-Count"   // how many ops it holds
	hdrDeleted = "Tandem-Deleted" // the document was deleted (a marker, no ops)
)

// DocMeta is a document's metadata as the docs bucket keeps it.
type DocMeta struct {
	ID      string    `json:"id"`
	Title   string    `json:"title,omitempty"`
	Created time.Time `json:"created"`
	// Epoch names this incarnation of the document: a document deleted
	// and created again under the same id gets a new one, and with it a
	// new op subject, snapshot keys and comment keys. A client's version
	// means something only within one epoch.
	Epoch string `json:"epoch"`
	// Base is the compaction point: ops before it are gone and a snapshot
	// at Base exists (0 and the empty text for a document never
	// compacted).
	Base int `json:"base,omitempty"`
}

// docRef is a document incarnation's place in the streams and buckets.
type docRef struct {
	meta DocMeta
	rev  uint64 // the meta entry's revision
	tok  string // encode(id)
	subj string // its op subject
}

// snapPrefix is the key prefix of the document's snapshots and comments.
func (r *docRef) keyPrefix() string { return r.tok + "." + r.meta.Epoch }

// loadRef reads a document's metadata; ErrNotFound when there is none.
// The result may be a deleted incarnation (see live).
func (s *Store) loadRef(ctx context.Context, id string) (*docRef, error) {
	if err := checkID("doc id", id); err != nil {
		return nil, err
	}
	tok := encode(id)
	e, err := s.kvGet(ctx, s.kvDocs, tok)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("doc %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("doc %q: %w", id, err)
	}
	var m DocMeta
	if err := json.Unmarshal(e.Value(), &m); err != nil || m.Epoch == "" {
		return nil, corrupt(fmt.Sprintf("doc %q metadata", id), err)
	}
	return &docRef{meta: m, rev: e.Revision(), tok: tok, subj: s.n.opsSubject(tok, m.Epoch)}, nil
}

// ref returns a live document's reference and its current version; a
// deleted incarnation is ErrNotFound.
func (s *Store) ref(ctx context.Context, id string) (*docRef, int, error) {
	r, err := s.loadRef(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	head, err := s.head(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	return r, head, nil
}

// head returns the document's current version from its last message:
// ErrNotFound when that is a deletion marker.
func (s *Store) head(ctx context.Context, r *docRef) (int, error) {
	m, err := s.lastMsg(ctx, s.ops, r.subj)
	if err != nil {
		return 0, fmt.Errorf("head of %q: %w", r.meta.ID, err)
	}
	if m == nil {
		return r.meta.Base, nil
	}
	sp, err := opSpan(m)
	if err != nil {
		return 0, fmt.Errorf("doc %q: %w", r.meta.ID, err)
	}
	s.tails.add(r.subj, sp)
	return int(sp.hi), nil
}

// CreateDoc creates an empty document at version 0 with a new epoch and
// returns its metadata; ErrExists when the id is taken. info.Version must
// be 0; a zero info.Created is set to now. The key-value create is the
// atomic step: of two nodes creating the same id, one gets ErrExists. A
// document whose deletion stopped half-way (its marker written, its
// metadata not yet removed) counts as absent and is replaced.
func (s *Store) CreateDoc(ctx context.Context, info doc.Info) (doc.Info, error) {
	m, err := s.CreateDocMeta(ctx, info)
	if err != nil {
		return doc.Info{}, err
	}
	return doc.Info{ID: m.ID, Title: m.Title, Created: m.Created, Epoch: m.Epoch}, nil
}

// CreateDocMeta is CreateDoc returning the stored metadata with its epoch.
func (s *Store) CreateDocMeta(ctx context.Context, info doc.Info) (DocMeta, error) {
	if err := checkID("doc id", info.ID); err != nil {
		return DocMeta{}, fmt.Errorf("create doc: %w", err)
	}
	if info.Version != 0 {
		return DocMeta{}, fmt.Errorf("create doc %q at version %d, want 0: %w", info.ID, info.Version, ErrInvalid)
	}
	if len(info.Title) > 200 || !utf8.ValidString(info.Title) {
		return DocMeta{}, fmt.Errorf("create doc %q: title of at most 200 bytes of UTF-8: %w", info.ID, ErrInvalid)
	}
	if s.isClosed() {
		return DocMeta{}, ErrClosed
	}
	if info.Created.IsZero() {
		info.Created = s.cfg.Now().UTC()
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	m := DocMeta{ID: info.ID, Title: info.Title, Created: info.Created, Epoch: randomID()}
	val, err := json.Marshal(m)
	if err != nil {
		return DocMeta{}, err
	}
	tok := encode(info.ID)
	_, err = s.kvCreate(ctx, s.kvDocs, tok, val)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return DocMeta{}, fmt.Errorf("create doc %q: %w", info.ID, err)
	}
	old, err := s.loadRef(ctx, info.ID)
	if err != nil {
		return DocMeta{}, fmt.Errorf("create doc %q: %w", info.ID, err)
	}
	if old.meta.Epoch == m.Epoch {
		return m, nil // our own create, whose response was lost and retried
	}
	if _, err := s.head(ctx, old); !errors.Is(err, ErrNotFound) {
		return DocMeta{}, fmt.Errorf("create doc %q: %w", info.ID, ErrExists)
	}
	// The old incarnation's deletion stopped half-way: finish it.
	if _, err := s.kvUpdate(ctx, s.kvDocs, tok, val, old.rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) { // someone else got there first
			return DocMeta{}, fmt.Errorf("create doc %q: %w", info.ID, ErrExists)
		}
		return DocMeta{}, fmt.Errorf("create doc %q: %w", info.ID, err)
	}
	s.purgeDocKeys(ctx, old)
	return m, nil
}

// GetDoc returns a document's metadata with its current version, or
// ErrNotFound.
func (s *Store) GetDoc(id string) (doc.Info, error) {
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	r, head, err := s.ref(ctx, id)
	if err != nil {
		return doc.Info{}, err
	}
	return doc.Info{ID: r.meta.ID, Title: r.meta.Title, Created: r.meta.Created, Version: head, Epoch: r.meta.Epoch}, nil
}

// Meta returns a document's metadata (with its epoch and compaction point)
// and current version, or ErrNotFound.
func (s *Store) Meta(ctx context.Context, id string) (DocMeta, int, error) {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, head, err := s.ref(ctx, id)
	if err != nil {
		return DocMeta{}, 0, err
	}
	return r.meta, head, nil
}

// ListDocs returns every document's metadata with its current version,
// ordered by id. It reads the docs bucket through one watcher, then each
// document's last message.
func (s *Store) ListDocs() ([]doc.Info, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.RequestTimeout)
	defer cancel()
	w, err := s.kvDocs.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list docs: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var refs []*docRef
	for e := range w.Updates() {
		if e == nil {
			break // the initial values are all in
		}
		var m DocMeta
		if err := json.Unmarshal(e.Value(), &m); err != nil || m.Epoch == "" {
			return nil, corrupt(fmt.Sprintf("doc metadata %q", e.Key()), err)
		}
		refs = append(refs, &docRef{meta: m, rev: e.Revision(), tok: e.Key(), subj: s.n.opsSubject(e.Key(), m.Epoch)})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list docs: %w", err)
	}
	out := make([]doc.Info, 0, len(refs))
	for _, r := range refs {
		head, err := s.head(ctx, r)
		if errors.Is(err, ErrNotFound) {
			continue // deleted half-way
		}
		if err != nil {
			return nil, err
		}
		out = append(out, doc.Info{ID: r.meta.ID, Title: r.meta.Title, Created: r.meta.Created, Version: head, Epoch: r.meta.Epoch})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteDoc deletes a document with everything of its incarnation: ops,
// snapshots and comments. Its first step, the atomic one, writes a marker
// on the op subject that rolls up (removes) every op there: from then on
// appends from any node fail with ErrNotFound and reads find nothing. It
// then removes the metadata and purges the snapshot and comment keys. It
// fails with ErrNotFound when there is no such document (finishing a
// deletion that stopped half-way, if it finds one).
func (s *Store) DeleteDoc(ctx context.Context, id string) error {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	r, err := s.loadRef(ctx, id)
	if err != nil {
		return fmt.Errorf("delete doc: %w", err)
	}
	_, headErr := s.head(ctx, r)
	if headErr != nil && !errors.Is(headErr, ErrNotFound) {
		return fmt.Errorf("delete doc %q: %w", id, headErr)
	}
	if headErr == nil {
		msg := nats.NewMsg(r.subj)
		msg.Header.Set(hdrDeleted, "1")
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		msg.Header.Set(jetstream.MsgTTLHeader, s.cfg.DeleteMarkerTTL.String())
		_, err := call(s, ctx, func(ctx context.Context) (*jetstream.PubAck, error) {
			return s.js.PublishMsg(ctx, msg, jetstream.WithMsgID("del."+r.meta.Epoch))
		})
		if err != nil {
			return fmt.Errorf("delete doc %q: %w", id, err)
		}
	}
	s.tails.drop(r.subj)
	s.forgetRef(id)
	if err := s.kvDocs.Delete(ctx, r.tok, jetstream.LastRevision(r.rev)); err != nil && !isRevMismatch(err) {
		return fmt.Errorf("delete doc %q metadata: %w", id, err)
	}
	s.purgeDocKeys(ctx, r)
	if headErr != nil {
		return fmt.Errorf("delete doc %q: %w", id, ErrNotFound)
	}
	return nil
}

// purgeDocKeys removes an incarnation's snapshots and comments. Failures
// are logged: the keys are unreachable anyway (a new incarnation has
// another epoch).
func (s *Store) purgeDocKeys(ctx context.Context, r *docRef) {
	for _, b := range []jetstream.KeyValue{s.kvSnaps, s.kvCmts} {
		if err := s.purgeKeys(ctx, b, r.keyPrefix()+".>"); err != nil {
			s.log.Error().Err(err).Str("doc", r.meta.ID).Msg("purge of a deleted document's keys")
		}
	}
}

// purgeKeys purges every key of a bucket matching filter, in one request
// to the bucket's stream.
func (s *Store) purgeKeys(ctx context.Context, kv jetstream.KeyValue, filter string) error {
	st, err := s.js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+kv.Bucket()+"."+filter))
}

// SetTitle replaces a document's title (at most 200 bytes of UTF-8).
func (s *Store) SetTitle(ctx context.Context, id, title string) error {
	if len(title) > 200 || !utf8.ValidString(title) {
		return fmt.Errorf("title of %q: at most 200 bytes of UTF-8: %w", id, ErrInvalid)
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	return s.updateMeta(ctx, id, func(m *DocMeta) error { m.Title = title; return nil })
}

// updateMeta applies fn to a live document's metadata by compare-and-set,
// retrying when another node changed it meanwhile.
func (s *Store) updateMeta(ctx context.Context, id string, fn func(*DocMeta) error) error {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		r, _, err := s.ref(ctx, id)
		if err != nil {
			return err
		}
		epoch := r.meta.Epoch
		if err := fn(&r.meta); err != nil {
			return err
		}
		if r.meta.Epoch != epoch {
			panic("natsstore: updateMeta changed the epoch")
		}
		val, err := json.Marshal(r.meta)
		if err != nil {
			return err
		}
		_, err = s.kvUpdate(ctx, s.kvDocs, r.tok, val, r.rev)
		if err == nil {
			return nil
		}
		if !isRevMismatch(err) {
			return fmt.Errorf("update doc %q: %w", id, err)
		}
		s.count(func(st *Stats) { st.CASRetries++ })
	}
	return fmt.Errorf("update doc %q: %w", id, ErrContended)
}

// isRevMismatch reports a key-value compare-and-set that lost.
func isRevMismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || isWrongLast(err)
}
