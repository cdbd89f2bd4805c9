package ot

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors returned by this package. Decoding wraps them in a [*DecodeError]
// that says which component was at fault; use [errors.Is] to test for them.
var (
	// ErrZeroLength: a retain or delete of zero, or an empty insert.
	ErrZeroLength = errors.New("ot: zero-length component")
	// ErrBadComponent: a component that is neither an integer nor a string
	// (a float, a bool, null, an object, an array).
	ErrBadComponent = errors.New("ot: component is not an integer or a string")
	// ErrInvalidUTF8: an insert or a text that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("ot: invalid UTF-8")
	// ErrTooLarge: a component longer than MaxComponentLen.
	ErrTooLarge = errors.New("ot: component too large")
	// ErrNotArray: the JSON value is not an array.
	ErrNotArray = errors.New("ot: operation is not a JSON array")
	// ErrPastEnd: an op reaches past the end of the text it is applied to
	// (its BaseLen is larger than the text). Nothing was changed.
	ErrPastEnd = errors.New("ot: operation reaches past the end of the text")
	// ErrNotCanonical: Validate found an op that is not in canonical form.
	ErrNotCanonical = errors.New("ot: operation is not canonical")
)

// MaxComponentLen bounds the length of one retain or delete accepted by the
// decoder, so that sums of lengths can never overflow an int.
const MaxComponentLen = 1<<31 - 1

// A Component is one step of an [Op]: retain n code points, insert a string,
// or delete n code points. The zero Component is invalid; build components
// with [Retain], [Insert] and [Delete].
type Component struct {
	// n is the component's length in code points: positive for a retain,
	// negative for a delete, and the code-point count of s for an insert.
	n int
	// s is the inserted text; empty for a retain or a delete.
	s string
}

// Retain returns a component that keeps the next n code points.
func Retain(n int) Component { return Component{n: n} }

// Delete returns a component that deletes the next n code points (n > 0).
func Delete(n int) Component { return Component{n: -n} }

// Insert returns a component that inserts s.
func Insert(s string) Component { return Component{n: utf8.RuneCountInString(s), s: s} }

// IsRetain reports whether c keeps text.
func (c Component) IsRetain() bool { return c.s == "" && c.n > 0 }

// IsInsert reports whether c inserts text.
func (c Component) IsInsert() bool { return c.s != "" }

// IsDelete reports whether c deletes text.
func (c Component) IsDelete() bool { return c.s == "" && c.n < 0 }

// Len returns the number of code points c retains, inserts or deletes.
func (c Component) Len() int {
	if c.n < 0 {
		return -c.n
	}
	return c.n
}

// Text returns the text c inserts, or "" for a retain or a delete.
func (c Component) Text() string { return c.s }

// String returns c in its JSON form: 5, "hi" or -3.
func (c Component) String() string {
	if c.s != "" {
		return quote(c.s)
	}
	return fmt.Sprint(c.n)
}

// An Op is a text operation: a sequence of components applied from the start
// of a document. The text past the op's last component is kept. Ops returned
// by this package are canonical (see the package documentation); an Op built
// by hand can be brought into that form with [Normalize] or built with a
// [Builder].
type Op []Component

// BaseLen returns the number of code points the op reaches in the text it
// applies to: the sum of its retains and deletes. An op applies to a text of
// at least BaseLen code points.
func (o Op) BaseLen() int {
	n := 0
	for _, c := range o {
		if c.s == "" {
			n += c.Len()
		}
	}
	return n
}

// Delta returns how much the op changes a text's length in code points:
// inserted minus deleted.
func (o Op) Delta() int {
	d := 0
	for _, c := range o {
		switch {
		case c.s != "":
			d += c.n
		case c.n < 0:
			d += c.n
		}
	}
	return d
}

// IsNoop reports whether the op changes nothing.
func (o Op) IsNoop() bool {
	for _, c := range o {
		if !c.IsRetain() {
			return false
		}
	}
	return true
}

// Equal reports whether o and p have the same components.
func (o Op) Equal(p Op) bool {
	if len(o) != len(p) {
		return false
	}
	for i := range o {
		if o[i] != p[i] {
			return false
		}
	}
	return true
}

// String returns the op in its JSON form, such as [5,"hi",-3].
func (o Op) String() string {
	b, _ := o.MarshalJSON() // cannot fail
	return string(b)
}

// validComponents checks that no component has zero length and that every
// insert is valid UTF-8. It does not check canonical form.
func (o Op) validComponents() error {
	for i, c := range o {
		if c.n == 0 {
			return fmt.Errorf("component %d: %w", i, ErrZeroLength)
		}
		if c.s != "" && !utf8.ValidString(c.s) {
			return fmt.Errorf("component %d: %w", i, ErrInvalidUTF8)
		}
	}
	return nil
}

// Validate reports whether the op is well formed and canonical: no
// zero-length component, valid UTF-8, adjacent components of one kind
// merged, inserts before deletes within a stretch, no trailing retain.
func (o Op) Validate() error {
	if err := o.validComponents(); err != nil {
		return err
	}
	for i, c := range o {
		if c.s != "" && c.n != utf8.RuneCountInString(c.s) {
			return fmt.Errorf("component %d: insert length %d does not match its text: %w", i, c.n, ErrNotCanonical)
		}
		if i == 0 {
			continue
		}
		p := o[i-1]
		switch {
		case p.IsRetain() && c.IsRetain(), p.IsInsert() && c.IsInsert(), p.IsDelete() && c.IsDelete():
			return fmt.Errorf("components %d and %d are of one kind: %w", i-1, i, ErrNotCanonical)
		case p.IsDelete() && c.IsInsert():
			return fmt.Errorf("component %d: insert after a delete: %w", i, ErrNotCanonical)
		}
	}
	if len(o) > 0 && o[len(o)-1].IsRetain() {
		return fmt.Errorf("trailing retain: %w", ErrNotCanonical)
	}
	return nil
}

// Normalize returns op in canonical form. It fails only on a zero-length
// component or invalid UTF-8. The result shares no memory with op.
func Normalize(op Op) (Op, error) {
	if err := op.validComponents(); err != nil {
		return nil, err
	}
	var b Builder
	b.ops = make(Op, 0, len(op))
	for _, c := range op {
		b.add(c)
	}
	return b.Op(), nil
}

// Splice returns the canonical op that, at code point pos, deletes del code
// points and then inserts ins: the shape of an editor's change event and of
// the editing traces. A zero del or an empty ins is left out.
//
// Splice is small enough to inline, so an op that does not outlive its
// caller can live on the caller's stack.
func Splice(pos, del int, ins string) Op {
	return appendSplice(make(Op, 0, 3), pos, del, ins)
}

// appendSplice appends the components of Splice(pos, del, ins) to dst.
func appendSplice(dst Op, pos, del int, ins string) Op {
	if pos > 0 && (del > 0 || ins != "") {
		dst = append(dst, Component{n: pos})
	}
	if ins != "" {
		dst = append(dst, Insert(ins))
	}
	if del > 0 {
		dst = append(dst, Component{n: -del})
	}
	return dst
}

// A Builder assembles a canonical op one component at a time. Zero-length
// components are ignored, adjacent components of one kind are merged, and an
// insert that follows a delete is moved in front of it. The zero Builder is
// ready to use.
type Builder struct {
	ops     Op
	discard bool // drop everything (the side of a transform nobody wants)
}

// Retain appends a retain of n code points; n <= 0 is ignored.
func (b *Builder) Retain(n int) *Builder {
	if n > 0 {
		b.add(Component{n: n})
	}
	return b
}

// Insert appends an insert of s; an empty s is ignored.
func (b *Builder) Insert(s string) *Builder {
	if s != "" {
		b.add(Insert(s))
	}
	return b
}

// Delete appends a delete of n code points; n <= 0 is ignored.
func (b *Builder) Delete(n int) *Builder {
	if n > 0 {
		b.add(Component{n: -n})
	}
	return b
}

// insertN appends an insert of s whose code-point count n is known.
func (b *Builder) insertN(s string, n int) {
	if s != "" {
		b.add(Component{n: n, s: s})
	}
}

// add appends a valid component, keeping the op canonical.
func (b *Builder) add(c Component) {
	if b.discard {
		return
	}
	last := len(b.ops) - 1
	if last < 0 {
		b.ops = append(b.ops, c)
		return
	}
	p := b.ops[last]
	switch {
	case c.IsInsert():
		if p.IsInsert() {
			b.ops[last] = Component{n: p.n + c.n, s: p.s + c.s}
			return
		}
		if p.IsDelete() {
			// Inserts go before deletes within a stretch.
			if last > 0 && b.ops[last-1].IsInsert() {
				q := b.ops[last-1]
				b.ops[last-1] = Component{n: q.n + c.n, s: q.s + c.s}
				return
			}
			b.ops = append(b.ops, p)
			b.ops[last] = c
			return
		}
	case c.IsRetain() && p.IsRetain(), c.IsDelete() && p.IsDelete():
		b.ops[last].n += c.n
		return
	}
	b.ops = append(b.ops, c)
}

// Op returns the canonical op built so far (any trailing retain dropped) and
// resets the builder.
func (b *Builder) Op() Op {
	op := b.ops
	if n := len(op); n > 0 && op[n-1].IsRetain() {
		op = op[:n-1]
	}
	b.ops = nil
	if op == nil {
		op = Op{}
	}
	return op
}

// quote returns s as a JSON string.
func quote(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 2)
	sb.Write(appendQuoted(nil, s))
	return sb.String()
}
