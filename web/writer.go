package web

import (
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The write path.
//
// A connection's frames are written by a small pool of long-lived workers
// (writerPool), shared by every connection, rather than by a goroutine per
// connection: a delivery to a connection that has nothing in flight puts
// the connection on the pool's ready list, and a worker writes whatever
// the connection has queued by then as one WebSocket message, in one
// non-blocking write system call. Frames that arrive meanwhile wait for
// the connection's next turn: the busier the server, the more frames each
// system call carries, with no delay added for an idle connection. Under
// load the workers never park, so a delivery costs an append to a queue
// and, at most, an append to the ready list; no goroutine is started or
// woken per delivery.
//
// A worker never blocks on a socket. When a socket does not take the
// whole write at once (the client reads slowly), when a large frame is to
// be streamed, or when the connection closes, the worker hands the
// connection to a goroutine of its own (conn.writeLoop), which writes with
// blocking calls under the write watchdog until the queue is empty, and
// then gives the connection back to the pool. One slow client therefore
// never holds a worker, and its queue bound (4010) and the watchdog close
// it as before.
//
// Gorilla/websocket does all the WebSocket framing: a worker has it write
// the connection's frames into memory (captureConn, capture.go) and then
// hands the bytes to the socket itself, in one non-blocking write(2). The
// connection's own goroutine has gorilla write straight to the socket.
// Pongs go through the queue like everything else, so that only the token
// holder writes. (Gorilla's reader itself writes a close frame when the
// client breaks the WebSocket protocol; the connection is dropped then.)

// maxBatchFrames bounds the frames of one WebSocket message a worker
// writes in one turn, so that one connection's backlog does not hold a
// worker for long.
const maxBatchFrames = 500

// keepQueueFrames bounds the send queue a connection keeps for reuse once
// written (conn.spare; a slot is a slice header, 24 bytes, so at most 12
// KB): a busy connection's queue is not allocated again for every batch
// (with 100 editors on one document that was 30% of the server's bytes
// allocated). A connection whose write carries a ping or a pong alone is
// quiet, and lets it go.
const keepQueueFrames = maxBatchFrames

// newline separates the frames of a message.
var newline = []byte{'\n'}

// writerPool is the pool of workers that write for every connection; see
// the comment at the top of this file.
type writerPool struct {
	workers int

	mu      sync.Mutex // guards the fields below
	ready   []*conn    // connections waiting for a worker, in order from head
	head    int
	idle    int  // workers waiting for work
	stopped bool // stop was called: workers end when the list is empty

	wake chan struct{}  // a token per idle worker woken
	done sync.WaitGroup // the workers
	// own counts the connections' own write goroutines (conn.writeLoop),
	// which only workers start: stop waits for them after the workers.
	own sync.WaitGroup
}

// defaultWriteWorkers is the number of write workers by default: a
// quarter of the processors, at least one. Each takes a whole processor
// when busy, and fewer workers batch more: a connection's frames gather
// while the workers write for the others.
func defaultWriteWorkers() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// newWriterPool starts n workers.
func newWriterPool(n int) *writerPool {
	p := &writerPool{workers: n, wake: make(chan struct{}, n)}
	p.done.Add(n)
	for range n {
		go p.work()
	}
	return p
}

// push puts c on the ready list. The caller holds c's write token
// (conn.writing) and may hold c.qmu.
func (p *writerPool) push(c *conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	if p.idle > 0 {
		p.idle--
		p.wake <- struct{}{} // never blocks: there is room for every worker
	}
	p.mu.Unlock()
}

// takeMax bounds the connections a worker takes from the ready list at
// once.
const takeMax = 64

// take appends to into the next ready connections (up to takeMax, and a
// fair share when several workers are busy), waiting for one; it returns
// into empty once the pool has stopped and nothing is left.
func (p *writerPool) take(into []*conn) []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head == len(p.ready) {
		if p.stopped {
			return into
		}
		p.idle++
		p.mu.Unlock()
		<-p.wake
		p.mu.Lock()
	}
	n := len(p.ready) - p.head
	n = min(takeMax, max(1, n/p.workers))
	into = append(into, p.ready[p.head:p.head+n]...)
	clear(p.ready[p.head : p.head+n])
	p.head += n
	switch {
	case p.head == len(p.ready):
		p.ready, p.head = p.ready[:0], 0
	case p.head >= 1024 && p.head*2 >= len(p.ready):
		k := copy(p.ready, p.ready[p.head:])
		clear(p.ready[k:])
		p.ready, p.head = p.ready[:k], 0
	}
	return into
}

// stop ends the workers once the ready list is empty, and waits for them
// and for the write goroutines they started. Called by Shutdown once
// every read goroutine has ended: nothing is queued any more.
func (p *writerPool) stop() {
	p.mu.Lock()
	p.stopped = true
	for ; p.idle > 0; p.idle-- {
		p.wake <- struct{}{}
	}
	p.mu.Unlock()
	p.done.Wait()
	p.own.Wait()
}

// goOwn starts c's own write goroutine with rest to write first. Only a
// worker calls it, so that stop's wait for them comes after every start.
func (p *writerPool) goOwn(c *conn, rest []byte) {
	p.own.Add(1)
	go c.writeLoop(rest)
}

func (p *writerPool) work() {
	defer p.done.Done()
	w := newWorker()
	var batch []*conn
	for {
		batch = p.take(batch[:0])
		if len(batch) == 0 {
			return
		}
		for i, c := range batch {
			c.writeReady(w)
			batch[i] = nil
		}
	}
}

// worker is the reusable memory of one pool worker: the bytes of the
// write under way.
type worker struct {
	buf []byte
	raw *rawWrite
}

func newWorker() *worker { return &worker{buf: make([]byte, 0, 16<<10), raw: newRawWrite()} }

// keepBuf bounds the buffer a worker keeps between writes.
const keepBuf = 1 << 20

// control is the control frames due on a connection.
type control struct {
	ping, pong bool
	pongData   string
}

func (c control) due() bool { return c.ping || c.pong }

// writeFrames has gorilla write the control frames due, then frames (none
// nil) as one text message, separated by newlines, to wherever the
// connection's captureConn sends them now. It returns the message's payload
// size (0 without frames).
func (c *conn) writeFrames(ctl control, frames [][]byte) (int, error) {
	deadline := time.Now().Add(c.srv.cfg.WriteTimeout)
	if ctl.ping {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
			return 0, err
		}
	}
	if ctl.pong {
		if err := c.ws.WriteControl(websocket.PongMessage, []byte(ctl.pongData), deadline); err != nil {
			return 0, err
		}
	}
	if len(frames) == 0 {
		return 0, nil
	}
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return 0, err
	}
	size := len(frames) - 1
	for i, f := range frames {
		if i > 0 {
			if _, err := w.Write(newline); err != nil {
				return 0, err
			}
		}
		if _, err := w.Write(f); err != nil {
			return 0, err
		}
		size += len(f)
	}
	return size, w.Close()
}

// writeReady is a worker's turn at c, whose write token the pool holds. It
// has gorilla encode the control frames due and up to maxBatchFrames queued
// frames into w's memory and writes them in one non-blocking system call,
// then puts c back on the ready list if more has been queued meanwhile, or
// lets go of the token. What needs blocking work (a socket that did not
// take everything, a large frame, a close) goes to the connection's own
// write goroutine with the token.
func (c *conn) writeReady(w *worker) {
	c.qmu.Lock()
	if c.dead { // the client is gone: nothing to say
		c.qmu.Unlock()
		_ = c.ws.Close()
		return
	}
	if c.closing || c.raw == nil || len(c.queue) > 0 && c.queue[0] == nil {
		c.qmu.Unlock()
		c.srv.writers.goOwn(c, nil)
		return
	}
	ctl := control{ping: c.pingDue, pong: c.pongDue, pongData: c.pongData}
	c.pingDue, c.pongDue, c.pongData = false, false, ""
	n := 0
	for n < len(c.queue) && n < maxBatchFrames && c.queue[n] != nil {
		c.qbytes -= len(c.queue[n])
		n++
	}
	whole := c.queue
	frames := whole[:n:n]
	var reuse [][]byte // the queue's memory, once frames are written
	if c.queue = whole[n:]; len(c.queue) == 0 {
		reuse = whole[:0] // all of it: nothing was queued after frames
		c.queue = nil
	}
	if n == 0 && !ctl.due() {
		c.writing = false
		c.qmu.Unlock()
		return
	}
	c.qmu.Unlock()

	c.cc.capture(w.buf)
	size, err := c.writeFrames(ctl, frames)
	out := c.cc.release()
	clear(frames) // encoded into out: the slots can hold the next frames
	if cap(out) <= keepBuf {
		w.buf = out[:0]
	}
	if err != nil {
		c.logger().Debug().Err(err).Msg("write failed")
		c.abort()
		return
	}
	written, err := w.raw.write(c.raw, out)
	if err != nil {
		c.logger().Debug().Err(err).Msg("write failed")
		c.abort()
		return
	}
	c.counted(n, size)
	if written < len(out) {
		// The socket is full: the rest, and whatever follows, is for a
		// goroutine that may block (a copy: the worker reuses its memory).
		c.srv.writers.goOwn(c, append([]byte(nil), out[written:]...))
		return
	}
	c.qmu.Lock()
	switch {
	case n == 0:
		c.spare = nil // a ping or a pong alone: a quiet connection keeps no memory
	case c.spare == nil && reuse != nil && cap(reuse) <= keepQueueFrames && !c.closing:
		c.spare = reuse // the queue's memory when it is next empty
	}
	if len(c.queue) > 0 || c.pingDue || c.pongDue || c.closing || c.dead {
		c.srv.writers.push(c) // its turn again, behind the others
		c.qmu.Unlock()
		return
	}
	c.writing = false
	c.qmu.Unlock()
}
