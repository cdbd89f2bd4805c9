package client

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

func TestSplitOp(t *testing.T) {
	big := opBudget{insert: 1 << 20, json: 1 << 20}
	tests := []struct {
		name string
		text string
		op   ot.Op
		b    opBudget
		n    int // pieces
	}{
		// Within the limits: untouched.
		{"small", "abc", ot.Op{ot.Retain(1), ot.Insert("xy")}, opBudget{10, 100}, 1},
		// One insert cut in three by the insert limit.
		{"cut", "abc", ot.Op{ot.Retain(1), ot.Insert("0123456789"), ot.Delete(1)}, opBudget{4, 100}, 3},
		// Runes are never cut: 3-byte runes in pieces of at most 4 bytes.
		{"runes", "", ot.Op{ot.Insert("漢字漢字")}, opBudget{4, 100}, 4},
		// A limit below one rune still makes progress, a rune a piece.
		{"tiny", "", ot.Op{ot.Insert("😀😀")}, opBudget{2, 100}, 2},
		// Two inserts with a delete between them.
		{"two", "abcdef", ot.Op{ot.Insert("xxxx"), ot.Retain(2), ot.Insert("yyyy"), ot.Delete(2)}, opBudget{5, 100}, 2},
		// Cut by the JSON size: a control character takes six bytes, so
		// [" + 3 × 6 + "] is 22 bytes and the fourth goes in a second op.
		{"escaped", "", ot.Op{ot.Insert("\x01\x01\x01\x01")}, opBudget{100, 22}, 2},
		// Quotes and newlines take two bytes each: ["\"\n"] is 8 bytes.
		// The pieces after the first begin with a retain.
		{"quotes", "", ot.Op{ot.Insert("\"\n\"\n")}, opBudget{100, 8}, 3},
		// U+2028 is escaped (six bytes) by ot's encoder.
		{"u2028", "", ot.Op{ot.Insert("\u2028\u2028")}, opBudget{100, 10}, 2},
		// Many components: the JSON size cuts between them.
		{"components", "abcdefghij", ot.Op{ot.Retain(1), ot.Delete(1), ot.Retain(1), ot.Delete(1), ot.Retain(1), ot.Delete(1)}, opBudget{100, 8}, 3},
		// Nothing to cut.
		{"delete", "abcdef", ot.Op{ot.Delete(6)}, big, 1},
	}
	for _, tt := range tests {
		pieces := splitOp(tt.op, tt.b)
		if len(pieces) != tt.n {
			t.Errorf("%s: %d pieces %v, want %d", tt.name, len(pieces), pieces, tt.n)
		}
		checkSplit(t, tt.text, tt.op, pieces, tt.b)
	}
}

// TestOpJSONLen: the size the splitting reckons with is the size of the
// op in the frame that is sent, for every kind of character.
func TestOpJSONLen(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		op := randomOpOn(r, "", jsonWords)
		id := int64(r.Uint64() >> 1)
		frame := encodeOpFrame(opRequest{ID: &id, Type: "op", Doc: "d<&>", Version: 7, Op: op, UID: "u"})
		empty := encodeOpFrame(opRequest{ID: &id, Type: "op", Doc: "d<&>", Version: 7, Op: ot.Op{}, UID: "u"})
		if got, want := opJSONLen(op), len(frame)-len(empty)+2; got != want {
			t.Fatalf("opJSONLen(%v) = %d, the frame holds %d bytes of it: %s", op, got, want, frame)
		}
		if got, want := opJSONLen(op), len(op.AppendJSON(nil)); got != want {
			t.Fatalf("opJSONLen(%v) = %d, AppendJSON gives %d", op, got, want)
		}
	}
}

// jsonWords are characters of every JSON size: escaped in six bytes, in
// two, and plain in one to four.
var jsonWords = []string{"a", "<", "&", "\n", "\t", "\"", "\\", "\x01", "\x7f", "é", "漢", "😀", "\u2028", "e\u0301", "word "}

func TestSplitOpRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		text := strings.Repeat("abcdé", r.IntN(6))
		op := randomOpOn(r, text, jsonWords)
		b := opBudget{insert: 4 + r.IntN(40), json: 16 + r.IntN(60)}
		checkSplit(t, text, op, splitOp(op, b), b)
	}
}

// randomOpOn returns a random canonical op on text inserting words.
func randomOpOn(r *rand.Rand, text string, words []string) ot.Op {
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
	return b.Op()
}

// minimal reports whether p is the least a piece may hold to progress: an
// optional retain, then one delete or one rune inserted.
func minimal(p ot.Op) bool {
	if len(p) > 0 && p[0].IsRetain() {
		p = p[1:]
	}
	return len(p) == 1 && (p[0].IsDelete() || utf8.RuneCountInString(p[0].Text()) == 1)
}

func checkSplit(t *testing.T, text string, op ot.Op, pieces []ot.Op, b opBudget) {
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
		if p.IsNoop() && !op.IsNoop() {
			t.Fatalf("piece %v of %v changes nothing", p, op)
		}
		if n := insertBytes(p); n > b.insert && n > utf8.UTFMax { // one rune may exceed a tiny limit
			t.Fatalf("piece %v of %v inserts %d bytes, limit %d", p, op, n, b.insert)
		}
		if n := len(p.AppendJSON(nil)); n > b.json && !minimal(p) {
			t.Fatalf("piece %v of %v takes %d bytes of JSON, limit %d", p, op, n, b.json)
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
