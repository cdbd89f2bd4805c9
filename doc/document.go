package doc

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tandemhq/tandem/ot"
)

// Errors returned by Document.
var (
	// ErrCommentNotFound: no comment with that id.
	ErrCommentNotFound = errors.New("doc: comment not found")
	// ErrCommentExists: a comment with that id is already there.
	ErrCommentExists = errors.New("doc: comment already exists")
	// ErrBadRange: a range that is reversed or reaches past the text.
	ErrBadRange = errors.New("doc: range outside the text")
)

// A Document is a plain-text document: its content in a rope, its version
// (the number of ops applied since it was empty) and the comments anchored
// to its text. Every comment's range is kept current: Apply moves it through
// each op, so it always refers to the content at Version.
//
// A Document is not safe for concurrent use; one goroutine owns it.
type Document struct {
	id       string
	text     *Rope
	version  int
	comments []Comment // in creation order; ranges valid at version
}

// New returns an empty document at version 0.
func New(id string) *Document {
	return &Document{id: id, text: &Rope{}}
}

// Restore rebuilds a document from a snapshot and the ops after it: the
// content at snap.Version with every op of tail applied in order. tail must
// start at snap.Version and be contiguous; ops before snap.Version are
// skipped.
func Restore(id string, snap Snapshot, tail []OpRecord) (*Document, error) {
	d := &Document{id: id, text: NewRope(snap.Content), version: snap.Version}
	for _, rec := range tail {
		if rec.Version < d.version {
			continue
		}
		if rec.Version != d.version {
			return nil, fmt.Errorf("restore %s: want op v%d, have v%d: %w", id, d.version, rec.Version, ErrVersionGap)
		}
		if err := d.Apply(rec.Op); err != nil {
			return nil, fmt.Errorf("restore %s: %w", id, err)
		}
	}
	return d, nil
}

// ID returns the document's id.
func (d *Document) ID() string { return d.id }

// Version returns the number of ops applied since the document was empty.
func (d *Document) Version() int { return d.version }

// Len returns the length of the content in code points.
func (d *Document) Len() int { return d.text.Len() }

// Content returns the whole text. It costs one allocation of its size.
func (d *Document) Content() string { return d.text.String() }

// Slice returns the text of r, which must lie inside the content.
func (d *Document) Slice(r ot.Range) (string, error) {
	if err := d.checkRange(r); err != nil {
		return "", err
	}
	return d.text.Slice(r.From, r.To-r.From), nil
}

// Snapshot returns the content and version as a snapshot record.
func (d *Document) Snapshot() Snapshot {
	return Snapshot{Version: d.version, Content: d.text.String()}
}

// Apply applies op in place, moves every comment anchor through it and bumps
// the version. It validates first: an op that reaches past the end, holds a
// zero-length component or invalid UTF-8 returns an error and changes
// nothing.
func (d *Document) Apply(op ot.Op) error {
	if err := ot.ApplyTo(d.text, op); err != nil {
		return fmt.Errorf("apply op at v%d: %w", d.version, err)
	}
	d.version++
	for i := range d.comments {
		c := &d.comments[i]
		c.Range = ot.TransformRange(op, c.Range)
		c.Version = d.version
	}
	return nil
}

// Invert returns the op that undoes op on the current content; call it
// before applying op.
func (d *Document) Invert(op ot.Op) (ot.Op, error) {
	return ot.InvertText(op, d.text)
}

func (d *Document) checkRange(r ot.Range) error {
	if r.From < 0 || r.From > r.To || r.To > d.text.Len() {
		return fmt.Errorf("range [%d,%d) on a text of %d: %w", r.From, r.To, d.text.Len(), ErrBadRange)
	}
	return nil
}

// AddComment adds c, whose Range must lie inside the current content; c's
// Version is set to the document's. It fails if the id is taken.
func (d *Document) AddComment(c Comment) error {
	if err := d.checkRange(c.Range); err != nil {
		return err
	}
	if d.commentIndex(c.ID) >= 0 {
		return fmt.Errorf("add comment %q: %w", c.ID, ErrCommentExists)
	}
	c.Version = d.version
	d.comments = append(d.comments, c)
	return nil
}

// UpdateComment replaces the comment with c.ID by c (text, resolved state;
// its Range must lie inside the content). It fails if there is none.
func (d *Document) UpdateComment(c Comment) error {
	i := d.commentIndex(c.ID)
	if i < 0 {
		return fmt.Errorf("update comment %q: %w", c.ID, ErrCommentNotFound)
	}
	if err := d.checkRange(c.Range); err != nil {
		return err
	}
	c.Version = d.version
	d.comments[i] = c
	return nil
}

// RemoveComment deletes the comment with that id. It fails if there is none.
func (d *Document) RemoveComment(id string) error {
	i := d.commentIndex(id)
	if i < 0 {
		return fmt.Errorf("remove comment %q: %w", id, ErrCommentNotFound)
	}
	d.comments = slices.Delete(d.comments, i, i+1)
	return nil
}

// Comment returns the comment with that id.
func (d *Document) Comment(id string) (Comment, bool) {
	if i := d.commentIndex(id); i >= 0 {
		return d.comments[i], true
	}
	return Comment{}, false
}

// Comments returns a copy of every comment, in creation order, with ranges
// at the current version.
func (d *Document) Comments() []Comment { return slices.Clone(d.comments) }

// NumComments returns how many comments the document has, replies
// included.
func (d *Document) NumComments() int { return len(d.comments) }

// SetComments replaces every comment by cs (copied), in that order, each
// at the current version: it puts back what Comments returned, to undo
// changes made since. It does not check the ranges.
func (d *Document) SetComments(cs []Comment) {
	d.comments = slices.Clone(cs)
	for i := range d.comments {
		d.comments[i].Version = d.version
	}
}

func (d *Document) commentIndex(id string) int {
	return slices.IndexFunc(d.comments, func(c Comment) bool { return c.ID == id })
}

// CatchUp moves c's range through the ops of recs that follow c.Version, so
// that it refers to the content after the last of them. recs must hold the
// versions from c.Version on contiguously (earlier ones are skipped).
func CatchUp(c Comment, recs []OpRecord) (Comment, error) {
	for _, rec := range recs {
		if rec.Version < c.Version {
			continue
		}
		if rec.Version != c.Version {
			return c, fmt.Errorf("catch up comment %q: want op v%d, have v%d: %w", c.ID, c.Version, rec.Version, ErrVersionGap)
		}
		c.Range = ot.TransformRange(rec.Op, c.Range)
		c.Version++
	}
	return c, nil
}
