package session

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// EditResult is the outcome of a server-side edit.
type EditResult struct {
	// Version is the version the op applied to (the document is now at
	// Version+1), or the head when the edit changed nothing. An edit that
	// inserts more than MaxOpBytes is applied as several consecutive ops;
	// Version is then the last one's.
	Version int
	// Op is the op as applied, after transformation (all of it, however
	// many ops it took); empty for no change.
	Op  ot.Op
	Err error
}

// Edit applies an op made on the server side (the HTTP API) against version
// base (nil: the current head) as user, through the document's live session
// so that editors see ordinary ops. The op is transformed over the ops
// applied since base, checked against MaxDocLen (ErrDocTooLarge), and
// applied as one op or, when it inserts more than MaxOpBytes, as several
// consecutive ops that each insert at most that (doc.SplitOp), with uids
// uid, uid.2, uid.3... (nothing else runs in between). It returns once they
// are durable. create allows creating a missing document.
func (d *Docs) Edit(ctx context.Context, docID string, base *int, op ot.Op, uid, user string, create bool) EditResult {
	return d.serverEdit(ctx, docID, &docRequest{kind: reqServerEdit, version: base, op: op, uid: uid, user: user, create: create})
}

// Replace makes the document's text equal content, made against version
// base (nil: the head), and applies the change as Edit does. Typing that
// happens meanwhile is kept: the change is transformed over it like any
// other op.
//
// The change is a character diff (doc.DiffOpWithin), computed on the
// caller's goroutine, never the document's: Replace asks the session for
// the head's version and text (or reads the text at base from storage),
// waits for one of DiffConcurrency diff slots (or ctx), diffs within
// DiffTimeout, MaxDiffWork and MaxDiffEdits (past them by line, then the
// change replaces the changed range whole), and submits the op made
// against that version. So a
// replacement of any size costs the document's editors no more than the
// application of its ops.
func (d *Docs) Replace(ctx context.Context, docID string, base *int, content, uid, user string, create bool) EditResult {
	if err := ValidDocID(docID); err != nil {
		return EditResult{Err: err}
	}
	if n := utf8.RuneCountInString(content); n > d.cfg.MaxDocLen {
		return EditResult{Err: fmt.Errorf("content of %d code points, at most %d: %w", n, d.cfg.MaxDocLen, ErrDocTooLarge)}
	}
	res, head := d.read(ctx, docID, create)
	if res.Err != nil {
		return res
	}
	v, old := head.version, head.content
	if base != nil && *base != v {
		if *base < 0 || *base > v {
			return EditResult{Err: fmt.Errorf("edit %s at v%d, head is v%d: %w", docID, *base, v, ErrFutureVersion)}
		}
		var err error
		if old, err = d.cfg.Snapshots.ContentAt(docID, *base); err != nil {
			return EditResult{Err: fmt.Errorf("content of %s at v%d: %w", docID, *base, err)}
		}
		v = *base
	}
	select {
	case d.diffs <- struct{}{}:
	case <-ctx.Done():
		return EditResult{Err: ctx.Err()}
	}
	op, coarse := doc.DiffOpWithin(old, content, doc.DiffBudget{Timeout: d.cfg.DiffTimeout, MaxWork: d.cfg.MaxDiffWork, MaxEdits: d.cfg.MaxDiffEdits})
	<-d.diffs
	if coarse {
		d.log.Debug().Str("doc", docID).Msg("replace: diff over its budget; replacing the changed range whole")
	}
	return d.serverEdit(ctx, docID, &docRequest{kind: reqServerEdit, version: &v, epoch: head.epoch, op: op, uid: uid, user: user, create: create})
}

// headText is a document's durable head as a server-side edit reads it.
type headText struct {
	version int
	content string
	epoch   string
}

// read returns the document's head version, text and epoch, loading (or,
// with create, creating) the document. The text is shared with the
// session's cache: it must not be changed (strings cannot be).
func (d *Docs) read(ctx context.Context, docID string, create bool) (EditResult, headText) {
	var head headText
	r := &docRequest{kind: reqRead, create: create, head: &head}
	res := d.serverEdit(ctx, docID, r)
	return res, head
}

// Create creates a document with an initial content (which may be empty) as
// user. It fails with an error wrapping doc.ErrExists if the id is taken,
// and with ErrDocTooLarge if content is longer than MaxDocLen. Content over
// MaxOpBytes is inserted as several ops (see Edit).
func (d *Docs) Create(ctx context.Context, docID, content, uid, user string) EditResult {
	zero := 0
	var b ot.Builder
	b.Insert(content)
	return d.serverEdit(ctx, docID, &docRequest{kind: reqServerEdit, version: &zero, op: b.Op(), uid: uid, user: user, create: true, mustCreate: true})
}

// Delete closes the document for everyone in it (they get closed with
// reason "deleted"), deletes it with its whole history and announces it
// on DocsChannel.
func (d *Docs) Delete(ctx context.Context, docID string) error {
	if err := d.serverEdit(ctx, docID, &docRequest{kind: reqDelete}).Err; err != nil {
		return err
	}
	d.Announce("deleted", docID, nil)
	return nil
}

func (d *Docs) serverEdit(ctx context.Context, docID string, r *docRequest) EditResult {
	if err := ValidDocID(docID); err != nil {
		return EditResult{Err: err}
	}
	done := make(chan EditResult, 1)
	r.done = done
	r.client.Fail = func(_ *int64, err error) { done <- EditResult{Err: err} }
	d.submit(docID, r)
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		return EditResult{Err: ctx.Err()}
	}
}

// serverEdit applies an edit from the server side (Docs.Edit, Replace,
// Create): an op made against a version, transformed over what was
// applied since, checked against MaxDocLen as a whole, and applied as
// consecutive ops that each insert at most MaxOpBytes. Nothing runs in
// between them; the waiter hears when the last is durable.
func (s *docSession) serverEdit(r *docRequest) {
	cfg := &s.docs.cfg
	if r.mustCreate {
		if n := r.op.Delta(); n > cfg.MaxDocLen {
			r.fail(fmt.Errorf("content of %d code points, at most %d: %w", n, cfg.MaxDocLen, ErrDocTooLarge))
			return
		}
		if s.loaded {
			r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
			return
		}
		if _, err := cfg.Documents.GetDoc(s.id); err == nil {
			r.fail(fmt.Errorf("create %s: %w", s.id, doc.ErrExists))
			return
		} else if !isNotFound(err) {
			r.fail(err)
			return
		}
	}
	if !s.loadDurable(r) {
		return
	}
	if r.epoch != "" && r.epoch != s.epoch {
		// Read from an incarnation that was deleted since.
		r.fail(fmt.Errorf("%s was deleted and created again while the edit was made: %w", s.id, ErrTryAgain))
		return
	}
	head := s.doc.Version()
	base := head
	if r.version != nil {
		base = *r.version
		if base > head && s.park(r, base) {
			return
		}
		if base < 0 || base > head {
			r.fail(fmt.Errorf("edit %s at v%d, head is v%d: %w", s.id, base, head, ErrFutureVersion))
			return
		}
	}
	if r.op.IsNoop() {
		r.done <- EditResult{Version: head, Op: ot.Op{}}
		return
	}
	if s.cl != nil {
		s.serverEditCluster(r, base)
		return
	}
	if r.uid == "" {
		r.uid = "srv-" + s.newCommentID()[3:]
	} else if v, ok, err := s.lookupUID(r.uid); err != nil {
		r.fail(err)
		return
	} else if ok {
		r.done <- EditResult{Version: v}
		return
	}
	op, err := s.transformOver(base, r.op)
	if err != nil {
		r.fail(err)
		return
	}
	if n := s.doc.Len() + op.Delta(); n > cfg.MaxDocLen {
		r.fail(fmt.Errorf("document would have %d code points, at most %d: %w", n, cfg.MaxDocLen, ErrDocTooLarge))
		return
	}
	pieces := doc.SplitOp(op, cfg.MaxOpBytes)
	for i, piece := range pieces {
		rec := doc.OpRecord{Op: piece, UID: r.uid, User: r.user}
		if i > 0 {
			rec.UID = fmt.Sprintf("%s.%d", r.uid, i+1)
		}
		p := pendOp{start: r.received}
		if i == len(pieces)-1 {
			p.done, p.whole = r.done, op
		}
		// Each piece applies to the text the previous one made: at the
		// head, with nothing to transform over. The length was checked for
		// the whole edit (a piece may pass through a longer text).
		if err := s.apply(rec, p); err != nil {
			r.fail(err) // cannot happen after the checks above, short of a bug
			return
		}
	}
	s.idle.Reset(cfg.IdleTimeout)
}

// readHead answers a server-side edit's read: the durable head's version,
// text and epoch.
func (s *docSession) readHead(r *docRequest) {
	if !s.loadDurable(r) {
		return
	}
	*r.head = headText{version: s.doc.Version(), content: s.headContent(), epoch: s.epoch}
	r.done <- EditResult{Version: s.doc.Version()}
}

// serverEditCluster queues a server-side edit in cluster mode: one pending
// op, split into pieces when it is submitted (each time: a recovery
// transforms the rest of it again).
func (s *docSession) serverEditCluster(r *docRequest, base int) {
	if r.uid == "" {
		r.uid = "srv-" + s.newCommentID()[3:]
	} else if v, e, ok, err := s.lookupUIDCluster(r.uid, base); err != nil {
		r.fail(err)
		return
	} else if ok {
		if e != nil {
			r.fail(fmt.Errorf("edit %s with uid %q: the same edit is under way: %w", s.id, r.uid, ErrTryAgain))
			return
		}
		r.done <- EditResult{Version: v}
		return
	}
	s.queueOp(&clusterOp{base: base, op: r.op, root: r.uid, split: true, user: r.user,
		p: pendOp{done: r.done, start: r.received}})
	s.idle.Reset(s.docs.cfg.IdleTimeout)
}
