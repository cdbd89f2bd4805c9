package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/server"
)

// TestMain runs a cluster node instead of the tests when the test binary
// is started as a child node (startChild), so that a node can be killed
// with SIGKILL like a real process.
func TestMain(m *testing.M) {
	if os.Getenv("TANDEM_CT_CHILD") != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// runChild runs one node from the environment, prints its address and
// serves until killed.
func runChild() {
	cfg := nodeConfig(os.Getenv("TANDEM_CT_NATS"), os.Getenv("TANDEM_CT_PREFIX"), os.Getenv("TANDEM_CT_NODE"), 1)
	log := zerolog.New(os.Stderr).Level(zerolog.ErrorLevel).With().Timestamp().Str("node", cfg.Node).Logger()
	srv := server.New(cfg, log)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		os.Exit(1)
	}
	fmt.Printf("ADDR %s\n", srv.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	_ = srv.Close(context.Background())
}

// child is a node running as a child process.
type child struct {
	cmd  *exec.Cmd
	addr string
	ws   string
}

// startChild starts a node as a child process (the test binary itself).
func startChild(t *testing.T, natsURL, prefix, name string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TANDEM_CT_CHILD=1", "TANDEM_CT_NATS="+natsURL, "TANDEM_CT_PREFIX="+prefix, "TANDEM_CT_NODE="+name)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return &child{cmd: cmd, addr: a, ws: "ws://" + a + "/ws"}
	case <-time.After(60 * time.Second):
		t.Fatal("the child node did not start")
		return nil
	}
}

// markers is an insert-only load whose every edit is a unique marker, so
// that the final text tells which edits landed and how often: client c's
// k-th edit inserts ‹c:k› at the start or the end of the text.
type markers struct {
	docs  []*client.Document
	made  []atomic.Int64 // edits made by each client
	acked []atomic.Int64 // edits known acked (the client was synced after them)
	stop  chan struct{}
	wg    sync.WaitGroup
	// stalls counts waits for a sync that took longer than a second:
	// the pauses the clients noticed.
	stalls atomic.Int64
}

func marker(c, k int) string { return fmt.Sprintf("‹%d:%d›", c, k) }

// startMarkers opens the document on every URL (one client each) and
// starts editing.
func startMarkers(t *testing.T, urls []string, id string) *markers {
	t.Helper()
	m := &markers{made: make([]atomic.Int64, len(urls)), acked: make([]atomic.Int64, len(urls)), stop: make(chan struct{})}
	for i, u := range urls {
		c := dial(t, u, fmt.Sprintf("m%d", i))
		d, err := c.OpenDoc(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		m.docs = append(m.docs, d)
	}
	for i, d := range m.docs {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for k := 0; ; k++ {
				select {
				case <-m.stop:
					return
				case <-time.After(time.Duration(10+rng.IntN(20)) * time.Millisecond):
				}
				atEnd := rng.IntN(2) == 0
				// Edit, not Len and Insert: a remote op applied between
				// them would put the marker inside another one.
				err := d.Edit(func(text client.LocalText) ot.Op {
					if atEnd {
						return ot.Splice(text.Len(), 0, marker(i, k))
					}
					return ot.Splice(0, 0, marker(i, k))
				})
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				m.made[i].Store(int64(k + 1))
				if k%5 == 4 {
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					err := d.WaitSynced(ctx)
					cancel()
					if err != nil {
						t.Errorf("client %d: not synced within 60 s: %v", i, err)
						return
					}
					if time.Since(start) > time.Second {
						m.stalls.Add(1)
					}
					m.acked[i].Store(int64(k + 1))
				}
			}
		}()
	}
	return m
}

// total returns the edits acked so far.
func (m *markers) total() int64 {
	var n int64
	for i := range m.acked {
		n += m.acked[i].Load()
	}
	return n
}

// finish stops the load, waits until every client is synced, and checks
// the log: every edit made is there exactly once (none acked is lost,
// none applied twice), and every client has the log's text.
func (m *markers) finish(t *testing.T, read func() (string, []doc.OpRecord)) {
	t.Helper()
	close(m.stop)
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i, d := range m.docs {
		if err := d.WaitSynced(ctx); err != nil {
			t.Fatalf("client %d not synced at the end: %v", i, err)
		}
	}
	text, ops := read()
	head := len(ops)
	if bad := misplacedMarker(ops); bad != "" {
		t.Fatal(bad)
	}
	for i := range m.docs {
		made := int(m.made[i].Load())
		for k := range made {
			if n := strings.Count(text, marker(i, k)); n != 1 {
				t.Fatalf("edit %s (client %d made %d, %d known acked) is in the log %d times", marker(i, k), i, made, m.acked[i].Load(), n)
			}
		}
	}
	for i, d := range m.docs {
		waitFor(t, 60*time.Second, fmt.Sprintf("client %d at the head", i), func() bool { return d.Version() == head })
		if d.Text() != text {
			t.Fatalf("client %d's text differs from the log's", i)
		}
	}
}

// misplacedMarker replays a log of marker inserts and describes the first
// op that inserts anywhere but between two markers (or at either end),
// with the ops before it: such an op was transformed against the wrong
// history somewhere. It returns "" when every insert is in place.
func misplacedMarker(ops []doc.OpRecord) string {
	var text []rune
	for i, rec := range ops {
		pos := 0
		for _, c := range rec.Op {
			if c.IsRetain() {
				pos += c.Len()
				continue
			}
			if c.IsInsert() {
				if pos > len(text) || (pos > 0 && text[pos-1] != '›') || (pos < len(text) && text[pos] != '‹') {
					var b strings.Builder
					fmt.Fprintf(&b, "v%d (uid %s, client %s) inserts %q at %d, inside a marker of the text (length %d) it lands on; the ops before it:", rec.Version, rec.UID, rec.ClientID, c.Text(), pos, len(text))
					for _, p := range ops[max(0, i-12):i] {
						fmt.Fprintf(&b, "\n  v%d %s %s %v", p.Version, p.UID, p.ClientID, p.Op)
					}
					return b.String()
				}
				ins := []rune(c.Text())
				text = append(text[:pos], append(ins, text[pos:]...)...)
				pos += len(ins)
			}
		}
	}
	return ""
}

// TestNodeKilled: a node running as a child process is killed with
// SIGKILL while editors on every node type into one document. Its
// editors (behind a load balancer) reconnect to the other nodes and
// converge; no edit is lost or applied twice; the editors of the other
// nodes see at most a pause; its members leave the channels on the other
// nodes within the bound (NodeTimeout + HeartbeatInterval).

func TestNodeKilled(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	url := ns.ClientURL()
	n1 := startNode(t, nodeConfig(url, prefix, "node1", 1))
	n2 := startNode(t, nodeConfig(url, prefix, "node2", 1))
	n3 := startChild(t, url, prefix, "node3")
	st := openStore(t, url, prefix, 1)
	lb := startProxy(t, hostport(n1.ws), hostport(n2.ws), n3.addr)

	// A watcher on node1 and a member on node3, in a channel.
	const channel = "test:room"
	watcher := dial(t, n1.ws, "watcher")
	wsub, err := watcher.Subscribe(ctxT(t), channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	doomed := dial(t, n3.ws, "on-node3")
	if _, err := doomed.Subscribe(ctxT(t), channel, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, memberBound, "the watcher lists the member on node3", func() bool { return len(wsub.Members()) == 2 })

	// Editors: 9 through the load balancer (3 per node), 2 on node1 and
	// node2 directly.
	urls := []string{}
	for range 9 {
		urls = append(urls, lb.url())
	}
	urls = append(urls, n1.ws, n2.ws)
	const id = "killed"
	m := startMarkers(t, urls, id)
	waitFor(t, 60*time.Second, "some edits in", func() bool { return m.total() >= 60 })

	lb.setBackends(hostport(n1.ws), hostport(n2.ws))
	before := m.total()
	if err := n3.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("node3 killed after %d acked edits", before)
	waitFor(t, memberBound, "node3's member to leave on node1", func() bool { return len(wsub.Members()) == 1 })
	t.Logf("node3's member left on node1 %v after the kill (bound %v + %v)", time.Since(killed).Round(time.Millisecond), nodeTimeout, heartbeat)
	waitFor(t, 60*time.Second, "editing to go on", func() bool { return m.total() >= before+60 })
	m.finish(t, func() (string, []doc.OpRecord) { return replay(t, st, id) })
	t.Logf("%d edits; waits for a sync over a second: %d", m.total(), m.stalls.Load())
	for _, n := range []*node{n1, n2} {
		text, ops := replay(t, st, id)
		if got := getDoc(t, n, id); got.Content != text || got.Version != len(ops) {
			t.Fatalf("%s serves v%d, the log is at v%d", n.name, got.Version, len(ops))
		}
	}
}

// TestReplicatedCluster runs three nodes on a three-server JetStream
// cluster with every stream and bucket at three replicas: the editing
// scenarios of TestDocsAcrossNodes, then one NATS server shut down while
// editors type (editing goes on after a pause, nothing acked is lost) and
// started again (it catches up with the others).
func TestReplicatedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster: not in -short")
	}
	nc := natstest.RunCluster(t)
	prefix := testPrefix()
	nodes := startNodes(t, []string{nc.URL(0), nc.URL(1), nc.URL(2)}, prefix, 3)
	st := openStore(t, nc.URL(0), prefix, 3)
	t.Run("one doc", func(t *testing.T) {
		concurrentEdits(t, nodes, st, editLoad{clients: 30, docs: 1, steps: 40, prefix: "r-one"})
	})
	t.Run("twenty docs", func(t *testing.T) {
		concurrentEdits(t, nodes, st, editLoad{clients: 30, docs: 20, steps: 25, prefix: "r-twenty"})
	})
	t.Run("a NATS server down and back", func(t *testing.T) {
		const id = "r-failover"
		var urls []string
		for i := range 9 {
			urls = append(urls, nodes[i%3].ws)
		}
		m := startMarkers(t, urls, id)
		waitFor(t, 60*time.Second, "some edits in", func() bool { return m.total() >= 45 })
		// Shut down the server that leads the op stream: the others
		// elect a new leader while the editors type.
		victim := 0
		for i, s := range nc.Srvs {
			if s.JetStreamIsStreamLeader("$G", strings.ToUpper(prefix)+"_OPS") {
				victim = i
			}
		}
		before := m.total()
		nc.Stop(victim)
		down := time.Now()
		t.Logf("NATS server s%d (the op stream's leader) down after %d acked edits", victim+1, before)
		waitFor(t, 60*time.Second, "editing to go on without it", func() bool { return m.total() >= before+45 })
		t.Logf("45 more edits acked %v after it went down", time.Since(down).Round(time.Millisecond))
		nc.Restart(victim)
		back := m.total()
		waitFor(t, 60*time.Second, "editing to go on with it back", func() bool { return m.total() >= back+45 })
		m.finish(t, func() (string, []doc.OpRecord) { return replay(t, st, id) })
		// The restarted server caught up: its replica of the op stream
		// holds what the others hold.
		waitFor(t, 60*time.Second, "the restarted server to catch up", func() bool {
			var lasts []uint64
			for _, s := range nc.Srvs {
				jsz, err := s.Jsz(&natsJSZ)
				if err != nil {
					return false
				}
				var last uint64
				for _, acc := range jsz.AccountDetails {
					for _, sd := range acc.Streams {
						if sd.Name == strings.ToUpper(prefix)+"_OPS" {
							last = sd.State.LastSeq
						}
					}
				}
				lasts = append(lasts, last)
			}
			return lasts[0] > 0 && lasts[0] == lasts[1] && lasts[1] == lasts[2]
		})
		t.Logf("%d edits; waits for a sync over a second: %d", m.total(), m.stalls.Load())
	})
}

// natsJSZ asks a NATS server for its streams' state.
var natsJSZ = natsserver.JSzOptions{Streams: true}
