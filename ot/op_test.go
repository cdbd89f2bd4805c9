package ot_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tandemhq/tandem/ot"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical JSON form
	}{
		{`[]`, `[]`},
		{`[5,"hi",-3]`, `[5,"hi",-3]`},
		{` [ 1 , "x" ] `, `[1,"x"]`},               // whitespace
		{`[2,-1,"x"]`, `[2,"x",-1]`},               // insert moves before delete
		{`[1,1,"a","b",-1,-2]`, `[2,"ab",-3]`},     // merge like components
		{`[-1,"a",-1,"b"]`, `["ab",-2]`},           // interleaved stretch
		{`[3]`, `[]`},                              // trailing retain dropped
		{`["x",4,-1,2]`, `["x",4,-1]`},             // trailing retain dropped
		{`["😀漢"]`, `["😀漢"]`},                       // multi-byte
		{`["\u00e9\ud83d\ude00"]`, `["é😀"]`},       // escapes, surrogate pair
		{`["a\"\\\n\u2028"]`, `["a\"\\\n\u2028"]`}, // escapes kept on output
		{`[2147483647]`, `[]`},                     // largest retain
	}
	for _, tt := range tests {
		op, err := ot.Decode([]byte(tt.in))
		if err != nil {
			t.Errorf("Decode(%s): %v", tt.in, err)
			continue
		}
		mustCanonical(t, "Decode("+tt.in+")", op)
		got, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Decode(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		in    string
		want  error
		index int // offending component, -1 for the whole value
	}{
		{`[0]`, ot.ErrZeroLength, 0},                      // zero retain
		{`[1,-0]`, ot.ErrZeroLength, 1},                   // negative zero
		{`["a",""]`, ot.ErrZeroLength, 1},                 // empty insert
		{`[1.5]`, ot.ErrBadComponent, 0},                  // non-integer
		{`[1.0]`, ot.ErrBadComponent, 0},                  // integral float is still a float
		{`[1e3]`, ot.ErrBadComponent, 0},                  // exponent
		{`[true]`, ot.ErrBadComponent, 0},                 // bool
		{`[null]`, ot.ErrBadComponent, 0},                 // null component
		{`[{"retain":1}]`, ot.ErrBadComponent, 0},         // object
		{`[[1]]`, ot.ErrBadComponent, 0},                  // nested array
		{`[1,"a",{}]`, ot.ErrBadComponent, 2},             // later component
		{`[2147483648]`, ot.ErrTooLarge, 0},               // over MaxComponentLen
		{`[-2147483648]`, ot.ErrTooLarge, 0},              // over MaxComponentLen
		{`[99999999999999999999]`, ot.ErrBadComponent, 0}, // overflows int64
		{`{"ops":[1]}`, ot.ErrNotArray, -1},               // object
		{`"abc"`, ot.ErrNotArray, -1},                     // string
		{`5`, ot.ErrNotArray, -1},                         // number
		{`null`, ot.ErrNotArray, -1},                      // null
		{``, ot.ErrNotArray, -1},                          // empty
		{`[1,`, ot.ErrNotArray, -1},                       // truncated
		{`[1] [2]`, ot.ErrNotArray, -1},                   // trailing data
		{"[\"\xff\"]", ot.ErrInvalidUTF8, -1},             // invalid UTF-8
		{"[\"a\xc3\"]", ot.ErrInvalidUTF8, -1},            // truncated sequence
	}
	for _, tt := range tests {
		op, err := ot.Decode([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("Decode(%q) = %v, %v; want error %v", tt.in, op, err, tt.want)
			continue
		}
		var de *ot.DecodeError
		if !errors.As(err, &de) || de.Index != tt.index {
			t.Errorf("Decode(%q) error %v: want DecodeError at index %d", tt.in, err, tt.index)
		}
		// The same through encoding/json, inside a frame, leaves the op as it was.
		var frame struct{ Op ot.Op }
		frame.Op = ot.Op{ot.Insert("keep")}
		if err := json.Unmarshal([]byte(`{"Op":`+tt.in+`}`), &frame); err == nil {
			t.Errorf("json.Unmarshal of frame with op %q succeeded", tt.in)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		op   ot.Op
		want error // nil for canonical
	}{
		{"empty", ot.Op{}, nil},
		{"canonical", ot.Op{ot.Retain(2), ot.Insert("x"), ot.Delete(1)}, nil},
		{"zero retain", ot.Op{ot.Retain(0)}, ot.ErrZeroLength},
		{"zero delete", ot.Op{ot.Delete(0)}, ot.ErrZeroLength},
		{"empty insert", ot.Op{ot.Insert("")}, ot.ErrZeroLength},
		{"bad utf8", ot.Op{ot.Insert("\xff")}, ot.ErrInvalidUTF8},
		{"two retains", ot.Op{ot.Retain(1), ot.Retain(1), ot.Insert("x")}, ot.ErrNotCanonical},
		{"two inserts", ot.Op{ot.Insert("a"), ot.Insert("b")}, ot.ErrNotCanonical},
		{"two deletes", ot.Op{ot.Delete(1), ot.Delete(1)}, ot.ErrNotCanonical},
		{"delete then insert", ot.Op{ot.Delete(1), ot.Insert("a")}, ot.ErrNotCanonical},
		{"trailing retain", ot.Op{ot.Insert("a"), ot.Retain(3)}, ot.ErrNotCanonical},
	}
	for _, tt := range tests {
		err := tt.op.Validate()
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Validate(%v) = %v, want %v", tt.name, tt.op, err, tt.want)
		}
	}
}

func TestBuilderAndSplice(t *testing.T) {
	var b ot.Builder
	op := b.Retain(0).Retain(2).Delete(1).Insert("x").Insert("").Delete(2).Insert("y").Retain(4).Op()
	if got, want := op.String(), `[2,"xy",-3]`; got != want {
		t.Errorf("builder = %s, want %s", got, want)
	}
	if op := b.Op(); len(op) != 0 || op == nil {
		t.Errorf("reset builder gave %#v, want an empty op", op)
	}
	tests := []struct {
		pos, del int
		ins      string
		want     string
	}{
		{0, 0, "a", `["a"]`},
		{3, 0, "a", `[3,"a"]`},
		{3, 2, "", `[3,-2]`},
		{3, 2, "ab", `[3,"ab",-2]`},
		{0, 1, "", `[-1]`},
		{4, 0, "", `[]`},
	}
	for _, tt := range tests {
		op := ot.Splice(tt.pos, tt.del, tt.ins)
		mustCanonical(t, "Splice", op)
		if got := op.String(); got != tt.want {
			t.Errorf("Splice(%d, %d, %q) = %s, want %s", tt.pos, tt.del, tt.ins, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	op, err := ot.Normalize(ot.Op{ot.Retain(1), ot.Retain(1), ot.Delete(1), ot.Insert("a"), ot.Retain(5)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := op.String(), `[2,"a",-1]`; got != want {
		t.Errorf("Normalize = %s, want %s", got, want)
	}
	if _, err := ot.Normalize(ot.Op{ot.Retain(0)}); !errors.Is(err, ot.ErrZeroLength) {
		t.Errorf("Normalize(zero) error = %v, want ErrZeroLength", err)
	}
	if _, err := ot.Normalize(ot.Op{ot.Insert("\xfe")}); !errors.Is(err, ot.ErrInvalidUTF8) {
		t.Errorf("Normalize(bad utf8) error = %v, want ErrInvalidUTF8", err)
	}
}

func TestLengths(t *testing.T) {
	op := parse(t, `[2,"héllo",-3,1,-1]`)
	if got := op.BaseLen(); got != 7 {
		t.Errorf("BaseLen = %d, want 7", got)
	}
	if got := op.Delta(); got != 1 {
		t.Errorf("Delta = %d, want 1", got)
	}
	if op.IsNoop() || !(ot.Op{}).IsNoop() {
		t.Errorf("IsNoop wrong")
	}
	c := op[1]
	if !c.IsInsert() || c.Len() != 5 || c.Text() != "héllo" || c.String() != `"héllo"` {
		t.Errorf("insert component = %v (len %d)", c, c.Len())
	}
	if d := op[2]; !d.IsDelete() || d.Len() != 3 || d.String() != "-3" {
		t.Errorf("delete component = %v", d)
	}
}
