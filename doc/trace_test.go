package doc_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// The editing traces (CC BY 4.0) live outside the repository, in
// ../shared/data/editing-traces beside the project, or wherever
// TANDEM_TRACES points. They are read in place, never copied in.

// patch is one edit of a sequential trace: at pos, delete del code points,
// then insert ins.
type patch struct {
	pos, del int
	ins      string
}

type trace struct {
	name       string
	endContent string
	patches    []patch
}

// tracesDir returns the traces folder, or "" when it is not there.
func tracesDir() string {
	if d := os.Getenv("TANDEM_TRACES"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for { // find the module root, then look beside it
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "data", "editing-traces")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

var traceCache sync.Map // name → *trace

// loadTrace reads a sequential trace, or skips the test or benchmark with a
// clear message when the traces are not on this machine.
func loadTrace(tb testing.TB, name string) *trace {
	tb.Helper()
	if t, ok := traceCache.Load(name); ok {
		return t.(*trace)
	}
	dir := tracesDir()
	if dir == "" {
		tb.Skip("editing traces not found: set TANDEM_TRACES or put shared/data/editing-traces beside the project")
	}
	t, err := readTrace(filepath.Join(dir, name+".json.gz"))
	if err != nil {
		tb.Fatalf("read trace %s: %v", name, err)
	}
	t.name = name
	traceCache.Store(name, t)
	return t
}

func readTrace(path string) (*trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var raw struct {
		EndContent string `json:"endContent"`
		Txns       []struct {
			Patches [][3]any `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return nil, err
	}
	t := &trace{endContent: raw.EndContent}
	for i, txn := range raw.Txns {
		for _, p := range txn.Patches {
			pos, ok1 := p[0].(float64)
			del, ok2 := p[1].(float64)
			ins, ok3 := p[2].(string)
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("txn %d: bad patch %v", i, p)
			}
			t.patches = append(t.patches, patch{int(pos), int(del), ins})
		}
	}
	return t, nil
}

var sequentialTraces = []string{"automerge-paper", "seph-blog1", "sveltecomponent"}

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
func replay(tb testing.TB, t *trace) *doc.Document {
	d := doc.New(t.name)
	for i, p := range t.patches {
		if i == 1000 {
			addBenchComments(tb, d)
		}
		if err := d.Apply(ot.Splice(p.pos, p.del, p.ins)); err != nil {
			tb.Fatalf("%s patch %d %+v: %v", t.name, i, p, err)
		}
	}
	return d
}

func TestEditingTraces(t *testing.T) {
	for _, name := range sequentialTraces {
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, name)
			d := replay(t, tr)
			if got := d.Content(); got != tr.endContent {
				t.Fatalf("content after %d patches differs from endContent (len %d vs %d)", len(tr.patches), len(got), len(tr.endContent))
			}
			if d.Version() != len(tr.patches) {
				t.Errorf("version %d, want %d", d.Version(), len(tr.patches))
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
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.patches)), "ns/edit")
			if d.Content() != tr.endContent {
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
				for _, p := range tr.patches {
					text = slices.Replace(text, p.pos, p.pos+p.del, []rune(p.ins)...)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tr.patches)), "ns/edit")
			if string(text) != tr.endContent {
				b.Fatal("content differs from endContent")
			}
		})
	}
}
