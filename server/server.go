// Package server wires Tandem's parts into a running server: storage, the
// channel hub and the web edge, listening on one address. The binary
// (cmd/tandem) builds a Config from flags, the environment and a config
// file; tests build one directly and run the real thing on 127.0.0.1:0.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/natsstore"
	"github.com/tandemhq/tandem/notify"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
	"github.com/tandemhq/tandem/web"
)

// Version is the server's version, set by the binary.
var Version = "0.1.0-dev"

// Config is everything a server can be told. DefaultConfig returns the
// defaults; the binary's flags, environment and --config file override them.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080 ($TANDEM_ADDR).
	Addr string
	// Data is the data directory; the database is Data/tandem.db. Default
	// ./tandem-data ($TANDEM_DATA).
	Data string
	// JWTSecret turns on production mode and verifies HS256 tokens
	// ($TANDEM_JWT_SECRET); it must be at least MinSecretLen bytes. Empty
	// (and no JWKS URL): development mode, guests with every grant.
	JWTSecret string `json:"-"`
	// JWKSURL turns on production mode and verifies RS*, PS*, ES* and
	// EdDSA tokens against the identity provider's keys published there
	// ($TANDEM_JWKS_URL; overrides the config file's auth.jwks_url).
	JWKSURL string
	// APIKeys are server-side keys for the HTTP API ($TANDEM_API_KEYS,
	// comma-separated), each at least MinAPIKeyLen characters.
	APIKeys []string `json:"-"`
	// NoSync skips fsync: unsafe, for throwaway benchmarks only.
	NoSync bool
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// DocIdleTimeout is how long a document nobody has open stays loaded.
	// By default 30 * time.Second.
	DocIdleTimeout time.Duration
	// LogJSON forces JSON logs; by default they are JSON in production
	// mode and a console format in development.
	LogJSON bool
	// NATSURL runs the server as a node of a cluster on NATS JetStream
	// (--nats, $TANDEM_NATS_URL; overrides the config file's nats.url):
	// one URL or several, comma-separated. Data is then not used.
	NATSURL string
	// Node names this node in the cluster; by default the host name and a
	// random suffix (--node, $TANDEM_NODE).
	Node string

	// File holds what a --config file may set.
	File FileConfig
}

// MaxBroadcastWindow bounds DocBroadcastConfig.Window.
const MaxBroadcastWindow = time.Second

// DocBroadcastConfig is a broadcast window for big documents
// (session.DocsConfig.BroadcastWindow): a document with at least Members
// members (0: 50) sends its members the ops that become durable once per
// Window, acks included, instead of as each commit ends. Fewer, larger
// writes for up to one Window more latency; off while Window is 0.
type DocBroadcastConfig struct {
	Window  Duration `json:"window,omitempty"`
	Members int      `json:"members,omitempty"`
}

// FileConfig is the JSON of a --config file. Every field is optional.
type FileConfig struct {
	// Namespaces overrides or adds namespaces by name ("" is the default
	// namespace). A listed namespace replaces the built-in one wholesale.
	Namespaces map[string]NamespaceConfig `json:"namespaces,omitempty"`
	Limits     LimitsConfig               `json:"limits,omitzero"`
	// SnapshotEvery is how many ops pass between automatic snapshots.
	SnapshotEvery int `json:"snapshot_every,omitempty"`
	// CommitGather bounds how long a busy server's commit waits for the
	// ops its editors are expected to send next (fewer fsyncs per write);
	// 0 means 10 ms, a negative value never waits. A quiet server never
	// waits (docs/operations.md, "Commit gathering").
	CommitGather Duration `json:"commit_gather,omitempty"`
	// DocBroadcast sets a broadcast window for big documents; off by
	// default (docs/operations.md, "Big documents").
	DocBroadcast DocBroadcastConfig `json:"doc_broadcast,omitzero"`
	// APIKeys are HTTP API keys, each with its grants (none listed: every
	// grant).
	APIKeys []APIKeyConfig `json:"api_keys,omitempty"`
	// AllowedOrigins for browsers; see web.Config.AllowedOrigins.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// AllowedHosts are the Host headers the server answers besides
	// localhost; see web.Config.AllowedHosts.
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// TrustedProxies are the addresses ("10.0.0.5") or networks
	// ("10.0.0.0/8") of reverse proxies whose X-Forwarded-For and
	// X-Real-IP name the client, for the per-address connection cap.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// Webhooks are endpoints that receive events as signed JSON POSTs
	// (docs/webhooks.md); WebhookOptions tunes their delivery.
	Webhooks       []WebhookConfig      `json:"webhooks,omitempty"`
	WebhookOptions WebhookOptionsConfig `json:"webhook_options,omitzero"`
	// Auth tunes token verification (docs/operations.md, "Authentication
	// and revocation").
	Auth AuthConfig `json:"auth,omitzero"`
	// NATS runs the server as a node of a cluster (docs/cluster.md).
	NATS NATSConfig `json:"nats,omitzero"`
	// Hooks are the application's hooks: signed calls to its backend,
	// which decides (docs/hooks.md).
	Hooks *hooks.Config `json:"hooks,omitempty"`
}

// Minimum lengths of secrets, checked at start.
const (
	// MinSecretLen is the least length of TANDEM_JWT_SECRET, in bytes: a
	// shorter HS256 secret can be guessed offline from one token.
	MinSecretLen = 32
	// MinAPIKeyLen is the least length of an API key, in characters.
	MinAPIKeyLen = 16
)

// AuthConfig is the config file's "auth" object. Every field is optional.
type AuthConfig struct {
	// RequireExp refuses tokens without `exp`. Default true; false accepts
	// long-lived tokens (they can still be revoked).
	RequireExp *bool `json:"require_exp,omitempty"`
	// Audience, when set, must be one of every token's `aud` values; it is
	// required with a JWKS URL, so that tokens the provider issues for
	// other applications are refused.
	Audience string `json:"audience,omitempty"`
	// Issuer, when set, must be every token's `iss`.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURL is the identity provider's JWKS (https); $TANDEM_JWKS_URL
	// overrides it.
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSRefresh is how often the keys are fetched again. Default 1h.
	JWKSRefresh Duration `json:"jwks_refresh,omitempty"`
	// JWKSMinRefresh is the least time between two fetches caused by
	// tokens naming an unknown `kid`. Default 1m.
	JWKSMinRefresh Duration `json:"jwks_min_refresh,omitempty"`
}

// jwksURL is the JWKS URL in force: the environment's, else the file's.
func (c *Config) jwksURL() string {
	if c.JWKSURL != "" {
		return c.JWKSURL
	}
	return c.File.Auth.JWKSURL
}

// Production reports whether the server verifies tokens (a JWT secret or
// a JWKS URL is set); otherwise it runs in development mode.
func (c *Config) Production() bool { return c.JWTSecret != "" || c.jwksURL() != "" }

// APIKeyConfig is an API key in the config file.
type APIKeyConfig struct {
	Key    string   `json:"key"`
	Name   string   `json:"name"`
	Grants []string `json:"grants"`
}

// NamespaceConfig is a namespace in the config file.
type NamespaceConfig struct {
	HistorySize   int      `json:"history_size"`
	HistoryAge    Duration `json:"history_age"`
	Presence      string   `json:"presence"` // full, count, off
	ClientPublish bool     `json:"client_publish"`
	ServerOnly    bool     `json:"server_only"`
	Private       bool     `json:"private"`
	Mentions      bool     `json:"mentions"`
	MaxPayload    int      `json:"max_payload"`
	PublishRate   float64  `json:"publish_rate"`
	PublishBurst  int      `json:"publish_burst"`
	// MaxPresenceState bounds a member's presence state in bytes (as
	// encoded); 0 means 4 KiB.
	MaxPresenceState int `json:"max_presence_state,omitempty"`
	// PresenceBatch is the window of batched presence changes; 0 means
	// 100 ms.
	PresenceBatch Duration `json:"presence_batch,omitempty"`
	// PresenceCountAbove and PresenceCountBelow: a full-presence channel
	// switches to count mode above the one and back below the other; 0
	// means 1,000 and four fifths of it, a negative above never switches.
	PresenceCountAbove int `json:"presence_count_above,omitempty"`
	PresenceCountBelow int `json:"presence_count_below,omitempty"`
	// Hooks lists the hooks the namespace asks: "subscribe", "publish",
	// "broadcast" (docs/hooks.md).
	Hooks hooks.NamespaceHooks `json:"hooks,omitzero"`
}

// LimitsConfig bounds what one client may do; zero keeps the default.
type LimitsConfig struct {
	MaxFrameBytes    int      `json:"max_frame_bytes,omitempty"`
	MaxSubscriptions int      `json:"max_subscriptions,omitempty"`
	FrameRate        float64  `json:"frame_rate,omitempty"`
	FrameBurst       int      `json:"frame_burst,omitempty"`
	PingInterval     Duration `json:"ping_interval,omitempty"`
	ConnectTimeout   Duration `json:"connect_timeout,omitempty"`
	MaxQueueBytes    int      `json:"max_queue_bytes,omitempty"`
	// WriteTimeout bounds one frame write to a client.
	WriteTimeout Duration `json:"write_timeout,omitempty"`
	// HTTPReadTimeout, HTTPWriteTimeout and HTTPIdleTimeout are the HTTP
	// server's: reading a request, writing a response (or each 64 KiB of a
	// long one), and a kept-alive connection's wait for its next request.
	// By default 60s, 60s and 120s.
	HTTPReadTimeout  Duration `json:"http_read_timeout,omitempty"`
	HTTPWriteTimeout Duration `json:"http_write_timeout,omitempty"`
	HTTPIdleTimeout  Duration `json:"http_idle_timeout,omitempty"`
	// PresenceCountInterval is how often count-only channels announce
	// their member count.
	PresenceCountInterval Duration `json:"presence_count_interval,omitempty"`
	// MaxOpBytes bounds the text one op inserts; MaxDocLen a document's
	// length in code points.
	MaxOpBytes int `json:"max_op_bytes,omitempty"`
	MaxDocLen  int `json:"max_doc_len,omitempty"`
	// OpRate and OpBurst limit one user's ops per second on one document.
	OpRate  float64 `json:"op_rate,omitempty"`
	OpBurst int     `json:"op_burst,omitempty"`
	// MaxConnections caps the server's WebSocket connections, and
	// MaxConnectionsPerIP those of one client address (an IPv4 address or
	// an IPv6 /64). By default 100000 and 1000; -1: no cap.
	MaxConnections      int `json:"max_connections,omitempty"`
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`
}

// Duration is a time.Duration written as "90s" or "7d" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string, "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses a Go duration string, with "d" for days allowed.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"90s\": %w", err)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig returns a fresh default configuration.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8080", Data: "./tandem-data", LogLevel: "info"}
}

// namespaces builds the hub's namespaces from the defaults and the file.
func (c *Config) namespaces() (map[string]*session.Namespace, error) {
	out := session.DefaultNamespaces()
	for name, nc := range c.File.Namespaces {
		if name == "doc" {
			return nil, errors.New(`config: namespace "doc" is reserved for documents`)
		}
		mode, err := session.ParsePresenceMode(nc.Presence)
		if err != nil {
			return nil, fmt.Errorf("config: namespace %q: %w", name, err)
		}
		out[name] = &session.Namespace{
			Name: name, HistorySize: nc.HistorySize, HistoryAge: time.Duration(nc.HistoryAge),
			Presence: mode, ClientPublish: nc.ClientPublish, ServerOnly: nc.ServerOnly, Private: nc.Private, Mentions: nc.Mentions,
			MaxPayload: nc.MaxPayload, PublishRate: nc.PublishRate, PublishBurst: nc.PublishBurst,
			MaxPresenceState: nc.MaxPresenceState, PresenceBatch: time.Duration(nc.PresenceBatch),
			PresenceCountAbove: nc.PresenceCountAbove, PresenceCountBelow: nc.PresenceCountBelow,
		}
	}
	return out, nil
}

// Server is a running server: the wiring of storage, hub and web edge.
// Run starts it and Close stops it, so tests drive the real thing.
type Server struct {
	Config Config
	Log    zerolog.Logger

	// DB is the data file in single-node mode; NATS the JetStream store in
	// cluster mode. One of them is nil.
	DB      *storage.DB
	NATS    *natsstore.Store
	Hub     *session.Hub
	Docs    *session.Docs
	Metrics *metrics.Metrics
	// Webhooks delivers events to the config file's webhooks; the hub,
	// documents and web edge share it as their Notifier.
	Webhooks *notify.Dispatcher
	// Hooks calls the application's hooks; nil when none is on.
	Hooks    *hooks.Caller
	stats    *statsPublisher
	Web      *web.Server
	HTTP     *http.Server
	verifier *auth.Verifier // nil in development mode
	be       backend
	// docStore is the documents' store of either mode (m.DB or m.NATS).
	docStore web.DocStore
	// stopRevocations ends the watch that applies revocations made on
	// other nodes (cluster mode, production mode).
	stopRevocations func()
	ln              net.Listener
	errc            chan error

	// statsInterval is how often stats are published; by default a second
	// (tests shorten it).
	statsInterval time.Duration
}

// New returns a Server with cfg and logger; Run starts it.
func New(cfg Config, log zerolog.Logger) *Server { return &Server{Config: cfg, Log: log} }

// Run opens the database, starts the hub and the HTTP server, and returns
// once the server listens. Close stops it.
func (m *Server) Run(ctx context.Context) error {
	c := &m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	namespaces, err := c.namespaces()
	if err != nil {
		return err
	}
	var (
		store  web.DocStore
		ready  func() error
		backup func(start func(size int64) io.Writer) (int64, error)
	)
	m.Metrics = metrics.New()
	if c.Cluster() {
		st, err := m.openCluster(ctx, namespaces)
		if err != nil {
			return err
		}
		m.NATS = st
		m.be = clusterBackend(st)
		m.registerClusterMetrics(st)
		store, ready = st, clusterReady(st)
	} else {
		if err := os.MkdirAll(c.Data, 0o750); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		db, err := storage.Open(filepath.Join(c.Data, "tandem.db"), storage.Config{
			NoSync: c.NoSync, SnapshotEvery: c.File.SnapshotEvery, CommitGather: time.Duration(c.File.CommitGather), Logger: m.Log,
			Limits: doc.Limits{MaxLen: c.File.Limits.MaxDocLen}, // what import checks: the sessions' limits
		})
		if err != nil {
			return err
		}
		m.DB = db
		m.be = backend{history: newLiveHistory(db, statsChannel), receipts: db, users: db,
			documents: db, opLog: db, snapshots: db, comments: db, revocations: db,
			commits: func() float64 { return float64(db.Stats().Commits) }}
		m.registerStorageMetrics()
		store, ready, backup = db, db.Ready, db.Backup
	}
	m.docStore = store
	closeStore := func() {
		if m.DB != nil {
			_ = m.DB.Close()
		}
		if m.NATS != nil {
			_ = m.NATS.Close()
		}
	}
	if m.Webhooks, err = m.startWebhooks(); err != nil {
		closeStore()
		return err
	}
	if m.Hooks, err = m.startHooks(); err != nil {
		m.stopWebhooks(ctx)
		closeStore()
		return err
	}
	be := m.be
	m.Hub = session.NewHub(session.HubConfig{
		History: be.history, Receipts: be.receipts, Users: be.users, Namespaces: namespaces, Logger: m.Log, Metrics: m.Metrics,
		CountInterval: time.Duration(c.File.Limits.PresenceCountInterval),
		Notifier:      m.Webhooks,
		// Every frame the hub builds fits a connection's send queue.
		FrameBudget: c.File.Limits.MaxQueueBytes / 2,
		Presence:    be.presence, Ephemeral: be.ephemeral,
	})
	m.Docs = session.NewDocs(session.DocsConfig{
		Documents: be.documents, OpLog: be.opLog, Snapshots: be.snapshots, Comments: be.comments, Hub: m.Hub, Logger: m.Log, Metrics: m.Metrics,
		IdleTimeout: c.DocIdleTimeout, OpRate: c.File.Limits.OpRate, OpBurst: c.File.Limits.OpBurst,
		Notifier: m.Webhooks, Watcher: m.docWatcher(),
		MaxOpBytes: c.File.Limits.MaxOpBytes, MaxDocLen: c.File.Limits.MaxDocLen,
		Presence: be.presence, Ephemeral: be.ephemeral,
		BroadcastWindow: time.Duration(c.File.DocBroadcast.Window), BroadcastMembers: c.File.DocBroadcast.Members,
	})
	verifier, err := m.startVerifier(ctx)
	if err != nil {
		m.Docs.Close()
		m.Hub.Close()
		m.stopHooks(ctx)
		m.stopWebhooks(ctx)
		closeStore()
		return err
	}
	m.verifier = verifier
	if m.NATS != nil && verifier != nil {
		if m.stopRevocations, err = watchRevocations(m.NATS, verifier.Revocations(), m.Log); err != nil {
			verifier.Close()
			m.Docs.Close()
			m.Hub.Close()
			m.stopWebhooks(ctx)
			closeStore()
			return err
		}
	}
	lim := c.File.Limits
	proxies, _ := c.trustedProxies() // checked by Validate
	m.Web = web.New(web.Config{
		Hub: m.Hub, Users: be.users, Docs: m.Docs, Store: store, Verifier: verifier, APIKeys: apiKeys(c),
		MaxFrameBytes: lim.MaxFrameBytes, MaxSubscriptions: lim.MaxSubscriptions,
		FrameRate: lim.FrameRate, FrameBurst: lim.FrameBurst, MaxQueueBytes: lim.MaxQueueBytes,
		PingInterval: time.Duration(lim.PingInterval), ConnectTimeout: time.Duration(lim.ConnectTimeout),
		WriteTimeout:     time.Duration(lim.WriteTimeout),
		HTTPReadTimeout:  time.Duration(lim.HTTPReadTimeout),
		HTTPWriteTimeout: time.Duration(lim.HTTPWriteTimeout),
		HTTPIdleTimeout:  time.Duration(lim.HTTPIdleTimeout),
		MaxConnections:   lim.MaxConnections, MaxConnectionsPerIP: lim.MaxConnectionsPerIP, TrustedProxies: proxies,
		AllowedOrigins: c.File.AllowedOrigins, AllowedHosts: c.File.AllowedHosts, ServerName: "tandem/" + Version, Logger: m.Log, Metrics: m.Metrics,
		Ready: ready, Notifier: m.Webhooks, Webhooks: m.Webhooks, Backup: backup,
		Hooks: m.webHooks(),
	})
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		_ = m.Web.Shutdown(ctx) // stops its ping loop
		if verifier != nil {
			verifier.Close()
		}
		m.Docs.Close()
		m.Hub.Close()
		m.stopHooks(ctx)
		m.stopWebhooks(ctx)
		closeStore()
		return fmt.Errorf("listen: %w", err)
	}
	m.ln = ln
	m.HTTP = m.Web.HTTPServer()
	m.errc = make(chan error, 1)
	go func() { m.errc <- m.HTTP.Serve(ln) }()
	m.stats = startStats(m)
	mode := "production"
	if !c.Production() {
		mode = "development"
		m.Log.Warn().Msg("DEVELOPMENT MODE: no TANDEM_JWT_SECRET or TANDEM_JWKS_URL set, so anyone may connect as a guest with every grant. Set one before exposing this server.")
	}
	if m.NATS != nil {
		m.Log.Info().Str("addr", ln.Addr().String()).Str("node", m.NATS.Node()).Str("nats", m.NATS.Conn().ConnectedUrlRedacted()).
			Str("mode", mode).Msg("tandem listening (cluster mode)")
	} else {
		m.Log.Info().Str("addr", ln.Addr().String()).Str("data", c.Data).Str("mode", mode).Bool("nosync", c.NoSync).Msg("tandem listening")
	}
	return nil
}

// Done delivers the HTTP server's error if it stops on its own (an accept
// error); after Close it is not meaningful.
func (m *Server) Done() <-chan error { return m.errc }

// Addr returns the address the server listens on.
func (m *Server) Addr() string { return m.ln.Addr().String() }

// Close shuts down gracefully: stop accepting, close connections with 1001
// after flushing them, stop the hub, close the database.
func (m *Server) Close(ctx context.Context) error {
	var errs []error
	if m.HTTP != nil {
		if err := m.HTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		select {
		case err := <-m.errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		default: // Done already took it
		}
	}
	if m.Web != nil {
		if err := m.Web.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connections: %w", err))
		}
	}
	if m.stats != nil {
		m.stats.stop()
	}
	if m.stopRevocations != nil {
		m.stopRevocations()
	}
	if m.verifier != nil {
		m.verifier.Close()
	}
	if m.Docs != nil {
		m.Docs.Close() // flushes and snapshots every open document
	}
	if m.Hub != nil {
		m.Hub.Close()
	}
	m.stopHooks(ctx)    // after the documents, whose last versions it stores; before the database it reads them from
	m.stopWebhooks(ctx) // after the hub and documents, whose last events it still sends
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("database: %w", err))
		}
	}
	if m.NATS != nil {
		if err := m.NATS.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// apiKeys builds the HTTP API's keys: TANDEM_API_KEYS (every grant) and the
// config file's keys (each with its grants).
func apiKeys(c *Config) []web.APIKey {
	var keys []web.APIKey
	for i, k := range c.APIKeys {
		keys = append(keys, web.APIKey{Key: k, Name: fmt.Sprintf("env%d", i+1)})
	}
	for _, k := range c.File.APIKeys {
		grants, _ := auth.ParseGrants(k.Grants) // checked by Validate
		if k.Grants == nil {
			grants = nil
		}
		keys = append(keys, web.APIKey{Key: k.Key, Name: k.Name, Grants: grants})
	}
	return keys
}

// startVerifier loads the revocations from the database and builds the
// token verifier; nil in development mode.
func (m *Server) startVerifier(ctx context.Context) (*auth.Verifier, error) {
	c := &m.Config
	if !c.Production() {
		return nil, nil
	}
	revocations, err := auth.LoadRevocations(ctx, m.be.revocations, nil)
	if err != nil {
		return nil, err
	}
	a := c.File.Auth
	return auth.New(auth.Config{
		Secret: []byte(c.JWTSecret), JWKSURL: c.jwksURL(), Audience: a.Audience, Issuer: a.Issuer,
		AllowNoExp:  a.RequireExp != nil && !*a.RequireExp,
		JWKSRefresh: time.Duration(a.JWKSRefresh), JWKSMinRefresh: time.Duration(a.JWKSMinRefresh),
		Revocations: revocations, Logger: m.Log,
	})
}

// Validate checks the configuration: the lengths of the secret and keys,
// the auth settings and what the config file says.
func (c *Config) Validate() error {
	if c.JWTSecret != "" && len(c.JWTSecret) < MinSecretLen {
		return fmt.Errorf("TANDEM_JWT_SECRET is %d bytes; production mode needs at least %d (make one with: openssl rand -hex 32)", len(c.JWTSecret), MinSecretLen)
	}
	for i, k := range c.APIKeys {
		if len(k) < MinAPIKeyLen {
			return fmt.Errorf("TANDEM_API_KEYS: key %d of %d is %d characters; a key must be at least %d (make one with: openssl rand -hex 24)", i+1, len(c.APIKeys), len(k), MinAPIKeyLen)
		}
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	for i, k := range c.File.APIKeys {
		if len(k.Key) < MinAPIKeyLen {
			return fmt.Errorf("config: api_keys[%d]: a key must be at least %d characters", i, MinAPIKeyLen)
		}
		if _, err := auth.ParseGrants(k.Grants); err != nil {
			return fmt.Errorf("config: api_keys[%d]: %w", i, err)
		}
	}
	if b := c.File.DocBroadcast; b.Window < 0 || time.Duration(b.Window) > MaxBroadcastWindow || b.Members < 0 {
		return fmt.Errorf("config: doc_broadcast: the window must be between 0 and %s and members not negative", MaxBroadcastWindow)
	}
	if err := c.validateWebhooks(); err != nil {
		return err
	}
	if err := c.validateHooks(); err != nil {
		return err
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	_, err := c.namespaces()
	return err
}

// validateAuth checks the auth settings.
func (c *Config) validateAuth() error {
	a := c.File.Auth
	if u := c.jwksURL(); u != "" {
		if err := auth.CheckJWKSURL(u); err != nil {
			return fmt.Errorf("config: auth.jwks_url: %w", err)
		}
		if a.Audience == "" {
			return errors.New("config: auth.audience is required with a JWKS URL: set it to the aud your identity provider puts in tokens for this application, or it would accept tokens issued for any other")
		}
	}
	if a.JWKSRefresh < 0 || a.JWKSMinRefresh < 0 {
		return errors.New("config: auth.jwks_refresh and auth.jwks_min_refresh must not be negative")
	}
	return nil
}

// trustedProxies parses the config file's trusted_proxies: addresses or
// networks in CIDR notation.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, p := range c.File.TrustedProxies {
		if strings.Contains(p, "/") {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("config: trusted_proxies[%d]: %q is not an address or a network like 10.0.0.0/8", i, p)
			}
			out = append(out, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("config: trusted_proxies[%d]: %q is not an address or a network like 10.0.0.0/8", i, p)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
