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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/internal/webhook"
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
	// JWTSecret turns on production mode ($TANDEM_JWT_SECRET). Empty:
	// development mode, guests with every grant.
	JWTSecret string `json:"-"`
	// APIKeys are server-side keys for the HTTP API ($TANDEM_API_KEYS,
	// comma-separated).
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

	// File holds what a --config file may set.
	File FileConfig
}

// FileConfig is the JSON of a --config file. Every field is optional.
type FileConfig struct {
	// Namespaces overrides or adds namespaces by name ("" is the default
	// namespace). A listed namespace replaces the built-in one wholesale.
	Namespaces map[string]NamespaceConfig `json:"namespaces,omitempty"`
	Limits     LimitsConfig               `json:"limits,omitzero"`
	// SnapshotEvery is how many ops pass between automatic snapshots.
	SnapshotEvery int `json:"snapshot_every,omitempty"`
	// APIKeys are HTTP API keys, each with its grants (none listed: every
	// grant).
	APIKeys []APIKeyConfig `json:"api_keys,omitempty"`
	// AllowedOrigins for browsers; see web.Config.AllowedOrigins.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// Webhooks are endpoints that receive events as signed JSON POSTs
	// (docs/webhooks.md); WebhookOptions tunes their delivery.
	Webhooks       []WebhookConfig      `json:"webhooks,omitempty"`
	WebhookOptions WebhookOptionsConfig `json:"webhook_options,omitzero"`
}

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
		}
	}
	return out, nil
}

// Server is a running server: the wiring of storage, hub and web edge.
// Run starts it and Close stops it, so tests drive the real thing.
type Server struct {
	Config Config
	Log    zerolog.Logger

	DB      *storage.DB
	Hub     *session.Hub
	Docs    *session.Docs
	Metrics *metrics.Metrics
	// Webhooks delivers events to the config file's webhooks; the hub,
	// documents and web edge share it as their Notifier.
	Webhooks *webhook.Dispatcher
	stats    *statsPublisher
	Web      *web.Server
	HTTP     *http.Server
	ln       net.Listener
	errc     chan error

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
	if err := os.MkdirAll(c.Data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db, err := storage.Open(filepath.Join(c.Data, "tandem.db"), storage.Config{
		NoSync: c.NoSync, SnapshotEvery: c.File.SnapshotEvery, Logger: m.Log,
	})
	if err != nil {
		return err
	}
	m.DB = db
	m.Metrics = metrics.New()
	m.registerStorageMetrics()
	if m.Webhooks, err = m.startWebhooks(); err != nil {
		_ = db.Close()
		return err
	}
	m.Hub = session.NewHub(session.HubConfig{
		History: newLiveHistory(db, statsChannel), Receipts: db, Users: db, Namespaces: namespaces, Logger: m.Log, Metrics: m.Metrics,
		CountInterval: time.Duration(c.File.Limits.PresenceCountInterval),
		Notifier:      m.Webhooks,
	})
	m.Docs = session.NewDocs(session.DocsConfig{
		Documents: db, OpLog: db, Snapshots: db, Comments: db, Hub: m.Hub, Logger: m.Log, Metrics: m.Metrics,
		IdleTimeout: c.DocIdleTimeout, OpRate: c.File.Limits.OpRate, OpBurst: c.File.Limits.OpBurst,
		Notifier:   m.Webhooks,
		MaxOpBytes: c.File.Limits.MaxOpBytes, MaxDocLen: c.File.Limits.MaxDocLen,
	})
	var verifier *auth.Verifier
	if c.JWTSecret != "" {
		verifier = auth.NewVerifier([]byte(c.JWTSecret))
	}
	lim := c.File.Limits
	m.Web = web.New(web.Config{
		Hub: m.Hub, Users: db, Docs: m.Docs, Store: db, Verifier: verifier, APIKeys: apiKeys(c),
		MaxFrameBytes: lim.MaxFrameBytes, MaxSubscriptions: lim.MaxSubscriptions,
		FrameRate: lim.FrameRate, FrameBurst: lim.FrameBurst, MaxQueueBytes: lim.MaxQueueBytes,
		PingInterval: time.Duration(lim.PingInterval), ConnectTimeout: time.Duration(lim.ConnectTimeout),
		WriteTimeout:   time.Duration(lim.WriteTimeout),
		AllowedOrigins: c.File.AllowedOrigins, ServerName: "tandem/" + Version, Logger: m.Log, Metrics: m.Metrics,
		Ready: db.Ready, Notifier: m.Webhooks, Webhooks: m.Webhooks, Backup: db.Backup,
	})
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		m.Docs.Close()
		m.Hub.Close()
		m.stopWebhooks(ctx)
		_ = db.Close()
		return fmt.Errorf("listen: %w", err)
	}
	m.ln = ln
	m.HTTP = &http.Server{Handler: m.Web.Handler(), ReadHeaderTimeout: 10 * time.Second}
	m.errc = make(chan error, 1)
	go func() { m.errc <- m.HTTP.Serve(ln) }()
	m.stats = startStats(m)
	mode := "production"
	if verifier == nil {
		mode = "development"
		m.Log.Warn().Msg("DEVELOPMENT MODE: no TANDEM_JWT_SECRET set, so anyone may connect as a guest with every grant. Set TANDEM_JWT_SECRET before exposing this server.")
	}
	m.Log.Info().Str("addr", ln.Addr().String()).Str("data", c.Data).Str("mode", mode).Bool("nosync", c.NoSync).Msg("tandem listening")
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
	if m.Docs != nil {
		m.Docs.Close() // flushes and snapshots every open document
	}
	if m.Hub != nil {
		m.Hub.Close()
	}
	m.stopWebhooks(ctx) // after the hub and documents, whose last events it still sends
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("database: %w", err))
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

// Validate checks what the config file says.
func (c *Config) Validate() error {
	for i, k := range c.File.APIKeys {
		if len(k.Key) < 16 {
			return fmt.Errorf("config: api_keys[%d]: a key must be at least 16 characters", i)
		}
		if _, err := auth.ParseGrants(k.Grants); err != nil {
			return fmt.Errorf("config: api_keys[%d]: %w", i, err)
		}
	}
	if err := c.validateWebhooks(); err != nil {
		return err
	}
	_, err := c.namespaces()
	return err
}
