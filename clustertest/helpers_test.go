package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/natsstore"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/server"
)

// Timing of the nodes in these tests: heartbeats every 250 ms, a node
// silent for 1 s is dead, so a dead node's members leave everywhere
// within 1.25 s of its last heartbeat (NodeTimeout + HeartbeatInterval,
// docs/cluster.md). Tests allow memberBound, generous for -race on a busy
// CI machine.
const (
	heartbeat   = 250 * time.Millisecond
	nodeTimeout = time.Second
	memberBound = nodeTimeout + heartbeat + 8*time.Second
)

// testPrefix is a fresh prefix of streams and subjects, so that tests that
// share NATS servers never see each other's data.
func testPrefix() string { return fmt.Sprintf("t%x", rand.Uint32()) }

// nodeConfig is the configuration of a cluster node for the tests.
func nodeConfig(natsURL, prefix, name string, replicas int) server.Config {
	cfg := server.DefaultConfig()
	cfg.Addr, cfg.Data = "127.0.0.1:0", ""
	cfg.NATSURL, cfg.Node = natsURL, name
	cfg.APIKeys = []string{apiKey}
	cfg.File.NATS = server.NATSConfig{Prefix: prefix, Replicas: replicas,
		HeartbeatInterval: server.Duration(heartbeat), NodeTimeout: server.Duration(nodeTimeout),
		RequestTimeout: server.Duration(5 * time.Second)}
	cfg.DocIdleTimeout = time.Minute
	// A namespace for the channel tests: history, presence, no rate limit
	// in the way.
	cfg.File.Namespaces = map[string]server.NamespaceConfig{"test": {HistorySize: 1000, HistoryAge: server.Duration(time.Hour),
		Presence: "full", ClientPublish: true, PublishRate: 10000, PublishBurst: 10000}}
	return cfg
}

// apiKey is the HTTP API key of the test nodes.
const apiKey = "cluster-test-key-0123456789"

// node is a Tandem node running in the test process.
type node struct {
	name string
	srv  *server.Server
	http string // http://host:port
	ws   string // ws://host:port/ws
}

func logger(t testing.TB) zerolog.Logger {
	level := zerolog.ErrorLevel
	if l, err := zerolog.ParseLevel(os.Getenv("TANDEM_TEST_LOG")); err == nil && l != zerolog.NoLevel {
		level = l
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(level).With().Timestamp().Logger()
}

// startNode starts a node; the test's cleanup stops it.
func startNode(t testing.TB, cfg server.Config) *node {
	t.Helper()
	srv := server.New(cfg, logger(t).With().Str("node", cfg.Node).Logger())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatalf("start node %s: %v", cfg.Node, err)
	}
	n := &node{name: cfg.Node, srv: srv, http: "http://" + srv.Addr(), ws: "ws://" + srv.Addr() + "/ws"}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop closes the node gracefully (once).
func (n *node) stop(t testing.TB) {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.srv.Close(ctx); err != nil {
		t.Errorf("close node %s: %v", n.name, err)
	}
	n.srv = nil
}

// startNodes starts a node on each NATS URL given, all at once (as a
// deployment's nodes start together, each creating the same streams).
func startNodes(t testing.TB, urls []string, prefix string, replicas int) []*node {
	t.Helper()
	nodes := make([]*node, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	start := time.Now()
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := nodeConfig(u, prefix, fmt.Sprintf("node%d", i+1), replicas)
			srv := server.New(cfg, logger(t).With().Str("node", cfg.Node).Logger())
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if errs[i] = srv.Run(ctx); errs[i] == nil {
				nodes[i] = &node{name: cfg.Node, srv: srv, http: "http://" + srv.Addr(), ws: "ws://" + srv.Addr() + "/ws"}
			}
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			t.Cleanup(func() { n.stop(t) })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start node%d: %v", i+1, err)
		}
	}
	t.Logf("%d nodes started together in %v", len(urls), time.Since(start).Round(time.Millisecond))
	return nodes
}

// openStore opens a store of the test's own on the cluster's data, to read
// the logs as they are in JetStream.
func openStore(t testing.TB, url, prefix string, replicas int) *natsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// (The same replicas as the nodes': a store sets every stream to its
	// own count when it opens.)
	st, err := natsstore.Open(ctx, natsstore.Config{URL: url, Name: "reader-" + prefix, Prefix: prefix, Replicas: replicas,
		Logger: logger(t), HeartbeatInterval: heartbeat, NodeTimeout: nodeTimeout})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// replay reads document id's whole log from the stream and replays it
// from the empty text.
func replay(t testing.TB, st *natsstore.Store, id string) (string, []doc.OpRecord) {
	t.Helper()
	info, err := st.GetDoc(id)
	if err != nil {
		t.Fatalf("replay %s: %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ops, err := st.OpsCtx(ctx, id, 0, info.Version)
	if err != nil {
		t.Fatalf("replay %s: %v", id, err)
	}
	text, err := doc.Replay(doc.Snapshot{}, ops, info.Version)
	if err != nil {
		t.Fatalf("replay %s: %v", id, err)
	}
	return text, ops
}

// httpDo sends an API request with the test key and decodes a JSON answer
// into out (when not nil); it returns the status.
func httpDo(t testing.TB, method, url string, body io.Reader, ctype string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// served is a document as a node's HTTP API serves it.
type served struct {
	Version int    `json:"version"`
	Content string `json:"content"`
}

func getDoc(t testing.TB, n *node, id string) served {
	t.Helper()
	var d served
	if st := httpDo(t, "GET", n.http+"/api/docs/"+id, nil, "", &d); st != 200 {
		t.Fatalf("GET %s on %s: %d", id, n.name, st)
	}
	return d
}

// dial connects a Go client as a development-mode guest.
func dial(t testing.TB, url, user string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: url, User: user, Name: user,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// texts are the alphabets of the random edits: multi-byte text included.
var texts = []string{"a", "b", "é", "ß", "日本", "語", "😀", "🎉x", "\n", "Ω", "ж"}

// editor makes random edits on an open document: inserts of texts and
// deletes, with a bias to inserts so the text grows.
type editor struct {
	d   *client.Document
	rng *rand.Rand
}

func (e *editor) step() error {
	return e.d.Edit(func(text client.LocalText) ot.Op {
		n := text.Len()
		if n > 0 && e.rng.IntN(4) == 0 {
			pos := e.rng.IntN(n)
			return ot.Splice(pos, 1+e.rng.IntN(min(3, n-pos)), "")
		}
		return ot.Splice(e.rng.IntN(n+1), 0, texts[e.rng.IntN(len(texts))])
	})
}

// proxy is a TCP load balancer in front of nodes: each new connection
// goes to the next backend that accepts it; dropAll cuts every connection
// it carries (a node that dies does the same).
type proxy struct {
	ln net.Listener

	mu       sync.Mutex // guards backends, next, conns
	backends []string   // host:port
	next     int
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func startProxy(t testing.TB, backends ...string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backends: backends, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws" }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	var b net.Conn
	p.mu.Lock()
	n := len(p.backends)
	p.mu.Unlock()
	for i := 0; i < n && b == nil; i++ {
		p.mu.Lock()
		addr := p.backends[p.next%len(p.backends)]
		p.next++
		p.mu.Unlock()
		b, _ = net.DialTimeout("tcp", addr, time.Second)
	}
	if b == nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[b] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = b.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

// setBackends replaces the backends new connections go to.
func (p *proxy) setBackends(addrs ...string) {
	p.mu.Lock()
	p.backends = addrs
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// hostport strips ws:// and /ws.
func hostport(wsURL string) string {
	return strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws://"), "/ws")
}
