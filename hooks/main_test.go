package hooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "0123456789abcdef-hooks-secret"

// got is one request the test backend received (its signature verified).
type got struct {
	hook   string
	path   string
	header http.Header
	body   []byte
}

// backend is a real HTTP server on 127.0.0.1 playing the application's
// backend. It verifies every request's signature with the public verifier
// (webhook.Verify), as a real backend would, and answers 401 to a bad one
// (counted in badSig; newBackend's cleanup fails the test on any). It
// counts the requests in flight in its handler and keeps the highest
// count.
type backend struct {
	*httptest.Server
	secret string
	// answer decides the status and body; nil answers 200 "{}".
	answer func(g got, r *http.Request) (int, string)

	mu  sync.Mutex // guards log
	log []got

	inFlight, maxInFlight atomic.Int64
	badSig                atomic.Int64
}

func newBackend(t *testing.T, answer func(g got, r *http.Request) (int, string)) *backend {
	t.Helper()
	b := &backend{secret: testSecret, answer: answer}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		b.Close()
		if n := b.badSig.Load(); n > 0 {
			t.Errorf("the backend saw %d requests whose signature did not verify", n)
		}
	})
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for {
		m := b.maxInFlight.Load()
		if n <= m || b.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.Method != http.MethodPost || webhook.Verify([]byte(b.secret), r.Header.Get(webhook.HeaderSignature),
		r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), 5*time.Minute) != nil {
		b.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	g := got{hook: r.Header.Get(HeaderHook), path: r.URL.Path, header: r.Header.Clone(), body: body}
	b.mu.Lock()
	b.log = append(b.log, g)
	b.mu.Unlock()
	status, ans := http.StatusOK, "{}"
	if b.answer != nil {
		status, ans = b.answer(g, r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, ans)
}

// requests returns what the backend received so far.
func (b *backend) requests() []got {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]got(nil), b.log...)
}

// stall is an answer that waits until the client gives up (or 10 s).
func stall(g got, r *http.Request) (int, string) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
	return http.StatusOK, "{}"
}

// deadURL is the URL of a server that was listening and is no more:
// connections to it are refused.
func deadURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}

// allHooks turns every hook on with cfg-wide settings.
func allHooks(url string) Config {
	return Config{
		URL: url, Secret: testSecret,
		Connect: &HookConfig{}, Refresh: &HookConfig{}, Subscribe: &HookConfig{}, Publish: &HookConfig{},
		DocLoad: &HookConfig{}, DocOpen: &HookConfig{}, RPC: &RPCConfig{}, DocStore: &DocStoreConfig{},
	}
}

// newCaller starts a Caller whose metrics go to a fresh registry and whose
// log goes to the test; Close runs at cleanup.
func newCaller(t *testing.T, cfg Config) (*Caller, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Options{Registerer: reg, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, reg
}

// decode unmarshals a request body the backend got.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// parse unmarshals a request body in a backend's handler (no t there);
// a body that does not parse gives the zero value.
func parse[T any](b []byte) T {
	var v T
	_ = json.Unmarshal(b, &v)
	return v
}

// counter reads a metric's value from reg: the sum over the series whose
// labels include every pair in labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// hasSub reports whether s contains sub, for error-message checks.
func hasSub(s, sub string) bool { return strings.Contains(s, sub) }
