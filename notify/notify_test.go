package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/webhook"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "0123456789abcdef-secret"

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	ev     payloadJSON
}

// payloadJSON decodes a delivery body.
type payloadJSON struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	TS       time.Time       `json:"ts"`
	Doc      string          `json:"doc"`
	Channel  string          `json:"channel"`
	User     string          `json:"user"`
	ClientID string          `json:"client_id"`
	Version  int             `json:"version"`
	Data     json.RawMessage `json:"data"`
}

// receiver is an httptest server that records requests and answers with
// what answer says (200 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex // guards got
	got    []received
	more   chan struct{} // cap 1
	answer func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{more: make(chan struct{}, 1), answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev payloadJSON
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, ev: ev})
		n := len(rc.got)
		rc.mu.Unlock()
		select {
		case rc.more <- struct{}{}:
		default:
		}
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, r)
		}
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// wait waits until n requests arrived.
func (rc *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := rc.all(); len(got) >= n {
			return got
		}
		select {
		case <-rc.more:
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d", len(rc.all()), n)
		}
	}
}

// start starts a dispatcher whose cleanup closes it.
func start(t *testing.T, cfg Config) *Dispatcher {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d
}

func count(d *Dispatcher, outcome string) int {
	var m dto.Metric
	if err := d.cfg.Metrics.WebhookSent.WithLabelValues(outcome).Write(&m); err != nil {
		return -1
	}
	return int(m.GetCounter().GetValue())
}

// waitLog waits until the delivery log holds n entries.
func waitLog(t *testing.T, d *Dispatcher, n int) []Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := d.Deliveries(); len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log has %d entries, want %d: %+v", len(d.Deliveries()), n, d.Deliveries())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Endpoint
		want string // in the error; "" for valid
	}{
		{"http", Endpoint{URL: "http://127.0.0.1:9/hook", Secret: testSecret}, ""},
		{"https with events", Endpoint{URL: "https://example.com/h?x=1", Secret: testSecret, Events: []string{"doc.changed", "mention"}}, ""},
		{"star", Endpoint{URL: "https://example.com/", Secret: testSecret, Events: []string{"*"}}, ""},
		{"ftp", Endpoint{URL: "ftp://example.com/", Secret: testSecret}, "scheme must be http or https"},
		{"file", Endpoint{URL: "file:///etc/passwd", Secret: testSecret}, "scheme must be http or https"},
		{"relative", Endpoint{URL: "/hook", Secret: testSecret}, "scheme must be http or https"},
		{"no host", Endpoint{URL: "http:///hook", Secret: testSecret}, "no host"},
		{"port only", Endpoint{URL: "http://:80/hook", Secret: testSecret}, "no host"},
		{"fragment", Endpoint{URL: "http://example.com/#x", Secret: testSecret}, "fragment"},
		{"unparsable", Endpoint{URL: "http://[::1/", Secret: testSecret}, "webhook url"},
		{"short secret", Endpoint{URL: "http://example.com/", Secret: "short"}, "secret must be at least 16"},
		{"password redacted", Endpoint{URL: "ftp://u:hunter2hunter2@example.com/", Secret: testSecret}, "u:xxxxx@"},
		{"unknown event", Endpoint{URL: "http://example.com/", Secret: testSecret, Events: []string{"doc.changd"}}, `unknown event "doc.changd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.e, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("Validate(%+v) = %v, want an error with %q (and no password)", tc.e, err, tc.want)
			}
		})
	}
	if _, err := New(Config{Endpoints: []Endpoint{{URL: "gopher://x", Secret: testSecret}}}); err == nil {
		t.Fatal("New accepted a gopher URL")
	}
}

// TestDeliverSigned: a delivery carries the documented headers, a valid
// signature and the event; endpoints get only the events they asked for.
func TestDeliverSigned(t *testing.T) {
	all := newReceiver(t, nil)
	mentions := newReceiver(t, nil)
	d := start(t, Config{Endpoints: []Endpoint{
		{URL: all.URL + "/all", Secret: testSecret},
		{URL: mentions.URL + "/m", Secret: "another-secret-0123456789", Events: []string{session.EventMention}},
	}})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d.Notify(session.Event{Type: session.EventChannelJoined, Time: at, Channel: "chat:1", User: "u1", ClientID: "c_1"})
	d.Notify(session.Event{Type: session.EventMention, Time: at, Channel: "chat:1", User: "u2", Data: map[string]any{"text": "hi @u2"}})

	got := all.wait(t, 2)
	for _, r := range got {
		h := r.header
		if err := webhook.Verify([]byte(testSecret), h.Get("X-Tandem-Signature"), h.Get("X-Tandem-Timestamp"), r.body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature of %s: %v", r.body, err)
		}
		if h.Get("X-Tandem-Event") != r.ev.Type || h.Get("X-Tandem-Delivery") != r.ev.ID || !strings.HasPrefix(r.ev.ID, "whd_") ||
			h.Get("Content-Type") != "application/json" || h.Get("X-Tandem-Attempt") != "1" {
			t.Errorf("headers %v do not match body %s", h, r.body)
		}
		if !r.ev.TS.Equal(at) || r.ev.Channel != "chat:1" {
			t.Errorf("body %s: want ts %v on chat:1", r.body, at)
		}
	}
	m := mentions.wait(t, 1)
	if m[0].ev.Type != session.EventMention || !strings.Contains(string(m[0].ev.Data), `"hi @u2"`) {
		t.Fatalf("mention endpoint got %s", m[0].body)
	}
	if err := webhook.Verify([]byte("another-secret-0123456789"), m[0].header.Get("X-Tandem-Signature"), m[0].header.Get("X-Tandem-Timestamp"), m[0].body, time.Now(), time.Minute); err != nil {
		t.Fatalf("second endpoint's signature: %v", err)
	}
	waitLog(t, d, 3)
	if n := len(mentions.all()); n != 1 {
		t.Fatalf("the mention-only endpoint got %d deliveries, want 1", n)
	}
}

// TestRetries: 5xx and timeouts are retried with backoff up to MaxAttempts,
// with the same delivery id; 4xx and redirects are not retried (nor
// followed).
func TestRetries(t *testing.T) {
	flaky := newReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	refusing := newReceiver(t, func(int, *http.Request) int { return http.StatusGone })
	redirecting := newReceiver(t, func(int, *http.Request) int { return http.StatusFound })
	release := make(chan struct{})
	hanging := newReceiver(t, func(int, *http.Request) int { <-release; return 200 })
	defer close(release) // before the receivers' cleanups close them
	d := start(t, Config{
		Endpoints: []Endpoint{
			{URL: flaky.URL, Secret: testSecret}, {URL: refusing.URL, Secret: testSecret},
			{URL: redirecting.URL, Secret: testSecret}, {URL: hanging.URL, Secret: testSecret},
		},
		RetryMin: 10 * time.Millisecond, Timeout: 100 * time.Millisecond, MaxAttempts: 3,
	})
	d.Notify(session.Event{Type: session.EventClientDisconnected, User: "u1", ClientID: "c_1"})
	log := waitLog(t, d, 4)
	byURL := map[string]Delivery{}
	for _, l := range log {
		byURL[l.URL] = l
	}
	for _, tc := range []struct {
		url      string
		outcome  string
		status   int
		attempts int
		err      string
	}{
		{flaky.URL, OutcomeOK, 204, 2, ""},
		{refusing.URL, OutcomeFailed, 410, 1, "answered 410"},
		{redirecting.URL, OutcomeFailed, 302, 1, "answered 302"},
		{hanging.URL, OutcomeFailed, 0, 3, "no answer within 100ms"},
	} {
		l := byURL[tc.url]
		if l.Outcome != tc.outcome || l.Status != tc.status || l.Attempts != tc.attempts || !strings.Contains(l.Error, tc.err) {
			t.Errorf("%s: got %+v, want outcome %s status %d attempts %d error %q", tc.url, l, tc.outcome, tc.status, tc.attempts, tc.err)
		}
	}
	got := flaky.all()
	if len(got) != 2 || got[0].ev.ID != got[1].ev.ID || got[1].header.Get("X-Tandem-Attempt") != "2" {
		t.Fatalf("flaky receiver: want the same delivery twice, got %d requests", len(got))
	}
	if n := len(redirecting.all()); n != 1 {
		t.Fatalf("redirecting receiver got %d requests", n)
	}
	if ok, failed, retried := count(d, OutcomeOK), count(d, OutcomeFailed), count(d, OutcomeRetried); ok != 1 || failed != 3 || retried != 3 {
		t.Fatalf("metrics: ok %d failed %d retried %d, want 1, 3, 3", ok, failed, retried)
	}
}

// TestDebounce: a burst of doc.changed per document becomes one event with
// the latest version; other events are not debounced.
func TestDebounce(t *testing.T) {
	rc := newReceiver(t, nil)
	d := start(t, Config{Endpoints: []Endpoint{{URL: rc.URL, Secret: testSecret}}, Debounce: 200 * time.Millisecond})
	for v := 1; v <= 20; v++ {
		d.Notify(session.Event{Type: session.EventDocChanged, Doc: "a", Version: v, User: "u1"})
		if v > 10 {
			d.Notify(session.Event{Type: session.EventDocChanged, Doc: "b", Version: v, User: "u2"})
		}
	}
	d.Notify(session.Event{Type: session.EventDocJoined, Doc: "a", User: "u3"})
	got := rc.wait(t, 3)
	versions := map[string]int{}
	for _, r := range got {
		if r.ev.Type == session.EventDocChanged {
			versions[r.ev.Doc] = r.ev.Version
			var data struct {
				From int `json:"from_version"`
			}
			_ = json.Unmarshal(r.ev.Data, &data)
			if want := map[string]int{"a": 0, "b": 10}[r.ev.Doc]; data.From != want {
				t.Errorf("doc %s: from_version %d, want %d", r.ev.Doc, data.From, want)
			}
		}
	}
	if versions["a"] != 20 || versions["b"] != 20 || len(versions) != 2 {
		t.Fatalf("doc.changed versions %v, want a and b at 20", versions)
	}
	// A change after the window opens a new one.
	d.Notify(session.Event{Type: session.EventDocChanged, Doc: "a", Version: 21})
	got = rc.wait(t, 4)
	if e := got[3].ev; e.Type != session.EventDocChanged || e.Version != 21 {
		t.Fatalf("after the window: got %s", got[3].body)
	}
	if n := len(rc.all()); n != 4 {
		t.Fatalf("receiver got %d deliveries, want 4", n)
	}
}

// TestNotifyNeverBlocks: with a receiver that never answers, Notify stays
// fast, the queue overflows into drops, and Close gives up at its deadline.
func TestNotifyNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(int, *http.Request) int { <-release; return 200 })
	defer close(release)
	d, err := New(Config{
		Endpoints: []Endpoint{{URL: rc.URL, Secret: testSecret}}, QueueLen: 4, Workers: 1, Timeout: time.Hour,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Notify(session.Event{Type: session.EventChannelJoined, Channel: "c"})
	rc.wait(t, 1) // the worker is stuck on this one
	start := time.Now()
	for range 1000 {
		d.Notify(session.Event{Type: session.EventChannelJoined, Channel: "c"})
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("1000 Notify calls took %v", took)
	}
	if n := count(d, OutcomeDropped); n != 1000-4 {
		t.Fatalf("dropped %d, want %d", n, 1000-4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v past its deadline", took)
	}
	// The stuck one failed, the 4 queued were dropped, and later events are
	// dropped too.
	if n := count(d, OutcomeDropped); n != 1000 {
		t.Fatalf("after Close: dropped %d, want 1000", n)
	}
	d.Notify(session.Event{Type: session.EventChannelJoined, Channel: "c"})
	if n, f := count(d, OutcomeDropped), count(d, OutcomeFailed); n != 1001 || f != 1 {
		t.Fatalf("after Close: dropped %d failed %d, want 1001 and 1", n, f)
	}
	if l := d.Deliveries(); len(l) != 200 || l[0].Outcome != OutcomeDropped {
		t.Fatalf("delivery log: %d entries, newest %+v", len(l), l[0])
	}
}

// TestCloseFlushes: Close ends open debounce windows and delivers what is
// queued before returning.
func TestCloseFlushes(t *testing.T) {
	rc := newReceiver(t, nil)
	d, err := New(Config{Endpoints: []Endpoint{{URL: rc.URL, Secret: testSecret}}, Debounce: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d.Notify(session.Event{Type: session.EventDocChanged, Doc: "a", Version: 1})
	d.Notify(session.Event{Type: session.EventDocChanged, Doc: "a", Version: 2})
	d.Notify(session.Event{Type: session.EventDocLeft, Doc: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := rc.all()
	if len(got) != 2 || count(d, OutcomeOK) != 2 {
		t.Fatalf("after Close the receiver has %d deliveries, want 2", len(got))
	}
	for _, r := range got {
		if r.ev.Type == session.EventDocChanged && r.ev.Version != 2 {
			t.Fatalf("flushed doc.changed has version %d, want 2", r.ev.Version)
		}
	}
}

// TestNoEndpoints: a dispatcher without endpoints starts nothing and
// ignores events.
func TestNoEndpoints(t *testing.T) {
	d := start(t, Config{})
	d.Notify(session.Event{Type: session.EventDocChanged, Doc: "a", Version: 1})
	if l := d.Deliveries(); len(l) != 0 {
		t.Fatalf("log: %+v", l)
	}
}
