package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestHealthSaysTheMode: /healthz tells development from production mode
// (the web app asks it before it offers a name picker or asks for a token).
func TestHealthSaysTheMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []serverOpt
		want string
	}{
		{"development", nil, "development"},
		{"production", []serverOpt{withSecret()}, "production"},
	} {
		ts := startServer(t, tc.opts...)
		resp, err := http.Get("http://" + ts.Addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Status, Mode string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || body.Status != "ok" || body.Mode != tc.want {
			t.Errorf("%s: /healthz %d %+v %v; want ok and mode %q", tc.name, resp.StatusCode, body, err, tc.want)
		}
	}
}
