package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/trace"
	"github.com/tandemhq/tandem/ot"
)

// TraceConfig is the trace scenario: each real editing trace replayed
// through the document model (every patch an ot op applied to a
// doc.Document keeping three comment anchors), Rounds times, against a
// naive []rune splice measured in the same run.
type TraceConfig struct {
	Dir    string // the traces folder; empty finds it as the tests do
	Rounds int
	// Baseline also times the []rune splice (slow: about a second a round
	// for automerge-paper).
	Baseline bool
}

// Trace runs the trace scenario.
func Trace(ctx context.Context, cfg TraceConfig) (*Result, error) {
	res := newResult("trace", map[string]any{"rounds": cfg.Rounds})
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = trace.Dir(); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for _, name := range trace.Sequential {
		tr, err := trace.Load(dir, name)
		if err != nil {
			return nil, err
		}
		best := time.Duration(1<<63 - 1)
		for range max(cfg.Rounds, 1) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t0 := time.Now()
			d, err := replayTrace(tr)
			el := time.Since(t0)
			if err != nil {
				return nil, err
			}
			if d.Content() != tr.EndContent {
				res.fail("%s: content differs from endContent", name)
			}
			best = min(best, el)
		}
		res.Figures[name+"_ms"] = float64(best.Microseconds()) / 1000
		res.Figures[name+"_ns_per_edit"] = float64(best.Nanoseconds()) / float64(len(tr.Patches))
		if cfg.Baseline {
			t0 := time.Now()
			var text []rune
			for _, p := range tr.Patches {
				text = slices.Replace(text, p.Pos, p.Pos+p.Del, []rune(p.Ins)...)
			}
			el := time.Since(t0)
			if string(text) != tr.EndContent {
				res.fail("%s: baseline content differs", name)
			}
			res.Figures[name+"_rune_splice_ns_per_edit"] = float64(el.Nanoseconds()) / float64(len(tr.Patches))
		}
	}
	res.Notes = append(res.Notes, "best of the rounds; ops built with ot.Splice and applied to doc.Document with three comment anchors")
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func replayTrace(tr *trace.Trace) (*doc.Document, error) {
	d := doc.New(tr.Name)
	for i, p := range tr.Patches {
		if i == 1000 {
			n := d.Len()
			for j, r := range []ot.Range{{From: 2, To: 5}, {From: n / 2, To: n/2 + 7}, {From: n - 3, To: n}} {
				if err := d.AddComment(doc.Comment{ID: fmt.Sprint("c", j), Range: r}); err != nil {
					return nil, err
				}
			}
		}
		if err := d.Apply(ot.Splice(p.Pos, p.Del, p.Ins)); err != nil {
			return nil, fmt.Errorf("%s patch %d: %w", tr.Name, i, err)
		}
	}
	return d, nil
}
