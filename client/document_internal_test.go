package client

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

func TestSplitOp(t *testing.T) {
	tests := []struct {
		name string
		text string
		op   ot.Op
		max  int
		n    int // pieces
	}{
		// Within the limit: untouched.
		{"small", "abc", ot.Op{ot.Retain(1), ot.Insert("xy")}, 10, 1},
		// One insert cut in three.
		{"cut", "abc", ot.Op{ot.Retain(1), ot.Insert("0123456789"), ot.Delete(1)}, 4, 3},
		// Runes are never cut: 3-byte runes in pieces of at most 4 bytes.
		{"runes", "", ot.Op{ot.Insert("漢字漢字")}, 4, 4},
		// A limit below one rune still makes progress, a rune a piece.
		{"tiny", "", ot.Op{ot.Insert("😀😀")}, 2, 2},
		// Two inserts with a delete between them.
		{"two", "abcdef", ot.Op{ot.Insert("xxxx"), ot.Retain(2), ot.Insert("yyyy"), ot.Delete(2)}, 5, 2},
	}
	for _, tt := range tests {
		pieces := splitOp(tt.op, tt.max)
		if len(pieces) != tt.n {
			t.Errorf("%s: %d pieces %v, want %d", tt.name, len(pieces), pieces, tt.n)
		}
		checkSplit(t, tt.text, tt.op, pieces, tt.max)
	}
}

func TestSplitOpRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "é", "漢", "😀", "e\u0301", "word "}
	for range 2000 {
		text := strings.Repeat("abcdé", r.IntN(6))
		n := utf8.RuneCountInString(text)
		var b ot.Builder
		pos := 0
		for pos < n || r.IntN(3) != 0 {
			switch k := r.IntN(3); {
			case k == 0 && pos < n:
				m := 1 + r.IntN(n-pos)
				b.Retain(m)
				pos += m
			case k == 1 && pos < n:
				m := 1 + r.IntN(n-pos)
				b.Delete(m)
				pos += m
			default:
				var sb strings.Builder
				for range 1 + r.IntN(8) {
					sb.WriteString(words[r.IntN(len(words))])
				}
				b.Insert(sb.String())
			}
			if r.IntN(4) == 0 {
				break
			}
		}
		op := b.Op()
		max := 4 + r.IntN(12)
		checkSplit(t, text, op, splitOp(op, max), max)
	}
}

func checkSplit(t *testing.T, text string, op ot.Op, pieces []ot.Op, max int) {
	t.Helper()
	want, err := ot.Apply(text, op)
	if err != nil {
		t.Fatalf("apply %v to %q: %v", op, text, err)
	}
	got := text
	for _, p := range pieces {
		if err := p.Validate(); err != nil {
			t.Fatalf("piece %v of %v: %v", p, op, err)
		}
		if b := insertBytes(p); b > max && b > utf8.UTFMax { // one rune may exceed a tiny max
			t.Fatalf("piece %v of %v inserts %d bytes, max %d", p, op, b, max)
		}
		if got, err = ot.Apply(got, p); err != nil {
			t.Fatalf("piece %v of %v on %q: %v", p, op, got, err)
		}
	}
	if got != want {
		t.Fatalf("pieces %v of %v on %q give %q, want %q", pieces, op, text, got, want)
	}
}

func TestBaseIndex(t *testing.T) {
	op := ot.Op{ot.Retain(2), ot.Insert("xyz"), ot.Delete(2), ot.Retain(1)} // "abcdef" → "abxyzef"
	for _, tt := range []struct{ in, want int }{
		{0, 0}, {2, 2}, // before the insert
		{3, 2}, {5, 2}, // in and right after the insert: where it is
		{6, 5}, {7, 6}, // after the deleted "cd"
	} {
		if got := baseIndex(op, tt.in); got != tt.want {
			t.Errorf("baseIndex(%v, %d) = %d, want %d", op, tt.in, got, tt.want)
		}
	}
}
