package doc_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func mustApply(t testing.TB, d *doc.Document, op ot.Op) {
	t.Helper()
	if err := d.Apply(op); err != nil {
		t.Fatalf("Apply(%v) at v%d: %v", op, d.Version(), err)
	}
}

func TestDocumentApply(t *testing.T) {
	d := doc.New("d1")
	if d.ID() != "d1" || d.Version() != 0 || d.Content() != "" {
		t.Fatalf("new document: id %q v%d %q", d.ID(), d.Version(), d.Content())
	}
	mustApply(t, d, ot.Splice(0, 0, "héllo wörld 😀"))
	mustApply(t, d, ot.Splice(6, 5, "漢字"))
	if got, want := d.Content(), "héllo 漢字 😀"; got != want {
		t.Errorf("content %q, want %q", got, want)
	}
	if d.Version() != 2 || d.Len() != utf8.RuneCountInString(d.Content()) {
		t.Errorf("v%d len %d", d.Version(), d.Len())
	}
	if s := d.Snapshot(); s.Version != 2 || s.Content != d.Content() {
		t.Errorf("snapshot %+v", s)
	}
}

func TestDocumentRejectsBadOps(t *testing.T) {
	tests := []struct {
		name string
		op   ot.Op
		want error
	}{
		{"past the end", ot.Op{ot.Retain(20), ot.Insert("x")}, ot.ErrPastEnd},
		{"delete past the end", ot.Op{ot.Retain(3), ot.Delete(10)}, ot.ErrPastEnd},
		{"zero retain", ot.Op{ot.Retain(0), ot.Insert("x")}, ot.ErrZeroLength},
		{"empty insert", ot.Op{ot.Insert("")}, ot.ErrZeroLength},
		{"invalid UTF-8", ot.Op{ot.Insert("a\xffb")}, ot.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		d := doc.New("d")
		mustApply(t, d, ot.Splice(0, 0, "some text"))
		if err := d.AddComment(doc.Comment{ID: "c", Range: ot.Range{From: 5, To: 9}}); err != nil {
			t.Fatal(err)
		}
		err := d.Apply(tt.op)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Apply(%v) = %v, want %v", tt.name, tt.op, err, tt.want)
		}
		c, _ := d.Comment("c")
		if d.Content() != "some text" || d.Version() != 1 || c.Range != (ot.Range{From: 5, To: 9}) {
			t.Errorf("%s: document changed: %q v%d comment %v", tt.name, d.Content(), d.Version(), c.Range)
		}
	}
}

func TestComments(t *testing.T) {
	d := doc.New("d")
	mustApply(t, d, ot.Splice(0, 0, "The quick brown fox"))
	word := ot.Range{From: 4, To: 9} // "quick"
	if err := d.AddComment(doc.Comment{ID: "c1", Range: word, Text: "fast?"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddComment(doc.Comment{ID: "c1", Range: word}); !errors.Is(err, doc.ErrCommentExists) {
		t.Errorf("duplicate id: %v", err)
	}
	for _, r := range []ot.Range{{From: -1, To: 2}, {From: 3, To: 2}, {From: 0, To: 20}} {
		if err := d.AddComment(doc.Comment{ID: "bad", Range: r}); !errors.Is(err, doc.ErrBadRange) {
			t.Errorf("AddComment range %v: %v, want ErrBadRange", r, err)
		}
	}
	mustApply(t, d, ot.Splice(0, 0, "¡"))  // before: moves
	mustApply(t, d, ot.Splice(5, 0, "X"))  // at the start: stays outside
	mustApply(t, d, ot.Splice(11, 0, "Y")) // at the end: stays outside
	c, _ := d.Comment("c1")
	if got, _ := d.Slice(c.Range); got != "quick" || c.Version != d.Version() {
		t.Fatalf("comment on %q (range %v, v%d), want on \"quick\" at v%d; text %q", got, c.Range, c.Version, d.Version(), d.Content())
	}
	c.Resolved, c.Text = true, "ok"
	if err := d.UpdateComment(c); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateComment(doc.Comment{ID: "nope"}); !errors.Is(err, doc.ErrCommentNotFound) {
		t.Errorf("update missing: %v", err)
	}
	// Deleting the word collapses the comment to a point and keeps it.
	mustApply(t, d, ot.Splice(c.Range.From-1, c.Range.To-c.Range.From+2, ""))
	c, ok := d.Comment("c1")
	if !ok || c.Range.From != c.Range.To || !c.Resolved {
		t.Fatalf("after deleting its text the comment is %+v (ok %v)", c, ok)
	}
	if err := d.RemoveComment("c1"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveComment("c1"); !errors.Is(err, doc.ErrCommentNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if len(d.Comments()) != 0 {
		t.Errorf("comments left: %v", d.Comments())
	}
}

// TestCommentStaysOnItsWord edits around a commented word at random, with
// the typing model, and checks the comment stays on exactly that word.
func TestCommentStaysOnItsWord(t *testing.T) {
	d := doc.New("d")
	mustApply(t, d, ot.Splice(0, 0, strings.Repeat("lorem ipsum ", 20)+"TARGET"+strings.Repeat(" dolor sit", 20)))
	from := strings.Index(d.Content(), "TARGET")
	if err := d.AddComment(doc.Comment{ID: "c", Range: ot.Range{From: from, To: from + 6}}); err != nil {
		t.Fatal(err)
	}
	typist := doc.NewTypist(5)
	for i := 0; i < 2000; i++ {
		op := typist.Next(d.Len())
		c, _ := d.Comment("c")
		// Only edits that leave the word alone: the typist edits elsewhere.
		if touches(op, c.Range) {
			continue
		}
		mustApply(t, d, op)
	}
	c, _ := d.Comment("c")
	if got, _ := d.Slice(c.Range); got != "TARGET" {
		t.Fatalf("comment now on %q at %v", got, c.Range)
	}
}

// touches reports whether op inserts or deletes inside or at the edges of r.
func touches(op ot.Op, r ot.Range) bool {
	pos := 0
	for _, c := range op {
		switch {
		case c.IsRetain():
			pos += c.Len()
		case c.IsInsert():
			if pos >= r.From && pos <= r.To {
				return true
			}
		default:
			if pos < r.To && pos+c.Len() > r.From {
				return true
			}
			pos += c.Len()
		}
	}
	return false
}

func TestReplayAndRestore(t *testing.T) {
	ops, final := doc.SyntheticHistory(11, 3000)
	d := doc.New("d")
	recs := make([]doc.OpRecord, len(ops))
	contents := []string{""}
	for i, op := range ops {
		mustApply(t, d, op)
		recs[i] = doc.OpRecord{Version: i, Op: op, UID: "u" + string(rune('a'+i%26))}
		contents = append(contents, d.Content())
	}
	if d.Content() != final {
		t.Fatalf("SyntheticHistory final text differs from the replay")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		from := r.IntN(len(ops) + 1)
		to := from + r.IntN(len(ops)-from+1)
		got, err := doc.Replay(doc.Snapshot{Version: from, Content: contents[from]}, recs, to)
		if err != nil || got != contents[to] {
			t.Fatalf("Replay from v%d to v%d: %v (match %v)", from, to, err, got == contents[to])
		}
	}
	rd, err := doc.Restore("d", doc.Snapshot{Version: 1000, Content: contents[1000]}, recs)
	if err != nil || rd.Content() != final || rd.Version() != len(ops) {
		t.Fatalf("Restore: %v", err)
	}
	// Gaps and bad targets are errors.
	if _, err := doc.Replay(doc.Snapshot{Version: 5, Content: contents[5]}, recs[10:], 20); !errors.Is(err, doc.ErrVersionGap) {
		t.Errorf("gap: %v", err)
	}
	if _, err := doc.Replay(doc.Snapshot{Version: 5, Content: contents[5]}, recs, 4); !errors.Is(err, doc.ErrVersionGap) {
		t.Errorf("target before snapshot: %v", err)
	}
	if _, err := doc.Replay(doc.Snapshot{Version: 5, Content: contents[5]}, recs[:8], 20); !errors.Is(err, doc.ErrVersionGap) {
		t.Errorf("ops end early: %v", err)
	}
	if _, err := doc.Restore("d", doc.Snapshot{Version: 5, Content: contents[5]}, recs[10:]); !errors.Is(err, doc.ErrVersionGap) {
		t.Errorf("Restore with a gap: %v", err)
	}
	bad := []doc.OpRecord{{Version: 0, Op: ot.Op{ot.Delete(5)}}}
	if _, err := doc.Replay(doc.Snapshot{}, bad, 1); !errors.Is(err, ot.ErrPastEnd) {
		t.Errorf("op that does not apply: %v", err)
	}
	// CatchUp moves a comment made at an old version to the head.
	c := doc.Comment{ID: "c", Range: ot.Range{From: 0, To: 0}, Version: 2000}
	cu, err := doc.CatchUp(c, recs)
	if err != nil || cu.Version != len(ops) || cu.Range.To > len([]rune(final)) {
		t.Fatalf("CatchUp: %+v, %v", cu, err)
	}
	if _, err := doc.CatchUp(doc.Comment{Version: 3}, recs[10:]); !errors.Is(err, doc.ErrVersionGap) {
		t.Errorf("CatchUp with a gap: %v", err)
	}
}

func TestTypistIsRealistic(t *testing.T) {
	ops, final := doc.SyntheticHistory(3, 20000)
	var inserts, deletes, multi, nonASCII int
	for _, op := range ops {
		if op.IsNoop() {
			t.Fatal("typist made a no-op")
		}
		for _, c := range op {
			switch {
			case c.IsInsert():
				inserts++
				if c.Len() > 1 {
					multi++
				}
				if len(c.Text()) != c.Len() {
					nonASCII++
				}
			case c.IsDelete():
				deletes++
			}
		}
	}
	if inserts < len(ops)/2 || deletes < len(ops)/20 || multi == 0 || nonASCII == 0 {
		t.Errorf("inserts %d deletes %d multi-char %d non-ASCII %d of %d ops", inserts, deletes, multi, nonASCII, len(ops))
	}
	if utf8.RuneCountInString(final) < 1000 {
		t.Errorf("final text only %d code points", utf8.RuneCountInString(final))
	}
	// Deterministic per seed.
	again, final2 := doc.SyntheticHistory(3, 20000)
	if final2 != final || !again[1234].Equal(ops[1234]) {
		t.Error("same seed, different history")
	}
}
