// Package bench drives a Tandem server over the real protocol and reports
// figures: `tandem bench` and `make bench` run its scenarios. Every
// scenario is bounded in count and time, talks to loopback (or the server
// it is given) only, and checks its own correctness (convergence, no
// message lost or duplicated) besides measuring.
//
// A scenario runs against a server it starts itself, with a temporary data
// directory, unless Options.Server names a running one. The idle scenario
// starts its server as a child process, so that the server's memory can be
// read apart from the load generator's.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// Options are shared by every scenario.
type Options struct {
	// Server is the base URL of a running server (http://host:port); empty
	// starts one.
	Server string
	// Token authenticates against a running server; APIKey for its HTTP
	// API (broadcasts).
	Token  string
	APIKey string
	// NoSync runs a started server without fsync (unsafe; benchmarks of
	// what is not storage).
	NoSync bool
	// Binary is the tandem binary a child server runs (the idle scenario,
	// ServerProcess); empty means this executable.
	Binary string
	// ServerProcess starts the server as a child process (`tandem serve`)
	// rather than inside the load generator, and reports the CPU it used
	// over the load window: per op and per delivery (editors), per message
	// and per delivery (fanout).
	ServerProcess bool
	// ServerProfile, with ServerProcess, has the child server write a CPU
	// profile of its whole run to this file.
	ServerProfile string
	// ServerMemProfile, with ServerProcess, has the child server write its
	// allocations (a pprof "allocs" profile) to this file when it stops.
	ServerMemProfile string
	// ServerConfig, with ServerProcess, is a JSON object of config file
	// keys (`tandem serve --config`) set in the child server's config,
	// over the bench's own: {"commit_gather": "5ms"}.
	ServerConfig string
	Log          zerolog.Logger
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string             `json:"scenario"`
	Params   map[string]any     `json:"params"`
	Figures  map[string]float64 `json:"figures"`
	// Failures lists correctness checks that failed; empty when all held.
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Started  string   `json:"started"`
	Seconds  float64  `json:"seconds"`
}

func newResult(name string, params map[string]any) *Result {
	return &Result{Scenario: name, Params: params, Figures: map[string]float64{}, Started: time.Now().UTC().Format(time.RFC3339)}
}

func (r *Result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// WriteTable prints results as a readable table.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t\n", r.Scenario, paramString(r.Params))
		keys := make([]string, 0, len(r.Figures))
		for k := range r.Figures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "\t%s\t%s\n", k, formatFigure(r.Figures[k]))
		}
		status := "ok"
		if len(r.Failures) > 0 {
			status = "FAILED: " + strings.Join(r.Failures, "; ")
		}
		fmt.Fprintf(tw, "\tcheck\t%s\n", status)
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "\tnote\t%s\n", n)
		}
	}
	_ = tw.Flush()
}

func paramString(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, " ")
}

func formatFigure(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// WriteJSON writes results as JSON.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"machine": machine(), "results": results})
}

// machine describes where the figures were measured.
func machine() map[string]any {
	m := map[string]any{"cpus": numCPU(), "go": goVersion()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

// target is the server a scenario talks to.
type target struct {
	httpURL string // http://host:port
	wsURL   string // ws://host:port/ws
	srv     *server.Server
	pid     int // the server's process, when it is a child (ServerProcess)
	// nodes are every node of a started cluster (srv is the first); the
	// editors are spread over them.
	nodes []*server.Server
}

// wsFor returns the WebSocket URL client i connects to: the server, or
// the cluster's nodes in turn.
func (tg *target) wsFor(i int) string {
	if len(tg.nodes) == 0 {
		return tg.wsURL
	}
	return "ws://" + tg.nodes[i%len(tg.nodes)].Addr() + "/ws"
}

// servers returns the servers started for the scenario (none for a
// running server given by URL).
func (tg *target) servers() []*server.Server {
	if len(tg.nodes) > 0 {
		return tg.nodes
	}
	if tg.srv != nil {
		return []*server.Server{tg.srv}
	}
	return nil
}

// benchNamespaces are what a started server adds for the scenarios: a
// channel namespace without presence (fan-out to thousands) and without
// client publish limits, one with full presence that never switches to
// count mode, and one with full presence and the default switch.
func benchNamespaces() map[string]server.NamespaceConfig {
	return map[string]server.NamespaceConfig{
		"bench": {HistorySize: 1000, HistoryAge: server.Duration(time.Hour), Presence: "off", ClientPublish: true},
		// The presence scenario's rooms: full presence at any size.
		presenceNamespace: {Presence: "full", PresenceCountAbove: -1, PresenceBatch: server.Duration(presenceWindow)},
		// The same with the default switch to count mode.
		switchNamespace: {Presence: "full", PresenceBatch: server.Duration(presenceWindow)},
	}
}

// benchLimits are the limits of a started server: no rate limits in the
// way of the load, room for the fan-out scenarios' queues and
// subscriptions, and no cap on connections from one address (every
// client is on 127.0.0.1).
func benchLimits() server.LimitsConfig {
	return server.LimitsConfig{
		FrameRate: 1e6, OpRate: 1e6, OpBurst: 1e6,
		MaxQueueBytes: 16 << 20, MaxSubscriptions: 1 << 20, MaxConnectionsPerIP: -1,
	}
}

// start returns the target: the running server of opts, or a new one (in
// a child process with opts.ServerProcess).
func start(ctx context.Context, opts Options) (*target, func(), error) {
	if opts.Server != "" {
		u := strings.TrimRight(opts.Server, "/")
		ws := "ws" + strings.TrimPrefix(u, "http") + "/ws"
		return &target{httpURL: u, wsURL: ws}, func() {}, nil
	}
	if opts.ServerProcess {
		cs, err := startChildServer(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		return &target{httpURL: cs.httpURL, wsURL: cs.wsURL, pid: cs.cmd.Process.Pid}, cs.stop, nil
	}
	dir, err := os.MkdirTemp("", "tandem-bench-")
	if err != nil {
		return nil, nil, err
	}
	cfg := benchConfig(opts)
	cfg.Data = dir
	srv := server.New(cfg, opts.Log)
	if err := srv.Run(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Close(sctx)
		os.RemoveAll(dir)
	}
	return &target{httpURL: "http://" + srv.Addr(), wsURL: "ws://" + srv.Addr() + "/ws", srv: srv}, stop, nil
}

// benchConfig is the configuration of a server the scenarios start: the
// bench namespaces, and limits out of the load's way.
func benchConfig(opts Options) server.Config {
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NoSync = opts.NoSync
	cfg.File.Namespaces = benchNamespaces()
	cfg.File.Limits = benchLimits() // every client is on 127.0.0.1: no cap per address
	return cfg
}

// raiseFileLimit lifts the soft open-file limit to the hard one, for
// scenarios with thousands of connections.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// percentile returns the p-th percentile (0..100) of sorted durations, in
// milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i].Microseconds()) / 1000
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

func numCPU() int { return runtime.NumCPU() }

func goVersion() string { return runtime.Version() }
