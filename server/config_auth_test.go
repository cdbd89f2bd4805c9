package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// TestStartRefusesWeakAuth: a short JWT secret, a short API key from the
// environment, unsafe JWKS settings (and a broadcast window out of
// bounds) stop the server at start with an error that says what to fix
// (and never the secret itself).
func TestStartRefusesWeakAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*server.Config)
		want string // "" starts
	}{
		{"secret of 31 bytes", func(c *server.Config) { c.JWTSecret = strings.Repeat("s", 31) }, "TANDEM_JWT_SECRET is 31 bytes; production mode needs at least 32"},
		{"secret of 32 bytes", func(c *server.Config) { c.JWTSecret = strings.Repeat("s", 32) }, ""},
		{"env API key of 15 characters", func(c *server.Config) {
			c.APIKeys = []string{strings.Repeat("k", 20), "short-key-15chr"}
		}, "TANDEM_API_KEYS: key 2 of 2 is 15 characters; a key must be at least 16"},
		{"env API key of 16 characters", func(c *server.Config) { c.APIKeys = []string{strings.Repeat("k", 16)} }, ""},
		{"config file key of 15 characters", func(c *server.Config) {
			c.File.APIKeys = []server.APIKeyConfig{{Key: "short-key-15chr", Name: "x"}}
		}, "config: api_keys[0]: a key must be at least 16 characters"},
		{"JWKS without an audience", func(c *server.Config) { c.JWKSURL = "https://id.example.com/jwks.json" }, "config: auth.audience is required with a JWKS URL"},
		{"JWKS in the clear", func(c *server.Config) {
			c.File.Auth.JWKSURL, c.File.Auth.Audience = "http://id.example.com/jwks.json", "app"
		}, "must be https"},
		{"JWKS not a URL", func(c *server.Config) { c.JWKSURL, c.File.Auth.Audience = "jwks.json", "app" }, "not an absolute URL"},
		{"negative refresh", func(c *server.Config) {
			c.JWTSecret = strings.Repeat("s", 32)
			c.File.Auth.JWKSMinRefresh = server.Duration(-time.Second)
		}, "must not be negative"},
		{"broadcast window over a second", func(c *server.Config) {
			c.File.DocBroadcast.Window = server.Duration(2 * time.Second)
		}, "config: doc_broadcast: the window must be between 0 and 1s"},
		{"broadcast window for negative members", func(c *server.Config) {
			c.File.DocBroadcast = server.DocBroadcastConfig{Window: server.Duration(25 * time.Millisecond), Members: -1}
		}, "config: doc_broadcast"},
		{"broadcast window of 25ms", func(c *server.Config) {
			c.File.DocBroadcast.Window = server.Duration(25 * time.Millisecond)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Addr, cfg.Data = "127.0.0.1:0", t.TempDir()
			tc.edit(&cfg)
			srv := server.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := srv.Run(ctx)
			if err == nil {
				defer func() {
					if err := srv.Close(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused to start: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("start: %v, want an error saying %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), "sssss") || strings.Contains(err.Error(), "short-key")):
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}
