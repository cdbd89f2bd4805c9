package hooks

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{
		"url": "http://127.0.0.1:9000/tandem/",
		"secret": "a-long-random-secret",
		"timeout": "1500ms",
		"max_concurrent": 32,
		"forward": {"cookies": ["session"], "headers": ["X-Request-Id"]},
		"connect": {},
		"publish": {"on_failure": "allow", "max_concurrent": 8},
		"subscribe": {"url": "https://auth.example.com/subscribe", "timeout": "500ms"},
		"doc_load": {}, "doc_store": {"debounce": "5s"},
		"rpc": {"routes": [{"prefix": "chat.", "url": "http://127.0.0.1:9001/rpc"}, {"prefix": ""}]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h       Hook
		on      bool
		url     string
		timeout time.Duration
	}{
		{HookConnect, true, "http://127.0.0.1:9000/tandem/connect", 1500 * time.Millisecond},
		{HookRefresh, false, "", 0},
		{HookPublish, true, "http://127.0.0.1:9000/tandem/publish", 1500 * time.Millisecond},
		{HookSubscribe, true, "https://auth.example.com/subscribe", 500 * time.Millisecond},
		{HookDocLoad, true, "http://127.0.0.1:9000/tandem/doc_load", 1500 * time.Millisecond},
		{HookDocStore, true, "http://127.0.0.1:9000/tandem/doc_store", 1500 * time.Millisecond},
		{HookDocOpen, false, "", 0},
		{HookRPC, true, "http://127.0.0.1:9000/tandem/rpc", 1500 * time.Millisecond},
	} {
		if c.Enabled(tc.h) != tc.on {
			t.Errorf("%s: on %v, want %v", tc.h, c.Enabled(tc.h), tc.on)
		}
		if tc.on && (c.hookURL(tc.h) != tc.url || c.timeout(tc.h) != tc.timeout) {
			t.Errorf("%s: url %q timeout %v, want %q %v", tc.h, c.hookURL(tc.h), c.timeout(tc.h), tc.url, tc.timeout)
		}
	}
	if c.Publish.OnFailure != PolicyAllow || c.Connect.OnFailure != PolicyRefuse {
		t.Errorf("policies: publish %v, connect %v", c.Publish.OnFailure, c.Connect.OnFailure)
	}
	// It round-trips through JSON.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := ParseConfig(b); err != nil || c2.Publish.OnFailure != PolicyAllow || c2.DocStore.Debounce != Duration(5*time.Second) {
		t.Fatalf("round trip of %s: %v", b, err)
	}
}

// TestConfigValidate: each bad config is refused with an error that names
// what is wrong.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"short secret", `{"url":"http://h/","secret":"short","connect":{}}`, "hooks.secret: must be at least 16 bytes"},
		{"no secret", `{"url":"http://h/","connect":{}}`, "hooks.secret"},
		{"no url", `{"secret":"0123456789abcdef","publish":{}}`, "hooks.publish: no url"},
		{"bad scheme", `{"url":"ftp://h/","secret":"0123456789abcdef","publish":{}}`, "hooks.url \"ftp://h/\": scheme must be http or https"},
		{"no host", `{"url":"http:///x","secret":"0123456789abcdef","publish":{}}`, "no host"},
		{"fragment", `{"url":"http://h/#x","secret":"0123456789abcdef","publish":{}}`, "fragment"},
		{"hook url bad", `{"url":"http://h/","secret":"0123456789abcdef","publish":{"url":"h/publish"}}`, "hooks.publish.url"},
		{"password redacted", `{"url":"ftp://u:hunter2@h/","secret":"0123456789abcdef","publish":{}}`, "xxxxx"},
		{"unknown policy", `{"url":"http://h/","secret":"0123456789abcdef","publish":{"on_failure":"maybe"}}`, `on_failure "maybe": want "refuse" or "allow"`},
		{"rpc allow", `{"url":"http://h/","secret":"0123456789abcdef","rpc":{"on_failure":"allow"}}`, "hooks.rpc.on_failure: must be \"refuse\""},
		{"doc_store policy", `{"url":"http://h/","secret":"0123456789abcdef","doc_store":{"on_failure":"allow"}}`, "unknown field \"on_failure\""},
		{"negative timeout", `{"url":"http://h/","secret":"0123456789abcdef","timeout":"-1s","connect":{}}`, "hooks.timeout: must be positive"},
		{"bad duration", `{"url":"http://h/","secret":"0123456789abcdef","timeout":"2 seconds","connect":{}}`, "time: unknown unit"},
		{"duration as number", `{"url":"http://h/","secret":"0123456789abcdef","timeout":2,"connect":{}}`, "duration must be a string"},
		{"negative bound", `{"url":"http://h/","secret":"0123456789abcdef","max_concurrent":-1,"connect":{}}`, "hooks.max_concurrent"},
		{"negative hook bound", `{"url":"http://h/","secret":"0123456789abcdef","connect":{"max_concurrent":-3}}`, "hooks.connect.max_concurrent"},
		{"doc_store negative", `{"url":"http://h/","secret":"0123456789abcdef","doc_store":{"debounce":"-1s"}}`, "hooks.doc_store.debounce"},
		{"rpc route bad prefix", `{"url":"http://h/","secret":"0123456789abcdef","rpc":{"routes":[{"prefix":"chat history"}]}}`, "hooks.rpc.routes[0].prefix"},
		{"rpc route twice", `{"url":"http://h/","secret":"0123456789abcdef","rpc":{"routes":[{"prefix":"a."},{"prefix":"a."}]}}`, "listed twice"},
		{"rpc no url", `{"secret":"0123456789abcdef","rpc":{"routes":[{"prefix":"a."}]}}`, "hooks.rpc.routes[0]: no url"},
		{"rpc nothing", `{"secret":"0123456789abcdef","rpc":{}}`, "hooks.rpc: no url"},
		{"cookie name", `{"url":"http://h/","secret":"0123456789abcdef","connect":{},"forward":{"cookies":["a b"]}}`, "hooks.forward.cookies"},
		{"cookie header", `{"url":"http://h/","secret":"0123456789abcdef","connect":{},"forward":{"headers":["cookie"]}}`, "list cookies by name"},
		{"forward without connect", `{"url":"http://h/","secret":"0123456789abcdef","publish":{},"forward":{"headers":["X-A"]}}`, "only the connect hook"},
		{"unknown field", `{"url":"http://h/","secret":"0123456789abcdef","conect":{}}`, "unknown field \"conect\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(tc.json, "hunter2") && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the URL's password: %v", err)
			}
		})
	}
	// No hook on: valid, whatever the rest (a config may be kept for later).
	if _, err := ParseConfig([]byte(`{"url":"http://h/"}`)); err != nil {
		t.Fatalf("no hook on: %v", err)
	}
}

func TestNamespaceHooks(t *testing.T) {
	var ns struct {
		Hooks NamespaceHooks `json:"hooks,omitzero"`
	}
	if err := json.Unmarshal([]byte(`{"hooks":["subscribe","broadcast"]}`), &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Hooks != (NamespaceHooks{Subscribe: true, Broadcast: true}) {
		t.Fatalf("got %+v", ns.Hooks)
	}
	if b, _ := json.Marshal(ns); string(b) != `{"hooks":["subscribe","broadcast"]}` {
		t.Fatalf("marshal: %s", b)
	}
	if b, _ := json.Marshal(struct {
		Hooks NamespaceHooks `json:"hooks,omitzero"`
	}{}); string(b) != `{}` {
		t.Fatalf("zero: %s", b)
	}
	for in, want := range map[string]string{
		`["subscribe","publish","connect"]`: `namespace hook "connect": want one of subscribe, publish, broadcast`,
		`"publish"`:                         `must be a list`,
	} {
		if err := json.Unmarshal([]byte(`{"hooks":`+in+`}`), &ns); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
	cfg := Config{URL: "http://h/", Secret: testSecret, Subscribe: &HookConfig{}}
	if err := cfg.CheckNamespace("chat", NamespaceHooks{Subscribe: true}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckNamespace("chat", NamespaceHooks{Broadcast: true}); err == nil || !strings.Contains(err.Error(), `namespace "chat" asks for the publish hook`) {
		t.Fatalf("got %v", err)
	}
	var none *Config
	if err := none.CheckNamespace("chat", NamespaceHooks{Subscribe: true}); err == nil {
		t.Fatal("no hooks config: a namespace asking for subscribe passed")
	}
}

// TestDocsExamples: the config examples of docs/hooks.md parse, validate,
// and their namespaces' hooks lists check against them.
func TestDocsExamples(t *testing.T) {
	raw, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(raw, -1)
	n := 0
	for _, b := range blocks {
		var file struct {
			Hooks      json.RawMessage `json:"hooks"`
			Namespaces map[string]struct {
				Hooks NamespaceHooks `json:"hooks"`
			} `json:"namespaces"`
		}
		if json.Unmarshal(b[1], &file) != nil || file.Hooks == nil {
			continue // a request or an answer, not a config
		}
		n++
		hooksJSON := strings.ReplaceAll(string(file.Hooks), "<TANDEM_HOOKS_SECRET>", testSecret)
		cfg, err := ParseConfig([]byte(hooksJSON))
		if err != nil {
			t.Fatalf("docs/hooks.md config %d: %v\n%s", n, err, b[1])
		}
		for name, ns := range file.Namespaces {
			if err := cfg.CheckNamespace(name, ns.Hooks); err != nil {
				t.Fatalf("docs/hooks.md config %d: %v", n, err)
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d config examples in docs/hooks.md, want at least 2", n)
	}
}
