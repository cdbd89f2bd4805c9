package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/client"
)

// IdleConfig is the idle scenario: Conns connections, each subscribed to a
// channel and with a document open, then idle; the server's memory per
// connection.
type IdleConfig struct {
	Conns int
}

// childServer is a tandem server in its own process.
type childServer struct {
	cmd     *exec.Cmd
	dir     string
	httpURL string
	wsURL   string
}

// startChildServer runs `tandem serve` as a child on a free loopback port.
func startChildServer(ctx context.Context, opts Options) (*childServer, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "tandem-bench-idle-")
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "config.json")
	cfg := map[string]any{"namespaces": benchNamespaces(), "limits": benchLimits()}
	if opts.ServerConfig != "" {
		var extra map[string]json.RawMessage
		if err := json.Unmarshal([]byte(opts.ServerConfig), &extra); err != nil {
			return nil, fmt.Errorf("the server's config (a JSON object of config file keys): %w", err)
		}
		for k, v := range extra {
			cfg[k] = v
		}
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve", "--addr", addr, "--data", filepath.Join(dir, "data"), "--config", cfgFile, "--log-level", "error"}
	if opts.NoSync {
		args = append(args, "--nosync")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TANDEM_JWT_SECRET=", "TANDEM_API_KEYS=", "TANDEM_CPUPROFILE="+opts.ServerProfile,
		"TANDEM_MEMPROFILE="+opts.ServerMemProfile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cs := &childServer{cmd: cmd, dir: dir, httpURL: "http://" + addr, wsURL: "ws://" + addr + "/ws"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(cs.httpURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cs, nil
			}
		}
		if time.Now().After(deadline) {
			cs.stop()
			return nil, fmt.Errorf("child server at %s did not become ready", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cs *childServer) stop() {
	_ = cs.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cs.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cs.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(cs.dir)
}

// rss returns the process's resident set in bytes.
func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// metric reads one unlabelled value from /metrics.
func metric(base, name string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// Idle runs the idle scenario.
func Idle(ctx context.Context, opts Options, cfg IdleConfig) (*Result, error) {
	res := newResult("idle", map[string]any{"conns": cfg.Conns})
	limit := raiseFileLimit()
	if need := uint64(cfg.Conns + 200); limit > 0 && limit < need { // the server is another process, with its own
		return nil, fmt.Errorf("idle: open-file limit %d is below the %d needed", limit, need)
	}
	httpURL, wsURL, pid := "", "", 0
	if opts.Server != "" {
		tg, stop, err := start(ctx, opts)
		if err != nil {
			return nil, err
		}
		defer stop()
		httpURL, wsURL = tg.httpURL, tg.wsURL
		res.Notes = append(res.Notes, "running server: RSS not measured, Go heap from /metrics")
	} else {
		cs, err := startChildServer(ctx, opts)
		if err != nil {
			return nil, err
		}
		defer cs.stop()
		httpURL, wsURL, pid = cs.httpURL, cs.wsURL, cs.cmd.Process.Pid
	}
	settle := func() { time.Sleep(3 * time.Second) } // let the server's GC catch up
	settle()
	rss0, _ := rss(pid)
	heap0, _ := metric(httpURL, "go_memstats_heap_inuse_bytes")
	stack0, _ := metric(httpURL, "go_memstats_stack_inuse_bytes")
	goroutines0, _ := metric(httpURL, "go_goroutines")

	clients := make([]*client.Client, cfg.Conns)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			if c != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = c.Close() }()
			}
		}
		wg.Wait()
	}()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	t0 := time.Now()
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := client.Dial(ctx, client.Config{URL: wsURL, Token: opts.Token, User: fmt.Sprintf("idle%d", i), NoReconnect: true})
			if err == nil {
				clients[i] = c
				_, err = c.Subscribe(ctx, fmt.Sprintf("bench:idle-%d", i%100), func(client.Message) {})
			}
			if err == nil {
				_, err = c.OpenDoc(ctx, fmt.Sprintf("idle-%d", i%100))
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	connectSecs := time.Since(t0).Seconds()
	if n := failed.Load(); n > 0 {
		res.fail("%d connections failed: %v", n, firstErr.Load())
	}
	settle()
	conns, _ := metric(httpURL, "tandem_connections")
	rss1, _ := rss(pid)
	heap1, _ := metric(httpURL, "go_memstats_heap_inuse_bytes")
	stack1, _ := metric(httpURL, "go_memstats_stack_inuse_bytes")
	goroutines1, _ := metric(httpURL, "go_goroutines")
	n := float64(cfg.Conns)
	if int(conns) != cfg.Conns {
		res.fail("server counts %d connections, want %d", int(conns), cfg.Conns)
	}
	res.Figures["connections"] = conns
	res.Figures["connect_per_sec"] = n / connectSecs
	if pid != 0 {
		res.Figures["rss_bytes_per_conn"] = float64(rss1-rss0) / n
	}
	res.Figures["heap_bytes_per_conn"] = (heap1 - heap0) / n
	res.Figures["stack_bytes_per_conn"] = (stack1 - stack0) / n
	res.Figures["goroutines_per_conn"] = (goroutines1 - goroutines0) / n
	return res, nil
}
