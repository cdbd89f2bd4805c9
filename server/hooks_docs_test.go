package server_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/testwait"
)

// hkSnapshot is a snapshot frame's document part.
type hkSnapshot struct {
	Type    string `json:"type"`
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	Epoch   string `json:"epoch"`
	Content string `json:"content"`
}

func hkSnap(t testing.TB, f frame) hkSnapshot {
	t.Helper()
	var s hkSnapshot
	if err := json.Unmarshal([]byte(f.Raw), &s); err != nil || s.Type != "snapshot" {
		t.Fatalf("want a snapshot, got %s", f.Raw)
	}
	return s
}

// TestHookDocs: doc_open refuses or allows opening after the grants;
// doc_load gives a document Tandem does not have its content, or says it
// is not found, once for opens that come together; a timeout is
// unavailable; doc_store receives the document's content and version once
// its edits settle; HTTP reads load a missing document as opens do.
func TestHookDocs(t *testing.T) {
	b := hkStart(t, hkSecret)
	var loadMu sync.Mutex
	loads := map[string]int{}
	b.on("doc_open", func(body []byte) hkReply {
		if hkField[string](t, body, "doc") == "secret" {
			return hkNo("forbidden", "not your document")
		}
		return hkYes
	})
	b.on("doc_load", func(body []byte) hkReply {
		doc := hkField[string](t, body, "doc")
		loadMu.Lock()
		loads[doc]++
		loadMu.Unlock()
		switch doc {
		case "from-app", "http-load":
			return hkJSON(map[string]string{"content": "hello from the app"})
		case "shared":
			return hkReply{body: `{"content":"one load"}`, delay: 200 * time.Millisecond}
		case "slow-load":
			return hkReply{delay: 5 * time.Second}
		case "empty":
			return hkJSON(map[string]string{"content": ""})
		}
		return hkNo("not_found", "no such document in the app")
	})
	a := apiStart(t, withHooks(t, `{"url": %q, "secret": %q, "timeout": "500ms", "doc_open": {}, "doc_load": {},
		"doc_store": {"debounce": "50ms", "max_wait": "200ms"}}`, b.URL, hkSecret))
	r := connectRaw(t, a.ws, "", "ann")

	hkExpectError(t, r.request(map[string]any{"type": "open", "doc": "secret"}), "forbidden", "not your document")
	if len(b.requests("doc_load")) != 0 {
		t.Fatal("a document refused by doc_open was loaded")
	}
	var open hooks.DocOpenRequest
	b.last("doc_open", &open)
	if open.User.ID != "ann" || open.ClientID == "" || open.Doc != "secret" {
		t.Fatalf("doc_open got %+v", open)
	}

	s := hkSnap(t, r.request(map[string]any{"type": "open", "doc": "from-app"}))
	if s.Content != "hello from the app" || s.Version == 0 {
		t.Fatalf("opened %+v", s)
	}
	var load hooks.DocLoadRequest
	b.last("doc_load", &load)
	if load.Doc != "from-app" || load.User.ID != "ann" || load.ClientID == "" {
		t.Fatalf("doc_load got %+v", load)
	}
	// Tandem has it now: a second open loads nothing.
	r2 := connectRaw(t, a.ws, "", "bob")
	if s2 := hkSnap(t, r2.request(map[string]any{"type": "open", "doc": "from-app"})); s2.Content != s.Content {
		t.Fatalf("second open %+v", s2)
	}

	f := r.request(map[string]any{"type": "open", "doc": "nowhere"})
	hkExpectError(t, f, "not_found", "no such document in the app")
	if f.Doc != "nowhere" {
		t.Fatalf("error frame %s", f.Raw)
	}
	hkExpectError(t, r.request(map[string]any{"type": "open", "doc": "slow-load"}), "unavailable", "did not answer in time")
	if s := hkSnap(t, r.request(map[string]any{"type": "open", "doc": "empty"})); s.Content != "" {
		t.Fatalf("empty: %+v", s)
	}

	// Opens of one missing document that come together share one load.
	var wg sync.WaitGroup
	for i := range 5 {
		c := connectRaw(t, a.ws, "", "reader")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := hkSnap(t, c.request(map[string]any{"type": "open", "doc": "shared"})); s.Content != "one load" {
				t.Errorf("open %d: %+v", i, s)
			}
		}()
	}
	wg.Wait()
	loadMu.Lock()
	if loads["shared"] != 1 {
		t.Errorf("shared was loaded %d times", loads["shared"])
	}
	loadMu.Unlock()

	// doc_store: the content after the edits settle, with its version and
	// epoch.
	if f := r.request(map[string]any{"type": "op", "doc": "from-app", "version": s.Version, "op": []any{18, ", and Tandem"}, "uid": "u1"}); f.Type != "ack" {
		t.Fatalf("op: %s", f.Raw)
	}
	var stored hooks.DocSnapshot
	testwait.For(t, 10*time.Second, "doc_store", func() bool {
		for _, body := range b.requests("doc_store") {
			_ = json.Unmarshal(body, &stored)
			if stored.Doc == "from-app" && stored.Version == s.Version+1 {
				return true
			}
		}
		return false
	})
	if stored.Content != "hello from the app, and Tandem" || stored.Epoch != s.Epoch {
		t.Fatalf("doc_store got %+v; the document is at epoch %s", stored, s.Epoch)
	}

	// Over HTTP, reads load a missing document too.
	var doc apiDocState
	a.call("GET", "/api/docs/http-load", nil, 200, &doc)
	if doc.Content != "hello from the app" {
		t.Fatalf("GET: %+v", doc)
	}
	if resp := a.do("GET", "/api/docs/nowhere-http", apiKeyAll, nil); resp.status != 404 || !strings.Contains(string(resp.body), "no such document in the app") {
		t.Fatalf("GET missing: %d %s", resp.status, resp.body)
	}
	b.checkSignatures()
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_calls_total{hook="doc_store"}`); v < 1 {
		t.Errorf("doc_store calls: %v", v)
	}
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_refusals_total{hook="doc_load"}`); v != 2 {
		t.Errorf("doc_load refusals: %v", v)
	}
}

// TestHookDocsDown: a backend that cannot be reached fails opens under
// policy refuse, and under allow lets them go on as without the hooks (a
// missing document is created empty).
func TestHookDocsDown(t *testing.T) {
	dead := hkDeadURL(t)
	for _, policy := range []string{"refuse", "allow"} {
		t.Run(policy, func(t *testing.T) {
			a := apiStart(t, withHooks(t, `{"url": %q, "secret": %q, "doc_open": {"on_failure": %q}, "doc_load": {"on_failure": %[3]q}}`,
				dead, hkSecret, policy))
			r := connectRaw(t, a.ws, "", "ann")
			f := r.request(map[string]any{"type": "open", "doc": "notes"})
			if policy == "refuse" {
				hkExpectError(t, f, "unavailable", "cannot be reached")
				return
			}
			if s := hkSnap(t, f); s.Content != "" || s.Version != 0 {
				t.Fatalf("opened %+v", s)
			}
		})
	}
	t.Run("load only", func(t *testing.T) {
		// doc_open allows; doc_load is down and refuses.
		b := hkStart(t, hkSecret)
		a := apiStart(t, withHooks(t, `{"url": %q, "secret": %q, "doc_open": {}, "doc_load": {"url": %q}}`, b.URL, hkSecret, dead+"/doc_load"))
		r := connectRaw(t, a.ws, "", "ann")
		hkExpectError(t, r.request(map[string]any{"type": "open", "doc": "notes"}), "unavailable", "cannot be reached")
		if len(b.requests("doc_open")) != 1 {
			t.Fatalf("doc_open asked %d times", len(b.requests("doc_open")))
		}
	})
}
