package web

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tcpPair returns both ends of a loopback TCP connection, the server's
// with small socket buffers so that it fills quickly.
func tcpPair(t *testing.T) (server *net.TCPConn, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := (<-accepted).(*net.TCPConn)
	if sc == nil {
		t.Fatal("accept failed")
	}
	_ = sc.SetWriteBuffer(16 << 10)
	_ = cc.(*net.TCPConn).SetReadBuffer(16 << 10)
	t.Cleanup(func() { sc.Close(); cc.Close() })
	return sc, cc.(*net.TCPConn)
}

// TestTryWrite: one attempt takes what the socket can hold (here, less
// than all) and never waits; later attempts take what is freed, none
// waits for the peer; what is left, written by a blocking write while
// the peer reads, completes the byte stream exactly.
func TestTryWrite(t *testing.T) {
	if !rawWrites {
		t.Skip("no raw writes on this system")
	}
	sc, cc := tcpPair(t)
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 4<<20) // more than the socket buffers
	for i := range all {
		all[i] = byte(i*7 + i/251) // no two neighbours alike: a misplaced byte shows
	}
	n := 0
	for i := 0; ; i++ {
		done := make(chan int, 1)
		go func() {
			k, err := tryWrite(raw, all[n:])
			if err != nil {
				t.Error(err)
			}
			done <- k
		}()
		var k int
		select {
		case k = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a non-blocking write on a full socket waited")
		}
		if k == 0 {
			break
		}
		if n += k; n >= len(all) || i == 1000 {
			t.Fatalf("the socket took %d of %d bytes in %d attempts without a read", n, len(all), i+1)
		}
	}
	if n == 0 {
		t.Fatal("the first attempt wrote nothing to an empty socket")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cc, int64(len(all))))
		got <- b
	}()
	if _, err := sc.Write(all[n:]); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, all) {
			t.Fatalf("the peer read %d bytes that differ from the %d written", len(b), len(all))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the peer did not read everything")
	}
}

// TestTryWriteClosed: a write to a closed socket fails rather than waits.
func TestTryWriteClosed(t *testing.T) {
	if !rawWrites {
		t.Skip("no raw writes on this system")
	}
	sc, cc := tcpPair(t)
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	cc.Close()
	sc.Close()
	if _, err := tryWrite(raw, []byte("x")); err == nil {
		t.Fatal("a write to a closed socket succeeded")
	}
}

// TestRawWriteAllocs: a write worker's write allocates nothing (its
// callback is made once), where a closure per write cost three
// allocations. The count holds under the race detector too.
func TestRawWriteAllocs(t *testing.T) {
	if !rawWrites {
		t.Skip("no raw writes on this system")
	}
	sc, cc := tcpPair(t)
	go io.Copy(io.Discard, cc) // the peer reads everything
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w, b := newRawWrite(), []byte("x")
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := w.write(raw, b); n != 1 || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write, want 0", allocs)
	}
}

// TestCaptureConn: gorilla, upgraded through hijackCapture, writes to the
// socket outside a capture (the handshake, then a message), and into
// memory during one: nothing reaches the client until the captured bytes
// are written, and then the client reads the frames gorilla made, in
// order, control frames included.
func TestCaptureConn(t *testing.T) {
	type upgraded struct {
		ws *websocket.Conn
		cc *captureConn
	}
	got := make(chan upgraded, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hijackCapture{ResponseWriter: w}
		ws, err := (&websocket.Upgrader{}).Upgrade(hw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		got <- upgraded{ws, hw.conn}
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	up := <-got
	defer up.ws.Close()
	if up.cc == nil {
		t.Fatal("the upgrader did not hijack through hijackCapture")
	}

	// Outside a capture: straight to the client.
	if err := up.ws.WriteMessage(websocket.TextMessage, []byte("direct")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := client.ReadMessage(); err != nil || string(b) != "direct" {
		t.Fatalf("read %q, %v", b, err)
	}

	// During a capture: into memory only.
	pinged := make(chan string, 1)
	client.SetPingHandler(func(data string) error { pinged <- data; return nil })
	up.cc.capture(make([]byte, 0, 16))
	if err := up.ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 10_000) // more than gorilla's write buffer: several frames
	for _, m := range []string{"one", big} {
		if err := up.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := up.cc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err) // ignored while capturing: a later direct write must not time out
	}
	out := up.cc.release()
	if len(out) < len(big) {
		t.Fatalf("captured %d bytes, want the frames of %d", len(out), len(big))
	}

	// After the capture: direct again (the deadline set while capturing
	// did not reach the socket), and the client reads this message before
	// the captured ones, which reach it only when written.
	if err := up.ws.WriteMessage(websocket.TextMessage, []byte("after")); err != nil {
		t.Fatalf("a direct write after the capture: %v", err)
	}
	if _, err := up.cc.Conn.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"after", "one", big} {
		_, b, err := client.ReadMessage()
		if err != nil || string(b) != want {
			t.Fatalf("read %.20q (%d bytes), %v; want %.20q", b, len(b), err, want)
		}
	}
	select {
	case p := <-pinged:
		if p != "p" {
			t.Fatalf("ping %q", p)
		}
	default:
		t.Fatal("the captured ping did not reach the client")
	}
}
