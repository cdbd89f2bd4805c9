package doc_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func TestDiffOp(t *testing.T) {
	tests := []struct{ old, new, want string }{
		{"", "", `[]`},
		{"", "hello", `["hello"]`},
		{"hello", "", `[-5]`},
		{"hello world", "hello brave world", `[6,"brave "]`},
		{"héllo 😀 wörld", "héllo 🎉 wörld", `[6,"🎉",-1]`},
	}
	for _, tt := range tests {
		op := doc.DiffOp(tt.old, tt.new)
		if got := op.String(); got != tt.want {
			t.Errorf("DiffOp(%q, %q) = %s, want %s", tt.old, tt.new, got, tt.want)
		}
	}
	// Random pairs: the op always turns old into new and is canonical.
	r := rand.New(rand.NewPCG(9, 9))
	words := []string{"a", "bb", "é", "😀", " ", "\n", "漢"}
	gen := func() string {
		var sb strings.Builder
		for range r.IntN(40) {
			sb.WriteString(words[r.IntN(len(words))])
		}
		return sb.String()
	}
	for range 2000 {
		old, new := gen(), gen()
		op := doc.DiffOp(old, new)
		if err := op.Validate(); err != nil {
			t.Fatalf("DiffOp(%q, %q) = %v: %v", old, new, op, err)
		}
		got, err := ot.Apply(old, op)
		if err != nil || got != new {
			t.Fatalf("Apply(%q, DiffOp) = %q, %v; want %q", old, got, err, new)
		}
	}
}

func TestDiff(t *testing.T) {
	changes, patch := doc.Diff("the quick fox", "the slow fox")
	var ins, del string
	for _, c := range changes {
		switch c.Kind {
		case "insert":
			ins += c.Text
		case "delete":
			del += c.Text
		}
	}
	if ins != "slow" || del != "quick" {
		t.Errorf("changes %+v: inserted %q deleted %q", changes, ins, del)
	}
	if !strings.Contains(patch, "@@") || !strings.Contains(patch, "-quick") || !strings.Contains(patch, "+slow") {
		t.Errorf("patch %q", patch)
	}
}
