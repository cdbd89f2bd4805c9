package ot

import (
	"strings"
	"unicode/utf8"
)

// Invert returns the op that undoes op, given the text op was applied to:
// Apply(Apply(base, op), Invert(op, base)) == base. It fails, returning nil,
// when op does not apply to base.
func Invert(op Op, base string) (Op, error) {
	return InvertText(op, stringSlicer{s: base, n: utf8.RuneCountInString(base)})
}

// InvertText is Invert for a text held in a [Slicer], such as a rope, read
// before op is applied to it.
func InvertText(op Op, base Slicer) (Op, error) {
	if err := op.Check(base.Len()); err != nil {
		return nil, err
	}
	var b Builder
	b.ops = make(Op, 0, len(op))
	pos := 0
	for _, c := range op {
		switch {
		case c.s != "":
			b.Delete(c.n)
		case c.n > 0:
			b.Retain(c.n)
			pos += c.n
		default:
			b.insertN(base.Slice(pos, -c.n), -c.n)
			pos -= c.n
		}
	}
	return b.Op(), nil
}

// stringSlicer adapts a string to Slicer. Slicing walks from the start, so
// inverting an op on a long string costs O(len); ops are inverted rarely.
type stringSlicer struct {
	s string
	n int
}

func (t stringSlicer) Len() int { return t.n }

func (t stringSlicer) Slice(pos, n int) string {
	i := byteOffset(t.s, pos)
	j := i + byteOffset(t.s[i:], n)
	return strings.Clone(t.s[i:j])
}
