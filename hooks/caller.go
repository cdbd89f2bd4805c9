package hooks

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/webhook"
)

// Headers of a hook request besides the webhooks' X-Tandem-Signature,
// X-Tandem-Timestamp, X-Tandem-Delivery and X-Tandem-Attempt, which mean
// what they mean for webhooks (docs/webhooks.md).
const (
	// HeaderHook names the hook: "connect", "publish", ... (not signed:
	// the URL and the body say the same).
	HeaderHook = "X-Tandem-Hook"
	// UserAgent is the requests' User-Agent.
	UserAgent = "tandem-hook/1"
)

// Options are what a Caller gets from the program rather than from the
// config file.
type Options struct {
	// Registerer receives the hooks' metrics (tandem_hook_*); nil
	// registers them nowhere.
	Registerer prometheus.Registerer
	Logger     zerolog.Logger
	// Transport sends the requests; nil uses a dedicated http.Transport
	// whose idle connections Close releases.
	Transport http.RoundTripper
	// Now returns the current time; by default time.Now.
	Now func() time.Time
}

// Caller calls the application's backend: one method per hook. It is safe
// for concurrent use. A nil *Caller is valid: it is what New returns for a
// config that turns no hook on, and every method then answers as for a
// hook that is off, at no cost.
type Caller struct {
	log       zerolog.Logger
	now       func() time.Time
	secret    []byte          // read-only
	client    *http.Client    // no redirects followed
	own       *http.Transport // ours to close, if Options.Transport was nil
	sem       chan struct{}   // the global bound: a send takes a slot, a receive frees it
	maxAnswer int
	hooks     [numHooks]*hook // nil: off; read-only after New
	routes    []rpcRoute      // longest prefix first; read-only
	cookies   []string        // forwarded to connect; read-only
	headers   []string        // canonical; read-only
	metrics   *metrics
	store     *docStore // nil: doc_store off
}

// hook is one hook that is on.
type hook struct {
	h       Hook
	url     string
	timeout time.Duration
	policy  Policy
	sem     chan struct{} // its own bound; nil: only the global one
	m       hookMetrics
	warned  atomic.Int64 // unix nanos of the last failure warning
}

// rpcRoute is a route with its URL resolved.
type rpcRoute struct {
	prefix string
	url    string
}

// New validates cfg and returns a Caller for the hooks it turns on, with
// their metrics registered on opt.Registerer. When cfg turns no hook on,
// New returns nil, nil: a nil *Caller costs nothing and answers as if no
// hook were configured. Close releases what New started (doc_store's
// goroutines, idle connections).
func New(cfg Config, opt Options) (*Caller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	on := false
	for h := range numHooks {
		on = on || cfg.Enabled(h)
	}
	if !on {
		return nil, nil
	}
	maxConc := cfg.MaxConcurrent
	if maxConc == 0 {
		maxConc = DefaultMaxConcurrent
	}
	c := &Caller{
		log:       opt.Logger.With().Str("component", "hooks").Logger(),
		now:       opt.Now,
		secret:    []byte(cfg.Secret),
		sem:       make(chan struct{}, maxConc),
		maxAnswer: cfg.MaxAnswerBytes,
		cookies:   slices.Clone(cfg.Forward.Cookies),
		metrics:   newMetrics(),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxAnswer == 0 {
		c.maxAnswer = DefaultMaxAnswerBytes
	}
	for _, name := range cfg.Forward.Headers {
		c.headers = append(c.headers, http.CanonicalHeaderKey(name))
	}
	for h := range numHooks {
		if !cfg.Enabled(h) {
			continue
		}
		hc := cfg.hookConfig(h)
		hk := &hook{h: h, url: cfg.hookURL(h), timeout: cfg.timeout(h), policy: hc.OnFailure, m: c.metrics.forHook(h)}
		if hc.MaxConcurrent > 0 && hc.MaxConcurrent < maxConc {
			hk.sem = make(chan struct{}, hc.MaxConcurrent)
		}
		c.hooks[h] = hk
	}
	if cfg.RPC != nil {
		for _, rt := range cfg.RPC.Routes {
			u := rt.URL
			if u == "" {
				u = c.hooks[HookRPC].url
			}
			c.routes = append(c.routes, rpcRoute{prefix: rt.Prefix, url: u})
		}
		slices.SortStableFunc(c.routes, func(a, b rpcRoute) int { return len(b.prefix) - len(a.prefix) })
	}
	if err := c.metrics.register(opt.Registerer); err != nil {
		return nil, fmt.Errorf("hooks: metrics: %w", err)
	}
	rt := opt.Transport
	if rt == nil {
		c.own = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext, // each call's timeout bounds it first
			MaxIdleConnsPerHost: maxConc,                                                                           // every slot may keep its connection
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		rt = c.own
	}
	c.client = &http.Client{
		Transport: rt,
		// A redirect is an answer, not an invitation: following it would let
		// a backend point the server at any address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cfg.DocStore != nil {
		c.store = newDocStore(c, c.hooks[HookDocStore], *cfg.DocStore)
	}
	return c, nil
}

// Enabled reports whether hook h is on. It is nil-safe and free: check it
// before building a request on a hot path.
func (c *Caller) Enabled(h Hook) bool { return c != nil && h < numHooks && c.hooks[h] != nil }

// Close drains doc_store (see DocStore's drain: at most its drain_timeout,
// and never past ctx) and releases idle connections. Calls still in flight
// finish on their own contexts. Call it after the edge stopped calling;
// it returns ctx.Err() (or the drain's deadline error) if stores were
// abandoned.
func (c *Caller) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	var err error
	if c.store != nil {
		err = c.store.close(ctx)
	}
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
	return err
}

// acquire takes a slot of hk's own bound and of the global one, waiting
// within ctx. It fails with FailOverloaded, or FailCanceled when parent
// (the caller's own context) ended. Slots are taken hook first, global
// second, always in that order, so a call waiting on its hook's bound
// holds no global slot.
func (c *Caller) acquire(ctx, parent context.Context, hk *hook) *Failure {
	fail := func() *Failure {
		if parent.Err() != nil {
			return &Failure{Hook: hk.h, Kind: FailCanceled, Err: parent.Err()}
		}
		return &Failure{Hook: hk.h, Kind: FailOverloaded, Err: fmt.Errorf("no free slot within %v", hk.timeout)}
	}
	if hk.sem != nil {
		select {
		case hk.sem <- struct{}{}:
		case <-ctx.Done():
			return fail()
		}
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		if hk.sem != nil {
			<-hk.sem
		}
		return fail()
	}
}

// release frees the slots acquire took.
func (c *Caller) release(hk *hook) {
	<-c.sem
	if hk.sem != nil {
		<-hk.sem
	}
}

// answerError is the refusal part every answer may carry.
type answerError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// UnmarshalJSON also takes a bare string as the message: a backend that
// answers {"error":"members only"} means no, and must never be read as a
// bad answer, which policy allow would let through.
func (e *answerError) UnmarshalJSON(b []byte) error {
	var msg string
	if json.Unmarshal(b, &msg) == nil {
		*e = answerError{Message: msg}
		return nil
	}
	type plain answerError
	return json.Unmarshal(b, (*plain)(e))
}

// answer is a hook's answer body: answerBase and the hook's own fields.
type answer interface{ refused() *answerError }

// answerBase is embedded in every answer.
type answerBase struct {
	Error *answerError `json:"error,omitempty"`
}

func (a *answerBase) refused() *answerError { return a.Error }

// maxMessage bounds a refusal's message, in bytes.
const maxMessage = 1024

// post sends one signed request for hook hk to u with body and decodes a
// 2xx answer into ans (nil: the body is ignored), within hk's timeout and
// the bounds. delivery is the X-Tandem-Delivery id and
// attempt its X-Tandem-Attempt. It returns nil, a *Refusal, or a *Failure
// (the policy not yet applied); status is the HTTP status (0: none).
func (c *Caller) post(ctx context.Context, hk *hook, u, delivery string, attempt int, body []byte, ans answer) (status int, err error) {
	start := time.Now()
	defer func() {
		hk.m.duration.Observe(time.Since(start).Seconds())
		switch e := err.(type) {
		case *Refusal:
			hk.m.refusals.Inc()
		case *Failure:
			hk.m.failures[e.Kind].Inc()
		}
	}()
	hk.m.calls.Inc()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, hk.timeout)
	defer cancel()
	if f := c.acquire(ctx, parent, hk); f != nil {
		return 0, f
	}
	defer c.release(hk)
	hk.m.inFlight.Inc()
	defer hk.m.inFlight.Dec()

	fail := func(kind FailureKind, err error) *Failure {
		switch {
		case parent.Err() != nil:
			return &Failure{Hook: hk.h, Kind: FailCanceled, Err: parent.Err()}
		case ctx.Err() != nil:
			return &Failure{Hook: hk.h, Kind: FailTimeout, Err: fmt.Errorf("no answer within %v", hk.timeout)}
		}
		return &Failure{Hook: hk.h, Kind: kind, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, fail(FailDown, err)
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderHook, hk.h.String())
	req.Header.Set(webhook.HeaderDelivery, delivery)
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(c.secret, ts, body))
	req.Header.Set(webhook.HeaderAttempt, strconv.Itoa(attempt))
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the log line already
		}
		return 0, fail(FailDown, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxAnswer)+1))
	if err != nil {
		return resp.StatusCode, fail(FailDown, fmt.Errorf("reading the answer: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fail(FailBadAnswer, fmt.Errorf("status %d, want 2xx", resp.StatusCode))
	}
	if len(raw) > c.maxAnswer {
		return resp.StatusCode, fail(FailBadAnswer, fmt.Errorf("answer over %d bytes", c.maxAnswer))
	}
	if ans == nil {
		return resp.StatusCode, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}") // an empty 2xx allows, for the hooks where that means something
	}
	if err := json.Unmarshal(raw, ans); err != nil {
		return resp.StatusCode, fail(FailBadAnswer, fmt.Errorf("answer is not the hook's JSON: %w", err))
	}
	if e := ans.refused(); e != nil {
		return resp.StatusCode, refusal(hk.h, e)
	}
	return resp.StatusCode, nil
}

// refusal makes a backend's error answer a Refusal: a known code (else the
// hook's default) and a message bounded in length.
func refusal(h Hook, e *answerError) *Refusal {
	r := &Refusal{Hook: h, Code: e.Code, Message: strings.TrimSpace(e.Message)}
	if !slices.Contains(wireCodes, r.Code) {
		r.Code = defaultCode(h)
	}
	if len(r.Message) > maxMessage {
		r.Message = truncateUTF8(r.Message, maxMessage)
	}
	if r.Message == "" {
		r.Message = "refused by the application"
	}
	return r
}

// truncateUTF8 cuts s to at most n bytes at a rune boundary.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// call posts req to hook hk at u and applies the policy: it returns nil, a
// *Refusal, or a *Failure (with Allowed set when the policy allowed it).
// The answer goes into ans.
func (c *Caller) call(ctx context.Context, hk *hook, u string, req any, ans answer) error {
	body, err := json.Marshal(req)
	if err != nil {
		return &Failure{Hook: hk.h, Kind: FailBadAnswer, Err: fmt.Errorf("encoding the request: %w", err)} // a bug: raw JSON that is not JSON
	}
	_, err = c.post(ctx, hk, u, newDeliveryID(), 1, body, ans)
	return c.applyPolicy(hk, err)
}

// applyPolicy marks a failure allowed under policy allow and logs it.
func (c *Caller) applyPolicy(hk *hook, err error) error {
	var f *Failure
	if !errors.As(err, &f) {
		return err
	}
	if f.Kind != FailCanceled && hk.policy == PolicyAllow {
		f.Allowed = true
	}
	if f.Kind != FailCanceled && warnDue(&hk.warned, c.now(), 10*time.Second) {
		c.log.Warn().Str("hook", hk.h.String()).Str("kind", f.Kind.String()).Err(f.Err).
			Str("policy", hk.policy.String()).Msg("hook call failed (further failures of this hook within 10s not logged)")
	}
	return f
}

// warnDue reports whether a rate-limited warning may be logged now, and
// if so records it.
func warnDue(last *atomic.Int64, now time.Time, every time.Duration) bool {
	prev := last.Load()
	if now.UnixNano()-prev < int64(every) {
		return false
	}
	return last.CompareAndSwap(prev, now.UnixNano())
}

// newDeliveryID returns a random request id for X-Tandem-Delivery.
func newDeliveryID() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return "hk_" + hex.EncodeToString(b[:])
}
