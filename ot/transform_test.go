package ot_test

import (
	"errors"
	"testing"

	"github.com/tandemhq/tandem/ot"
)

func TestApply(t *testing.T) {
	tests := []struct {
		text, op, want string
	}{
		{"", `[]`, ""},
		{"", `["hi"]`, "hi"},
		{"hello", `[5,"!"]`, "hello!"},
		{"hello", `[1,-3]`, "ho"},
		{"hello world", `[5,"hi",-3]`, "hellohirld"},
		{"héllo", `[1,-1,"e"]`, "hello"}, // code points, not bytes
		{"a😀b", `[1,-1,"🎉"]`, "a🎉b"},     // astral plane
		{"e\u0301x", `[1,-1]`, "ex"},     // deletes the combining mark only
		{"漢字", `[2,"!"]`, "漢字!"},         // exactly to the end
		{"abc", `[-3]`, ""},              // delete everything
	}
	for _, tt := range tests {
		op := parse(t, tt.op)
		if got := apply(t, tt.text, op); got != tt.want {
			t.Errorf("Apply(%q, %s) = %q, want %q", tt.text, tt.op, got, tt.want)
		}
		r := runes(tt.text)
		if err := ot.ApplyTo(&r, op); err != nil || string(r) != tt.want {
			t.Errorf("ApplyTo(%q, %s) = %q, %v; want %q", tt.text, tt.op, string(r), err, tt.want)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	tests := []struct {
		text string
		op   ot.Op
		want error
	}{
		{"", ot.Op{ot.Retain(1), ot.Insert("x")}, ot.ErrPastEnd},
		{"abc", ot.Op{ot.Delete(4)}, ot.ErrPastEnd},
		{"abc", ot.Op{ot.Retain(2), ot.Delete(2)}, ot.ErrPastEnd},
		{"😀", ot.Op{ot.Retain(2), ot.Insert("x")}, ot.ErrPastEnd}, // one code point, four bytes
		{"abc", ot.Op{ot.Retain(0), ot.Insert("x")}, ot.ErrZeroLength},
		{"abc", ot.Op{ot.Insert("x"), ot.Delete(0)}, ot.ErrZeroLength},
		{"abc", ot.Op{ot.Retain(1), ot.Insert("\xff")}, ot.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		if got, err := ot.Apply(tt.text, tt.op); !errors.Is(err, tt.want) || got != "" {
			t.Errorf("Apply(%q, %v) = %q, %v; want error %v", tt.text, tt.op, got, err, tt.want)
		}
		r := runes(tt.text)
		if err := ot.ApplyTo(&r, tt.op); !errors.Is(err, tt.want) || string(r) != tt.text {
			t.Errorf("ApplyTo(%q, %v) = %q, %v; want %v and the text unchanged", tt.text, tt.op, string(r), err, tt.want)
		}
	}
}

func TestTransform(t *testing.T) {
	tests := []struct {
		name         string
		text, a, b   string
		wantA, wantB string // a transformed over b, b over a
		want         string // the converged text
	}{
		{"inserts at one position: a first", "", `["a"]`, `["b"]`, `["a"]`, `[1,"b"]`, "ab"},
		{"inserts at one position mid-text", "xy", `[1,"a"]`, `[1,"b"]`, `[1,"a"]`, `[2,"b"]`, "xaby"},
		{"insert before insert", "xy", `["a"]`, `[1,"b"]`, `["a"]`, `[2,"b"]`, "axby"},
		{"insert after insert", "xy", `[2,"a"]`, `["b"]`, `[3,"a"]`, `["b"]`, "bxya"},
		{"same delete", "abc", `[1,-1]`, `[1,-1]`, `[]`, `[]`, "ac"},
		{"overlapping deletes", "abcdef", `[1,-3]`, `[2,-3]`, `[1,-1]`, `[1,-1]`, "af"},
		{"delete containing insert point", "abcd", `[-4]`, `[2,"x"]`, `[-2,1,-2]`, `["x"]`, "x"},
		{"insert inside deleted text kept", "abcd", `[2,"x"]`, `[1,-2]`, `[1,"x"]`, `[1,-1,1,-1]`, "axd"},
		{"different reach", "abcdef", `[1,"x"]`, `[5,-1]`, `[1,"x"]`, `[6,-1]`, "axbcde"},
		{"empty and delete", "abc", `[]`, `[-1]`, `[]`, `[-1]`, "bc"},
		{"multi-byte", "😀漢é", `[1,"a"]`, `[1,-1,"b"]`, `[1,"a"]`, `[2,"b",-1]`, "😀abé"},
	}
	for _, tt := range tests {
		a, b := parse(t, tt.a), parse(t, tt.b)
		a2, b2, err := ot.Transform(a, b)
		if err != nil {
			t.Fatalf("%s: Transform: %v", tt.name, err)
		}
		if a2.String() != tt.wantA || b2.String() != tt.wantB {
			t.Errorf("%s: Transform(%s, %s) = %v, %v; want %s, %s", tt.name, tt.a, tt.b, a2, b2, tt.wantA, tt.wantB)
		}
		x := apply(t, apply(t, tt.text, a), b2)
		y := apply(t, apply(t, tt.text, b), a2)
		if x != tt.want || y != tt.want {
			t.Errorf("%s: a then b' = %q, b then a' = %q, want %q", tt.name, x, y, tt.want)
		}
	}
}

func TestCompose(t *testing.T) {
	tests := []struct {
		text, a, b, want string
	}{
		{"", `["abc"]`, `[1,-1]`, `["ac"]`},
		{"", `["abc"]`, `[3,"d"]`, `["abcd"]`},
		{"xyz", `[-1]`, `[-1]`, `[-2]`},
		{"xyz", `[1,"ab"]`, `[2,-2]`, `[1,"a",-1]`},      // deletes a's insert and old text
		{"xyz", `[3,"ab"]`, `[1,"q"]`, `[1,"q",2,"ab"]`}, // b reaches less than a
		{"xyz", `["a"]`, `[3,-1]`, `["a",2,-1]`},         // b reaches past a's components
		{"héllo", `[1,-1,"e"]`, `[1,"é"]`, `[1,"ée",-1]`},
		{"abc", `[]`, `[]`, `[]`},
	}
	for _, tt := range tests {
		a, b := parse(t, tt.a), parse(t, tt.b)
		c, err := ot.Compose(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != tt.want {
			t.Errorf("Compose(%s, %s) = %v, want %s", tt.a, tt.b, c, tt.want)
		}
		if got, want := apply(t, tt.text, c), apply(t, apply(t, tt.text, a), b); got != want {
			t.Errorf("Compose(%s, %s) on %q gives %q, sequence gives %q", tt.a, tt.b, tt.text, got, want)
		}
	}
}

func TestZeroComponentsRejected(t *testing.T) {
	bad := ot.Op{ot.Retain(0)}
	good := ot.Op{ot.Insert("x")}
	if _, _, err := ot.Transform(bad, good); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Transform(bad, good) error = %v", err)
	}
	if _, _, err := ot.Transform(good, bad); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Transform(good, bad) error = %v", err)
	}
	if _, err := ot.TransformRight(bad, good, nil); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("TransformRight(bad, good) error = %v", err)
	}
	if _, err := ot.TransformRight(good, bad, nil); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("TransformRight(good, bad) error = %v", err)
	}
	if _, err := ot.Compose(bad, good); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Compose(bad, good) error = %v", err)
	}
	if _, err := ot.Compose(good, bad); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Compose(good, bad) error = %v", err)
	}
	if _, err := ot.Invert(bad, "abc"); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Invert(bad) error = %v", err)
	}
}

func TestInvert(t *testing.T) {
	tests := []struct {
		text, op, want string
	}{
		{"", `["hi"]`, `[-2]`},
		{"hello", `[1,-3]`, `[1,"ell"]`},
		{"hello world", `[5,"hi",-3]`, `[5," wo",-2]`},
		{"a😀b", `[1,"x",-1]`, `[1,"😀",-1]`},
		{"abc", `[]`, `[]`},
	}
	for _, tt := range tests {
		op := parse(t, tt.op)
		inv, err := ot.Invert(op, tt.text)
		if err != nil {
			t.Fatal(err)
		}
		mustCanonical(t, "Invert", inv)
		if inv.String() != tt.want {
			t.Errorf("Invert(%s, %q) = %v, want %s", tt.op, tt.text, inv, tt.want)
		}
		if got := apply(t, apply(t, tt.text, op), inv); got != tt.text {
			t.Errorf("Invert(%s) does not undo: %q, want %q", tt.op, got, tt.text)
		}
		r := runes(tt.text)
		inv2, err := ot.InvertText(op, &r)
		if err != nil || !inv2.Equal(inv) {
			t.Errorf("InvertText(%s) = %v, %v; want %v", tt.op, inv2, err, inv)
		}
	}
	if _, err := ot.Invert(ot.Op{ot.Delete(4)}, "abc"); !errors.Is(err, ot.ErrPastEnd) {
		t.Errorf("Invert past the end: error = %v, want ErrPastEnd", err)
	}
}

func TestTransformIndex(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		index     int
		own, want int // want for own=false, own=true
	}{
		{"insert before", `[1,"ab"]`, 3, 5, 5},
		{"insert after", `[4,"ab"]`, 3, 3, 3},
		{"insert exactly at", `[3,"ab"]`, 3, 3, 5}, // others' stays before, own moves after
		{"insert at start, index 0", `["ab"]`, 0, 0, 2},
		{"delete before", `[-2]`, 3, 1, 1},
		{"delete around", `[1,-4]`, 3, 1, 1}, // collapses to where the text was
		{"delete after", `[3,-2]`, 3, 3, 3},
		{"delete ending at", `[1,-2]`, 3, 1, 1},
		{"replace around", `[1,"xy",-4]`, 3, 3, 3},
		{"multi-byte counts as one", `["😀"]`, 1, 2, 2},
		{"index at end, insert at end", `[5,"z"]`, 5, 5, 6},
	}
	for _, tt := range tests {
		op := parse(t, tt.op)
		if got := ot.TransformIndex(op, tt.index, false); got != tt.own {
			t.Errorf("%s: TransformIndex(%s, %d, others) = %d, want %d", tt.name, tt.op, tt.index, got, tt.own)
		}
		if got := ot.TransformIndex(op, tt.index, true); got != tt.want {
			t.Errorf("%s: TransformIndex(%s, %d, own) = %d, want %d", tt.name, tt.op, tt.index, got, tt.want)
		}
	}
}

func TestTransformRange(t *testing.T) {
	tests := []struct {
		name string
		op   string
		in   ot.Range
		want ot.Range
	}{
		{"insert before", `[1,"ab"]`, ot.Range{From: 3, To: 5}, ot.Range{From: 5, To: 7}},
		{"insert at from stays outside", `[3,"ab"]`, ot.Range{From: 3, To: 5}, ot.Range{From: 5, To: 7}},
		{"insert at to stays outside", `[5,"ab"]`, ot.Range{From: 3, To: 5}, ot.Range{From: 3, To: 5}},
		{"insert inside grows", `[4,"ab"]`, ot.Range{From: 3, To: 5}, ot.Range{From: 3, To: 7}},
		{"text deleted collapses", `[2,-4]`, ot.Range{From: 3, To: 5}, ot.Range{From: 2, To: 2}},
		{"text replaced collapses", `[3,"xy",-2]`, ot.Range{From: 3, To: 5}, ot.Range{From: 5, To: 5}},
		{"partly deleted", `[4,-3]`, ot.Range{From: 3, To: 5}, ot.Range{From: 3, To: 4}},
		{"point stays before insert", `[3,"ab"]`, ot.Range{From: 3, To: 3}, ot.Range{From: 3, To: 3}},
		{"point after insert moves", `[1,"ab"]`, ot.Range{From: 3, To: 3}, ot.Range{From: 5, To: 5}},
	}
	for _, tt := range tests {
		if got := ot.TransformRange(parse(t, tt.op), tt.in); got != tt.want {
			t.Errorf("%s: TransformRange(%s, %v) = %v, want %v", tt.name, tt.op, tt.in, got, tt.want)
		}
	}
	sel := ot.TransformSelection(parse(t, `[2,"ab"]`), ot.Selection{Anchor: 5, Head: 2}, false)
	if sel != (ot.Selection{Anchor: 7, Head: 2}) {
		t.Errorf("TransformSelection = %+v, want anchor 7 head 2", sel)
	}
	sel = ot.TransformSelection(parse(t, `[2,"ab"]`), ot.Selection{Anchor: 2, Head: 2}, true)
	if sel != (ot.Selection{Anchor: 4, Head: 4}) {
		t.Errorf("own TransformSelection = %+v, want a caret at 4", sel)
	}
}
