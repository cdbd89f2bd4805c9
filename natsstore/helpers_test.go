package natsstore

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// runServer starts an embedded NATS server on 127.0.0.1 with JetStream
// in a temporary directory (js false: without JetStream) and shuts it
// down at the end of the test.
func runServer(t *testing.T, js bool, tweak ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: js,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, f := range tweak {
		f(opts)
	}
	srv := startServer(t, opts)
	t.Cleanup(srv.Shutdown)
	return srv
}

func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	return srv
}

// cluster is three embedded JetStream servers routed to each other.
type cluster struct {
	t     *testing.T
	opts  []*server.Options
	srvs  []*server.Server
	urls  []string
	route string
}

// freePorts reserves n ports on 127.0.0.1 (the listeners close at once;
// a port taken meanwhile fails the test loudly, never silently).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	return out
}

// runCluster starts three servers forming one JetStream cluster and waits
// for its meta leader.
func runCluster(t *testing.T) *cluster {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	c := &cluster{t: t, route: strings.Join(routes, ",")}
	for i := 0; i < 3; i++ {
		o := &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "tandem-test", Host: "127.0.0.1", Port: ports[3+i]},
			Routes:     server.RoutesFromStr(c.route),
		}
		c.opts = append(c.opts, o)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for _, o := range c.opts {
		c.srvs = append(c.srvs, startServer(t, o.Clone()))
	}
	t.Cleanup(func() {
		for _, s := range c.srvs {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	c.waitMetaLeader()
	return c
}

// waitMetaLeader waits until the running servers agree on a meta leader.
func (c *cluster) waitMetaLeader() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.srvs {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no JetStream meta leader in 20 s")
}

// stop shuts server i down.
func (c *cluster) stop(i int) {
	c.srvs[i].Shutdown()
	c.srvs[i].WaitForShutdown()
	c.srvs[i] = nil
}

// restart starts server i again on its ports and store directory.
func (c *cluster) restart(i int) {
	c.srvs[i] = startServer(c.t, c.opts[i].Clone())
}

// url returns all client URLs, server i's first.
func (c *cluster) url(i int) string {
	urls := []string{c.urls[i]}
	for j, u := range c.urls {
		if j != i {
			urls = append(urls, u)
		}
	}
	return strings.Join(urls, ",")
}

// testConfig is a Config for tests: fast heartbeats, short timeouts, a
// test logger.
func testConfig(t *testing.T, url, name string) Config {
	return Config{
		URL:               url,
		Name:              name,
		RequestTimeout:    5 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		NodeTimeout:       400 * time.Millisecond,
		SnapshotEvery:     10,
		Logger:            zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	}
}

// open opens a Store closed at the end of the test.
func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store on %s: %v", cfg.URL, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openOne starts one server and opens a store on it.
func openOne(t *testing.T) (*Store, *server.Server) {
	t.Helper()
	srv := runServer(t, true)
	return open(t, testConfig(t, srv.ClientURL(), "n1")), srv
}

// rawConn connects to url without a store (for abrupt closes).
func rawConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
