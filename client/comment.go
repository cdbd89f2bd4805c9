package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// Comments returns the document's comments, ranges in positions of the
// local text, in the order they were made.
func (d *Document) Comments() []Comment {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Comment, 0, len(d.comments))
	for _, c := range d.comments {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Comment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// AddComment comments on the text r of the local text (a point when From
// == To), or replies to the thread parent (then r is ignored: a reply sits
// on its thread's text). text must not be empty. It waits until the edits
// made before it are acknowledged, so that the commented text is on the
// server, and returns the comment as the server made it. If the
// connection is lost before the answer it fails with ErrDisconnected, and
// the comment may or may not have been added.
func (d *Document) AddComment(ctx context.Context, r ot.Range, text, parent string) (Comment, error) {
	if text == "" {
		return Comment{}, errors.New("client: a comment needs a text")
	}
	d.mu.Lock()
	if n := d.text.Len(); r.From < 0 || r.From > r.To || r.To > n {
		d.mu.Unlock()
		return Comment{}, fmt.Errorf("client: comment range [%d,%d) outside the text of %d code points: %w", r.From, r.To, n, ot.ErrPastEnd)
	}
	target := d.edits
	a := &anchor{r: r}
	d.anchors[a] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.anchors, a)
		d.mu.Unlock()
	}()
	f, err := d.commentRequest(ctx, func() (*proto.Request, bool) {
		if d.acked < target {
			return nil, false
		}
		rng := ot.Range{From: d.serverIndexLocked(a.r.From), To: d.serverIndexLocked(a.r.To)}
		rng.To = max(rng.To, rng.From)
		v := d.version
		req := &proto.Request{Action: "add", Version: &v, Range: &rng, Text: &text}
		if parent != "" {
			req.Parent = &parent
		}
		return req, true
	})
	if err != nil {
		return Comment{}, err
	}
	return d.commentOf(f.Comment), nil
}

// EditComment replaces the text of one's own comment (an admin may edit
// any).
func (d *Document) EditComment(ctx context.Context, id, text string) error {
	if text == "" {
		return errors.New("client: a comment needs a text")
	}
	return d.commentAction(ctx, "edit", id, &text)
}

// ResolveComment marks a comment resolved.
func (d *Document) ResolveComment(ctx context.Context, id string) error {
	return d.commentAction(ctx, "resolve", id, nil)
}

// ReopenComment marks a resolved comment open again.
func (d *Document) ReopenComment(ctx context.Context, id string) error {
	return d.commentAction(ctx, "reopen", id, nil)
}

// DeleteComment deletes one's own comment (an admin may delete any).
func (d *Document) DeleteComment(ctx context.Context, id string) error {
	return d.commentAction(ctx, "delete", id, nil)
}

func (d *Document) commentAction(ctx context.Context, action, id string, text *string) error {
	_, err := d.commentRequest(ctx, func() (*proto.Request, bool) {
		return &proto.Request{Action: action, CommentID: id, Text: text}, true
	})
	return err
}

// commentRequest sends a comment request once the document is open on the
// live connection and build (called with d.mu held) is ready, and waits
// for the answer, which the read goroutine has applied to the document by
// the time it returns.
func (d *Document) commentRequest(ctx context.Context, build func() (*proto.Request, bool)) (*proto.CommentFrame, error) {
	var p *pending
	for p == nil {
		d.mu.Lock()
		if d.ended {
			err := d.err
			d.mu.Unlock()
			return nil, err
		}
		ch := d.changed
		if d.conn != nil {
			if req, ok := build(); ok {
				p = &pending{doc: d, kind: docComment, gen: d.gen}
				id, ok := d.c.addPending(d.conn, p)
				if ok {
					req.ID, req.Type, req.Doc = &id, proto.TypeComment, d.id
					conn := d.conn
					d.mu.Unlock()
					if err := conn.write(mustEncode(req)); err != nil {
						conn.ws.Close()
					}
					break
				}
				p = nil
			}
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case r := <-p.reply:
		if r.err != nil {
			return nil, r.err
		}
		if e := r.f.asError(); e != nil {
			e.Doc = d.id
			return nil, e
		}
		cf, ok := r.f.body.(*proto.CommentFrame)
		if !ok {
			return nil, fmt.Errorf("client: %s answered a comment with %s", d.id, r.f.Type)
		}
		return cf, nil
	case <-ctx.Done():
		// The answer still reaches the document when it comes.
		return nil, ctx.Err()
	}
}

// commentOf returns the document's copy of a comment the server sent.
func (d *Document) commentOf(pc proto.Comment) Comment {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.comments[pc.ID]; ok {
		return *c
	}
	return d.toCommentLocked(pc)
}

// toCommentLocked converts a comment at the server version, moving its
// range to the local text.
func (d *Document) toCommentLocked(pc proto.Comment) Comment {
	c := Comment{
		ID: pc.ID, Range: d.localRangeLocked(pc.Range), User: pc.User, Text: pc.Text, Resolved: pc.Resolved,
		CreatedAt: parseTime(pc.CreatedAt), UpdatedAt: parseTime(pc.UpdatedAt),
	}
	if pc.Parent != nil {
		c.Parent = *pc.Parent
	}
	return c
}

// setCommentsLocked takes the comment list of an answer to open; after a
// reconnection the differences are reported as comment actions.
func (d *Document) setCommentsLocked(list []proto.Comment, again bool) {
	old := d.comments
	d.comments = make(map[string]*Comment, len(list))
	for _, pc := range list {
		c := d.toCommentLocked(pc)
		d.comments[c.ID] = &c
		if !again {
			continue
		}
		switch was, ok := old[c.ID]; {
		case !ok:
			d.emitCommentLocked("add", c)
		case was.Resolved != c.Resolved && c.Resolved:
			d.emitCommentLocked("resolve", c)
		case was.Resolved != c.Resolved:
			d.emitCommentLocked("reopen", c)
		case was.Text != c.Text:
			d.emitCommentLocked("edit", c)
		}
	}
	if again {
		for id, c := range old {
			if _, ok := d.comments[id]; !ok {
				d.emitCommentLocked("delete", *c)
			}
		}
	}
}

// applyCommentLocked applies a comment frame (an answer or a push).
func (d *Document) applyCommentLocked(action string, pc proto.Comment) {
	c := d.toCommentLocked(pc)
	if action == "delete" {
		delete(d.comments, c.ID)
	} else {
		d.comments[c.ID] = &c
	}
	d.emitCommentLocked(action, c)
}

func (d *Document) emitCommentLocked(action string, c Comment) {
	ev := CommentEvent{Action: action, Comment: c}
	d.emitLocked(func(h *DocHandlers) {
		if h.OnComment != nil {
			h.OnComment(ev)
		}
	})
}
