package web

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// captureConn is the network connection gorilla/websocket writes to. It
// lets the writer pool (writer.go) have gorilla encode frames, WebSocket
// framing and all, into memory, and then move the bytes to the socket
// itself without blocking: while capturing, writes are appended to a
// buffer and never fail; otherwise they go straight to the socket (the
// handshake, and a connection's own write goroutine, which may block).
// Reads are the socket's.
//
// Only the holder of the connection's write token (conn.writing) switches
// modes and takes the buffer. Gorilla's reader may write a close frame of
// its own when the client breaks the protocol; that write, like any other,
// goes where the mode says.
type captureConn struct {
	net.Conn // the socket

	mu        sync.Mutex // guards capturing, buf and deadline
	capturing bool
	buf       []byte
	// deadline is the last write deadline set on the socket, so that
	// gorilla's per-frame SetWriteDeadline (the zero time: the write
	// watchdog bounds writes instead) costs nothing.
	deadline time.Time
}

// Write appends p to the buffer while capturing, else writes it to the
// socket.
func (c *captureConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.capturing {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// SetWriteDeadline sets the socket's write deadline unless capturing
// (where nothing waits) or unchanged.
func (c *captureConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	if c.capturing || t.Equal(c.deadline) {
		c.mu.Unlock()
		return nil
	}
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines, as net.Conn's does.
func (c *captureConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// capture starts capturing into buf (its length reset; the caller's
// memory, reused from one write to the next).
func (c *captureConn) capture(buf []byte) {
	c.mu.Lock()
	c.capturing, c.buf = true, buf[:0]
	c.mu.Unlock()
}

// release stops capturing and returns what was written meanwhile.
func (c *captureConn) release() []byte {
	c.mu.Lock()
	b := c.buf
	c.capturing, c.buf = false, nil
	c.mu.Unlock()
	return b
}

// hijackCapture is the http.ResponseWriter handed to the upgrader: its
// Hijack wraps the socket in a captureConn, which the upgrader passes on
// to the websocket.Conn it makes, and gives the upgrader a read buffer of
// readBufferSize bytes that the connection can look into (conn.awaitInput).
// The upgrader must have no ReadBufferSize of its own, so that it takes
// this buffer.
type hijackCapture struct {
	http.ResponseWriter
	conn *captureConn  // set by Hijack
	br   *bufio.Reader // the read buffer gorilla uses, set by Hijack
}

// readBufferSize is a connection's read buffer: frames from clients are
// small, and an idle connection keeps it.
const readBufferSize = 512

func (h *hijackCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: the response writer cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &captureConn{Conn: nc}
	if brw.Reader.Buffered() > 0 {
		return h.conn, brw, nil // the upgrader refuses it: data before the handshake's end
	}
	h.br = bufio.NewReaderSize(h.conn, readBufferSize)
	return h.conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}
