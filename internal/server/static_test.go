package server_test

import (
	"io"
	"net/http"
	"testing"
)

// TestStaticBadPaths: a path whose escapes decode to bytes that are not
// UTF-8 is a client error (400), never a 500 from the file server; other
// odd paths are not found (404) or served.
func TestStaticBadPaths(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/%ff", 400},
		{"/a%ff/b", 400},
		{"/%c0%af", 400}, // an overlong encoding of "/"
		{"/tandem%fe.js", 400},
		{"/dashboard%ff", 400},
		{"/%00", 404},
		{"/index.html%00", 404},
		{"/no-such-file.js", 404},
		{"/tandem.js", 200},
	} {
		resp, err := http.Get("http://" + ts.Addr + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d %.100q, want %d", tc.path, resp.StatusCode, body, tc.status)
		}
	}
}
