package doc_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/trace"
	"github.com/tandemhq/tandem/ot"
)

// The editing traces (CC BY 4.0) live outside the repository, in
// ../shared/data/editing-traces beside the project, or wherever
// TANDEM_TRACES points. They are read in place, never copied in.

var traceCache sync.Map // name → *trace.Trace

// loadTrace reads a sequential trace, or skips the test or benchmark with a
// clear message when the traces are not on this machine.
func loadTrace(tb testing.TB, name string) *trace.Trace {
	tb.Helper()
	if t, ok := traceCache.Load(name); ok {
		return t.(*trace.Trace)
	}
	dir, err := trace.Dir()
	if err != nil {
		tb.Skip(err.Error())
	}
	t, err := trace.Load(dir, name)
	if err != nil {
		tb.Fatalf("read trace %s: %v", name, err)
	}
	traceCache.Store(name, t)
	return t
}

var sequentialTraces = trace.Sequential

// addBenchComments anchors three comments in d, as a document under review
// carries, so that replays pay for keeping anchors in place.
func addBenchComments(tb testing.TB, d *doc.Document) {
	n := d.Len()
	for i, r := range []ot.Range{{From: 2, To: 5}, {From: n / 2, To: n/2 + 7}, {From: n - 3, To: n}} {
		if err := d.AddComment(doc.Comment{ID: fmt.Sprint("c", i), Range: r}); err != nil {
			tb.Fatal(err)
		}
	}
}

// replay applies every patch of t as an ot op to a fresh Document, with
// comments anchored once the text is long enough.
func replay(tb testing.TB, t *trace.Trace) *doc.Document {
	d := doc.New(t.Name)
	for i, p := range t.Patches {
		if i == 1000 {
			addBenchComments(tb, d)
		}
		if err := d.Apply(ot.Splice(p.Pos, p.Del, p.Ins)); err != nil {
			tb.Fatalf("%s patch %d %+v: %v", t.Name, i, p, err)
		}
	}
	return d
}

func TestEditingTraces(t *testing.T) {
	for _, name := range sequentialTraces {
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, name)
			d := replay(t, tr)
			if got := d.Content(); got != tr.EndContent {
				t.Fatalf("content after %d patches differs from endContent (len %d vs %d)", len(tr.Patches), len(got), len(tr.EndContent))
			}
			if d.Version() != len(tr.Patches) {
				t.Errorf("version %d, want %d", d.Version(), len(tr.Patches))
			}
			for _, c := range d.Comments() {
				if _, err := d.Slice(c.Range); err != nil || c.Version != d.Version() {
					t.Errorf("comment %s ended at %v (v%d): %v", c.ID, c.Range, c.Version, err)
				}
			}
		})
	}
}

// BenchmarkEditingTrace replays each real trace through the document model:
// every patch becomes an ot op (ot.Splice) applied to a doc.Document that
// keeps three comment anchors in place. One iteration is a whole trace;
// ns/edit is the figure to quote.
func BenchmarkEditingTrace(b *testing.B) {
	for _, name := range sequentialTraces {
		b.Run(name, func(b *testing.B) {
			tr := loadTrace(b, name)
			var d *doc.Document
			b.ReportAllocs()
			for b.Loop() {
				d = replay(b, tr)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.Patches)), "ns/edit")
			if d.Content() != tr.EndContent {
				b.Fatal("content differs from endContent")
			}
		})
	}
}

// BenchmarkEditingTraceRuneSplice is the naive baseline for the same traces:
// a []rune spliced in place per edit, no ops, no anchors.
func BenchmarkEditingTraceRuneSplice(b *testing.B) {
	for _, name := range sequentialTraces {
		b.Run(name, func(b *testing.B) {
			tr := loadTrace(b, name)
			var text []rune
			for b.Loop() {
				text = text[:0]
				for _, p := range tr.Patches {
					text = slices.Replace(text, p.Pos, p.Pos+p.Del, []rune(p.Ins)...)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.Patches)), "ns/edit")
			if string(text) != tr.EndContent {
				b.Fatal("content differs from endContent")
			}
		})
	}
}
