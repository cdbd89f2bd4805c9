package session_test

// Integration tests of live documents through a real server when things
// go wrong: connections dropped mid-op, a server killed with SIGKILL,
// documents unloading while idle.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tandemhq/tandem/server"
)

// TestExactlyOnceAcrossDrops drops the connection right after sending an op,
// before its ack, many times, while another client keeps editing. After each
// reconnect the client finds its op by uid or resends it with the same uid;
// in the end every uid is in the log exactly once.
func TestExactlyOnceAcrossDrops(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	ls := startLive(t, nil)
	other := openEditor(t, dialWS(t, ls.URL, "bob"), "once", "bob")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // concurrent edits, so resends are transformed too
		defer wg.Done()
		r := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stop:
				return
			default:
			}
			other.randomEdit(r)
			time.Sleep(time.Millisecond)
		}
	}()
	e := openEditor(t, dialWS(t, ls.URL, "ann"), "once", "ann")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rounds {
		e.randomEdit(r) // sent at once: nothing is in flight
		if i%3 == 0 {
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond) // sometimes the server got it
		}
		e.c.drop()
		e.reconnect(ls.URL, "ann")
		waitFor(t, "the op acked after reconnecting", e.settled)
	}
	close(stop)
	wg.Wait()
	waitFor(t, "bob settled", other.settled)
	_, uids := replayLog(t, ls.URL, "once")
	count := map[string]int{}
	for _, u := range uids {
		count[u]++
	}
	e.mu.Lock()
	acked := append([]string(nil), e.acked...)
	e.mu.Unlock()
	if len(acked) != rounds {
		t.Fatalf("%d of %d ops acked", len(acked), rounds)
	}
	for _, u := range acked {
		if count[u] != 1 {
			t.Errorf("uid %s is in the log %d times", u, count[u])
		}
	}
	for u, n := range count {
		if n != 1 {
			t.Errorf("uid %s is in the log %d times", u, n)
		}
	}
	want, _ := serverText(t, ls.URL, "once")
	waitFor(t, "ann at the head", func() bool { got, _ := e.state(); return got == want })
}

// TestCrashKill9 runs the server in a child process, edits with several
// clients recording every ack, kills the child with SIGKILL mid-load,
// restarts it on the same data, and checks that every acked uid is in the
// log exactly once and that the clients reconnect and converge.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	data := t.TempDir()
	child, addr := startChild(t, data, "127.0.0.1:0")
	url := "ws://" + addr + "/ws"
	var eds []*editor
	for i := range 5 {
		user := fmt.Sprintf("u%d", i)
		eds = append(eds, openEditor(t, dialWS(t, url, user), "crash", user))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var emu sync.Mutex // guards reconnecting editors' use by the workers
	for i, e := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				emu.Lock()
				e.randomEdit(r)
				emu.Unlock()
				time.Sleep(time.Duration(1+r.IntN(3)) * time.Millisecond)
			}
		}()
	}
	time.Sleep(800 * time.Millisecond) // load
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	emu.Lock() // no edits while the acks are read and the server is down
	var acked []string
	for _, e := range eds {
		<-e.c.done
		e.mu.Lock()
		acked = append(acked, e.acked...)
		e.mu.Unlock()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d ops acked before the kill", len(acked))
	}
	startChild(t, data, addr)
	for i, e := range eds {
		e.reconnect(url, fmt.Sprintf("u%d", i))
	}
	emu.Unlock()
	time.Sleep(200 * time.Millisecond) // edits after the restart too
	close(stop)
	wg.Wait()
	waitFor(t, "every editor settled", func() bool {
		for _, e := range eds {
			if !e.settled() {
				return false
			}
		}
		return true
	})
	want, v := serverText(t, url, "crash")
	replayed, uids := replayLog(t, url, "crash")
	if replayed != want {
		t.Fatalf("the log replays to %q, the head is %q", replayed, want)
	}
	count := map[string]int{}
	for _, u := range uids {
		count[u]++
	}
	for _, u := range acked {
		if count[u] != 1 {
			t.Errorf("acked uid %s is in the log %d times", u, count[u])
		}
	}
	for u, n := range count {
		if n != 1 {
			t.Errorf("uid %s is in the log %d times", u, n)
		}
	}
	for i, e := range eds {
		waitFor(t, "editor at the head", func() bool { _, ev := e.state(); return ev == v })
		if got, _ := e.state(); got != want {
			t.Errorf("editor %d has %q, server %q", i, got, want)
		}
	}
	t.Logf("%d ops acked before the kill, %d in the log at the end", len(acked), len(uids))
}

// startChild runs the server in a child process (this test binary, see
// runChildServer) and returns it with its address; cleanup kills it.
func startChild(t *testing.T, data, addr string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServerEnv+"=1", "TANDEM_TEST_DATA="+data, "TANDEM_TEST_ADDR="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	got, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("child server said %q", line)
	}
	return cmd, got
}

// TestIdleDocumentsUnload opens, edits and closes 10,000 documents and
// checks that they all unload and the heap returns to within 10% of where
// it started. The documents are created in a first pass, so that what
// storage keeps of them (bbolt's freelist grows with the file) is in the
// baseline; the second pass loads each one again from storage.
func TestIdleDocumentsUnload(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	ls := startLive(t, func(c *server.Config) {
		c.NoSync = true
		c.DocIdleTimeout = 20 * time.Millisecond
		c.File.Limits.FrameRate = 1e6
	})
	const workers = 8
	conns := make([]*wsConn, workers)
	for i := range conns {
		conns[i] = dialWS(t, ls.URL, fmt.Sprintf("w%d", i))
	}
	pass := func(round int) {
		var wg sync.WaitGroup
		for w, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					id := fmt.Sprintf("doc-%d", i)
					c.send(map[string]any{"type": "open", "doc": id})
					snap := c.expect("snapshot")
					c.send(map[string]any{"type": "op", "doc": id, "version": num(snap["version"]),
						"op": []any{fmt.Sprintf("round %d of %s. ", round, id)}, "uid": fmt.Sprintf("%s-%d", id, round)})
					c.expect("ack")
					c.send(map[string]any{"type": "close", "doc": id})
					c.expect("closed")
				}
			}()
		}
		wg.Wait()
		waitFor(t, "every document unloaded", func() bool { return ls.Server().Docs.Loaded() == 0 })
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	pass(1)
	before := heap()
	pass(2)
	after := heap()
	t.Logf("heap %d KiB before, %d KiB after loading, editing and unloading %d documents", before>>10, after>>10, n)
	if float64(after) > float64(before)*1.10 {
		t.Fatalf("heap grew from %d to %d bytes (over 10%%) after %d documents unloaded", before, after, n)
	}
}

// dialRaw dials the server without the test helpers.
func dialRaw(url string) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	return ws, err
}
