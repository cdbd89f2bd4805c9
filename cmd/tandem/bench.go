package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/bench"
)

// runBench is `tandem bench SCENARIO [flags]`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, `Usage: tandem bench SCENARIO [flags]

Drives a server over the real protocol and reports figures. Without --server
it starts one with a temporary data directory. Every scenario is bounded in
count and time and talks to loopback only.

Scenarios:
  editors   C clients on each of D documents, editing like real editors
  fanout    S subscribers on one channel, one publisher at R messages/s
  idle      N idle connections, each on a channel and a document: memory each
  presence  N connections join one full-presence channel: time, presence frames
  trace     the real editing traces through the document model
  history   a real trace typed through a server by 3 authors: disk bytes per
            op after packing and compaction, and the time to read it back
  cluster   editors (1 doc x 30, 200 docs x 5) on one node and on a cluster
            of --nodes nodes on an embedded NATS with JetStream, side by
            side: ops/s, ack p50/p99, retries across nodes
  all       a short run of every scenario (what make bench runs)

Run 'tandem bench SCENARIO -h' for its flags.`)
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	scenario, args := args[0], args[1:]
	fs := flag.NewFlagSet("tandem bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.Options
	fs.StringVar(&opts.Server, "server", "", "base URL of a running server (default: start one)")
	fs.StringVar(&opts.Token, "token", "", "token for a running server in production mode")
	fs.StringVar(&opts.APIKey, "key", os.Getenv("TANDEM_API_KEY"), "API key for a running server's HTTP API")
	fs.BoolVar(&opts.NoSync, "nosync", false, "start the server without fsync (unsafe; for what is not storage)")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and load) to this file")
	fs.BoolVar(&opts.ServerProcess, "server-process", false, "editors, fanout: start the server as a child process and report its CPU per op and per delivery")
	fs.StringVar(&opts.Binary, "server-binary", "", "the tandem binary a child server runs (default: this one)")
	fs.StringVar(&opts.ServerProfile, "server-cpuprofile", "", "with --server-process: write the child server's CPU profile to this file")
	fs.StringVar(&opts.ServerMemProfile, "server-memprofile", "", "with --server-process: write the child server's allocations to this file")
	fs.StringVar(&opts.ServerConfig, "server-config", "", `with --server-process: a JSON object of config file keys for the child server, e.g. '{"commit_gather":"5ms"}'`)
	verbose := fs.Bool("v", false, "log the server's warnings")
	// Scenario flags.
	subs := fs.Int("subscribers", 1000, "fanout: subscribers")
	rate := fs.Float64("rate", 20, "fanout: messages per second")
	opsRate := fs.Float64("ops-rate", 0, "editors: ops per second per client (0: as fast as acks allow)")
	dur := fs.Duration("duration", 10*time.Second, "how long to load")
	payload := fs.Int("payload", 100, "fanout: bytes of data per message")
	goClients := fs.Bool("go-clients", false, "fanout: subscribe with full Go clients instead of light protocol readers")
	conns := fs.Int("conns", 2000, "idle: connections; presence: members (default 10000)")
	churn := fs.Int("churn", 0, "presence: random leaves, rejoins and state changes after the joins")
	track := fs.Int("track", 20, "presence: members that keep and check the whole member list (-1: all)")
	switchMode := fs.Bool("switch", false, "presence: the room switches to count mode past the server's default threshold (1,000 members)")
	docs := fs.Int("docs", 1, "editors: documents")
	clients := fs.Int("clients", 10, "editors: clients per document")
	rounds := fs.Int("rounds", 5, "trace: rounds (the best counts)")
	baseline := fs.Bool("baseline", true, "trace: also time a naive []rune splice")
	edits := fs.Int("edits", 0, "history: replay only the first N edits of the trace (0: all)")
	traceName := fs.String("trace", "automerge-paper", "history: the editing trace")
	nodes := fs.Int("nodes", 3, "cluster: nodes in the cluster")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	level := zerolog.ErrorLevel
	if *verbose {
		level = zerolog.WarnLevel
	}
	opts.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr}).Level(level).With().Timestamp().Logger()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var results []*bench.Result
	runOne := func(r *bench.Result, err error) error {
		if err != nil {
			return err
		}
		results = append(results, r)
		bench.WriteTable(stdout, []*bench.Result{r})
		return nil
	}
	var err error
	switch scenario {
	case "fanout":
		err = runOne(bench.Fanout(ctx, opts, bench.FanoutConfig{Subscribers: *subs, Rate: *rate, Duration: *dur, PayloadBytes: *payload, GoClients: *goClients}))
	case "trace":
		err = runOne(bench.Trace(ctx, bench.TraceConfig{Rounds: *rounds, Baseline: *baseline}))
	case "history":
		err = runOne(bench.History(ctx, opts, bench.HistoryConfig{Trace: *traceName, Edits: *edits}))
	case "idle":
		err = runOne(bench.Idle(ctx, opts, bench.IdleConfig{Conns: *conns}))
	case "presence":
		n := 10000
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "conns" {
				n = *conns
			}
		})
		err = runOne(bench.Presence(ctx, opts, bench.PresenceConfig{Conns: n, Churn: *churn, Track: *track, Switch: *switchMode}))
	case "editors":
		err = runOne(bench.Editors(ctx, opts, bench.EditorsConfig{Docs: *docs, Clients: *clients, Rate: *opsRate, Duration: *dur}))
	case "cluster":
		err = bench.Cluster(ctx, opts, bench.ClusterConfig{Nodes: *nodes, Duration: *dur, Rate: *opsRate}, func(r *bench.Result, err error) error { return runOne(r, err) })
	case "all":
		err = bench.All(ctx, opts, func(r *bench.Result, err error) error { return runOne(r, err) })
	default:
		usage()
		return errUsage
	}
	if err != nil {
		return fmt.Errorf("bench %s: %w", scenario, err)
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := bench.WriteJSON(f, results); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	for _, r := range results {
		if len(r.Failures) > 0 {
			return fmt.Errorf("bench %s: correctness checks failed: %v", r.Scenario, r.Failures)
		}
	}
	return nil
}
