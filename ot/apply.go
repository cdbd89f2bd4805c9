package ot

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text is a mutable text that an op can be applied to in place, such as the
// document model's rope. Positions and lengths count code points. Callers
// (ApplyTo) validate first, so an implementation may panic on out-of-range
// arguments.
type Text interface {
	// Len returns the length of the text in code points.
	Len() int
	// Insert inserts s, which is valid non-empty UTF-8, before code point
	// pos, 0 <= pos <= Len().
	Insert(pos int, s string)
	// Delete deletes n > 0 code points starting at pos, pos+n <= Len().
	Delete(pos, n int)
}

// Slicer is a text that can return a stretch of itself, as [Invert] needs.
type Slicer interface {
	// Len returns the length of the text in code points.
	Len() int
	// Slice returns the n code points starting at pos.
	Slice(pos, n int) string
}

// Check reports whether op applies to a text of length code points: every
// component valid (no zero length, inserts valid UTF-8) and the op reaching
// no further than the text. It returns ErrPastEnd wrapped with the figures,
// or a component error. Apply and ApplyTo call it before changing anything.
func (o Op) Check(length int) error {
	reach := 0
	for i, c := range o {
		switch {
		case c.n == 0:
			return fmt.Errorf("component %d: %w", i, ErrZeroLength)
		case c.s == "":
			reach += c.Len()
		case !utf8.ValidString(c.s):
			return fmt.Errorf("component %d: %w", i, ErrInvalidUTF8)
		}
	}
	if reach > length {
		return fmt.Errorf("op reaches %d code points, text has %d: %w", reach, length, ErrPastEnd)
	}
	return nil
}

// Apply returns the result of applying op to s. It fails, and returns "",
// when op reaches past the end of s or holds a zero-length component.
func Apply(s string, op Op) (string, error) {
	if err := op.Check(utf8.RuneCountInString(s)); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(len(s) + 16)
	i := 0 // byte offset in s
	for _, c := range op {
		switch {
		case c.s != "":
			sb.WriteString(c.s)
		case c.n > 0:
			j := i + byteOffset(s[i:], c.n)
			sb.WriteString(s[i:j])
			i = j
		default:
			i += byteOffset(s[i:], -c.n)
		}
	}
	sb.WriteString(s[i:])
	return sb.String(), nil
}

// ApplyTo applies op to t in place. It validates first: when op reaches past
// the end of t or holds a zero-length component it returns an error and t is
// unchanged.
func ApplyTo(t Text, op Op) error {
	if err := op.Check(t.Len()); err != nil {
		return err
	}
	pos := 0
	for _, c := range op {
		switch {
		case c.s != "":
			t.Insert(pos, c.s)
			pos += c.n
		case c.n > 0:
			pos += c.n
		default:
			t.Delete(pos, -c.n)
		}
	}
	return nil
}

// byteOffset returns the byte offset of code point n in s, or len(s) if s has
// fewer than n code points.
func byteOffset(s string, n int) int {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}
