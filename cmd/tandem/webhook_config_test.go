package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/server"
)

// TestWebhookConfigFile: the config file's webhooks and webhook_options
// parse, and Validate refuses what webhook delivery cannot use.
func TestWebhookConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{
		"webhooks": [
			{"url": "https://hooks.example.com/tandem", "secret": "a-long-random-secret", "events": ["doc.changed", "mention"]},
			{"url": "http://127.0.0.1:5678/webhook", "secret": "another-long-secret"}
		],
		"webhook_options": {"debounce": "500ms", "timeout": "3s", "max_attempts": 3, "retry_min": "250ms", "retry_max": "1m", "drain_timeout": "2s"}
	}`)
	f := &serveFlags{Config: server.DefaultConfig()}
	if err := f.ParseFlags([]string{"--config", good}, io.Discard); err != nil {
		t.Fatalf("parse: %v", err)
	}
	hooks, opts := f.Config.File.Webhooks, f.Config.File.WebhookOptions
	if len(hooks) != 2 || hooks[0].Events[1] != "mention" || hooks[1].Secret != "another-long-secret" ||
		time.Duration(opts.Debounce) != 500*time.Millisecond || opts.MaxAttempts != 3 || time.Duration(opts.DrainTimeout) != 2*time.Second {
		t.Fatalf("parsed %+v, %+v", hooks, opts)
	}
	if err := f.Config.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	for _, tc := range []struct {
		name, body, want string
	}{
		{"ftp URL", `{"webhooks":[{"url":"ftp://example.com/x","secret":"a-long-random-secret"}]}`, "scheme must be http or https"},
		{"no host", `{"webhooks":[{"url":"https:///x","secret":"a-long-random-secret"}]}`, "no host"},
		{"short secret", `{"webhooks":[{"url":"https://example.com/x","secret":"short"}]}`, "secret must be at least 16"},
		{"unknown event", `{"webhooks":[{"url":"https://example.com/x","secret":"a-long-random-secret","events":["doc.saved"]}]}`, "unknown event"},
	} {
		f := &serveFlags{Config: server.DefaultConfig()}
		if err := f.ParseFlags([]string{"--config", write(tc.name+".json", tc.body)}, io.Discard); err != nil {
			t.Fatalf("%s: parse: %v", tc.name, err)
		}
		if err := f.Config.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "webhooks[0]") {
			t.Errorf("%s: Validate = %v, want an error about webhooks[0] saying %q", tc.name, err, tc.want)
		}
	}
	f = &serveFlags{Config: server.DefaultConfig()}
	if err := f.ParseFlags([]string{"--config", write("typo.json", `{"webhook":[]}`)}, io.Discard); err == nil {
		t.Error("a misspelt webhooks key was accepted")
	}
}
