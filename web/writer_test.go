package web

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// readFrame parses one unmasked server frame (RFC 6455, 5.2): its first
// byte and its payload.
func readFrame(t *testing.T, b []byte) (first byte, payload []byte, rest []byte) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("a frame of %d bytes", len(b))
	}
	first, n, b := b[0], int(b[1]&0x7f), b[2:]
	if b0 := b; n == 126 {
		n, b = int(binary.BigEndian.Uint16(b0)), b0[2:]
	} else if n == 127 {
		n, b = int(binary.BigEndian.Uint64(b0)), b0[8:]
	}
	if len(b) < n {
		t.Fatalf("a frame says %d bytes of payload, %d follow", n, len(b))
	}
	return first, b[:n], b[n:]
}

// TestTextHeader: a message's header gives its payload length in the
// shortest form RFC 6455 allows, at each boundary.
func TestTextHeader(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		msg := textHeader(nil, n)
		want := 2
		switch {
		case n > 65535:
			want = 10
		case n > 125:
			want = 4
		}
		if len(msg) != want {
			t.Errorf("payload %d: a header of %d bytes, want %d", n, len(msg), want)
		}
		first, payload, rest := readFrame(t, append(msg, make([]byte, n)...))
		if first != 0x81 || len(payload) != n || len(rest) != 0 {
			t.Errorf("payload %d: first byte %#x, payload %d, %d left", n, first, len(payload), len(rest))
		}
	}
}

// TestBuild: frames become one text message, separated by newlines,
// after the control frames due.
func TestBuild(t *testing.T) {
	w := newWorker()
	frames := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`), []byte(`{"c":3}`)}
	size := w.build(control{ping: true, pong: true, pongData: "hi"}, frames)
	out := bytes.Join(w.bufs, nil)
	first, p, out := readFrame(t, out)
	if first != 0x89 || len(p) != 0 {
		t.Fatalf("first frame %#x %q, want a ping", first, p)
	}
	first, p, out = readFrame(t, out)
	if first != 0x8A || string(p) != "hi" {
		t.Fatalf("second frame %#x %q, want a pong with hi", first, p)
	}
	first, p, out = readFrame(t, out)
	want := `{"a":1}` + "\n" + `{"b":2}` + "\n" + `{"c":3}`
	if first != 0x81 || string(p) != want || size != len(want) || len(out) != 0 {
		t.Fatalf("message %#x %q (size %d, %d left), want %q", first, p, size, len(out), want)
	}
	if got := w.arenaPieces(control{ping: true, pong: true}, len(frames)); got != 3 {
		t.Fatalf("%d arena pieces, want 3", got)
	}
}

// TestRemainder: what is left after a partial write starts at the right
// byte, and the pieces that point into the worker's arena are copied.
func TestRemainder(t *testing.T) {
	arena := []byte("HDR")
	bufs := [][]byte{arena, []byte("one"), []byte("\n"), []byte("two")}
	all := "HDRone\ntwo"
	for written := range len(all) {
		rest := remainder(bufs, written, 1)
		if got := string(bytes.Join(rest, nil)); got != all[written:] {
			t.Fatalf("after %d bytes: %q, want %q", written, got, all[written:])
		}
		if written < len(arena) {
			copy(arena, "xxx")
			if got := string(bytes.Join(rest, nil)); got != all[written:] {
				t.Fatalf("after %d bytes, the arena reused: %q, want %q", written, got, all[written:])
			}
			copy(arena, "HDR")
		}
	}
}

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

// TestWritevPartial: without block, one attempt takes what the socket
// can hold (here, less than all) and never waits; the remainder written
// with block, while the peer reads, completes the byte stream exactly.
func TestWritevPartial(t *testing.T) {
	if !rawWrites {
		t.Skip("no raw writes on this system")
	}
	sc, cc := tcpPair(t)
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// 2,000 pieces of assorted sizes, 4 MB in all: more than the socket
	// buffers and IOV_MAX at once.
	var bufs [][]byte
	var all bytes.Buffer
	for i := range 2000 {
		b := make([]byte, 1+i*37%4000)
		for j := range b {
			b[j] = byte(i + j*7) // no two neighbours alike: a misplaced byte shows
		}
		bufs = append(bufs, b)
		all.Write(b)
	}
	var s sysWriter
	start := time.Now()
	n, err := s.writev(raw, bufs, false)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n >= all.Len() {
		t.Fatalf("one attempt wrote %d of %d bytes, want some but not all", n, all.Len())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a non-blocking write took %v", d)
	}
	// More attempts take what the socket frees meanwhile, until one takes
	// nothing: each returns at once (within a generous 5 s), never waiting
	// for the peer, which does not read yet.
	for i := 0; ; i++ {
		done := make(chan int, 1)
		go func() {
			k, err := s.writev(raw, remainder(bufs, n, 0), false)
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
		if n += k; n >= all.Len() || i == 1000 {
			t.Fatalf("the socket took %d of %d bytes in %d attempts without a read", n, all.Len(), i+1)
		}
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cc, int64(all.Len())))
		got <- b
	}()
	m, err := s.writev(raw, remainder(bufs, n, 0), true)
	if err != nil {
		t.Fatal(err)
	}
	if n+m != all.Len() {
		t.Fatalf("wrote %d+%d bytes, want %d", n, m, all.Len())
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, all.Bytes()) {
			t.Fatalf("the peer read %d bytes that differ from the %d written", len(b), all.Len())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the peer did not read everything")
	}
}

// TestWritevClosed: a write to a closed socket fails rather than waits.
func TestWritevClosed(t *testing.T) {
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
	var s sysWriter
	if _, err := s.writev(raw, [][]byte{[]byte("x")}, true); err == nil {
		t.Fatal("a write to a closed socket succeeded")
	}
}
