package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
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

// TestHealthzWritesNothing: /healthz answers from the committer's state
// without a write, so a flood of health checks adds no write request to
// the database. The server's only writes meanwhile are its system:stats
// messages, one a second: the bound is the flood's length in seconds + 2.
func TestHealthzWritesNothing(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const calls = 1000
	before := metricValue(t, ts.Addr, "tandem_storage_requests_total")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls / 8 {
				resp, err := http.Get("http://" + ts.Addr + "/healthz")
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("/healthz: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	secs := time.Since(start).Seconds()
	writes := metricValue(t, ts.Addr, "tandem_storage_requests_total") - before
	if bound := secs + 2; writes > bound {
		t.Fatalf("%d health checks in %.1fs made %.0f write requests; want at most %.0f (system:stats alone)", calls, secs, writes, bound)
	}
	t.Logf("%d health checks in %.1fs: %.0f write requests (system:stats)", calls, secs, writes)
}
