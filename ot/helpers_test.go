package ot_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// pieces are what random texts and inserts are made of: ASCII, accented
// Latin, CJK, an astral emoji, a combining sequence and line breaks, so that
// code points, UTF-8 bytes and UTF-16 units all differ.
var pieces = []string{"a", "b", "c", " ", "\n", "é", "漢", "字", "😀", "👩🏽", "e\u0301", "\u2028", "\"", "\\"}

func randomText(r *rand.Rand, maxPieces int) string {
	n := r.IntN(maxPieces + 1)
	var sb strings.Builder
	for range n {
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

// randomOp returns a random canonical op that applies to text: a mix of
// retains, inserts and deletes, sometimes reaching the end, sometimes not.
func randomOp(r *rand.Rand, text string) ot.Op {
	n := utf8.RuneCountInString(text)
	var b ot.Builder
	pos := 0
	for pos < n || r.IntN(3) == 0 {
		left := n - pos
		switch k := r.IntN(10); {
		case k < 4 && left > 0:
			m := 1 + r.IntN(left)
			b.Retain(m)
			pos += m
		case k < 7:
			b.Insert(randomText(r, 3) + pieces[r.IntN(len(pieces))])
		case left > 0:
			d := 1 + r.IntN(min(left, 4))
			b.Delete(d)
			pos += d
		}
		if r.IntN(4) == 0 {
			break // leave the rest untouched
		}
		if pos >= n && r.IntN(2) == 0 {
			break
		}
	}
	return b.Op()
}

// apply applies op to s or fails the test.
func apply(t testing.TB, s string, op ot.Op) string {
	t.Helper()
	out, err := ot.Apply(s, op)
	if err != nil {
		t.Fatalf("Apply(%q, %v): %v", s, op, err)
	}
	return out
}

// mustCanonical fails the test when op is not canonical.
func mustCanonical(t testing.TB, what string, op ot.Op) {
	t.Helper()
	if err := op.Validate(); err != nil {
		t.Fatalf("%s = %v is not canonical: %v", what, op, err)
	}
}

// parse decodes a JSON op or fails the test.
func parse(t testing.TB, s string) ot.Op {
	t.Helper()
	op, err := ot.Decode([]byte(s))
	if err != nil {
		t.Fatalf("Decode(%s): %v", s, err)
	}
	return op
}

// runes is a Text made of a rune slice, the simplest correct model.
type runes []rune

func (t *runes) Len() int { return len(*t) }
func (t *runes) Insert(pos int, s string) {
	*t = append((*t)[:pos], append([]rune(s), (*t)[pos:]...)...)
}
func (t *runes) Delete(pos, n int)       { *t = append((*t)[:pos], (*t)[pos+n:]...) }
func (t *runes) Slice(pos, n int) string { return string((*t)[pos : pos+n]) }
