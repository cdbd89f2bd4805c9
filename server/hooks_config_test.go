package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// TestHookConfig: the config file's hooks and the namespaces' hooks lists
// are checked at start, and a bad one stops the server with a message
// naming the field (never the secret); a config that turns no hook on
// costs nothing: no hook metric is served.
func TestHookConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		want       string // "" starts
	}{
		{"none", `{}`, ""},
		{"all", `{"hooks": {"url": "http://127.0.0.1:1/app", "secret": "0123456789abcdef", "connect": {}, "refresh": {}, "subscribe": {},
			"publish": {}, "doc_load": {}, "doc_store": {}, "doc_open": {}, "rpc": {}},
			"namespaces": {"chat": {"hooks": ["subscribe", "publish", "broadcast"]}}}`, ""},
		{"short secret", `{"hooks": {"url": "http://127.0.0.1:1", "secret": "short-secret", "publish": {}}}`, "hooks.secret: must be at least 16 bytes"},
		{"not http", `{"hooks": {"url": "ftp://example.com", "secret": "0123456789abcdef", "publish": {}}}`, "hooks.url \"ftp://example.com\": scheme must be http or https"},
		{"no url", `{"hooks": {"secret": "0123456789abcdef", "subscribe": {}}}`, "hooks.subscribe: no url"},
		{"rpc allows", `{"hooks": {"url": "http://127.0.0.1:1", "secret": "0123456789abcdef", "rpc": {"on_failure": "allow"}}}`, "hooks.rpc.on_failure"},
		{"namespace asks for an off hook", `{"hooks": {"url": "http://127.0.0.1:1", "secret": "0123456789abcdef", "publish": {}},
			"namespaces": {"chat": {"hooks": ["subscribe"]}}}`, `namespace "chat" asks for the subscribe hook, but hooks.subscribe is not on`},
		{"namespace without hooks", `{"namespaces": {"chat": {"hooks": ["broadcast"]}}}`, `namespace "chat" asks for the publish hook`},
		{"unknown namespace hook", `{"namespaces": {"chat": {"hooks": ["open"]}}}`, `namespace hook "open"`},
		{"connect slower than the edge", `{"hooks": {"url": "http://127.0.0.1:1", "secret": "0123456789abcdef", "connect": {"timeout": "10s"}}}`,
			"hooks.connect: its timeout (10s) must be below limits.connect_timeout (10s)"},
		{"connect timeout within a longer edge timeout", `{"limits": {"connect_timeout": "30s"},
			"hooks": {"url": "http://127.0.0.1:1", "secret": "0123456789abcdef", "timeout": "10s", "connect": {}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Addr, cfg.Data = "127.0.0.1:0", t.TempDir()
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.file)))
			dec.DisallowUnknownFields()
			err := dec.Decode(&cfg.File)
			if err == nil {
				srv := server.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err = srv.Run(ctx); err == nil {
					defer func() {
						if err := srv.Close(ctx); err != nil {
							t.Error(err)
						}
					}()
					resp, err := http.Get("http://" + srv.Addr() + "/metrics")
					if err != nil {
						t.Fatal(err)
					}
					text, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					on := strings.Contains(tc.file, `"hooks": {`)
					if got := bytes.Contains(text, []byte("\ntandem_hook_calls_total{")); got != on {
						t.Errorf("hook metrics served: %v, want %v", got, on)
					}
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused to start: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("start: %v, want an error saying %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "0123456789abcdef"):
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}
