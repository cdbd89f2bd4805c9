package doc

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// ropeEdit is one edit in a table: delete n code points at pos, then insert s
// at pos.
type ropeEdit struct {
	pos, n int
	s      string
}

func ropeIns(pos int, s string) ropeEdit { return ropeEdit{pos: pos, s: s} }
func ropeDel(pos, n int) ropeEdit        { return ropeEdit{pos: pos, n: n} }

func (e ropeEdit) String() string {
	switch {
	case e.s == "":
		return fmt.Sprintf("Delete(%d, %d)", e.pos, e.n)
	case e.n == 0:
		return fmt.Sprintf("Insert(%d, %.40q)", e.pos, e.s)
	}
	return fmt.Sprintf("Delete(%d, %d) then Insert(%d, %.40q)", e.pos, e.n, e.pos, e.s)
}

// ropeModel is the naive oracle: a slice of code points.
type ropeModel []rune

func (m *ropeModel) apply(e ropeEdit) {
	if e.n > 0 {
		*m = slices.Delete(*m, e.pos, e.pos+e.n)
	}
	if e.s != "" {
		*m = slices.Insert(*m, e.pos, []rune(e.s)...)
	}
}

// applyEdit applies e to r through its public methods.
func (r *Rope) applyEdit(e ropeEdit) {
	if e.n > 0 {
		r.Delete(e.pos, e.n)
	}
	if e.s != "" {
		r.Insert(e.pos, e.s)
	}
}

// checkRope fails the test unless r holds want and passes its own invariant
// checks. what says which step led here.
func checkRope(t testing.TB, r *Rope, want []rune, what string) {
	t.Helper()
	if err := r.check(); err != nil {
		t.Fatalf("after %s: invariant broken: %v", what, err)
	}
	ws := string(want)
	if got := r.Len(); got != len(want) {
		t.Fatalf("after %s: Len() = %d, want %d", what, got, len(want))
	}
	if got := r.ByteLen(); got != len(ws) {
		t.Fatalf("after %s: ByteLen() = %d, want %d", what, got, len(ws))
	}
	if got := r.String(); got != ws {
		t.Fatalf("after %s: String() differs from the model at byte %d (lengths %d, %d)",
			what, firstDiff(got, ws), len(got), len(ws))
	}
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// repeatTo returns unit repeated until it holds at least n bytes.
func repeatTo(unit string, n int) string {
	return strings.Repeat(unit, (n+len(unit)-1)/len(unit))
}

// mixed is text with 1-, 2-, 3- and 4-byte code points and a combining mark.
const mixed = "ab 漢字😀e\u0301ü\n"

func TestRopeEdits(t *testing.T) {
	long := repeatTo("0123456789", 5000) // several leaves
	tests := []struct {
		name string
		text string
		edit ropeEdit
		want string
	}{
		{"insert into empty", "", ropeIns(0, "x"), "x"},
		{"insert at start", "hello", ropeIns(0, ">"), ">hello"},
		{"insert in middle", "hello", ropeIns(2, "--"), "he--llo"},
		{"insert at end", "hello", ropeIns(5, "!"), "hello!"},
		{"insert emoji between emoji", "😀😀", ropeIns(1, "😎"), "😀😎😀"},
		{"insert ASCII after emoji", "😀😀", ropeIns(2, "a"), "😀😀a"},
		{"insert CJK in CJK", "漢字", ropeIns(1, "語"), "漢語字"},
		// e + U+0301 is two code points; position 1 is between them.
		{"insert between base and combining mark", "e\u0301", ropeIns(1, "x"), "ex\u0301"},
		{"insert combining mark", "e", ropeIns(1, "\u0301"), "e\u0301"},
		{"delete at start", "hello", ropeDel(0, 1), "ello"},
		{"delete in middle", "hello", ropeDel(1, 3), "ho"},
		{"delete at end", "hello", ropeDel(4, 1), "hell"},
		{"delete everything", "hello", ropeDel(0, 5), ""},
		{"delete emoji", "a😀b", ropeDel(1, 1), "ab"},
		{"delete CJK", "漢字x", ropeDel(0, 2), "x"},
		{"delete combining mark only", "e\u0301x", ropeDel(1, 1), "ex"},
		{"replace multi-byte", "a漢b", ropeEdit{pos: 1, n: 1, s: "😀😀"}, "a😀😀b"},
		{"long insert into short", "ab", ropeIns(1, long), "a" + long + "b"},
		{"insert into long", long, ropeIns(2500, "😀"), long[:2500] + "😀" + long[2500:]},
		{"delete most of long", long, ropeDel(1, 4998), long[:1] + long[4999:]},
		{"delete start of long", long, ropeDel(0, 3000), long[3000:]},
		{"delete end of long", long, ropeDel(100, 4900), long[:100]},
		{"delete all of long", long, ropeDel(0, 5000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRope(tt.text)
			r.applyEdit(tt.edit)
			if got := r.String(); got != tt.want {
				t.Fatalf("NewRope(%.20q).%v = %.40q, want %.40q", tt.text, tt.edit, got, tt.want)
			}
			if err := r.check(); err != nil {
				t.Fatalf("NewRope(%.20q).%v: %v", tt.text, tt.edit, err)
			}
			if got, want := r.Len(), utf8.RuneCountInString(tt.want); got != want {
				t.Fatalf("NewRope(%.20q).%v: Len() = %d, want %d", tt.text, tt.edit, got, want)
			}
		})
	}
}

func TestRopeSlice(t *testing.T) {
	long := repeatTo(mixed, 10000)
	lr := []rune(long)
	tests := []struct {
		name   string
		text   string
		pos, n int
		want   string
	}{
		{"empty rope", "", 0, 0, ""},
		{"empty slice", "hello", 3, 0, ""},
		{"whole", "hello", 0, 5, "hello"},
		{"start", "hello", 0, 2, "he"},
		{"middle", "hello", 1, 3, "ell"},
		{"end", "hello", 3, 2, "lo"},
		{"emoji", "a😀b", 1, 1, "😀"},
		{"CJK", "x漢字y", 1, 2, "漢字"},
		{"base without its combining mark", "e\u0301", 0, 1, "e"},
		{"combining mark alone", "e\u0301", 1, 1, "\u0301"},
		{"across many leaves", long, 100, 5000, string(lr[100:5100])},
		{"tail of many leaves", long, len(lr) - 7, 7, string(lr[len(lr)-7:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRope(tt.text)
			if got := r.Slice(tt.pos, tt.n); got != tt.want {
				t.Fatalf("NewRope(%.20q).Slice(%d, %d) = %.40q, want %.40q", tt.text, tt.pos, tt.n, got, tt.want)
			}
		})
	}
}

// leafStarts returns the code point position of every leaf but the first.
func leafStarts(r *Rope) []int {
	var starts []int
	pos := 0
	var walk func(n *node)
	walk = func(n *node) {
		if n.isLeaf() {
			if pos > 0 {
				starts = append(starts, pos)
			}
			pos += n.chars
			return
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	if r.root != nil {
		walk(r.root)
	}
	return starts
}

// TestRopeLeafBoundaries edits at, just before and just after every leaf
// boundary of a multi-byte text, on a fresh rope and on one whose cursor
// cache points at the neighbouring leaf.
func TestRopeLeafBoundaries(t *testing.T) {
	text := repeatTo(mixed, 12000)
	base := NewRope(text)
	starts := leafStarts(base)
	if len(starts) < 10 {
		t.Fatalf("NewRope of %d bytes has %d leaves, want at least 10", len(text), len(starts)+1)
	}
	for _, b := range starts {
		for d := -2; d <= 2; d++ {
			for _, e := range []ropeEdit{
				ropeIns(b+d, "X"),
				ropeIns(b+d, "😀漢"),
				ropeIns(b+d, repeatTo(mixed, 700)), // overflows the leaf
				ropeDel(b+d, 1),
				ropeDel(b+d, 3),
				ropeDel(b+d-300, 600), // underflows leaves on both sides
				{pos: b + d, n: 2, s: "e\u0301"},
			} {
				for _, warm := range []int{b - 1, b} {
					r := NewRope(text)
					m := ropeModel([]rune(text))
					r.Insert(warm, "w") // point the cursor at one side
					m.apply(ropeIns(warm, "w"))
					r.applyEdit(e)
					m.apply(e)
					checkRope(t, r, m, fmt.Sprintf("Insert(%d, \"w\"), %v", warm, e))
					p, q := min(b-2, len(m)), min(b+3, len(m))
					if got, want := r.Slice(p, q-p), string(m[p:q]); got != want {
						t.Fatalf("after %v: Slice(%d, %d) = %q, want %q", e, p, q-p, got, want)
					}
				}
			}
		}
	}
}

// TestRopeDeleteSpans deletes the middle of a three-level tree, keeping
// prefixes and suffixes of many sizes, so the merges run along both edges of
// the deleted span at every level, including chains of only children.
func TestRopeDeleteSpans(t *testing.T) {
	text := repeatTo(mixed, 600_000)
	tr := []rune(text)
	r0 := NewRope(text)
	if r0.height < 3 {
		t.Fatalf("NewRope of %d bytes has height %d, want at least 3", len(text), r0.height)
	}
	keeps := []int{0, 1, 2, 300, 1000, 5000, 20000, 100_000}
	if testing.Short() {
		keeps = []int{0, 1, 1000, 100_000}
	}
	for _, left := range keeps {
		for _, right := range keeps {
			if left+right == 0 {
				continue
			}
			r := NewRope(text)
			r.Delete(left, len(tr)-left-right)
			want := slices.Concat(tr[:left], tr[len(tr)-right:])
			checkRope(t, r, want, fmt.Sprintf("keeping %d and %d", left, right))
			// The rope must still grow and shrink properly.
			r.Insert(left, text[:30000])
			want = slices.Insert(want, left, []rune(text[:30000])...)
			checkRope(t, r, want, fmt.Sprintf("keeping %d and %d, then inserting", left, right))
		}
	}
}

// ropeFromGroups builds a two-level rope by hand: one inner node per group,
// holding one leaf per string, under a root.
func ropeFromGroups(groups ...[]string) *Rope {
	var inner []*node
	for _, g := range groups {
		var leaves []*node
		for _, s := range g {
			leaves = append(leaves, newLeaf(s))
		}
		inner = append(inner, newInner(leaves))
	}
	return &Rope{root: newInner(inner), height: 2}
}

// TestRopeDeleteShares deletes all but a sliver of one inner node whose
// neighbour is full, so the two share children and the sliver, an
// underflowing leaf, lands among the neighbour's leaves and must be merged
// there.
func TestRopeDeleteShares(t *testing.T) {
	leaf := repeatTo(mixed, 700)
	n := utf8.RuneCountInString(leaf)
	x, y := slices.Repeat([]string{leaf}, nodeMin), slices.Repeat([]string{leaf}, nodeMax)
	tests := []struct {
		name   string
		groups [][]string
		pos, n int
	}{
		// Keep the first 10 code points of the thin node on the left.
		{"thin left of full", [][]string{x, y}, 10, nodeMin*n - 10},
		// Keep the last 10 code points of the thin node on the right.
		{"thin right of full", [][]string{y, x}, nodeMax * n, nodeMin*n - 10},
		{"thin between full", [][]string{y, x, y}, nodeMax*n + 10, nodeMin*n - 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ropeFromGroups(tt.groups...)
			if err := r.check(); err != nil {
				t.Fatalf("before: %v", err)
			}
			m := ropeModel([]rune(r.String()))
			e := ropeDel(tt.pos, tt.n)
			r.applyEdit(e)
			m.apply(e)
			checkRope(t, r, m, e.String())
		})
	}
}

// TestRopeRandom compares thousands of random edits against the naive model,
// checking the contents and the invariants after every step.
func TestRopeRandom(t *testing.T) {
	steps, maxLen := 2500, 30_000 // two levels, with merges
	if testing.Short() {
		steps = 1000
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ropeRandomRun(t, rand.New(rand.NewPCG(seed, 7)), steps, 0, maxLen, "")
		})
	}
}

// TestRopeRandomTall runs the random edits on a tree that stays three
// levels deep: 200k code points of mixed text need over 256 leaves.
func TestRopeRandomTall(t *testing.T) {
	steps := 120
	if testing.Short() {
		steps = 30
	}
	r := ropeRandomRun(t, rand.New(rand.NewPCG(42, 42)), steps, 200_000, 400_000, repeatTo(mixed, 600_000))
	if r.height < 3 {
		t.Fatalf("height %d after the random edits, want at least 3", r.height)
	}
}

var ropeAlphabet = []string{"a", "b", " ", "\n", "é", "漢", "字", "😀", "e\u0301", "ü", "xyz"}

func randomText(rnd *rand.Rand, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteString(ropeAlphabet[rnd.IntN(len(ropeAlphabet))])
	}
	return sb.String()
}

// ropeRandomRun applies steps random edits to a rope holding text and to
// the model, checking both after every step. Pastes stop at maxLen code
// points and large deletes keep minLen.
func ropeRandomRun(t *testing.T, rnd *rand.Rand, steps, minLen, maxLen int, text string) *Rope {
	t.Helper()
	r := NewRope(text)
	m := ropeModel([]rune(text))
	var hist []string // the last few edits, for the failure message
	cursor := 0
	for i := range steps {
		n := len(m)
		var e ropeEdit
		switch k := rnd.IntN(100); {
		case k < 35 || n == 0: // type near the cursor
			cursor = min(max(cursor+rnd.IntN(5)-2, 0), n)
			e = ropeIns(cursor, randomText(rnd, 1))
			cursor++
		case k < 55: // backspace near the cursor
			cursor = min(max(cursor+rnd.IntN(5)-2, 1), n)
			e = ropeDel(cursor-1, 1)
			cursor--
		case k < 65: // short insert anywhere
			cursor = rnd.IntN(n + 1)
			e = ropeIns(cursor, randomText(rnd, 1+rnd.IntN(8)))
		case k < 75: // short delete anywhere
			cursor = rnd.IntN(n)
			e = ropeDel(cursor, 1+rnd.IntN(min(n-cursor, 8)))
		case k < 85 && n < maxLen: // paste: splits leaves, maybe inner nodes
			cursor = rnd.IntN(n + 1)
			e = ropeIns(cursor, randomText(rnd, 100+rnd.IntN(3000)))
		case k < 95: // delete a span of several leaves: merges
			cursor = rnd.IntN(n)
			e = ropeDel(cursor, 1+rnd.IntN(min(n-cursor, 8000)))
		default: // delete a large part, sometimes everything
			cursor = rnd.IntN(n/4 + 1)
			e = ropeDel(cursor, max(0, n-cursor-rnd.IntN((n-cursor)/4+1)-minLen))
		}
		if e.n == 0 && e.s == "" {
			continue
		}
		hist = append(hist, e.String())
		if len(hist) > 5 {
			hist = hist[1:]
		}
		r.applyEdit(e)
		m.apply(e)
		checkRope(t, r, m, fmt.Sprintf("step %d: %s", i, strings.Join(hist, ", ")))
		if len(m) > 0 {
			p := rnd.IntN(len(m))
			q := p + rnd.IntN(len(m)-p+1)
			if got, want := r.Slice(p, q-p), string(m[p:q]); got != want {
				t.Fatalf("step %d: Slice(%d, %d) = %.40q, want %.40q", i, p, q-p, got, want)
			}
		}
	}
	return r
}

func TestRopeByteIndex(t *testing.T) {
	for _, text := range []string{"", "a", "abcdefgh", "abcdefghi", mixed, repeatTo("漢", 40), repeatTo(mixed, 100), repeatTo("😀a", 33)} {
		b := []byte(text)
		var starts []int // byte offset of every code point, then len(b)
		for i := range text {
			starts = append(starts, i)
		}
		starts = append(starts, len(b))
		n := len(starts) - 1
		if got := runeCount(b); got != n {
			t.Fatalf("runeCount(%q) = %d, want %d", text, got, n)
		}
		for k, want := range starts {
			if got := byteIndex(b, k); got != want {
				t.Fatalf("byteIndex(%q, %d) = %d, want %d", text, k, got, want)
			}
			if got := byteIndexBack(b, n-k); got != want {
				t.Fatalf("byteIndexBack(%q, %d) = %d, want %d", text, n-k, got, want)
			}
		}
	}
}

func TestRopeZeroValue(t *testing.T) {
	var r Rope
	checkRope(t, &r, nil, "nothing")
	if got := r.Slice(0, 0); got != "" {
		t.Fatalf("zero Rope.Slice(0, 0) = %q, want \"\"", got)
	}
	r.Insert(0, "héllo")
	r.Delete(0, 5)
	checkRope(t, &r, nil, `Insert(0, "héllo"), Delete(0, 5)`)
	r.Insert(0, "ok")
	checkRope(t, &r, []rune("ok"), `Insert(0, "ok")`)
}

// TestRopeNoops: inserting "" and deleting nothing change nothing, at any
// valid position, on an empty rope too.
func TestRopeNoops(t *testing.T) {
	for _, text := range []string{"", "a😀c"} {
		r := NewRope(text)
		for pos := range utf8.RuneCountInString(text) + 1 {
			r.Insert(pos, "")
			r.Delete(pos, 0)
			checkRope(t, r, []rune(text), fmt.Sprintf("Insert(%d, \"\") and Delete(%d, 0) on %q", pos, pos, text))
		}
	}
}

func TestNewRopeInvalidUTF8(t *testing.T) {
	r := NewRope("a\xffb\xe6\xbc")
	checkRope(t, r, []rune("a\uFFFDb\uFFFD"), `NewRope("a\xffb\xe6\xbc")`)
}

func TestRopeNewRopeShape(t *testing.T) {
	for _, size := range []int{1, leafMax - 1, leafMax, leafMax + 1, 3 * leafMax, 17 * leafMax, 300 * leafMax} {
		for _, unit := range []string{"a", "é", "漢", "😀", mixed} {
			text := repeatTo(unit, size)
			r := NewRope(text)
			if err := r.check(); err != nil {
				t.Fatalf("NewRope(%d bytes of %q): %v", len(text), unit, err)
			}
			if got := r.String(); got != text {
				t.Fatalf("NewRope(%d bytes of %q).String() differs at byte %d", len(text), unit, firstDiff(got, text))
			}
		}
	}
}

func TestRopePanics(t *testing.T) {
	const text = "héllo" // 5 code points, 6 bytes
	tests := []struct {
		name string
		call func(r *Rope)
	}{
		{"insert before start", func(r *Rope) { r.Insert(-1, "x") }},
		{"insert past end", func(r *Rope) { r.Insert(6, "x") }},
		{"insert invalid UTF-8", func(r *Rope) { r.Insert(1, "\xff") }},
		{"insert truncated code point", func(r *Rope) { r.Insert(1, "\xe6\xbc") }},
		{"delete before start", func(r *Rope) { r.Delete(-1, 1) }},
		{"delete past end", func(r *Rope) { r.Delete(0, 6) }},
		{"delete at end", func(r *Rope) { r.Delete(5, 1) }},
		{"delete negative count", func(r *Rope) { r.Delete(2, -1) }},
		// pos+n overflows int; the check must not wrap around.
		{"delete huge count", func(r *Rope) { r.Delete(1, math.MaxInt) }},
		{"slice before start", func(r *Rope) { r.Slice(-1, 1) }},
		{"slice past end", func(r *Rope) { r.Slice(4, 2) }},
		{"slice start past end", func(r *Rope) { r.Slice(6, 0) }},
		{"slice negative count", func(r *Rope) { r.Slice(0, -1) }},
		{"slice huge count", func(r *Rope) { r.Slice(1, math.MaxInt) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRope(text)
			defer func() {
				if recover() == nil {
					t.Fatalf("%s on %q did not panic", tt.name, text)
				}
				checkRope(t, r, []rune(text), tt.name) // and changed nothing
			}()
			tt.call(r)
		})
	}
	zero := []struct {
		name string
		call func(r *Rope)
	}{
		{"insert past end of empty", func(r *Rope) { r.Insert(1, "x") }},
		{"delete from empty", func(r *Rope) { r.Delete(0, 1) }},
		{"slice of empty", func(r *Rope) { r.Slice(0, 1) }},
	}
	for _, tt := range zero {
		t.Run(tt.name, func(t *testing.T) {
			var r Rope
			defer func() {
				if recover() == nil {
					t.Fatalf("%s did not panic", tt.name)
				}
			}()
			tt.call(&r)
		})
	}
}

func TestRopeAllocs(t *testing.T) {
	r := NewRope(repeatTo(mixed, 100_000))
	mid := r.Len() / 2
	r.Insert(mid, "x") // warm the cursor cache
	if n := testing.AllocsPerRun(100, func() {
		r.Insert(mid, "é")
		r.Delete(mid, 1)
	}); n != 0 {
		t.Errorf("Insert and Delete inside a leaf: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(10, func() { _ = r.String() }); n != 1 {
		t.Errorf("String: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(10, func() { _ = r.Slice(10, 5000) }); n != 1 {
		t.Errorf("Slice: %v allocations, want 1", n)
	}
}

// FuzzRope runs an edit program from the fuzz input against the naive model.
// Each op takes four bytes: the kind, then three bytes for sizes and
// positions. The Len and the text around each edit are compared after every
// op, the whole text and the invariants after every eighth op and the last.
// Programs are cut to 256 ops and pastes stop at 32k code points, so that an
// input runs in about a millisecond and the fuzzer minimizes it quickly.
func FuzzRope(f *testing.F) {
	f.Add("hello", []byte{0, 1, 0, 0, 3, 0, 0, 1})
	f.Add("漢字😀e\u0301", []byte{1, 7, 0, 2, 2, 3, 200, 9, 5, 40, 0, 1, 4, 0, 0, 0})
	f.Add("", []byte{2, 4, 255, 0, 2, 7, 255, 3, 2, 9, 100, 5, 5, 0, 10, 0, 3, 1, 0, 0})
	f.Add(repeatTo(mixed, 1500), []byte{5, 1, 0, 100, 2, 4, 255, 0, 5, 200, 0, 7, 3, 3, 3, 3})
	f.Fuzz(func(t *testing.T, text string, prog []byte) {
		r := NewRope(text)
		m := ropeModel([]rune(strings.ToValidUTF8(text, "\uFFFD")))
		checkRope(t, r, m, "NewRope")
		prog = prog[:min(len(prog), 4*256)]
		for i := 0; i+4 <= len(prog); i += 4 {
			a, b, c := int(prog[i+1]), int(prog[i+2]), int(prog[i+3])
			n := len(m)
			pos := (b<<8 | c) % (n + 1)
			var e ropeEdit
			switch prog[i] % 6 {
			case 0: // a few characters
				e = ropeIns(pos, strings.Repeat(ropeAlphabet[a%len(ropeAlphabet)], 1+a/len(ropeAlphabet)%3))
			case 1: // a mix of widths
				e = ropeIns(pos, string([]rune(mixed)[a%5:])+strings.Repeat("😀", a%4))
			case 2: // a long paste, up to about 8 KiB
				if n > 32_000 {
					continue
				}
				e = ropeIns(pos, strings.Repeat(ropeAlphabet[b%len(ropeAlphabet)], 1+a*8))
			case 3, 4: // a short delete
				if pos == n {
					continue
				}
				e = ropeDel(pos, 1+a%min(n-pos, 4))
			case 5: // a long delete
				if pos == n {
					continue
				}
				e = ropeDel(pos, 1+(a<<8|c)%(n-pos))
			}
			r.applyEdit(e)
			m.apply(e)
			if i%32 == 0 || i+8 > len(prog) {
				checkRope(t, r, m, fmt.Sprintf("op %d: %v", i/4, e))
			} else if r.Len() != len(m) {
				t.Fatalf("after op %d: %v: Len() = %d, want %d", i/4, e, r.Len(), len(m))
			}
			p := max(e.pos-3, 0)
			q := min(e.pos+utf8.RuneCountInString(e.s)+3, len(m))
			if got, want := r.Slice(p, q-p), string(m[p:q]); got != want {
				t.Fatalf("after op %d: %v: Slice(%d, %d) = %.40q, want %.40q", i/4, e, p, q-p, got, want)
			}
		}
	})
}

// Editing traces (CC BY 4.0, see the README beside them): real keystroke
// histories, read in place from ../shared/data/editing-traces beside the
// module, or from where TANDEM_TRACES points, as trace_test.go does. Tests
// that need them skip when they are not there.

// ropeTrace is a sequential editing trace flattened to patches.
type ropeTrace struct {
	edits []ropeEdit
	end   string
}

var (
	ropeTracesMu sync.Mutex
	ropeTraces   = map[string]*ropeTrace{}
)

// loadRopeTrace returns the named sequential trace, or skips tb when the
// traces are not found.
func loadRopeTrace(tb testing.TB, name string) *ropeTrace {
	tb.Helper()
	ropeTracesMu.Lock()
	defer ropeTracesMu.Unlock()
	if tr, ok := ropeTraces[name]; ok {
		return tr
	}
	var f *os.File
	for _, dir := range []string{os.Getenv("TANDEM_TRACES"), "../../shared/data/editing-traces"} {
		if dir == "" {
			continue
		}
		var err error
		if f, err = os.Open(filepath.Join(dir, name+".json.gz")); err == nil {
			break
		}
	}
	if f == nil {
		tb.Skipf("editing trace %s not found", name)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("trace %s: %v", name, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatalf("trace %s: %v", name, err)
	}
	tr, err := parseRopeTrace(data)
	if err != nil {
		tb.Fatalf("trace %s: %v", name, err)
	}
	ropeTraces[name] = tr
	return tr
}

// parseRopeTrace reads endContent and, in order, the patches of a
// sequential trace. It scans the JSON by hand because encoding/json takes
// seconds per trace under the race detector. It finds keys by their quoted
// name and colon, which cannot occur inside a JSON string.
func parseRopeTrace(data []byte) (*ropeTrace, error) {
	p := &ropeTraceParser{data: data}
	p.seek(`"endContent":`)
	tr := &ropeTrace{end: p.str()}
	for p.err == nil && p.seek(`"patches":`) {
		p.expect('[')
		for p.err == nil && !p.accept(']') {
			p.expect('[')
			pos := p.int()
			p.expect(',')
			del := p.int()
			p.expect(',')
			ins := p.str()
			p.expect(']')
			p.accept(',')
			tr.edits = append(tr.edits, ropeEdit{pos: pos, n: del, s: ins})
		}
	}
	if p.err == nil && len(tr.edits) == 0 {
		p.err = errors.New("no patches")
	}
	return tr, p.err
}

// ropeTraceParser is a cursor in JSON text with a sticky error.
type ropeTraceParser struct {
	data []byte
	i    int
	err  error
}

func (p *ropeTraceParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("byte %d: %s", p.i, fmt.Sprintf(format, args...))
	}
}

// seek moves past the next key, and reports whether there was one.
func (p *ropeTraceParser) seek(key string) bool {
	j := bytes.Index(p.data[p.i:], []byte(key))
	if j < 0 {
		p.i = len(p.data)
		return false
	}
	p.i += j + len(key)
	return true
}

// accept skips white space, then c if it is next, and reports whether it was.
func (p *ropeTraceParser) accept(c byte) bool {
	for p.i < len(p.data) && strings.IndexByte(" \t\r\n", p.data[p.i]) >= 0 {
		p.i++
	}
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *ropeTraceParser) expect(c byte) {
	if !p.accept(c) {
		p.fail("want %q", c)
	}
}

func (p *ropeTraceParser) int() int {
	p.accept(' ')
	n, j := 0, p.i
	for ; j < len(p.data) && '0' <= p.data[j] && p.data[j] <= '9'; j++ {
		n = n*10 + int(p.data[j]-'0')
	}
	if j == p.i {
		p.fail("want a number")
	}
	p.i = j
	return n
}

func (p *ropeTraceParser) str() string {
	p.expect('"')
	start, escaped := p.i-1, false
	for ; p.i < len(p.data) && p.data[p.i] != '"'; p.i++ {
		if p.data[p.i] == '\\' {
			escaped = true
			p.i++
		}
	}
	if p.i >= len(p.data) {
		p.fail("unterminated string")
		return ""
	}
	p.i++
	if !escaped {
		return string(p.data[start+1 : p.i-1])
	}
	var s string
	if err := json.Unmarshal(p.data[start:p.i], &s); err != nil {
		p.fail("%v", err)
	}
	return s
}

func TestRopeTrace(t *testing.T) {
	for _, name := range []string{"automerge-paper", "seph-blog1", "sveltecomponent"} {
		t.Run(name, func(t *testing.T) {
			tr := loadRopeTrace(t, name)
			var r Rope
			for i, e := range tr.edits {
				r.applyEdit(e)
				if i%10000 == 0 {
					if err := r.check(); err != nil {
						t.Fatalf("after edit %d, %v: %v", i, e, err)
					}
				}
			}
			checkRope(t, &r, []rune(tr.end), fmt.Sprintf("%d edits of %s", len(tr.edits), name))
		})
	}
}

// Benchmarks. Each reports ns/op per single edit. The []rune splice
// baselines run the same workloads on the naive model.

// benchText is a 100k code point document, and benchTextCJK a 100k code
// point document of mostly 3-byte code points.
var (
	benchText    = repeatTo("The quick brown fox jumps over the lazy dog.\n", 100_000)
	benchTextCJK = string([]rune(repeatTo("敏捷的棕色狐狸跳过了懒狗。\n", 300_000))[:100_000])
)

// localEdits drives sequential typing: insert at a cursor that moves right,
// and after 4096 characters delete what was typed and jump elsewhere, so
// the document keeps its size.
type localEdits struct {
	cursor, count int
	rnd           *rand.Rand
	typed         string // one code point
}

func (l *localEdits) next(n int) (e ropeEdit) {
	if l.count == 4096 {
		e = ropeDel(l.cursor-l.count, l.count)
		l.cursor, l.count = l.rnd.IntN(n-l.count), 0
		return e
	}
	l.count++
	l.cursor++
	return ropeIns(l.cursor-1, l.typed)
}

// BenchmarkRopeInsertLocal types ASCII into ASCII text, where byte and code
// point offsets agree, and CJK into CJK text, where leaves are scanned.
func BenchmarkRopeInsertLocal(b *testing.B) {
	for _, bc := range []struct{ name, text, typed string }{
		{"ascii", benchText, "x"},
		{"multibyte", benchTextCJK, "語"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewRope(bc.text)
			l := &localEdits{cursor: r.Len() / 2, rnd: rand.New(rand.NewPCG(1, 1)), typed: bc.typed}
			for b.Loop() {
				r.applyEdit(l.next(r.Len()))
			}
		})
	}
}

// randomPositions are precomputed so the benchmarks do not time the generator.
var randomPositions = func() []int {
	rnd := rand.New(rand.NewPCG(2, 2))
	p := make([]int, 1<<16)
	for i := range p {
		p[i] = rnd.IntN(1 << 30)
	}
	return p
}()

func BenchmarkRopeRandom(b *testing.B) {
	r := NewRope(benchText)
	i := 0
	for b.Loop() {
		p := randomPositions[i%len(randomPositions)]
		if i%2 == 0 {
			r.Insert(p%(r.Len()+1), "é")
		} else {
			r.Delete(p%r.Len(), 1)
		}
		i++
	}
}

// BenchmarkRopeTrace replays the automerge-paper trace; ns/edit is the
// figure to compare.
func BenchmarkRopeTrace(b *testing.B) {
	tr := loadRopeTrace(b, "automerge-paper")
	for b.Loop() {
		var r Rope
		for _, e := range tr.edits {
			r.applyEdit(e)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.edits)), "ns/edit")
}

func BenchmarkRopeString(b *testing.B) {
	r := NewRope(benchText)
	b.SetBytes(int64(r.ByteLen()))
	for b.Loop() {
		_ = r.String()
	}
}

func BenchmarkNewRope(b *testing.B) {
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		NewRope(benchText)
	}
}

func BenchmarkRuneSpliceBaseline(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		m := ropeModel([]rune(benchText))
		l := &localEdits{cursor: len(m) / 2, rnd: rand.New(rand.NewPCG(1, 1)), typed: "x"}
		for b.Loop() {
			m.apply(l.next(len(m)))
		}
	})
	b.Run("random", func(b *testing.B) {
		m := ropeModel([]rune(benchText))
		i := 0
		for b.Loop() {
			p := randomPositions[i%len(randomPositions)]
			if i%2 == 0 {
				m.apply(ropeIns(p%(len(m)+1), "é"))
			} else {
				m.apply(ropeDel(p%len(m), 1))
			}
			i++
		}
	})
	b.Run("trace", func(b *testing.B) {
		tr := loadRopeTrace(b, "automerge-paper")
		for b.Loop() {
			var m ropeModel
			for _, e := range tr.edits {
				m.apply(e)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.edits)), "ns/edit")
	})
}
