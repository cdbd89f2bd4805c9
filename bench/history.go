package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/trace"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/storage"
)

// HistoryConfig is the history scenario: a real editing trace replayed
// through a server it starts, one op per edit from Authors clients taking
// turns (runs of 1 to 200 edits), each op with the client's uid and the
// server's time; then the server stops, the data file is compacted
// (storage.CompactFile: history packed, free pages dropped), and the whole
// history is read back from the copy.
type HistoryConfig struct {
	Dir     string // the traces folder; empty finds it as the tests do
	Trace   string // the trace; empty: automerge-paper
	Edits   int    // replay only the first Edits edits; 0: all
	Authors int    // clients taking turns; 0: 3
	Reads   int    // times the history is read back (the best counts); 0: 10
}

// History runs the history scenario. The server runs without fsync: the
// scenario measures what the history costs on disk and to read, and the
// file holds the same bytes either way.
func History(ctx context.Context, opts Options, cfg HistoryConfig) (*Result, error) {
	if opts.Server != "" {
		return nil, errors.New("history measures the data file of a server it starts itself: run it without --server")
	}
	if cfg.Trace == "" {
		cfg.Trace = "automerge-paper"
	}
	if cfg.Authors <= 0 {
		cfg.Authors = 3
	}
	if cfg.Reads <= 0 {
		cfg.Reads = 10
	}
	begin := time.Now()
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = trace.Dir(); err != nil {
			return nil, err
		}
	}
	tr, err := trace.Load(dir, cfg.Trace)
	if err != nil {
		return nil, err
	}
	patches := tr.Patches
	if cfg.Edits > 0 && cfg.Edits < len(patches) {
		patches = patches[:cfg.Edits]
	}
	res := newResult("history", map[string]any{"trace": cfg.Trace, "edits": len(patches), "authors": cfg.Authors})

	data, err := os.MkdirTemp("", "tandem-bench-history-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	scfg := server.DefaultConfig()
	scfg.Addr = "127.0.0.1:0"
	scfg.Data = data
	scfg.NoSync = true
	scfg.File.Limits.FrameRate = 1e6
	scfg.File.Limits.OpRate = 1e6
	scfg.File.Limits.OpBurst = 1e6
	srv := server.New(scfg, opts.Log)
	if err := srv.Run(ctx); err != nil {
		return nil, err
	}
	closed := false
	closeServer := func() error {
		if closed {
			return nil
		}
		closed = true
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return srv.Close(sctx)
	}
	defer closeServer()
	path := srv.DB.Path()
	wsURL := "ws://" + srv.Addr() + "/ws"

	// The authors, each with the document open and a signal on every
	// change, so that the next author waits until it has seen the last op.
	const docID = "history"
	type author struct {
		c       *client.Client
		d       *client.Document
		changed chan struct{}
	}
	authors := make([]*author, cfg.Authors)
	for i := range authors {
		c, err := client.Dial(ctx, client.Config{URL: wsURL, Token: opts.Token, User: fmt.Sprint("author", i)})
		if err != nil {
			return nil, fmt.Errorf("history: connect: %w", err)
		}
		defer c.Close()
		d, err := c.OpenDoc(ctx, docID)
		if err != nil {
			return nil, fmt.Errorf("history: open: %w", err)
		}
		a := &author{c: c, d: d, changed: make(chan struct{}, 1)}
		d.OnChange(func(client.Change) {
			select {
			case a.changed <- struct{}{}:
			default:
			}
		})
		authors[i] = a
	}

	start := time.Now()
	r := rand.New(rand.NewPCG(17, 3))
	cur, run := authors[0], 0
	for i, p := range patches {
		if run == 0 {
			next := authors[r.IntN(len(authors))]
			for next.d.Version() < i { // it must have seen every earlier op
				select {
				case <-next.changed:
				case <-next.d.Done():
					return nil, fmt.Errorf("history: the document ended: %w", next.d.Err())
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Second):
				}
			}
			cur, run = next, 1+r.IntN(200)
		}
		run--
		if err := cur.d.Submit(ot.Splice(p.Pos, p.Del, p.Ins)); err != nil {
			return nil, fmt.Errorf("history: edit %d: %w", i, err)
		}
		if err := cur.d.WaitSynced(ctx); err != nil {
			return nil, fmt.Errorf("history: edit %d: %w", i, err)
		}
	}
	replay := time.Since(start)
	if v := cur.d.Version(); v != len(patches) {
		res.fail("the document is at v%d after %d edits (edits were composed)", v, len(patches))
	}
	text := cur.d.Text()
	if len(patches) == len(tr.Patches) && text != tr.EndContent {
		res.fail("the replayed text differs from the trace's end content")
	}
	for _, a := range authors {
		_ = a.c.Close()
	}
	if err := closeServer(); err != nil {
		return nil, fmt.Errorf("history: stop the server: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}

	compacted := filepath.Join(data, "compacted.db")
	t0 := time.Now()
	st, err := storage.CompactFile(path, compacted, storage.Config{})
	if err != nil {
		return nil, fmt.Errorf("history: compact: %w", err)
	}
	compactTime := time.Since(t0)

	// Read the whole history back from the copy, as time travel, diff and
	// export do.
	db, err := storage.Open(compacted, storage.Config{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	info, err := db.GetDoc(docID)
	if err != nil {
		return nil, err
	}
	best := time.Duration(1<<63 - 1)
	for range cfg.Reads {
		t0 := time.Now()
		ops, err := db.Ops(docID, 0, info.Version)
		el := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("history: read back: %w", err)
		}
		if len(ops) != info.Version || ops[len(ops)-1].UID == "" || ops[len(ops)-1].Time.IsZero() {
			res.fail("read back %d ops of %d, or without uid and time", len(ops), info.Version)
		}
		best = min(best, el)
	}
	if s, err := db.ContentAt(docID, info.Version); err != nil || s != text {
		res.fail("the compacted copy's content differs from the replay (%v)", err)
	}

	n := float64(info.Version)
	res.Figures["ops"] = n
	res.Figures["replay_ops_per_sec"] = n / replay.Seconds()
	res.Figures["data_file_bytes"] = float64(fi.Size())
	res.Figures["compacted_bytes"] = float64(st.After)
	res.Figures["bytes_per_op"] = float64(st.After) / n
	res.Figures["compact_ms"] = float64(compactTime.Microseconds()) / 1000
	res.Figures["read_ms"] = float64(best.Microseconds()) / 1000
	res.Figures["read_ns_per_op"] = float64(best.Nanoseconds()) / n
	res.Notes = append(res.Notes, "server without fsync (the file holds the same bytes); bytes_per_op = the compacted data file's bytes / ops; read = DB.Ops over the whole history of the compacted copy, best of the reads")
	res.Seconds = time.Since(begin).Seconds()
	return res, nil
}
