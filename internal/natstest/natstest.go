// Package natstest runs real NATS servers embedded in a test process, on
// 127.0.0.1 with JetStream on temporary directories: one server, or three
// forming a JetStream cluster that a test can stop and restart server by
// server. The natsstore and cluster tests share it; nothing else imports
// it, so only test binaries link the NATS server.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options returns the options of a server on a free port of 127.0.0.1
// with JetStream in a temporary directory of t, without logs or signal
// handlers.
func Options(t testing.TB) *server.Options {
	return &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
}

// Start starts a server with opts and waits until it takes connections;
// the caller shuts it down.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	srv, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// start starts a server with opts and waits, at most 20 s, until it takes
// connections.
func start(opts *server.Options) (*server.Server, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server on port %d did not start in 20 s", opts.Port)
	}
	return srv, nil
}

// Run starts a server with Options changed by each tweak, shut down at the
// end of the test.
func Run(t testing.TB, tweak ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := Options(t)
	for _, f := range tweak {
		f(opts)
	}
	srv := Start(t, opts)
	t.Cleanup(srv.Shutdown)
	return srv
}

// FreePorts reserves n ports on 127.0.0.1 (the listeners close at once; a
// port taken meanwhile fails the test loudly, never silently).
func FreePorts(t testing.TB, n int) []int {
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

// Cluster is three servers routed to each other as one JetStream cluster.
// Srvs[i] is nil while server i is stopped.
type Cluster struct {
	t    testing.TB
	opts []*server.Options
	Srvs []*server.Server
	urls []string
}

// RunCluster starts a three-server JetStream cluster, shut down at the end
// of the test, and waits for its meta leader. A server that does not start
// (one of the ports FreePorts reserved was taken meanwhile) makes it start
// the cluster again on other ports, at most three times.
func RunCluster(t testing.TB) *Cluster {
	t.Helper()
	var err error
	for range 3 {
		var c *Cluster
		if c, err = tryCluster(t); err == nil {
			t.Cleanup(func() {
				for _, s := range c.Srvs {
					if s != nil {
						s.Shutdown()
					}
				}
			})
			c.WaitMetaLeader()
			return c
		}
		t.Logf("starting a NATS cluster again on other ports: %v", err)
	}
	t.Fatal(err)
	return nil
}

// tryCluster starts the three servers of a cluster on free ports; on an
// error it shuts down those it started.
func tryCluster(t testing.TB) (*Cluster, error) {
	ports := FreePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	c := &Cluster{t: t}
	for i := range 3 {
		o := Options(t)
		o.ServerName = fmt.Sprintf("s%d", i+1)
		o.Port = ports[i]
		o.Cluster = server.ClusterOpts{Name: "tandem-test", Host: "127.0.0.1", Port: ports[3+i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.opts = append(c.opts, o)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for _, o := range c.opts {
		srv, err := start(o.Clone())
		if err != nil {
			for _, s := range c.Srvs {
				s.Shutdown()
			}
			return nil, err
		}
		c.Srvs = append(c.Srvs, srv)
	}
	return c, nil
}

// WaitMetaLeader waits, at most 30 s, until a running server is the
// JetStream meta leader.
func (c *Cluster) WaitMetaLeader() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Srvs {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no JetStream meta leader in 30 s")
}

// URL returns every server's client URL, comma-separated, server i's first.
func (c *Cluster) URL(i int) string {
	urls := []string{c.urls[i]}
	for j, u := range c.urls {
		if j != i {
			urls = append(urls, u)
		}
	}
	return strings.Join(urls, ",")
}

// Stop shuts server i down and waits until it is down.
func (c *Cluster) Stop(i int) {
	c.Srvs[i].Shutdown()
	c.Srvs[i].WaitForShutdown()
	c.Srvs[i] = nil
}

// Restart starts server i again on its ports and store directory.
func (c *Cluster) Restart(i int) { c.Srvs[i] = Start(c.t, c.opts[i].Clone()) }
