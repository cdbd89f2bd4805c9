// Package trace reads the real editing traces Tandem's tests and benchmarks
// replay (josephg/editing-traces, CC BY 4.0; see their README). The traces
// live outside the repository, in ../shared/data/editing-traces beside the
// project or wherever $TANDEM_TRACES points, and are read in place.
package trace

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Sequential lists the sequential traces, largest first.
var Sequential = []string{"automerge-paper", "seph-blog1", "sveltecomponent"}

// ErrNoTraces: the traces folder was not found.
var ErrNoTraces = errors.New("editing traces not found: set TANDEM_TRACES or put shared/data/editing-traces beside the project")

// Patch is one edit: at Pos, delete Del code points, then insert Ins.
type Patch struct {
	Pos, Del int
	Ins      string
}

// Trace is a sequential trace: its patches in order and the text they
// leave.
type Trace struct {
	Name       string
	EndContent string
	Patches    []Patch
}

// Dir returns the traces folder: $TANDEM_TRACES, or shared/data/editing-
// traces beside the module root found from the working directory upwards.
func Dir() (string, error) {
	if d := os.Getenv("TANDEM_TRACES"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "data", "editing-traces")
			if _, err := os.Stat(d); err == nil {
				return d, nil
			}
			return "", ErrNoTraces
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoTraces
		}
		dir = parent
	}
}

// Load reads the named sequential trace from dir.
func Load(dir, name string) (*Trace, error) {
	f, err := os.Open(filepath.Join(dir, name+".json.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	var raw struct {
		EndContent string `json:"endContent"`
		Txns       []struct {
			Patches [][3]any `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	t := &Trace{Name: name, EndContent: raw.EndContent}
	for i, txn := range raw.Txns {
		for _, p := range txn.Patches {
			pos, ok1 := p[0].(float64)
			del, ok2 := p[1].(float64)
			ins, ok3 := p[2].(string)
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("trace %s txn %d: bad patch %v", name, i, p)
			}
			t.Patches = append(t.Patches, Patch{Pos: int(pos), Del: int(del), Ins: ins})
		}
	}
	return t, nil
}
