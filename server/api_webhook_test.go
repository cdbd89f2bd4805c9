package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/server"
)

// apiHook is one webhook request a receiver got.
type apiHook struct {
	Event, Delivery, Attempt string
	Body                     struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Doc     string `json:"doc"`
		Channel string `json:"channel"`
		User    string `json:"user"`
		Version int    `json:"version"`
		Data    struct {
			FromVersion *int   `json:"from_version"`
			Text        string `json:"text"`
		} `json:"data"`
	}
}

// apiReceiver is a webhook receiver on 127.0.0.1 that checks every
// request's signature itself (not with package webhook) and answers 500 to
// the first attempt of the first doc.changed.
type apiReceiver struct {
	*httptest.Server
	t      *testing.T
	secret string
	mu     sync.Mutex // guards got and failed
	got    []apiHook
	failed bool
}

func apiNewReceiver(t *testing.T, secret string) *apiReceiver {
	rc := &apiReceiver{t: t, secret: secret}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *apiReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		return
	}
	ts := r.Header.Get("X-Tandem-Timestamp")
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get("X-Tandem-Signature")), []byte(want)) {
		rc.t.Errorf("receiver: bad signature %q on %s (timestamp %q)", r.Header.Get("X-Tandem-Signature"), body, ts)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		rc.t.Errorf("receiver: timestamp %q is not now", ts)
	}
	h := apiHook{Event: r.Header.Get("X-Tandem-Event"), Delivery: r.Header.Get("X-Tandem-Delivery"), Attempt: r.Header.Get("X-Tandem-Attempt")}
	if err := json.Unmarshal(body, &h.Body); err != nil || h.Body.Type != h.Event || h.Body.ID != h.Delivery || r.Method != "POST" {
		rc.t.Errorf("receiver: %s %s with headers %v: %v", r.Method, body, r.Header, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, h)
	fail := h.Event == "doc.changed" && !rc.failed
	rc.failed = rc.failed || fail
	rc.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hooks returns what arrived, optionally only of event type ev.
func (rc *apiReceiver) hooks(ev string) []apiHook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []apiHook
	for _, h := range rc.got {
		if ev == "" || h.Event == ev {
			out = append(out, h)
		}
	}
	return out
}

// TestAPIWebhooks: a local receiver checks each delivery's signature, gets
// the retry of a delivery it answered with 500, sees a burst of changes as
// one doc.changed with the latest version, and each endpoint gets the
// events it asked for; the delivery log and the metrics say so.
func TestAPIWebhooks(t *testing.T) {
	t.Parallel()
	const secretAll, secretSome = "secret-of-the-all-events-hook", "secret-of-the-comments-hook"
	all, some := apiNewReceiver(t, secretAll), apiNewReceiver(t, secretSome)
	a := apiStart(t, func(c *server.Config) {
		c.File.Webhooks = []server.WebhookConfig{
			{URL: all.URL + "/all", Secret: secretAll},
			{URL: some.URL + "/some", Secret: secretSome, Events: []string{"comment.added", "channel.joined"}},
		}
		c.File.WebhookOptions = server.WebhookOptionsConfig{
			Debounce: server.Duration(2 * time.Second), RetryMin: server.Duration(20 * time.Millisecond), Timeout: server.Duration(5 * time.Second),
		}
	})

	// A burst: create, then five quick edits, all within one debounce window.
	start := time.Now()
	a.call("POST", "/api/docs", map[string]string{"id": "wh", "content": "a"}, 201, nil)
	for _, text := range []string{"ab", "abc", "abcd", "abcde", "abcdef"} {
		a.call("PUT", "/api/docs/wh/content", map[string]string{"content": text}, 200, nil)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the burst took %v, longer than the debounce window: the machine is too busy for this test", took)
	}
	apiWaitFor(t, 10*time.Second, "the retried doc.changed", func() bool { return len(all.hooks("doc.changed")) >= 2 })
	changed := all.hooks("doc.changed")
	first, retry := changed[0], changed[1]
	if first.Delivery != retry.Delivery || first.Attempt != "1" || retry.Attempt != "2" {
		t.Fatalf("want the same delivery twice, attempts 1 and 2: %+v, %+v", first, retry)
	}
	if b := retry.Body; b.Doc != "wh" || b.Version != 6 || b.Data.FromVersion == nil || *b.Data.FromVersion != 0 {
		t.Fatalf("debounced doc.changed: %+v; want doc wh at version 6 from version 0", b)
	}

	// A client joins a channel and the document, comments, and leaves.
	dan := a.dial("dan")
	dan.subscribe("chat:1")
	if f := dan.request(map[string]any{"type": "open", "doc": "wh"}); f.Type != "snapshot" {
		t.Fatalf("open: %s", f.Raw)
	}
	if f := dan.request(map[string]any{"type": "comment", "doc": "wh", "action": "add", "version": 6, "range": map[string]int{"from": 0, "to": 2}, "text": "nice"}); f.Type != "comment" {
		t.Fatalf("comment: %s", f.Raw)
	}
	apiWaitFor(t, 10*time.Second, "comment.added at both receivers", func() bool {
		return len(all.hooks("comment.added")) == 1 && len(some.hooks("comment.added")) == 1
	})

	// The delivery log and the metrics, before the server stops.
	var log struct {
		Deliveries []struct {
			ID       string `json:"id"`
			Event    string `json:"event"`
			URL      string `json:"url"`
			Outcome  string `json:"outcome"`
			Status   int    `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"deliveries"`
	}
	a.call("GET", "/api/webhooks/deliveries", nil, 200, &log)
	found := false
	for _, d := range log.Deliveries {
		if d.ID == first.Delivery {
			found = true
			if d.Outcome != "ok" || d.Attempts != 2 || d.Status != 204 || d.URL != all.URL+"/all" {
				t.Fatalf("delivery log entry %+v; want ok after 2 attempts with 204", d)
			}
		}
	}
	if !found {
		t.Fatalf("delivery %s is not in the log %+v", first.Delivery, log.Deliveries)
	}
	metrics := string(a.call("GET", "/metrics", nil, 200, nil).body)
	if !strings.Contains(metrics, `tandem_webhook_deliveries_total{outcome="retried"} 1`) || !strings.Contains(metrics, `tandem_webhook_deliveries_total{outcome="ok"}`) {
		t.Fatalf("metrics lack the webhook counters:\n%s", apiGrepLines(metrics, "webhook"))
	}

	// Stopping the server sends what is pending (the leave events) first.
	a.stop()
	var ids []string
	for _, h := range all.hooks("doc.changed") {
		if !slices.Contains(ids, h.Delivery) {
			ids = append(ids, h.Delivery)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d doc.changed deliveries for one burst, want 1", len(ids))
	}
	for _, ev := range []string{"channel.joined", "doc.joined", "comment.added", "doc.left", "channel.left", "client.disconnected"} {
		hs := all.hooks(ev)
		if len(hs) != 1 || hs[0].Body.User != "dan" {
			t.Errorf("the all-events receiver got %d %s (%+v), want 1 by dan", len(hs), ev, hs)
		}
	}
	var someEvents []string
	for _, h := range some.hooks("") {
		someEvents = append(someEvents, h.Event)
	}
	slices.Sort(someEvents)
	if fmt.Sprint(someEvents) != "[channel.joined comment.added]" {
		t.Fatalf("the filtered receiver got %v", someEvents)
	}
}

// apiGrepLines returns the lines of s holding sub.
func apiGrepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
