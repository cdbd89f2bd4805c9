package server_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/server"
)

// apiReadmeMarker opens the README block this test runs.
const apiReadmeMarker = "# readme-test:http-api"

// apiReadmeBlock returns the lines of the ```sh block that starts with
// apiReadmeMarker in README.md's section "## HTTP API", and the API keys
// the section's "export TANDEM_API_KEYS=" line sets.
func apiReadmeBlock(t *testing.T) (lines []string, keys string) {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := bytes.Cut(raw, []byte("\n## HTTP API\n"))
	if !ok {
		t.Fatal("README.md has no section ## HTTP API")
	}
	m := regexp.MustCompile("(?m)^export TANDEM_API_KEYS=(\\S+)$").FindSubmatch(section)
	if m == nil {
		t.Fatal("README.md's section HTTP API does not say `export TANDEM_API_KEYS=...`")
	}
	keys = string(m[1])
	in, prev := false, ""
	for line := range strings.Lines(string(section)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case !in && prev == "```sh" && strings.HasPrefix(line, apiReadmeMarker):
			in = true
		case in && line == "```":
			return lines, keys
		case in:
			lines = append(lines, line)
		}
		prev = line
	}
	t.Fatalf("README.md has no ```sh block opened by %q and closed by ```", apiReadmeMarker)
	return nil, ""
}

// apiJSONMatch reports whether got equals want, where the
// string "…" in want stands for any value.
func apiJSONMatch(want, got any) bool {
	if s, ok := want.(string); ok && s == "…" {
		return got != nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if !apiJSONMatch(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !apiJSONMatch(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// TestAPIReadmeCurl runs the README's "HTTP API in five commands" exactly
// as written against a development-mode server whose API key is set the
// way the README sets it; only the base URL is rewritten. Each command's
// output must match the "# →" line after it (a command without one must
// print nothing).
func TestAPIReadmeCurl(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	lines, keys := apiReadmeBlock(t)
	// As `tandem serve` reads $TANDEM_API_KEYS.
	a := apiStart(t, func(c *server.Config) { c.APIKeys = strings.Split(keys, ",") })
	watcher := a.dial("watcher")
	watcher.subscribe("customer_7")

	dir := t.TempDir()
	env := append(os.Environ(), "TANDEM_API_KEYS="+keys, "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	const readmeBase = "http://localhost:8080"
	commands := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, readmeBase) {
			t.Fatalf("README command %q does not use %s", line, readmeBase)
		}
		commands++
		var want []byte
		if i+1 < len(lines) {
			if w, ok := strings.CutPrefix(lines[i+1], "# → "); ok {
				want = []byte(w)
				i++
			}
		}
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, readmeBase, a.base))
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("%s: %v, stderr %q", line, err, stderr.String())
		}
		if want == nil {
			if len(out) != 0 {
				t.Fatalf("%s: printed %q; the README shows no output", line, out)
			}
			continue
		}
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatalf("README output line %q is not JSON: %v", want, err)
		}
		if err := json.Unmarshal(out, &g); err != nil || !apiJSONMatch(w, g) {
			t.Fatalf("%s\nprinted  %s\nREADME says %s", line, bytes.TrimSpace(out), want)
		}
	}
	if commands != 5 {
		t.Fatalf("the README block has %d commands, want 5", commands)
	}
	// The broadcast reached a subscriber; the export is a whole history.
	if m := watcher.message("customer_7"); m.Event != "order_update" || string(m.Data) != `{"status":"shipped"}` {
		t.Fatalf("the subscriber got %s", m.Raw)
	}
	export, err := os.ReadFile(filepath.Join(dir, "notes.tandem.json"))
	if err != nil || !json.Valid(export) || !bytes.HasPrefix(export, []byte(`{"format":"tandem-export"`)) ||
		!bytes.Contains(export, []byte(`"op":[5,", world!"]`)) {
		t.Fatalf("notes.tandem.json: %v, %.200s", err, export)
	}
}
