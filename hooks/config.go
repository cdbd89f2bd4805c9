package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/webhook"
)

// Hook names one of the server's hooks.
type Hook uint8

// The hooks. Their String is the name the config, the X-Tandem-Hook header,
// the default URL path and the metrics' hook label use.
const (
	// HookConnect decides who a new connection is (and whether it may
	// connect at all).
	HookConnect Hook = iota
	// HookRefresh renews a connection's grants and expiry.
	HookRefresh
	// HookSubscribe allows or refuses a subscription, per namespace.
	HookSubscribe
	// HookPublish allows, refuses or rewrites a message before it is
	// stored, per namespace.
	HookPublish
	// HookDocLoad gives the initial content of a document Tandem does not
	// have.
	HookDocLoad
	// HookDocStore receives a document's content after its changes settle.
	HookDocStore
	// HookDocOpen allows or refuses opening a document.
	HookDocOpen
	// HookRPC answers a client's rpc frame.
	HookRPC

	numHooks
)

var hookNames = [numHooks]string{"connect", "refresh", "subscribe", "publish", "doc_load", "doc_store", "doc_open", "rpc"}

func (h Hook) String() string {
	if h < numHooks {
		return hookNames[h]
	}
	return fmt.Sprintf("hook(%d)", h)
}

// ParseHook parses a hook's name ("connect", "doc_load", ...).
func ParseHook(s string) (Hook, error) {
	if i := slices.Index(hookNames[:], s); i >= 0 {
		return Hook(i), nil
	}
	return 0, fmt.Errorf("unknown hook %q (known: %s)", s, strings.Join(hookNames[:], ", "))
}

// Policy is what a call does when the backend fails: it does not answer
// within the timeout, cannot be reached, answers something that is not a
// valid answer, or no slot under the concurrency bound frees up in time.
// A refusal is an answer, never a failure: the policy does not apply to it.
type Policy uint8

const (
	// PolicyRefuse (the default, and the safe one) refuses the request: the
	// client gets an `unavailable` error.
	PolicyRefuse Policy = iota
	// PolicyAllow lets the request go on as if the hook were not
	// configured: Tandem's own rules (grants, tokens) decide alone. Each
	// method's comment says what that means for its hook.
	PolicyAllow
)

func (p Policy) String() string {
	if p == PolicyAllow {
		return "allow"
	}
	return "refuse"
}

// MarshalJSON writes "refuse" or "allow".
func (p Policy) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads "refuse" or "allow" ("" is refuse).
func (p *Policy) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`on_failure must be "refuse" or "allow": %w`, err)
	}
	switch s {
	case "refuse", "":
		*p = PolicyRefuse
	case "allow":
		*p = PolicyAllow
	default:
		return fmt.Errorf(`on_failure %q: want "refuse" or "allow"`, s)
	}
	return nil
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("2s", "1m30s").
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`duration must be a string like "2s": %w`, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is the "hooks" object of the server's --config file. A hook is on
// when its key is present (`"connect": {}` turns connect on with the
// defaults); subscribe and publish are then also asked for by each
// namespace that wants them (see [NamespaceHooks]). Zero fields take the
// defaults their comments give. Validate checks it.
type Config struct {
	// URL is the base URL of the application's backend: a hook posts to
	// URL + "/" + its name (".../connect", ".../doc_load") unless its own
	// url says otherwise. http or https.
	URL string `json:"url,omitempty"`
	// Secret keys the HMAC-SHA256 signature of every request, exactly as
	// for webhooks (docs/webhooks.md); at least 16 bytes. Never logged.
	Secret string `json:"secret"`
	// Timeout bounds one call: waiting for a slot under the concurrency
	// bound, connecting, sending and reading the answer. By default 2s.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxConcurrent bounds the requests in flight to the backend, across
	// every hook. Calls past it wait for a slot, within their timeout. By
	// default 64.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// MaxAnswerBytes bounds an answer's body; a longer one is a bad answer.
	// By default 8 MiB (doc_load answers carry whole documents).
	MaxAnswerBytes int `json:"max_answer_bytes,omitempty"`
	// Forward lists what of the WebSocket handshake the connect hook
	// receives.
	Forward Forward `json:"forward,omitzero"`

	Connect   *HookConfig     `json:"connect,omitempty"`
	Refresh   *HookConfig     `json:"refresh,omitempty"`
	Subscribe *HookConfig     `json:"subscribe,omitempty"`
	Publish   *HookConfig     `json:"publish,omitempty"`
	DocLoad   *HookConfig     `json:"doc_load,omitempty"`
	DocOpen   *HookConfig     `json:"doc_open,omitempty"`
	DocStore  *DocStoreConfig `json:"doc_store,omitempty"`
	RPC       *RPCConfig      `json:"rpc,omitempty"`
}

// Defaults of Config.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultMaxConcurrent  = 64
	DefaultMaxAnswerBytes = 8 << 20
)

// HookConfig configures one hook. Every field is optional.
type HookConfig struct {
	// URL replaces the hook's default URL (the base URL + "/" + name).
	URL string `json:"url,omitempty"`
	// Timeout replaces Config.Timeout for this hook.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxConcurrent bounds this hook's own requests in flight, within the
	// global bound, so that one slow hook (an rpc method, say) cannot take
	// every slot from connects. By default only the global bound applies.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// OnFailure is "refuse" (default) or "allow"; see Policy.
	OnFailure Policy `json:"on_failure,omitempty"`
}

// DocStoreConfig configures the doc_store hook: a debounced, retried sender
// of documents' content. Every field is optional.
type DocStoreConfig struct {
	// URL replaces the hook's default URL.
	URL string `json:"url,omitempty"`
	// Timeout bounds one attempt; by default Config.Timeout.
	Timeout Duration `json:"timeout,omitempty"`
	// Debounce is how long a document must go without a change before its
	// content is sent. By default 2s.
	Debounce Duration `json:"debounce,omitempty"`
	// MaxWait bounds how long a document edited without pause waits: its
	// content goes out at the latest MaxWait after the first unsent
	// change. By default 10s.
	MaxWait Duration `json:"max_wait,omitempty"`
	// RetryMin and RetryMax bound the backoff between failed attempts: the
	// wait after attempt n is RetryMin·2^(n-1), capped at RetryMax, of
	// which a random half to all is waited. By default 1s and 1m.
	RetryMin Duration `json:"retry_min,omitempty"`
	RetryMax Duration `json:"retry_max,omitempty"`
	// MaxAttempts bounds the attempts at one version; 0 (the default)
	// retries until the version is stored, superseded by a newer one, or
	// the server shuts down.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// QueueLen bounds the documents waiting to be sent; past it a change of
	// a document not already waiting is dropped (and counted). By default
	// 10000.
	QueueLen int `json:"queue_len,omitempty"`
	// Workers is how many stores are in flight at once (each also takes a
	// slot of the global bound). By default 4.
	Workers int `json:"workers,omitempty"`
	// DrainTimeout bounds how long shutdown waits for pending stores. By
	// default 10s.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`
}

// RPCConfig configures the rpc hook.
type RPCConfig struct {
	// URL, Timeout and MaxConcurrent are as in HookConfig. OnFailure must
	// be "refuse": without the backend there is no answer to give.
	HookConfig
	// Routes send methods to URLs by name prefix: a method goes to the
	// route with the longest prefix it starts with. With no routes every
	// method goes to the hook's URL; with routes, a method no route
	// matches is refused with not_found.
	Routes []RPCRoute `json:"routes,omitempty"`
}

// RPCRoute sends the methods starting with Prefix to URL.
type RPCRoute struct {
	// Prefix of method names ("chat." routes "chat.history"); "" matches
	// every method.
	Prefix string `json:"prefix"`
	// URL receives the calls; empty: the rpc hook's URL.
	URL string `json:"url,omitempty"`
}

// Forward lists the parts of the WebSocket handshake request that the
// connect hook receives, so that a backend can recognise its own session
// cookie. Nothing is forwarded unless listed.
type Forward struct {
	// Cookies are cookie names ("session").
	Cookies []string `json:"cookies,omitempty"`
	// Headers are header names ("X-Forwarded-For", "User-Agent").
	Headers []string `json:"headers,omitempty"`
}

// NamespaceHooks is a namespace's "hooks" list in the config file:
// `"hooks": ["subscribe", "publish"]`. Its zero value asks for nothing.
// The server config's namespace embeds it as
//
//	Hooks hooks.NamespaceHooks `json:"hooks,omitzero"`
//
// and Config.CheckNamespace checks that the hooks it asks for are on.
type NamespaceHooks struct {
	// Subscribe: every subscription (and, over HTTP, every read of a
	// channel's history or presence by a user) asks the subscribe hook.
	Subscribe bool
	// Publish: every publish by a user, over WebSocket or over HTTP with a
	// JWT, asks the publish hook before it is stored.
	Publish bool
	// Broadcast: POST /api/broadcast by an API key asks the publish hook
	// too (by default the backend's own broadcasts are trusted).
	Broadcast bool
}

// namespaceHookNames are the entries a namespace's list may hold.
var namespaceHookNames = []string{"subscribe", "publish", "broadcast"}

// UnmarshalJSON reads a list of "subscribe", "publish" and "broadcast".
func (n *NamespaceHooks) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf(`namespace hooks must be a list like ["subscribe", "publish"]: %w`, err)
	}
	var out NamespaceHooks
	for _, s := range list {
		switch s {
		case "subscribe":
			out.Subscribe = true
		case "publish":
			out.Publish = true
		case "broadcast":
			out.Broadcast = true
		default:
			return fmt.Errorf("namespace hook %q: want one of %s", s, strings.Join(namespaceHookNames, ", "))
		}
	}
	*n = out
	return nil
}

// MarshalJSON writes the list form.
func (n NamespaceHooks) MarshalJSON() ([]byte, error) {
	list := []string{}
	for i, on := range []bool{n.Subscribe, n.Publish, n.Broadcast} {
		if on {
			list = append(list, namespaceHookNames[i])
		}
	}
	return json.Marshal(list)
}

// ParseConfig decodes a Config from JSON, refusing unknown fields, and
// validates it.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("hooks: %w", err)
	}
	return c, c.Validate()
}

// Enabled reports whether the config turns hook h on.
func (c *Config) Enabled(h Hook) bool {
	if c == nil {
		return false
	}
	switch h {
	case HookConnect:
		return c.Connect != nil
	case HookRefresh:
		return c.Refresh != nil
	case HookSubscribe:
		return c.Subscribe != nil
	case HookPublish:
		return c.Publish != nil
	case HookDocLoad:
		return c.DocLoad != nil
	case HookDocOpen:
		return c.DocOpen != nil
	case HookDocStore:
		return c.DocStore != nil
	case HookRPC:
		return c.RPC != nil
	}
	return false
}

// hookConfig returns the common settings of hook h (nil when off).
func (c *Config) hookConfig(h Hook) *HookConfig {
	switch h {
	case HookConnect:
		return c.Connect
	case HookRefresh:
		return c.Refresh
	case HookSubscribe:
		return c.Subscribe
	case HookPublish:
		return c.Publish
	case HookDocLoad:
		return c.DocLoad
	case HookDocOpen:
		return c.DocOpen
	case HookDocStore:
		if c.DocStore == nil {
			return nil
		}
		return &HookConfig{URL: c.DocStore.URL, Timeout: c.DocStore.Timeout}
	case HookRPC:
		if c.RPC == nil {
			return nil
		}
		return &c.RPC.HookConfig
	}
	return nil
}

// hookURL is the URL hook h posts to: its own, or the base URL's.
func (c *Config) hookURL(h Hook) string {
	if hc := c.hookConfig(h); hc != nil && hc.URL != "" {
		return hc.URL
	}
	if c.URL == "" {
		return ""
	}
	return strings.TrimSuffix(c.URL, "/") + "/" + h.String()
}

// timeout is hook h's timeout with the defaults applied.
func (c *Config) timeout(h Hook) time.Duration {
	if hc := c.hookConfig(h); hc != nil && hc.Timeout > 0 {
		return time.Duration(hc.Timeout)
	}
	if c.Timeout > 0 {
		return time.Duration(c.Timeout)
	}
	return DefaultTimeout
}

// Validate checks the config and says what is wrong, naming the field:
// URLs (http or https with a host, no fragment), the secret (at least 16
// bytes), positive durations and bounds, the failure policies (rpc only
// refuses; doc_store has none: it retries), the RPC routes and the
// forwarded names. A config that turns on no hook is valid whatever else
// it says, except that what it says must still parse.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	on := false
	for h := range numHooks {
		on = on || c.Enabled(h)
	}
	if !on {
		return nil
	}
	if c.URL != "" {
		if err := checkURL("hooks.url", c.URL); err != nil {
			return err
		}
	}
	if len(c.Secret) < webhook.MinSecretLen {
		return fmt.Errorf("hooks.secret: must be at least %d bytes (the requests are signed with it, as webhooks are)", webhook.MinSecretLen)
	}
	if c.Timeout < 0 {
		return errors.New("hooks.timeout: must be positive")
	}
	if c.MaxConcurrent < 0 {
		return errors.New("hooks.max_concurrent: must be positive")
	}
	if c.MaxAnswerBytes < 0 {
		return errors.New("hooks.max_answer_bytes: must be positive")
	}
	for h := range numHooks {
		if !c.Enabled(h) {
			continue
		}
		name := "hooks." + h.String()
		hc := c.hookConfig(h)
		if hc.URL != "" {
			if err := checkURL(name+".url", hc.URL); err != nil {
				return err
			}
		} else if c.URL == "" && h != HookRPC {
			return fmt.Errorf("%s: no url: set hooks.url (the base URL) or %s.url", name, name)
		}
		if hc.Timeout < 0 {
			return fmt.Errorf("%s.timeout: must be positive", name)
		}
		if hc.MaxConcurrent < 0 {
			return fmt.Errorf("%s.max_concurrent: must be positive", name)
		}
	}
	if c.RPC != nil {
		if err := c.RPC.validate(c.URL != ""); err != nil {
			return err
		}
	}
	if c.DocStore != nil {
		if err := c.DocStore.validate(); err != nil {
			return err
		}
	}
	for _, name := range c.Forward.Cookies {
		if !validToken(name) {
			return fmt.Errorf("hooks.forward.cookies: %q is not a cookie name", name)
		}
	}
	for _, name := range c.Forward.Headers {
		if !validToken(name) {
			return fmt.Errorf("hooks.forward.headers: %q is not a header name", name)
		}
		if http.CanonicalHeaderKey(name) == "Cookie" {
			return errors.New(`hooks.forward.headers: list cookies by name in hooks.forward.cookies, not the "Cookie" header`)
		}
	}
	if len(c.Forward.Cookies)+len(c.Forward.Headers) > 0 && c.Connect == nil {
		return errors.New("hooks.forward: only the connect hook receives the handshake, and it is not on")
	}
	return nil
}

func (r *RPCConfig) validate(haveBase bool) error {
	if r.OnFailure == PolicyAllow {
		return errors.New(`hooks.rpc.on_failure: must be "refuse": without the backend there is no answer to give`)
	}
	seen := make(map[string]bool)
	for i, rt := range r.Routes {
		name := fmt.Sprintf("hooks.rpc.routes[%d]", i)
		if rt.Prefix != "" && !validMethodChars(rt.Prefix) {
			return fmt.Errorf("%s.prefix %q: letters, digits and _-.:/ only", name, rt.Prefix)
		}
		if seen[rt.Prefix] {
			return fmt.Errorf("%s.prefix %q: listed twice", name, rt.Prefix)
		}
		seen[rt.Prefix] = true
		if rt.URL != "" {
			if err := checkURL(name+".url", rt.URL); err != nil {
				return err
			}
		} else if r.URL == "" && !haveBase {
			return fmt.Errorf("%s: no url: set it, hooks.rpc.url or hooks.url", name)
		}
	}
	if len(r.Routes) == 0 && r.URL == "" && !haveBase {
		return errors.New("hooks.rpc: no url: set hooks.url (the base URL), hooks.rpc.url or routes with urls")
	}
	return nil
}

func (d *DocStoreConfig) validate() error {
	for _, f := range []struct {
		name string
		v    Duration
	}{{"debounce", d.Debounce}, {"max_wait", d.MaxWait}, {"retry_min", d.RetryMin}, {"retry_max", d.RetryMax}, {"drain_timeout", d.DrainTimeout}} {
		if f.v < 0 {
			return fmt.Errorf("hooks.doc_store.%s: must be positive", f.name)
		}
	}
	if d.MaxAttempts < 0 || d.QueueLen < 0 || d.Workers < 0 {
		return errors.New("hooks.doc_store: max_attempts, queue_len and workers must be positive")
	}
	return nil
}

// CheckNamespace checks a namespace's hooks list against the config: each
// hook it asks for must be on. name is the namespace's name, for the error.
func (c *Config) CheckNamespace(name string, n NamespaceHooks) error {
	if n.Subscribe && !c.Enabled(HookSubscribe) {
		return fmt.Errorf(`namespace %q asks for the subscribe hook, but hooks.subscribe is not on (add "subscribe": {} to hooks)`, name)
	}
	if (n.Publish || n.Broadcast) && !c.Enabled(HookPublish) {
		return fmt.Errorf(`namespace %q asks for the publish hook, but hooks.publish is not on (add "publish": {} to hooks)`, name)
	}
	return nil
}

// checkURL checks a hook URL: absolute http(s) with a host, no fragment.
func checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s %q: scheme must be http or https", field, u.Redacted())
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%s %q: no host", field, u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("%s %q: a fragment is never sent; remove it", field, u.Redacted())
	}
	return nil
}

// validToken reports whether s is a non-empty HTTP token (RFC 9110), as
// cookie and header names must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}
