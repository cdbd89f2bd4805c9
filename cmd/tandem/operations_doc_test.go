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

// TestOperationsConfigExample: the configuration file shown in
// docs/operations.md loads through `tandem serve --config` (unknown fields
// refused) and validates, and sets what it says.
func TestOperationsConfigExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```json\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/operations.md has no ```json block")
	}
	path := filepath.Join(t.TempDir(), "tandem.json")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	var m serveFlags
	m.Config = server.DefaultConfig()
	if err := m.ParseFlags([]string{"--config", path}, io.Discard); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if err := m.Config.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	f := m.Config.File
	if !f.Namespaces["audit"].ServerOnly || f.Namespaces["chat"].HistorySize != 1000 || f.Limits.FrameBurst != 562 || len(f.APIKeys) != 2 || len(f.Webhooks) != 1 ||
		f.Auth.RequireExp == nil || !*f.Auth.RequireExp || f.Auth.Audience == "" || f.Auth.JWKSURL == "" || f.Auth.JWKSMinRefresh != server.Duration(time.Minute) ||
		f.Limits.MaxConnectionsPerIP != 1000 || time.Duration(f.Limits.HTTPWriteTimeout) != time.Minute || len(f.TrustedProxies) != 2 || len(f.AllowedHosts) != 1 ||
		f.DocBroadcast.Window != server.Duration(25*time.Millisecond) || f.DocBroadcast.Members != 50 {
		t.Fatalf("the example loaded as %+v", f)
	}
}
