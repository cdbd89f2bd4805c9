package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

const remoteTestKey = "remote-test-key-0123456789"

// runRemoteServer runs a real server on 127.0.0.1:0 over data directory
// dir (created if need be) with remoteTestKey, and returns its base URL
// and the server; the test's cleanup stops it.
func runRemoteServer(t *testing.T, dir string) (string, *server.Server) {
	t.Helper()
	ts := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Data, c.APIKeys = dir, []string{remoteTestKey}
	}))
	return ts.HTTP, ts.Server()
}

// withoutStamp drops the export time, the one thing two exports of the same
// history differ in.
func withoutStamp(s string) string {
	return regexp.MustCompile(`"exported_at":"[^"]*"`).ReplaceAllString(s, "")
}

// TestExportImportServer: export from a running server, to a file and to
// stdout, and import into another running server, through the HTTP API.
func TestExportImportServer(t *testing.T) {
	src, content := makeStore(t)
	url1, _ := runRemoteServer(t, src)
	url2, srv2 := runRemoteServer(t, t.TempDir())

	file := filepath.Join(t.TempDir(), "notes.json")
	if out, errOut, err := runCmd("export", "--server", url1, "--key", remoteTestKey, "--doc", "notes", "-o", file); err != nil || out != "" {
		t.Fatalf("export -o: %v, stdout %q, stderr %q", err, out, errOut)
	}
	exported, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(exported), `{"format":"tandem-export","format_version":1,`) {
		t.Fatalf("export file: %.60q, %v", exported, err)
	}
	out, _, err := runCmd("export", "--server", url1+"/", "--key", remoteTestKey, "--doc", "notes")
	if err != nil || withoutStamp(out) != withoutStamp(string(exported)) {
		t.Fatalf("export to stdout: %v; differs from the file", err)
	}

	// The key may come from the environment.
	t.Setenv("TANDEM_API_KEY", remoteTestKey)
	out, errOut, err := runCmd("import", "--server", url2, file)
	if err != nil || out != "imported document \"notes\" at version 50\n" {
		t.Fatalf("import: %v, stdout %q, stderr %q", err, out, errOut)
	}
	got, err := srv2.DB.ContentAt("notes", 50)
	cs, _ := srv2.DB.Comments("notes")
	if err != nil || got != content || len(cs) != 1 || cs[0].Text != "hi" {
		t.Fatalf("imported: content %q (%v), comments %+v; want %q", got, err, cs, content)
	}
	// The second server exports the same history.
	out, _, err = runCmd("export", "--server", url2, "--doc", "notes")
	if err != nil || withoutStamp(out) != withoutStamp(string(exported)) {
		t.Fatalf("export from the second server: %v; differs from the first's", err)
	}
}

func TestExportImportServerErrors(t *testing.T) {
	src, _ := makeStore(t)
	url, _ := runRemoteServer(t, src)
	good := filepath.Join(t.TempDir(), "notes.json")
	if _, _, err := runCmd("export", "--server", url, "--key", remoteTestKey, "--doc", "notes", "-o", good); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "bad.json")
	b, _ := os.ReadFile(good)
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	dead := "http://127.0.0.1:1" // nothing listens on port 1
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool   // fails with errUsage, the problem on stderr
		want  string // in the error, or on stderr for usage errors
	}{
		{"export both modes", []string{"export", "--server", url, "--data", src, "--doc", "notes"}, true, "not both"},
		{"export bad URL", []string{"export", "--server", "ftp://x", "--doc", "notes"}, true, "want http(s)://host:port"},
		{"export URL with query", []string{"export", "--server", url + "/?x=1", "--doc", "notes"}, true, "without query"},
		{"export wrong key", []string{"export", "--server", url, "--key", "nope-nope-nope-nope", "--doc", "notes"}, false, "401 unauthorized"},
		{"export no key", []string{"export", "--server", url, "--key", "", "--doc", "notes"}, false, "check --key"},
		{"export missing doc", []string{"export", "--server", url, "--key", remoteTestKey, "--doc", "nope"}, false, "404 not_found"},
		{"export bad doc id", []string{"export", "--server", url, "--key", remoteTestKey, "--doc", "a/b"}, false, "400 bad_request"},
		{"export dead server", []string{"export", "--server", dead, "--key", remoteTestKey, "--doc", "notes"}, false, "connection refused"},
		{"import both modes", []string{"import", "--server", url, "--data", src, good}, true, "not both"},
		{"import existing doc", []string{"import", "--server", url, "--key", remoteTestKey, good}, false, "409 conflict"},
		{"import truncated", []string{"import", "--server", url, "--key", remoteTestKey, truncated}, false, "400 bad_request"},
		{"import wrong key", []string{"import", "--server", url, "--key", "nope-nope-nope-nope", good}, false, "401 unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runCmd(tc.args...)
			if tc.usage {
				if !errors.Is(err, errUsage) || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--server URL") {
					t.Fatalf("got %v, stderr %q; want errUsage and %q with the usage", err, stderr, tc.want)
				}
				return
			}
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}
