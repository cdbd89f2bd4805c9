package web

import (
	"io"
	"net/http"
	"time"
)

// progressChunk is the most of a response (or request body) one deadline
// covers: each chunk of a long download must go through within
// HTTPWriteTimeout, whatever the download's length.
const progressChunk = 64 << 10

// HTTPServer returns an http.Server serving Handler with the config's
// timeouts: ReadHeaderTimeout (10 s, at most HTTPReadTimeout),
// HTTPReadTimeout for a whole request, HTTPWriteTimeout and
// HTTPIdleTimeout. A WebSocket leaves these behind when it upgrades
// (gorilla clears the deadlines on hijack; the connection has its own
// timeouts). Long responses (a backup, an export) and the import's body
// move their deadline forward per 64 KiB, so they go through at any length
// as long as the client keeps up, and a stalled client is cut after one
// timeout.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(10*time.Second, s.cfg.HTTPReadTimeout),
		ReadTimeout:       s.cfg.HTTPReadTimeout,
		WriteTimeout:      s.cfg.HTTPWriteTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
	}
}

// edge wraps the mux with what every HTTP request goes through: its
// response's write deadline moves forward per chunk written. /ws is left
// unwrapped: gorilla needs the server's own ResponseWriter to hijack.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.cfg.HTTPWriteTimeout}, r)
	})
}

// progressWriter is a ResponseWriter whose write deadline is a bound on
// each chunk rather than on the whole response: before each chunk of at
// most progressChunk bytes it moves the deadline to now+timeout (when the
// last move is more than timeout/8 old, so that a busy stream does not move
// a timer on every write). A stalled client is cut after about one timeout
// and holds nothing meanwhile but its goroutine and buffer: no lock, no
// read transaction.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	moved   time.Time // when the deadline was last moved
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), progressChunk)]
		if now := time.Now(); now.Sub(p.moved) > p.timeout/8 {
			p.moved = now
			_ = p.rc.SetWriteDeadline(now.Add(p.timeout))
		}
		m, err := p.ResponseWriter.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// progressReader is a request body whose read deadline is a bound on each
// chunk rather than on the whole body, as progressWriter for responses:
// the import's body may be far larger than HTTPReadTimeout allows at a
// modest speed.
type progressReader struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	moved   time.Time
}

// progressBody wraps r's body so that each chunk read gets HTTPReadTimeout.
func (s *Server) progressBody(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	return &progressReader{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: s.cfg.HTTPReadTimeout}
}

func (p *progressReader) Read(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.moved) > p.timeout/8 {
		p.moved = now
		_ = p.rc.SetReadDeadline(now.Add(p.timeout))
	}
	return p.ReadCloser.Read(b[:min(len(b), progressChunk)])
}
