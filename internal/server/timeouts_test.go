package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/server"
)

// TestHTTPTimeouts: with an HTTP write timeout of two seconds and a read
// timeout of ten, a WebSocket lives on well past them (it leaves them
// behind when it upgrades), a backup download that keeps reading goes
// through though it takes several write timeouts, and a download that
// stalls is cut after about one. (The timeouts leave room for a loaded
// machine: the 900 KB bodies that fill the store, and a reader's pauses.)
func TestHTTPTimeouts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes about 15 MB")
	}
	const timeout = 2 * time.Second
	ts := startServer(t, withNoSync(), withLimits(func(l *server.LimitsConfig) {
		l.HTTPReadTimeout = server.Duration(5 * timeout)
		l.PingInterval = server.Duration(time.Minute)
		l.HTTPWriteTimeout = server.Duration(timeout)
		l.PingInterval = server.Duration(time.Minute)
	}))
	base := "http://" + ts.Addr

	ws := connectRaw(t, ts.URL, "", "long-lived")

	// About 15 MB, more than the sockets between the server and a client
	// that does not read can buffer.
	for i := range 12 {
		body, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("fill-%d", i), "content": strings.Repeat("x", 900_000)})
		resp, err := http.Post(base+"/api/docs", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create fill-%d: %d", i, resp.StatusCode)
		}
	}
	start := time.Now()

	// A slow reader: 256 KiB every 100 ms, 7 s or more for the whole, over
	// three write timeouts.
	conn, resp := startBackup(t, ts.Addr)
	slow := time.Now()
	var got int64
	buf := make([]byte, 256<<10)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("slow backup reader after %d bytes: %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close()
	if got != resp.ContentLength {
		t.Fatalf("a slow reader got %d of %d bytes in %v: cut off", got, resp.ContentLength, time.Since(slow))
	}
	if took := time.Since(slow); took < 2*timeout {
		t.Fatalf("the slow download took %v: not slow enough to pass the write timeout %v", took, timeout)
	}
	t.Logf("a reader taking 256 KiB every 100 ms got all %d bytes in %v (write timeout %v)", got, time.Since(slow).Round(time.Millisecond), timeout)

	// A stalled reader: after three timeouts of reading nothing, the
	// server has given up; what the sockets held arrives, then the end.
	conn, resp = startBackup(t, ts.Addr)
	time.Sleep(3 * timeout) // the subject is a timeout: let it pass
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, _ := io.Copy(io.Discard, resp.Body)
	conn.Close()
	if n >= resp.ContentLength {
		t.Fatalf("a stalled reader got all %d bytes: the server waited for it", n)
	}
	t.Logf("a stalled reader got %d of %d bytes: cut", n, resp.ContentLength)

	// The WebSocket, connected before all this, still answers, past both
	// timeouts.
	if since := time.Since(start); since < 5*timeout {
		time.Sleep(5*timeout - since) // the subject is a timeout: let it pass
	}
	ws.alive()
}

// startBackup requests GET /api/backup on a connection of its own and
// returns it with the response, its headers read.
func startBackup(t *testing.T, addr string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /api/backup HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	if size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err != nil || size < 10<<20 {
		t.Fatalf("backup: Content-Length %q, want over 10 MB", resp.Header.Get("Content-Length"))
	}
	return conn, resp
}
