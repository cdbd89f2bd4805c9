package doc

import (
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// SplitOp cuts op into ops that each insert at most max bytes and that,
// applied one after the other, do what op does: the first applies to the
// text op applies to, each next one to the text the previous one made. A
// rune is never cut, so a piece inserts more than max bytes only when max
// is smaller than one rune (then it inserts that rune alone). An op within
// the limit comes back as the only piece.
func SplitOp(op ot.Op, max int) []ot.Op {
	if InsertBytes(op) <= max {
		return []ot.Op{op}
	}
	var out []ot.Op
	var b ot.Builder
	pos := 0 // where the next piece starts: the output of the pieces so far
	budget := max
	for _, c := range op {
		switch {
		case c.IsRetain():
			b.Retain(c.Len())
			pos += c.Len()
		case c.IsDelete():
			b.Delete(c.Len())
		default:
			s := c.Text()
			for s != "" {
				cut := min(len(s), budget)
				for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
					cut--
				}
				if cut == 0 && budget == max {
					_, cut = utf8.DecodeRuneInString(s) // max is smaller than one rune: send it whole
				}
				if cut > 0 {
					b.Insert(s[:cut])
					pos += utf8.RuneCountInString(s[:cut])
					budget -= cut
					s = s[cut:]
				}
				if s != "" {
					if p := b.Op(); !p.IsNoop() {
						out = append(out, p)
					}
					b.Retain(pos)
					budget = max
				}
			}
		}
	}
	if p := b.Op(); !p.IsNoop() {
		out = append(out, p)
	}
	return out
}

// InsertBytes returns how many bytes op inserts.
func InsertBytes(op ot.Op) int {
	n := 0
	for _, c := range op {
		n += len(c.Text())
	}
	return n
}
