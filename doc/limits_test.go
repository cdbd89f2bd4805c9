package doc_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"notes", true},
		{"q3-plan_v2.final", true},
		{"team@acme#1=a", true},
		{"日本語", true},
		{"...", true},
		{strings.Repeat("x", doc.MaxIDLen), true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"a%2Fb", false},
		{"\xff", false},
		{strings.Repeat("x", doc.MaxIDLen+1), false},
	} {
		err := doc.ValidID(tc.id)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, doc.ErrBadID) {
			t.Errorf("ValidID(%.20q) = %v, want ok %v", tc.id, err, tc.ok)
		}
	}
}

// TestDiffOpWithin: whatever the budget, the op turns old into new; a
// budget too small for a character diff falls back to lines, then to one
// replacement of the changed middle.
func TestDiffOpWithin(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	words := []string{"a", "bb", "é", "😀", " ", "\n", "漢", "line\n"}
	gen := func() string {
		var sb strings.Builder
		for range r.IntN(60) {
			sb.WriteString(words[r.IntN(len(words))])
		}
		return sb.String()
	}
	budgets := []doc.DiffBudget{
		{},
		{Timeout: time.Second, MaxWork: 1 << 20, MaxEdits: 100},
		{MaxWork: 4},               // lines or a replacement
		{MaxWork: 1, MaxEdits: 1},  // a replacement, mostly
		{Timeout: time.Nanosecond}, // out of time at once
	}
	for range 2000 {
		old, new := gen(), gen()
		for _, b := range budgets {
			op, _ := doc.DiffOpWithin(old, new, b)
			if err := op.Validate(); err != nil {
				t.Fatalf("DiffOpWithin(%q, %q, %+v) = %v: %v", old, new, b, op, err)
			}
			if got, err := ot.Apply(old, op); err != nil || got != new {
				t.Fatalf("DiffOpWithin(%q, %q, %+v) = %v gives %q, %v", old, new, b, op, got, err)
			}
		}
	}
	// The middle replaced whole: one delete and one insert between the
	// common prefix and suffix, cut at rune boundaries.
	for _, tc := range []struct{ old, new, want string }{
		{"hello world", "hello brave world", `[6,"brave "]`},
		{"abc", "xyz", `["xyz",-3]`},
		{"é😀x", "é😁x", `[1,"😁",-1]`}, // 😀 and 😁 share their first bytes
		{"same", "same", `[]`},
	} {
		if got := doc.ReplaceOp(tc.old, tc.new).String(); got != tc.want {
			t.Errorf("ReplaceOp(%q, %q) = %s, want %s", tc.old, tc.new, got, tc.want)
		}
	}
}

// TestDiffOpWithinAdversarial: texts that send go-diff's substring search
// (outside its deadline) into time proportional to the product of their
// lengths are not given to it: the budget sends them to the line diff or
// the whole replacement.
func TestDiffOpWithinAdversarial(t *testing.T) {
	old := strings.Repeat("a", 400_000)
	new := strings.Repeat("a", 200_000) + "b" + strings.Repeat("a", 100_000) + "c"
	op, coarse := doc.DiffOpWithin(old, new, doc.DiffBudget{Timeout: 100 * time.Millisecond, MaxWork: 1 << 26, MaxEdits: 10_000})
	if !coarse {
		t.Fatal("a diff of 400,000 by 300,000 code points within a budget of 1<<26 was not cut short")
	}
	if got, err := ot.Apply(old, op); err != nil || got != new {
		t.Fatalf("the op does not turn old into new: %v", err)
	}
	// Many short lines: the line diff keeps what did not change.
	var a, b strings.Builder
	for i := range 20_000 {
		line := strings.Repeat("x", i%7) + "\n"
		a.WriteString(line)
		if i == 10 || i == 19_990 {
			b.WriteString("changed\n")
		} else {
			b.WriteString(line)
		}
	}
	op, _ = doc.DiffOpWithin(a.String(), b.String(), doc.DiffBudget{Timeout: time.Second, MaxWork: 1 << 30, MaxEdits: 10_000})
	if got, err := ot.Apply(a.String(), op); err != nil || got != b.String() {
		t.Fatalf("line diff: the op does not turn old into new: %v", err)
	}
	if n := doc.InsertBytes(op); n > 100 {
		t.Fatalf("two changed lines gave an op inserting %d bytes", n)
	}
}

// TestSplitOp: pieces apply one after the other to do what the op does,
// each within the limit (a single rune may exceed a tiny one).
func TestSplitOp(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	words := []string{"a", "é", "漢", "😀", "word "}
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
		max := 1 + r.IntN(12)
		want, err := ot.Apply(text, op)
		if err != nil {
			t.Fatal(err)
		}
		got := text
		for _, p := range doc.SplitOp(op, max) {
			if n := doc.InsertBytes(p); n > max && n > utf8.UTFMax {
				t.Fatalf("piece %v of %v inserts %d bytes, max %d", p, op, n, max)
			}
			if got, err = ot.Apply(got, p); err != nil {
				t.Fatalf("piece %v of %v: %v", p, op, err)
			}
		}
		if got != want {
			t.Fatalf("pieces of %v on %q give %q, want %q", op, text, got, want)
		}
	}
}
