package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// Config configures a Server. Hub and Users are required; a zero field
// elsewhere takes the default its comment gives.
type Config struct {
	Hub   *session.Hub
	Users session.Users
	// Docs serves live documents; nil serves none.
	Docs *session.Docs
	// Store answers the HTTP API's history queries, exports and imports.
	Store DocStore
	// APIKeys are the HTTP API's server-side keys.
	APIKeys []APIKey
	// Notifier hears of client disconnections; nil: nobody.
	Notifier session.Notifier
	// Hooks are the application's hooks (hooks.go); zero: none.
	Hooks Hooks
	// Webhooks is the delivery log served at GET /api/webhooks/deliveries;
	// nil serves an empty log.
	Webhooks WebhookLog
	// Metrics records what the edge does and is served at /metrics; nil
	// makes a private set.
	Metrics *metrics.Metrics
	// Verifier checks tokens. Nil means development mode: an empty token
	// connects as a guest with every grant (and connect may name the guest).
	Verifier *auth.Verifier
	// Ready reports whether the server can take writes, for /healthz. Nil
	// means always.
	Ready func() error
	// Backup streams a consistent copy of the data file for GET
	// /api/backup: it calls start with the size, then writes that many
	// bytes to the writer start returns. Nil serves no backups.
	Backup func(start func(size int64) io.Writer) (int64, error)

	// MaxFrameBytes bounds a client frame. By default 64 KiB.
	MaxFrameBytes int
	// MaxQueueBytes and MaxQueueFrames bound a connection's send queue; past
	// either the connection is closed as a slow reader (4010). By default
	// 4 MiB and 8192 frames.
	MaxQueueBytes  int
	MaxQueueFrames int
	// MaxLargeBytes bounds the large frames a connection has pending
	// (snapshots of long documents and other replies or broadcasts over
	// 64 KiB, streamed in messages of their own; see session.LargeFrame),
	// by the bytes they hold. One is always taken. Past it another reply
	// is refused with unavailable (try again when the first has arrived)
	// and a broadcast closes the connection as a slow reader (4010). By
	// default 32 MiB.
	MaxLargeBytes int
	// MaxSubscriptions bounds one connection's channels. By default 512.
	MaxSubscriptions int
	// PingInterval is how often the server pings; a client silent for twice
	// as long is dropped. By default 25 * time.Second.
	PingInterval time.Duration
	// ConnectTimeout is how long a new connection has to send connect. By
	// default 10 * time.Second.
	ConnectTimeout time.Duration
	// WriteTimeout bounds one frame write. By default 10 * time.Second.
	WriteTimeout time.Duration
	// WriteWorkers is how many goroutines write for all the connections
	// (writer.go). By default a quarter of GOMAXPROCS, at least 1.
	WriteWorkers int
	// HTTPReadTimeout bounds reading one HTTP request with its body (the
	// import's body: each 64 KiB of it). By default 60 * time.Second.
	HTTPReadTimeout time.Duration
	// HTTPWriteTimeout bounds writing an HTTP response, or each 64 KiB of
	// a long one (a backup, an export): a download of any size goes
	// through while the client keeps reading. By default 60 * time.Second.
	HTTPWriteTimeout time.Duration
	// HTTPIdleTimeout is how long a kept-alive HTTP connection may wait
	// for its next request. By default 120 * time.Second.
	HTTPIdleTimeout time.Duration
	// FrameRate and FrameBurst limit the frames one connection may send per
	// second; a frame over the limit gets rate_limited. By default 100 and
	// MaxSubscriptions+50 (at least 200). MaxViolations rate-limited frames within ViolationWindow close
	// the connection with 4008; by default 50 within 10 * time.Second.
	FrameRate       float64
	FrameBurst      int
	MaxViolations   int
	ViolationWindow time.Duration
	// AllowedOrigins lists the Origin headers a browser may connect from
	// (`*` allows any). In production mode an empty list allows same-host
	// origins only; in development mode the origins of localhost and of
	// the server's own (allowed) host are allowed besides the list, there
	// and on /api.
	AllowedOrigins []string
	// AllowedHosts lists the Host headers (a name, or name:port) the server
	// answers besides localhost and loopback addresses, which it always
	// answers. In development mode it answers no other host, so that a
	// page behind DNS rebinding gets nothing; in production mode an empty
	// list answers any host. /healthz answers every host.
	AllowedHosts []string
	// MaxConnections caps the open WebSocket connections, and
	// MaxConnectionsPerIP those from one client address (an IPv4 address
	// or an IPv6 /64; see TrustedProxies). A connection over a cap is
	// closed at once with 1013 (try again later) and counted in
	// tandem_connections_refused_total. By default 100,000 and 1,000; a
	// negative value means no cap.
	MaxConnections      int
	MaxConnectionsPerIP int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For and
	// X-Real-IP headers name the client (clientip.go). Empty: none; every
	// client is its TCP peer, so behind a proxy they all share its address.
	TrustedProxies []netip.Prefix
	// ServerName is reported in connected.server. By default "tandem".
	ServerName string
	Logger     zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 4 << 20
	}
	if c.MaxQueueFrames <= 0 {
		c.MaxQueueFrames = 8192
	}
	if c.MaxLargeBytes <= 0 {
		c.MaxLargeBytes = 32 << 20
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 512
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.WriteWorkers <= 0 {
		c.WriteWorkers = defaultWriteWorkers()
	}
	if c.HTTPReadTimeout <= 0 {
		c.HTTPReadTimeout = 60 * time.Second
	}
	if c.HTTPWriteTimeout <= 0 {
		c.HTTPWriteTimeout = 60 * time.Second
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 120 * time.Second
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 100
	}
	if c.FrameBurst <= 0 {
		// Enough for a reconnecting client to resubscribe everything.
		c.FrameBurst = max(200, c.MaxSubscriptions+50)
	}
	if c.MaxViolations <= 0 {
		c.MaxViolations = 50
	}
	if c.ViolationWindow <= 0 {
		c.ViolationWindow = 10 * time.Second
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 100_000
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = 1_000
	}
	if c.ServerName == "" {
		c.ServerName = "tandem"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Server serves the protocol over HTTP. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	upgrader websocket.Upgrader
	mux      *http.ServeMux
	handler  http.Handler // mux behind the edge's checks (edge.go)
	routes   []string     // patterns registered on mux; written only in New

	mu       sync.Mutex         // guards conns, shutting, admitted and perAddr
	conns    map[*conn]struct{} // open connections
	shutting bool
	admitted int            // connections within the caps: open or upgrading
	perAddr  map[string]int // admitted connections by capKey
	wg       sync.WaitGroup // every connection goroutine

	refusals      zerolog.Logger // logs refused connections, sampled: a flood must not flood the log
	writers       *writerPool    // write for the connections (writer.go)
	pingStop      chan struct{}  // closed by Shutdown
	pingDone      chan struct{}  // closed when pingLoop returns
	budgets       userBudgets    // HTTP publishers' rate limiters (authz.go)
	loads         loadGroup      // doc_load calls under way (hooks.go)
	subscriptions atomic.Int64   // across all connections
}

// writeBufferPool shares write buffers between connections: an idle
// connection holds none.
var writeBufferPool sync.Pool

// New returns a Server with its background goroutines running (pingLoop:
// pings and the write watchdog for every connection; the writer pool's
// workers); serve its Handler, and call Shutdown to stop them.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "web").Logger(),
		conns:   make(map[*conn]struct{}),
		perAddr: make(map[string]int),
		mux:     http.NewServeMux(),
	}
	s.refusals = s.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	s.upgrader = websocket.Upgrader{
		// No ReadBufferSize: the upgrader takes the read buffer the
		// hijack gives it (hijackCapture, readBufferSize bytes).
		WriteBufferSize: 4096,
		WriteBufferPool: &writeBufferPool,
		CheckOrigin:     s.checkOrigin,
	}
	s.pingStop, s.pingDone = make(chan struct{}), make(chan struct{})
	s.writers = newWriterPool(cfg.WriteWorkers)
	go s.pingLoop()
	s.handle("GET /ws", http.HandlerFunc(s.serveWS))
	s.handle("GET /healthz", http.HandlerFunc(s.serveHealth))
	s.handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	s.handle("GET /", s.serveStatic())
	s.routeAPI()
	s.handler = s.edge(s.mux)
	return s
}

// handle registers a route on the mux and records its pattern for Routes.
// Called only from New, before the server is shared.
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Routes returns every pattern the server registered on its mux, in
// registration order (routes the binary adds through Mux are not among
// them). docs/openapi.yaml must describe exactly these; a test checks it.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// Handler returns the server's HTTP handler: the mux behind the edge's
// checks and timeouts (edge.go).
func (s *Server) Handler() http.Handler { return s.handler }

// Mux returns the server's mux, so that the binary can mount more routes
// (Handler serves them too, behind the same checks).
func (s *Server) Mux() *http.ServeMux { return s.mux }

// DevMode reports whether guests connect without a token.
func (s *Server) DevMode() bool { return s.cfg.Verifier == nil }

// checkOrigin is the upgrader's origin check: a request without Origin is
// not from a browser; a browser's must be allowed (originAllowed).
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || s.originAllowed(origin, r.Host)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	mode := "production"
	if s.DevMode() {
		mode = "development"
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "mode": mode})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "mode": mode})
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	key := capKey(s.clientAddr(r))
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		http.Error(w, "server going away", http.StatusServiceUnavailable)
		return
	}
	refused := s.admitLocked(key)
	if refused != "" {
		s.wg.Add(1) // Shutdown waits for the refusal too
	}
	s.mu.Unlock()
	if refused != "" {
		defer s.wg.Done()
		s.refuse(w, r, key, refused)
		return
	}
	hw := &hijackCapture{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		s.mu.Lock()
		s.releaseLocked(key)
		s.mu.Unlock()
		return // the upgrader has answered
	}
	c := newConn(s, ws, hw.conn, key)
	c.br = hw.br
	c.hooked = s.newConnHooks(r)
	s.mu.Lock()
	if s.shutting {
		s.releaseLocked(key)
		s.mu.Unlock()
		// No read goroutine ever runs for c: close here, not through its
		// writer, which would wait for one.
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(proto.DisconnectShutdown.Code, proto.DisconnectShutdown.Reason), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.cfg.Metrics.Connections.Inc()
	s.wg.Add(1)
	s.mu.Unlock()
	go c.readLoop()
}

// admitLocked counts a new connection from the client address key within
// the caps, or returns which cap refuses it: "total" or "per_ip". Must be
// called with s.mu held; an admitted connection is released with
// releaseLocked.
func (s *Server) admitLocked(key string) string {
	if max := s.cfg.MaxConnections; max > 0 && s.admitted >= max {
		return "total"
	}
	if max := s.cfg.MaxConnectionsPerIP; max > 0 && s.perAddr[key] >= max {
		return "per_ip"
	}
	s.admitted++
	s.perAddr[key]++
	return ""
}

// releaseLocked gives back what admitLocked counted. Must be called with
// s.mu held.
func (s *Server) releaseLocked(key string) {
	s.admitted--
	if s.perAddr[key]--; s.perAddr[key] <= 0 {
		delete(s.perAddr, key)
	}
}

// refuse answers a WebSocket over a connection cap: it completes the
// handshake (a browser learns nothing of a refused handshake, but it sees
// a close code), closes with 1013 and a reason naming the cap, and counts
// the refusal. It waits up to closeGrace for the client's close: dropping
// the socket with the client's frames unread would reset it, and the
// client could lose the close frame.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, key, reason string) {
	s.cfg.Metrics.ConnectionsRefused.WithLabelValues(reason).Inc()
	d := proto.DisconnectServerFull
	if reason == "per_ip" {
		d = proto.DisconnectAddressFull
	}
	s.refusals.Warn().Str("addr", key).Str("cap", reason).Msg("connection refused")
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(d.Code, d.Reason), time.Now().Add(time.Second))
	_ = ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// pingLoop asks every connection to ping its client each PingInterval,
// and closes every connection whose frame write has been stuck for longer
// than WriteTimeout (checked every watchdogEvery). One goroutine serves
// them all; each ping is written by its connection's writer, so a slow
// socket delays only its own.
func (s *Server) pingLoop() {
	defer close(s.pingDone)
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	watch := time.NewTicker(min(time.Second, s.cfg.WriteTimeout/4))
	defer watch.Stop()
	var conns []*conn
	for {
		var now time.Time
		doPing := false
		select {
		case <-s.pingStop:
			return
		case <-ping.C:
			doPing = true
		case now = <-watch.C:
		}
		s.mu.Lock()
		conns = conns[:0]
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			switch {
			case doPing && c.isConnected(): // an unauthenticated socket gets no ping to answer
				c.ping()
			case c.writeStuck(now, s.cfg.WriteTimeout):
				// The client reads nothing: its socket is full. Closing the
				// socket ends the blocked write, and with it the connection.
				c.logger().Warn().Dur("timeout", s.cfg.WriteTimeout).Msg("write timed out: closing")
				_ = c.ws.Close()
			}
		}
		clear(conns)
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.releaseLocked(c.addr)
	s.mu.Unlock()
	s.cfg.Metrics.Connections.Dec()
}

// ActiveUsers returns the users with an open connection, by id, with how
// many connections each has.
func (s *Server) ActiveUsers() map[string]ActiveUser {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make(map[string]ActiveUser)
	for _, c := range conns {
		c.idMu.Lock()
		u, ok := c.user, c.connected
		c.idMu.Unlock()
		if ok {
			a := out[u.ID]
			a.User, a.Connections = u, a.Connections+1
			out[u.ID] = a
		}
	}
	return out
}

// ActiveUser is a connected user.
type ActiveUser struct {
	User        proto.User `json:"user"`
	Connections int        `json:"connections"`
}

// Subscriptions returns how many channel subscriptions the open
// connections hold.
func (s *Server) Subscriptions() int {
	return int(s.subscriptions.Load())
}

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DisconnectUser closes every connection of a user with 4001, revokes the
// tokens they used until those expire, and returns how many there were.
// A failure to persist the revocation is logged (it holds in memory).
func (s *Server) DisconnectUser(userID string) int {
	ctx, cancel := requestContext()
	defer cancel()
	n, _, _, err := s.disconnectAndRevoke(ctx, userID, time.Time{})
	if err != nil {
		s.log.Error().Err(err).Str("user", userID).Msg("revoke tokens")
	}
	return n
}

// Shutdown stops taking connections, closes every open one with 1001 after
// flushing what is queued for it, and waits for their goroutines or ctx.
// The caller stops the HTTP listener first and closes the hub and the
// database after.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutting {
		close(s.pingStop)
	}
	s.shutting = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(proto.DisconnectShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait() // the readers: nothing is queued any more
		<-s.pingDone
		s.writers.stop() // the writes and closes still under way
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Out of time: drop the sockets; every goroutine then ends at once.
		for _, c := range conns {
			_ = c.ws.Close()
		}
		<-done
		return ctx.Err()
	}
}

// ErrShutdown is returned by calls made after Shutdown.
var ErrShutdown = errors.New("web: shut down")
