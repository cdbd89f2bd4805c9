package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemhq/tandem/client"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/storage"
)

// EditorsConfig is the editors scenario: Clients clients on each of Docs
// documents, each behaving like a real editor: one op in flight, later
// edits composed while it waits, random single-character inserts and
// deletes at random places of its own copy. Rate is ops per second per
// client (open loop); 0 edits as fast as acks allow (closed loop: the next
// edit waits for the previous one's ack).
type EditorsConfig struct {
	Docs, Clients int
	Rate          float64
	Duration      time.Duration
	// Nodes > 1 starts a cluster of that many nodes in this process on an
	// embedded NATS server with JetStream (cluster.go) and spreads each
	// document's clients over them (ignored with a running server).
	Nodes int
}

// editorStats is one client's tally; its own goroutines write it under mu.
type editorStats struct {
	mu     sync.Mutex
	acks   []time.Duration // submit → acknowledged (all pending acked)
	remote []time.Duration // server apply → arrival here, sampled
	edits  int
}

// Editors runs the editors scenario.
func Editors(ctx context.Context, opts Options, cfg EditorsConfig) (*Result, error) {
	mode := "closed"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("%.0f/s each", cfg.Rate)
	}
	res := newResult("editors", map[string]any{"docs": cfg.Docs, "clients": cfg.Clients, "loop": mode,
		"duration": cfg.Duration.String(), "nosync": opts.NoSync})
	raiseFileLimit()
	var tg *target
	var stop func()
	var err error
	if cfg.Nodes > 1 && opts.Server == "" {
		res.Params["nodes"], res.Params["store"] = cfg.Nodes, "jetstream"
		tg, stop, err = startCluster(ctx, opts, cfg.Nodes)
	} else {
		if opts.Server == "" {
			res.Params["nodes"], res.Params["store"] = 1, "bbolt"
		}
		tg, stop, err = start(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	defer stop()
	prefix := fmt.Sprintf("bench-%d", time.Now().UnixNano())

	type editor struct {
		c     *client.Client
		d     *client.Document
		doc   int
		stats *editorStats
	}
	eds := make([]*editor, 0, cfg.Docs*cfg.Clients)
	defer func() {
		for _, e := range eds {
			_ = e.c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	sem := make(chan struct{}, 32)
	for d := range cfg.Docs {
		for i := range cfg.Clients {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := client.Dial(ctx, client.Config{URL: tg.wsFor(i), Token: opts.Token, User: fmt.Sprintf("ed%d-%d", d, i)})
				var doc *client.Document
				if err == nil {
					doc, err = c.OpenDoc(ctx, fmt.Sprintf("%s-%d", prefix, d))
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if c != nil {
						_ = c.Close()
					}
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				e := &editor{c: c, d: doc, doc: d, stats: &editorStats{}}
				st := e.stats
				var n int
				doc.OnChange(func(ch client.Change) {
					n++
					if n%8 != 0 || ch.Kind != client.ChangeRemote || ch.Time.IsZero() {
						return
					}
					lat := time.Since(ch.Time)
					st.mu.Lock()
					st.remote = append(st.remote, lat)
					st.mu.Unlock()
				})
				eds = append(eds, e)
			}()
		}
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("editors: connect: %w", firstErr)
	}
	version0 := make(map[int]int)
	for _, e := range eds {
		version0[e.doc] = max(version0[e.doc], e.d.Version())
	}

	var commits0 storage.Stats
	var acks0 []uint64
	if tg.srv != nil && tg.srv.DB != nil {
		commits0 = tg.srv.DB.Stats()
	}
	conflicts0 := tg.conflicts()
	for _, s := range tg.servers() {
		acks0 = addCounts(acks0, s.Metrics.AckLatency)
	}
	cpu := startCPU(tg)
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	for k, e := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(k), 42))
			edit := func() {
				err := e.d.Edit(func(text client.LocalText) ot.Op {
					n := text.Len()
					if n > 0 && r.IntN(3) == 0 {
						return ot.Splice(r.IntN(n), 1, "")
					}
					return ot.Splice(r.IntN(n+1), 0, string(rune('a'+r.IntN(26))))
				})
				if err == nil {
					e.stats.mu.Lock()
					e.stats.edits++
					e.stats.mu.Unlock()
				}
			}
			if cfg.Rate <= 0 { // closed loop
				for lctx.Err() == nil {
					t0 := time.Now()
					edit()
					if e.d.WaitSynced(lctx) != nil {
						return
					}
					e.stats.mu.Lock()
					e.stats.acks = append(e.stats.acks, time.Since(t0))
					e.stats.mu.Unlock()
				}
				return
			}
			// Open loop: edit at the rate whatever the acks do; a watcher
			// times each batch from its first edit to its ack.
			var pmu sync.Mutex
			var pendingSince time.Time
			watch := make(chan struct{}, 1)
			go func() {
				for range watch {
					if e.d.WaitSynced(ctx) != nil {
						return
					}
					pmu.Lock()
					if !pendingSince.IsZero() {
						e.stats.mu.Lock()
						e.stats.acks = append(e.stats.acks, time.Since(pendingSince))
						e.stats.mu.Unlock()
						pendingSince = time.Time{}
					}
					pmu.Unlock()
				}
			}()
			defer close(watch)
			interval := time.Duration(float64(time.Second) / cfg.Rate)
			next := time.Now().Add(time.Duration(r.Int64N(int64(interval))))
			for {
				select {
				case <-lctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(interval)
				pmu.Lock()
				if pendingSince.IsZero() {
					pendingSince = time.Now()
				}
				pmu.Unlock()
				edit()
				select {
				case watch <- struct{}{}:
				default:
				}
			}
		}()
	}
	wg.Wait()
	loadSecs := time.Since(start).Seconds()
	if tg.srv != nil && tg.srv.DB != nil {
		// The started server's group commit over the load window.
		st := tg.srv.DB.Stats()
		if n := st.Commits - commits0.Commits; n > 0 {
			res.Figures["storage_commits_per_sec"] = float64(n) / loadSecs
			res.Figures["storage_writes_per_commit"] = float64(st.Requests-commits0.Requests) / float64(n)
			res.Figures["storage_commit_avg_ms"] = float64((st.CommitTime - commits0.CommitTime).Microseconds()) / 1000 / float64(n)
			res.Figures["storage_busy_pct"] = (st.CommitTime - commits0.CommitTime).Seconds() / loadSecs * 100
			res.Figures["storage_journal_drains"] = float64(st.JournalDrains - commits0.JournalDrains)
		}
	}
	if servers := tg.servers(); len(servers) > 0 {
		// The servers' own view of the ack latency, from the op's arrival
		// at its document to the ack (the rest is the network and the
		// clients): the histogram bucket holding the percentile.
		var acks1 []uint64
		var bounds []float64
		for _, s := range servers {
			acks1 = addCounts(acks1, s.Metrics.AckLatency)
		}
		_, bounds = histogram(servers[0].Metrics.AckLatency)
		for i := range acks1 {
			if i < len(acks0) {
				acks1[i] -= acks0[i]
			}
		}
		res.Figures["server_ack_p50_le_ms"] = bucketBound(acks1, bounds, 0.50) * 1000
		res.Figures["server_ack_p99_le_ms"] = bucketBound(acks1, bounds, 0.99) * 1000
	}

	// At rest every replica must equal the server's text.
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	for _, e := range eds {
		if err := e.d.WaitSynced(wctx); err != nil {
			res.fail("client did not settle: %v", err)
			break
		}
	}
	cpu.stop() // every op of the load is applied and broadcast by now
	var committed int
	for d := range cfg.Docs {
		id := fmt.Sprintf("%s-%d", prefix, d)
		check, err := client.Dial(wctx, client.Config{URL: tg.wsFor(0), Token: opts.Token, User: "checker"})
		if err != nil {
			return nil, err
		}
		sd, err := check.OpenDoc(wctx, id)
		if err != nil {
			_ = check.Close()
			return nil, err
		}
		want, v := sd.Text(), sd.Version()
		_ = check.Close()
		committed += v - version0[d]
		for _, e := range eds {
			if e.doc != d {
				continue
			}
			for e.d.Version() < v && wctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if got := e.d.Text(); got != want {
				res.fail("doc %d: a client has %d code points at v%d, the server %d at v%d", d, len([]rune(got)), e.d.Version(), len([]rune(want)), v)
				break
			}
		}
	}

	var acks, remote []time.Duration
	edits := 0
	for _, e := range eds {
		e.stats.mu.Lock()
		acks = append(acks, e.stats.acks...)
		remote = append(remote, e.stats.remote...)
		edits += e.stats.edits
		e.stats.mu.Unlock()
	}
	sortDurations(acks)
	sortDurations(remote)
	res.Figures["edits"] = float64(edits)
	res.Figures["edits_per_sec"] = float64(edits) / loadSecs
	res.Figures["committed_ops"] = float64(committed)
	res.Figures["committed_ops_per_sec"] = float64(committed) / loadSecs
	res.Figures["ack_p50_ms"] = percentile(acks, 50)
	res.Figures["ack_p95_ms"] = percentile(acks, 95)
	res.Figures["ack_p99_ms"] = percentile(acks, 99)
	res.Figures["remote_p50_ms"] = percentile(remote, 50)
	res.Figures["remote_p99_ms"] = percentile(remote, 99)
	// Each committed op is delivered to the other clients of its document.
	cpu.report(res, "op", float64(committed), float64(committed*(cfg.Clients-1)))
	if len(tg.nodes) > 0 {
		// Contention across nodes: appends that lost the compare-and-append
		// to another node, each transformed and sent again.
		retries := tg.conflicts() - conflicts0
		res.Figures["retries"] = float64(retries)
		if committed > 0 {
			res.Figures["retries_per_committed_op"] = float64(retries) / float64(committed)
		}
	}
	res.Notes = append(res.Notes, "committed ops are versions the server applied (composed edits count once); ack = first edit of a batch to its ack; remote = server apply time to arrival at another client (every 8th op)")
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// histogram returns a Prometheus histogram's cumulative bucket counts and
// their upper bounds (the last is +Inf).
func histogram(h prometheus.Histogram) ([]uint64, []float64) {
	var m dto.Metric
	if err := h.Write(&m); err != nil || m.Histogram == nil {
		return nil, nil
	}
	var counts []uint64
	var bounds []float64
	for _, b := range m.Histogram.Bucket {
		counts = append(counts, b.GetCumulativeCount())
		bounds = append(bounds, b.GetUpperBound())
	}
	return append(counts, m.Histogram.GetSampleCount()), append(bounds, math.Inf(1))
}

// addCounts adds a histogram's cumulative bucket counts to sum.
func addCounts(sum []uint64, h prometheus.Histogram) []uint64 {
	counts, _ := histogram(h)
	if sum == nil {
		return counts
	}
	for i := range sum {
		if i < len(counts) {
			sum[i] += counts[i]
		}
	}
	return sum
}

// bucketBound returns the upper bound of the bucket that holds quantile q
// of cumulative counts (0 without samples).
func bucketBound(counts []uint64, bounds []float64, q float64) float64 {
	if len(counts) == 0 || counts[len(counts)-1] == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(counts[len(counts)-1])))
	for i, c := range counts {
		if c >= want {
			return bounds[i]
		}
	}
	return bounds[len(bounds)-1]
}
