package web

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/proto"
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

// edge wraps the mux with what every HTTP request goes through:
//   - its Host must be allowed (hostAllowed), except on /healthz;
//   - in development mode, an /api request from a browser must come from an
//     allowed origin (originAllowed; in production the API takes no
//     ambient credentials a page could borrow);
//   - its response's write deadline moves forward per chunk written
//     (progressWriter). /ws is left unwrapped: gorilla needs the server's
//     own ResponseWriter to hijack.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !s.hostAllowed(r.Host) {
			msg := fmt.Sprintf("this server does not answer to the host %q: add it to allowed_hosts", r.Host)
			if s.DevMode() {
				msg = fmt.Sprintf("a development-mode server answers only localhost and allowed_hosts, not %q", r.Host)
			}
			writeJSON(w, http.StatusForbidden, proto.Error{Type: proto.TypeError, Code: proto.CodeForbidden, Message: msg})
			return
		}
		if origin := r.Header.Get("Origin"); s.DevMode() && origin != "" && strings.HasPrefix(r.URL.Path, "/api/") && !s.originAllowed(origin, r.Host) {
			writeJSON(w, http.StatusForbidden, proto.Error{Type: proto.TypeError, Code: proto.CodeForbidden,
				Message: fmt.Sprintf("a development-mode server takes API calls from pages of localhost and allowed_origins only, not %q", origin)})
			return
		}
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

// hostAllowed reports whether the server answers a request whose Host
// header is host: localhost (and *.localhost) and loopback addresses
// always; AllowedHosts too; and in production mode with no AllowedHosts,
// any host. A development-mode server holds every grant for anyone, so it
// must not answer a name that DNS rebinding points at it from a web page.
func (s *Server) hostAllowed(host string) bool {
	if host == "" || !s.DevMode() && len(s.cfg.AllowedHosts) == 0 {
		return true // an HTTP/1.0 request without Host is not from a browser
	}
	name := hostName(host)
	if isLocalName(name) {
		return true
	}
	return slices.ContainsFunc(s.cfg.AllowedHosts, func(h string) bool {
		return h == "*" || strings.EqualFold(h, host) || strings.EqualFold(h, name)
	})
}

// originAllowed reports whether a browser page of origin may connect to
// /ws (and, in development mode, call /api) on the server it reached as
// host: an origin in AllowedOrigins (or `*`); in production mode with no
// AllowedOrigins, an origin on the same host; in development mode the
// origins of localhost and loopback addresses and the server's own.
func (s *Server) originAllowed(origin, host string) bool {
	if slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool { return o == "*" || o == origin }) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (a file or sandboxed page), or garbage
	}
	if s.DevMode() {
		return isLocalName(hostName(u.Host)) || u.Host == host && s.hostAllowed(host)
	}
	return len(s.cfg.AllowedOrigins) == 0 && u.Host == host
}

// hostName returns host without its port and brackets, lower case and
// without a trailing dot.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// isLocalName reports whether name is localhost, a name under .localhost
// (which browsers resolve to loopback themselves) or a loopback address.
func isLocalName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Unmap().IsLoopback()
}
