package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tandemhq/tandem/server"
)

// ClusterConfig is the cluster scenario: the editors scenario on one
// document with 30 editors and on 200 documents with 5 editors each, on a
// single node (bbolt) and on a cluster of Nodes nodes sharing one NATS
// server with JetStream, all started in this process, so that the figures
// side by side come from the same machine and the same run. In the
// cluster each document's editors are spread over the nodes, so every
// document is edited through every node: contention on a document across
// nodes costs retries (appends that lost the compare-and-append to another
// node, transformed and sent again), which the results count.
type ClusterConfig struct {
	Nodes    int
	Duration time.Duration
	// Rate is each editor's ops per second (0: as fast as acks allow).
	Rate float64
	// Shapes are the documents × editors runs; nil: 1 × 30 and 200 × 5.
	Shapes []Shape
}

// Shape is a number of documents and of editors on each.
type Shape struct{ Docs, Clients int }

// Cluster runs the cluster scenario, reporting each result as it comes.
func Cluster(ctx context.Context, opts Options, cfg ClusterConfig, report func(*Result, error) error) error {
	if opts.Server != "" {
		return fmt.Errorf("cluster: starts its own nodes; --server is not used")
	}
	if cfg.Nodes < 2 {
		cfg.Nodes = 3
	}
	shapes := cfg.Shapes
	if shapes == nil {
		shapes = []Shape{{1, 30}, {200, 5}}
	}
	for _, shape := range shapes {
		for _, nodes := range []int{1, cfg.Nodes} {
			r, err := Editors(ctx, opts, EditorsConfig{Docs: shape.Docs, Clients: shape.Clients, Rate: cfg.Rate, Duration: cfg.Duration, Nodes: nodes})
			if r != nil {
				r.Scenario = "cluster"
				if nodes > 1 {
					r.Notes = append(r.Notes, "JetStream acknowledges a write once a quorum of the stream's replicas holds it (here one server, one replica), without an fsync of its own (nats-server's sync_interval); the single node fsyncs every commit")
				}
			}
			if err := report(r, err); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// startCluster starts a NATS server with JetStream (on a temporary
// directory) and n Tandem nodes on it, all in this process.
func startCluster(ctx context.Context, opts Options, n int) (*target, func(), error) {
	dir, err := os.MkdirTemp("", "tandem-bench-nats-")
	if err != nil {
		return nil, nil, err
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("cluster: the NATS server did not start")
	}
	tg := &target{}
	stop := func() {
		for _, s := range tg.nodes {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = s.Close(sctx)
			cancel()
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
	}
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano()%1_000_000)
	for i := range n {
		cfg := benchConfig(opts)
		cfg.Data = ""
		cfg.NATSURL, cfg.Node = ns.ClientURL(), fmt.Sprintf("bench-node%d", i+1)
		cfg.File.NATS = server.NATSConfig{Prefix: prefix}
		srv := server.New(cfg, opts.Log.With().Str("node", cfg.Node).Logger())
		if err := srv.Run(ctx); err != nil {
			stop()
			return nil, nil, err
		}
		tg.nodes = append(tg.nodes, srv)
	}
	tg.srv = tg.nodes[0]
	tg.httpURL = "http://" + tg.srv.Addr()
	tg.wsURL = "ws://" + tg.srv.Addr() + "/ws"
	return tg, stop, nil
}

// conflicts sums the op appends the cluster's nodes lost to another node
// (0 for a single node).
func (tg *target) conflicts() int64 {
	var n int64
	for _, s := range tg.nodes {
		if s.NATS != nil {
			n += s.NATS.Stats().OpConflicts
		}
	}
	return n
}
