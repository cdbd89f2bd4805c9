// Package servertest runs the real Tandem server for tests: on
// 127.0.0.1:0, in development mode unless told otherwise, with its data in
// the test's temporary directory and its log in the test's output (at warn,
// or debug with TANDEM_TEST_LOG=debug). The test's cleanup stops it.
// Restart keeps the address and the data, as a server restarted by its
// operator would.
//
// Every package whose tests need a whole server uses it, so that there is
// one way to start, stop and restart one.
package servertest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// Option adjusts how Start starts the server.
type Option func(*options)

type options struct {
	edit      []func(*server.Config)
	beforeRun []func(*server.Server)
}

// WithConfig edits the server's config before it starts (and for every
// restart).
func WithConfig(edit func(*server.Config)) Option {
	return func(o *options) { o.edit = append(o.edit, edit) }
}

// BeforeRun calls f with each new server before it runs (to set what only
// tests may set, such as the stats interval).
func BeforeRun(f func(*server.Server)) Option {
	return func(o *options) { o.beforeRun = append(o.beforeRun, f) }
}

// Server is a running (or stopped) test server.
type Server struct {
	tb  testing.TB
	log zerolog.Logger
	opt options

	mu  sync.Mutex // guards srv
	srv *server.Server

	// Config is the config the server runs with; its Addr is the address
	// after the first start.
	Config server.Config
	// Addr is host:port, stable across restarts; URL is the WebSocket URL
	// (ws://Addr/ws) and HTTP the base of the HTTP API (http://Addr).
	Addr, URL, HTTP string
}

// Start starts a server; the test's cleanup stops it.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb}
	for _, o := range opts {
		o(&s.opt)
	}
	s.Config = server.DefaultConfig()
	s.Config.Addr = "127.0.0.1:0"
	s.Config.Data = tb.TempDir()
	for _, e := range s.opt.edit {
		e(&s.Config)
	}
	level := zerolog.WarnLevel
	if os.Getenv("TANDEM_TEST_LOG") == "debug" {
		level = zerolog.DebugLevel
	}
	s.log = zerolog.New(zerolog.NewTestWriter(tb)).Level(level)
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// start runs a new server on the config's address, retrying for a while
// when a restart finds the old listener's port still closing.
func (s *Server) start() {
	s.tb.Helper()
	var srv *server.Server
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		srv = server.New(s.Config, s.log)
		for _, f := range s.opt.beforeRun {
			f(srv)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Run(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("start server: %v", err)
	}
	s.mu.Lock()
	s.srv = srv
	s.Addr = srv.Addr()
	s.URL = "ws://" + s.Addr + "/ws"
	s.HTTP = "http://" + s.Addr
	s.Config.Addr = s.Addr // a restart listens on the same address
	s.mu.Unlock()
}

// Server returns the running server (nil while stopped).
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Stop closes the server gracefully; stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		s.tb.Errorf("close server: %v", err)
	}
}

// Restart stops the server and starts a new one on the same address and
// data directory.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}
