package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// handleComment performs a comment action on the durable head. The change
// is made in memory, written, and undone in memory when the write fails,
// so that memory never holds a comment storage does not (or lacks one it
// holds). A comment's text is at most MaxCommentBytes and a document has
// at most MaxComments comments, replies included: past either the action
// is refused with an error wrapping ErrTooLarge.
func (s *docSession) handleComment(r *docRequest) {
	m := s.member(r)
	if m == nil {
		return
	}
	s.flush()
	if err := s.failed(); err != nil {
		r.fail(fmt.Errorf("%s: %w", s.id, ErrStorage))
		return
	}
	cfg := &s.docs.cfg
	cr := r.comment
	now := cfg.Now()
	if cr.Text != nil && len(*cr.Text) > cfg.MaxCommentBytes {
		r.fail(fmt.Errorf("comment text of %d bytes, at most %d: %w", len(*cr.Text), cfg.MaxCommentBytes, ErrTooLarge))
		return
	}
	saved := s.doc.Comments() // to undo the change if its write fails
	var c doc.Comment
	switch cr.Action {
	case "add":
		if cr.Range == nil || cr.Text == nil || *cr.Text == "" {
			r.fail(fmt.Errorf("%w: add needs a range and a text", ErrBadComment))
			return
		}
		if n := s.doc.NumComments(); n >= cfg.MaxComments {
			r.fail(fmt.Errorf("%s has %d comments (replies included), at most %d: %w", s.id, n, cfg.MaxComments, ErrTooLarge))
			return
		}
		if cr.Version > s.acked && s.park(r, cr.Version) {
			return
		}
		if cr.Version < 0 || cr.Version > s.acked {
			r.fail(fmt.Errorf("comment on %s at v%d, head is v%d: %w", s.id, cr.Version, s.acked, ErrFutureVersion))
			return
		}
		if cr.Range.From < 0 || cr.Range.From > cr.Range.To {
			r.fail(fmt.Errorf("%w: range [%d,%d)", ErrBadComment, cr.Range.From, cr.Range.To))
			return
		}
		rng := *cr.Range
		recs, err := s.opsBetween(cr.Version, s.acked)
		if err != nil {
			r.fail(err)
			return
		}
		for _, rec := range recs {
			rng = ot.TransformRange(rec.Op, rng)
		}
		parent := ""
		if cr.Parent != nil && *cr.Parent != "" {
			p, ok := s.doc.Comment(*cr.Parent)
			if !ok {
				r.fail(fmt.Errorf("%w: no parent comment %q", ErrBadComment, *cr.Parent))
				return
			}
			parent, rng = p.ID, p.Range // a reply sits on its thread's text
		}
		c = doc.Comment{ID: s.newCommentID(), Range: rng, User: m.client.User.ID, UserName: m.client.User.Name,
			Text: *cr.Text, Parent: parent, CreatedAt: now}
		if err := s.doc.AddComment(c); err != nil {
			r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
			return
		}
	case "edit", "resolve", "reopen", "delete":
		old, ok := s.doc.Comment(cr.CommentID)
		if !ok {
			r.fail(fmt.Errorf("%w: no comment %q", ErrBadComment, cr.CommentID))
			return
		}
		if (cr.Action == "edit" || cr.Action == "delete") && old.User != m.client.User.ID && !r.moderate {
			r.fail(fmt.Errorf("%s comment %q: %w", cr.Action, cr.CommentID, ErrCommentForbidden))
			return
		}
		c = old
		switch cr.Action {
		case "edit":
			if cr.Text == nil || *cr.Text == "" {
				r.fail(fmt.Errorf("%w: edit needs a text", ErrBadComment))
				return
			}
			c.Text = *cr.Text
		case "resolve":
			c.Resolved = true
		case "reopen":
			c.Resolved = false
		}
		c.UpdatedAt = now
		if cr.Action == "delete" {
			if err := s.doc.RemoveComment(c.ID); err != nil {
				r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
				return
			}
		} else if err := s.doc.UpdateComment(c); err != nil {
			r.fail(fmt.Errorf("%w: %v", ErrBadComment, err))
			return
		}
	default:
		r.fail(fmt.Errorf("%w: unknown action %q (add, edit, resolve, reopen, delete)", ErrBadComment, cr.Action))
		return
	}
	if cr.Action == "delete" {
		c.Version = s.doc.Version()
	} else {
		c, _ = s.doc.Comment(c.ID) // with Version set
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var err error
	if cr.Action == "delete" {
		err = cfg.Comments.DeleteComment(ctx, s.id, c.ID)
	} else {
		err = cfg.Comments.PutComment(ctx, s.id, c)
	}
	cancel()
	if err != nil {
		s.doc.SetComments(saved)
		r.fail(fmt.Errorf("store comment: %w", err))
		return
	}
	frame := proto.CommentFrame{Type: proto.TypeComment, Doc: s.id, Action: cr.Action, Comment: commentFrame(c)}
	reply := frame
	reply.ID = r.id
	m.client.Sub.Send(proto.Encode(reply))
	s.broadcast(proto.Encode(frame), m.client.Sub.ClientID())
	if cr.Action == "add" {
		notify(cfg.Notifier, Event{Type: EventCommentAdded, Time: now, Doc: s.id, User: c.User, ClientID: m.client.Sub.ClientID(), Data: frame.Comment})
	}
	if cr.Action == "add" || cr.Action == "edit" {
		if names := Mentions(c.Text); len(names) > 0 && cfg.Hub != nil {
			cfg.Hub.NotifyMentions(names, "doc:"+s.id, uint64(s.acked), m.client.User.ID, m.client.User.Name, c.Text)
		}
	}
}

func (s *docSession) newCommentID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "cm_" + hex.EncodeToString(b[:])
}

// commentFrames returns every comment for a snapshot.
func (s *docSession) commentFrames() []proto.Comment {
	cs := s.doc.Comments()
	out := make([]proto.Comment, len(cs))
	for i, c := range cs {
		out[i] = commentFrame(c)
	}
	return out
}

func commentFrame(c doc.Comment) proto.Comment {
	var parent *string
	if c.Parent != "" {
		parent = &c.Parent
	}
	f := proto.Comment{ID: c.ID, Range: c.Range, User: proto.User{ID: c.User, Name: c.UserName, Color: proto.ColorOf(c.User)}, Text: c.Text,
		Parent: parent, Resolved: c.Resolved, CreatedAt: c.CreatedAt.UTC().Format(proto.TimeLayout)}
	if !c.UpdatedAt.IsZero() {
		f.UpdatedAt = c.UpdatedAt.UTC().Format(proto.TimeLayout)
	}
	return f
}
