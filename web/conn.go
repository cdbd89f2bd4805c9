package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// closeGrace is how long the writer waits, after sending a close frame, for
// the client to answer before it drops the TCP connection.
const closeGrace = 2 * time.Second

// conn is one WebSocket connection. The read goroutine owns the fields
// marked so; the send queue is guarded by qmu; the identity by idMu.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	cc  *captureConn    // ws's network connection (capture.go)
	raw syscall.RawConn // cc's socket for non-blocking writes; nil: none (writer.go)
	// br is gorilla's read buffer (hijackCapture), filled by awaitInput;
	// nil: unknown.
	br   *bufio.Reader
	id   string
	addr string // the client's address as the connection caps count it (capKey)

	idMu      sync.Mutex // guards ident, user and connected
	ident     auth.Identity
	user      proto.User
	connected bool

	// Owned by the read goroutine.
	subs       map[string]struct{} // subscribed channels
	docs       map[string]struct{} // open documents
	limiter    *rate.Limiter
	violations []time.Time
	nsLimiters map[string]*rate.Limiter
	expiry     *time.Timer
	// connectTimer closes the connection if connect has not come within
	// ConnectTimeout; its function only reads what is safe from any
	// goroutine.
	connectTimer *time.Timer
	draining     bool // a close was requested: discard frames until the end

	qmu       sync.Mutex // guards the fields below, up to writing, and large and largeBytes
	queue     [][]byte   // a nil entry stands for the next of large
	spare     [][]byte   // empty; memory for queue when it is nil (writeReady)
	qbytes    int
	closing   bool             // no more frames are queued
	closeWith proto.Disconnect // why it closes, once closing
	flush     bool             // write what is queued before the close frame
	dead      bool             // the read goroutine ended: drop the socket, send nothing
	pingDue   bool             // the server's pinger asks for a ping
	pongDue   bool             // the client pinged: answer with pongData
	pongData  string
	// writing is the write token: someone will write what is queued. It
	// is held from the moment something is queued for an idle connection
	// until a writer finds nothing left: by the writer pool (the
	// connection is on its ready list or a worker writes for it) or by the
	// connection's own write goroutine (writeLoop).
	writing bool

	// large holds the large frames queued (session.LargeFrame), in queue
	// order, each marked by a nil entry in queue; largeBytes counts their
	// sizes until each is written. Guarded by qmu.
	large      []session.LargeFrame
	largeBytes int

	readDone chan struct{} // closed when the read goroutine ends

	// hooked is the connection's share of the application's hooks
	// (hooks.go); nil when no hook is on. Set before the read goroutine
	// starts.
	hooked *connHooks

	// readDeadline is the read deadline last set by the read goroutine,
	// which owns it.
	readDeadline time.Time
	// writeSince is when the frame being written started (Unix nanoseconds;
	// 0 while no write is under way). Frame writes carry no socket
	// deadline: gorilla would move a runtime timer on every write to set
	// it. The server's watchdog closes a connection whose write has taken
	// longer than WriteTimeout instead.
	writeSince atomic.Int64
}

// readDeadlineMin is how long a connected client may stay silent, at
// least, before it is dropped: with extendDeadline's slack of a quarter
// ping interval the read deadline falls 1.75 to 2 ping intervals after the
// client's latest frame. The server pings every interval, so a live client
// is never silent much longer than one.
func readDeadlineMin(ping time.Duration) time.Duration { return 2*ping - ping/4 }

// extendDeadline keeps a deadline at least atLeast ahead: when *d is closer
// than that it sets *d to now+atLeast+slack through set, otherwise it does
// nothing. A busy connection then updates its runtime timer once per slack
// rather than on every frame, and the deadline falls between atLeast and
// atLeast+slack after the latest frame.
func extendDeadline(set func(time.Time) error, d *time.Time, atLeast, slack time.Duration) {
	now := time.Now()
	if d.Sub(now) >= atLeast {
		return
	}
	*d = now.Add(atLeast + slack)
	_ = set(*d)
}

func newConn(s *Server, ws *websocket.Conn, cc *captureConn, addr string) *conn {
	id := newClientID()
	var raw syscall.RawConn
	if sc, ok := cc.Conn.(syscall.Conn); ok && rawWrites {
		raw, _ = sc.SyscallConn()
	}
	return &conn{
		srv:  s,
		ws:   ws,
		cc:   cc,
		raw:  raw,
		id:   id,
		addr: addr,
		subs: make(map[string]struct{}),
		docs: make(map[string]struct{}),
		// The burst covers a reconnecting client resubscribing everything.
		limiter:  rate.NewLimiter(rate.Limit(s.cfg.FrameRate), s.cfg.FrameBurst),
		readDone: make(chan struct{}),
	}
}

func newClientID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "c_" + hex.EncodeToString(b[:])
}

// logger returns the server's logger with the connection's client and user
// ids. It is built on each use rather than kept: connections log rarely,
// and a kept logger costs every idle connection its context buffer.
func (c *conn) logger() *zerolog.Logger {
	ctx := c.srv.log.With().Str("client", c.id)
	if u := c.userID(); u != "" {
		ctx = ctx.Str("user", u)
	}
	l := ctx.Logger()
	return &l
}

// ClientID implements session.Subscriber.
func (c *conn) ClientID() string { return c.id }

func (c *conn) userID() string {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return c.ident.UserID
}

func (c *conn) identity() auth.Identity {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return c.ident
}

// kickLocked takes the write token unless it is taken, and hands the
// connection to the writer pool (writer.go). Nothing is writing for an
// idle connection: a writer takes it when there is something to write
// (frames, a ping or pong, a close) and lets go when it has written
// everything. Must be called with c.qmu held. (Shutdown waits for the
// readers, then for the pool, which waits for the connections' own write
// goroutines: the token itself is not counted.)
func (c *conn) kickLocked() {
	if c.writing || c.dead {
		return
	}
	c.writing = true
	c.srv.writers.push(c)
}

// ping asks the connection's writer to send a ping.
func (c *conn) ping() {
	c.qmu.Lock()
	if !c.closing {
		c.pingDue = true
		c.kickLocked()
	}
	c.qmu.Unlock()
}

// Send queues a frame without blocking (session.Subscriber). When the queue
// is over its bounds the connection is closed as a slow reader: what is
// queued is dropped and Send returns false.
func (c *conn) Send(frame []byte) bool {
	c.qmu.Lock()
	ok, slow := c.roomLocked(1, len(frame))
	if ok {
		c.queue = append(c.queue, frame)
		c.qbytes += len(frame)
		c.kickLocked()
	}
	c.qmu.Unlock()
	if slow {
		c.slowReader()
	}
	return ok
}

// SendBatch queues frames in order without blocking
// (session.BatchSender): one lock and at most one wake-up of the writer
// for all of them. Over the queue's bounds it closes the connection as a
// slow reader, as Send does.
func (c *conn) SendBatch(frames [][]byte) bool {
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	c.qmu.Lock()
	ok, slow := c.roomLocked(len(frames), size)
	if ok {
		c.queue = append(c.queue, frames...)
		c.qbytes += size
		c.kickLocked()
	}
	c.qmu.Unlock()
	if slow {
		c.slowReader()
	}
	return ok
}

// roomLocked reports whether n more frames of size bytes in all may be
// queued, taking the queue's reused memory if it is empty. Over the
// queue's bounds it closes the connection as a slow reader (slow, for the
// caller to report once it has unlocked). Must be called with c.qmu held.
func (c *conn) roomLocked(n, size int) (ok, slow bool) {
	if c.closing {
		return false, false
	}
	if len(c.queue)+n > c.srv.cfg.MaxQueueFrames || c.qbytes+size > c.srv.cfg.MaxQueueBytes {
		c.slowLocked()
		return false, true
	}
	if c.queue == nil {
		c.queue, c.spare = c.spare, nil
	}
	return true, false
}

// slowReader reports a close as a slow reader.
func (c *conn) slowReader() {
	c.srv.cfg.Metrics.SlowReaderCloses.Inc()
	c.logger().Warn().Msg("slow reader: closing")
}

// slowLocked closes the connection as a slow reader: what is queued is
// dropped. Must be called with c.qmu held.
func (c *conn) slowLocked() {
	c.closing, c.flush = true, false
	c.closeWith = proto.DisconnectSlowReader
	c.dropQueueLocked()
	c.kickLocked()
}

// dropQueueLocked drops every queued frame. Must be called with c.qmu held.
func (c *conn) dropQueueLocked() {
	c.queue, c.spare, c.qbytes = nil, nil, 0
	c.large, c.largeBytes = nil, 0
}

// SendLarge queues a large frame without blocking (session.LargeSender):
// the writer streams it into a WebSocket message of its own, in pieces, in
// its place among the queued frames. Large frames do not count against
// MaxQueueBytes but against MaxLargeBytes, the bytes of the large frames
// pending (one is always taken): over it a reply is refused (ErrBusy) and
// a broadcast closes the connection as a slow reader.
func (c *conn) SendLarge(f session.LargeFrame, reply bool) error {
	size := f.Size()
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return session.ErrSlow
	}
	if c.largeBytes > 0 && c.largeBytes+size > c.srv.cfg.MaxLargeBytes || len(c.queue)+1 > c.srv.cfg.MaxQueueFrames {
		if reply && len(c.queue)+1 <= c.srv.cfg.MaxQueueFrames {
			pending := c.largeBytes
			c.qmu.Unlock()
			return fmt.Errorf("%d bytes of large replies pending, at most %d: %w", pending, c.srv.cfg.MaxLargeBytes, session.ErrBusy)
		}
		c.slowLocked()
		c.qmu.Unlock()
		c.slowReader()
		return session.ErrSlow
	}
	c.queue = append(c.queue, nil)
	c.large = append(c.large, f)
	c.largeBytes += size
	c.kickLocked()
	c.qmu.Unlock()
	return nil
}

// send encodes and queues a frame.
func (c *conn) send(v any) { c.Send(proto.Encode(v)) }

// close asks the writer to flush what is queued, send a close frame for d
// and end the connection. The first close wins.
func (c *conn) close(d proto.Disconnect) { c.requestClose(d, true) }

// closeNow is close without the flush.
func (c *conn) closeNow(d proto.Disconnect) { c.requestClose(d, false) }

func (c *conn) requestClose(d proto.Disconnect, flush bool) {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return
	}
	c.closing, c.flush, c.closeWith = true, flush, d
	if !flush {
		c.dropQueueLocked()
	}
	c.kickLocked()
	c.qmu.Unlock()
	c.endHookCalls()
}

// writeLoop is the connection's own write goroutine, which holds the write
// token: it writes rest (what a worker could not write without blocking),
// then everything queued, sends the pings and pongs due, streams large
// frames, performs the close, and ends when there is nothing left to do
// (the connection is then back with the writer pool). Its writes block;
// the write watchdog (writeSince) bounds them.
func (c *conn) writeLoop(rest []byte) {
	defer c.srv.writers.own.Done()
	if len(rest) > 0 {
		if err := c.writeBlocking(rest); err != nil {
			c.logger().Debug().Err(err).Msg("write failed")
			c.abort()
			return
		}
	}
	var batch [][]byte
	var large []session.LargeFrame
	for {
		c.qmu.Lock()
		batch, c.queue = c.queue, nil
		large, c.large = c.large, nil
		c.qbytes = 0
		closing, flush, why, dead := c.closing, c.flush, c.closeWith, c.dead
		ctl := control{ping: c.pingDue, pong: c.pongDue, pongData: c.pongData}
		c.pingDue, c.pongDue, c.pongData = false, false, ""
		if len(batch) == 0 && !closing && !ctl.due() {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		if dead { // the client is gone: nothing to say
			_ = c.ws.Close()
			return
		}
		if closing && !flush {
			batch = nil
		}
		if err := c.writeQueued(ctl, batch, large); err != nil {
			c.logger().Debug().Err(err).Msg("write failed")
			c.abort()
			return
		}
		if closing {
			c.finishClose(why)
			return
		}
	}
}

// writeQueued writes the control frames due, then what was queued: runs
// of frames as one message each (up to maxBatchFrames), and each large
// frame, where a nil entry marks it, as a message of its own. Gorilla
// writes straight to the socket, and may block; the write watchdog
// (writeSince) bounds each write.
func (c *conn) writeQueued(ctl control, frames [][]byte, large []session.LargeFrame) error {
	for {
		run := 0
		for run < len(frames) && run < maxBatchFrames && frames[run] != nil {
			run++
		}
		if run > 0 || ctl.due() {
			c.writeSince.Store(time.Now().UnixNano())
			size, err := c.writeFrames(ctl, frames[:run])
			c.writeSince.Store(0)
			if err != nil {
				return err
			}
			ctl = control{}
			c.counted(run, size)
		}
		frames = frames[run:]
		if len(frames) == 0 {
			return nil
		}
		if frames[0] == nil {
			lf := large[0]
			large = large[1:]
			if err := c.writeLarge(lf); err != nil {
				return err
			}
			frames = frames[1:]
		}
	}
}

// writeBlocking writes b, bytes gorilla encoded for a worker that the
// socket did not take at once, waiting for the socket as long as the write
// watchdog allows.
func (c *conn) writeBlocking(b []byte) error {
	c.writeSince.Store(time.Now().UnixNano())
	defer c.writeSince.Store(0)
	_, err := c.cc.Conn.Write(b)
	return err
}

// counted adds a write of n frames, their payload being size bytes, to
// the server's figures.
func (c *conn) counted(n, size int) {
	if n == 0 {
		return
	}
	m := c.srv.cfg.Metrics
	m.MessagesOut.Add(float64(n))
	m.BytesOut.Add(float64(size))
}

// writeLarge streams a large frame into a message of its own. The write
// watchdog (writeSince) is reset at each piece: a client that keeps
// reading is never cut off for a long message, one that stops is, after
// WriteTimeout. Only the connection's own write goroutine calls it: the
// message goes out through gorilla's writer, in pieces of its own.
func (c *conn) writeLarge(f session.LargeFrame) error {
	defer c.writeSince.Store(0)
	c.writeSince.Store(time.Now().UnixNano())
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	n, err := f.WriteTo(&watchdogWriter{w: w, since: &c.writeSince})
	if err == nil {
		err = w.Close()
	}
	c.qmu.Lock()
	c.largeBytes = max(0, c.largeBytes-f.Size())
	c.qmu.Unlock()
	m := c.srv.cfg.Metrics
	m.MessagesOut.Inc()
	m.BytesOut.Add(float64(n))
	return err
}

// watchdogWriter passes writes on in pieces of at most progressPiece
// bytes, noting the time before each in since.
type watchdogWriter struct {
	w     io.Writer
	since *atomic.Int64
}

// progressPiece is how much a large frame's writer writes between two
// updates of the write watchdog.
const progressPiece = 32 << 10

func (p *watchdogWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), progressPiece)
		p.since.Store(time.Now().UnixNano())
		m, err := p.w.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// writeStuck reports whether a frame write has been under way for longer
// than timeout at now.
func (c *conn) writeStuck(now time.Time, timeout time.Duration) bool {
	since := c.writeSince.Load()
	return since != 0 && now.UnixNano()-since > int64(timeout)
}

// finishClose sends the close frame for d, gives the client closeGrace to
// answer, then drops the connection.
func (c *conn) finishClose(d proto.Disconnect) {
	timeout := c.srv.cfg.WriteTimeout
	if d.Code == proto.CloseSlowReader {
		timeout = time.Second // its socket is likely full
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(d.Code, d.Reason), time.Now().Add(timeout))
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	select {
	case <-c.readDone:
	case <-time.After(closeGrace):
	}
	_ = c.ws.Close()
	<-c.readDone
}

// abort drops the connection without a close frame, after a failed write.
// The write token is kept, so that nothing writes again; the reader ends
// on the closed socket.
func (c *conn) abort() {
	c.qmu.Lock()
	c.closing = true
	c.dropQueueLocked()
	c.qmu.Unlock()
	c.endHookCalls()
	_ = c.ws.Close()
}

// readLoop is the connection's read goroutine.
//
// Before connect, nothing but connect is served: the connection is closed
// with 4001 ConnectTimeout after it opened whatever it sends, pings get no
// pong and pongs extend nothing (the server pings only connected clients),
// and any frame but a text frame closes it at once.
func (c *conn) readLoop() {
	defer c.teardown()
	cfg := &c.srv.cfg
	c.connectTimer = time.AfterFunc(cfg.ConnectTimeout, func() {
		if !c.isConnected() {
			c.close(proto.DisconnectConnectTimeout.Because(fmt.Sprintf("no connect within %v", cfg.ConnectTimeout)))
		}
	})
	// A backstop: the close above asks the client to answer within
	// closeGrace, and a client that does not is dropped then.
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.ConnectTimeout + closeGrace))
	c.ws.SetPingHandler(c.answerPing)
	c.ws.SetCloseHandler(c.answerClose)
	c.ws.SetPongHandler(func(string) error {
		if !c.draining && c.isConnected() {
			extendDeadline(c.ws.SetReadDeadline, &c.readDeadline, readDeadlineMin(cfg.PingInterval), cfg.PingInterval/4)
		}
		return nil
	})
	for {
		c.awaitInput()
		mt, r, err := c.ws.NextReader()
		if err != nil {
			if !c.draining {
				c.logger().Debug().Err(err).Msg("read ended")
			}
			return
		}
		if c.draining {
			continue // NextReader discards the rest of each frame
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(cfg.MaxFrameBytes)+1))
		if err != nil {
			return
		}
		connected := c.isConnected()
		switch {
		case len(data) > cfg.MaxFrameBytes:
			c.fatal(proto.DisconnectTooLarge)
			continue
		case !connected && mt != websocket.TextMessage:
			c.fatal(proto.DisconnectNoConnect)
			continue
		}
		if connected {
			extendDeadline(c.ws.SetReadDeadline, &c.readDeadline, readDeadlineMin(cfg.PingInterval), cfg.PingInterval/4)
			if !c.limiter.Allow() {
				c.rateLimited(data)
				continue
			}
		}
		switch {
		case mt == websocket.BinaryMessage:
			c.sendError(nil, badRequest("binary frames are not part of the protocol; send JSON text"))
			continue
		case !utf8.Valid(data):
			c.fatal(proto.DisconnectInvalidUTF8)
			continue
		}
		c.srv.cfg.Metrics.MessagesIn.Inc()
		c.handle(data)
	}
}

// awaitInput parks the read goroutine until the client has sent
// something, when gorilla has nothing buffered: an idle connection's read
// goroutine then waits here rather than deep in gorilla's reader, using
// little of its stack, which lets the runtime shrink it (the runtime
// halves a parked goroutine's stack only while less than a quarter of it
// is in use, and gorilla's read path alone kept every idle connection at
// 8 KB instead of 4). It waits by filling gorilla's own read buffer, so a
// busy connection pays no extra system call: what it reads is what
// gorilla reads next. A deadline or a closed socket ends the wait too;
// the read that follows reports it.
func (c *conn) awaitInput() {
	if c.br == nil || c.br.Buffered() > 0 {
		return
	}
	_, _ = c.br.Peek(1)
}

// answerPing answers a client's ping with a pong, as gorilla's default
// handler does, once the client has connected; before connect a ping gets
// nothing. The pong goes through the writer, behind what is queued (pings
// that come faster than it writes get one pong, for the latest).
func (c *conn) answerPing(data string) error {
	if !c.isConnected() {
		return nil
	}
	c.qmu.Lock()
	if !c.closing {
		c.pongDue, c.pongData = true, data
		c.kickLocked()
	}
	c.qmu.Unlock()
	return nil
}

// answerClose answers a client's close frame with a close frame echoing
// its code, as gorilla's default handler does, but through the writer:
// what is queued is dropped, and the read goroutine then ends.
func (c *conn) answerClose(code int, _ string) error {
	c.closeNow(proto.Disconnect{Code: code})
	return nil
}

// fatal closes the connection for d and stops handling frames.
func (c *conn) fatal(d proto.Disconnect) {
	c.logger().Warn().Int("code", d.Code).Str("reason", d.Reason).Msg("closing connection")
	c.draining = true
	c.close(d)
}

// rateLimited answers a frame over the rate limit and closes the connection
// when that happens too often.
func (c *conn) rateLimited(data []byte) {
	now := time.Now()
	window := now.Add(-c.srv.cfg.ViolationWindow)
	kept := c.violations[:0]
	for _, t := range c.violations {
		if t.After(window) {
			kept = append(kept, t)
		}
	}
	c.violations = append(kept, now)
	if len(c.violations) >= c.srv.cfg.MaxViolations {
		c.fatal(proto.DisconnectRateLimit)
		return
	}
	c.srv.cfg.Metrics.RateLimited.Inc()
	c.sendError(peekID(data), &requestError{proto.CodeRateLimited, "too many frames; slow down"})
}

// teardown runs when the read goroutine ends: it leaves every channel and
// document, and drops the socket (or lets a running writer finish its
// close).
func (c *conn) teardown() {
	c.qmu.Lock()
	c.dead = !c.closing // a close in progress ends on its own
	c.closing = true
	c.dropQueueLocked()
	writer := c.writing
	c.qmu.Unlock()
	if !writer {
		_ = c.ws.Close()
	}
	c.stopHooks()
	for ch := range c.subs {
		c.srv.cfg.Hub.Unsubscribe(ch, c.id)
	}
	c.srv.subscriptions.Add(-int64(len(c.subs)))
	c.srv.cfg.Metrics.Subscriptions.Sub(float64(len(c.subs)))
	for id := range c.docs {
		c.srv.cfg.Docs.Leave(c.id, id)
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.connectTimer.Stop()
	close(c.readDone)
	c.srv.removeConn(c)
	if c.isConnected() && c.srv.cfg.Notifier != nil {
		c.srv.cfg.Notifier.Notify(session.Event{Type: session.EventClientDisconnected, Time: c.srv.cfg.Now(), User: c.userID(), ClientID: c.id})
	}
	c.srv.wg.Done()
	c.logger().Debug().Msg("disconnected")
}

func (c *conn) isConnected() bool {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return c.connected
}

// peekID extracts a frame's id from JSON that did not decode as a whole.
func peekID(data []byte) *int64 {
	var f struct {
		ID *int64 `json:"id"`
	}
	if json.Unmarshal(data, &f) != nil {
		return nil
	}
	return f.ID
}

// sendError answers a request with an error frame; internal errors are
// logged and reported without detail.
func (c *conn) sendError(id *int64, err error) { c.sendErrorAbout(id, "", "", err) }

// sendErrorAbout is sendError for a request about a channel or a document,
// which the error frame names.
func (c *conn) sendErrorAbout(id *int64, channel, doc string, err error) {
	f := describe(err)
	if f.Internal {
		c.logger().Error().Err(err).Str("channel", channel).Str("doc", doc).Msg("request failed")
	}
	e := f.frame()
	e.ID, e.Channel, e.Doc = id, channel, doc
	c.send(e)
}

// isJSONObject reports whether raw is a JSON object.
func isJSONObject(raw json.RawMessage) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// requestContext bounds the storage work of one request.
func requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
