package notify

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/webhook"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/metrics"
	"github.com/tandemhq/tandem/session"
)

// Events lists every event type an endpoint may ask for.
var Events = []string{
	session.EventDocChanged, session.EventDocJoined, session.EventDocLeft,
	session.EventCommentAdded, session.EventMention,
	session.EventChannelJoined, session.EventChannelLeft, session.EventClientDisconnected,
}

// Outcomes of a delivery, as the delivery log and the
// tandem_webhook_deliveries_total metric name them. Retried counts attempts
// that failed and were tried again; the others count deliveries.
const (
	OutcomeOK      = "ok"      // the receiver answered 2xx
	OutcomeFailed  = "failed"  // every attempt failed, or the receiver refused it (4xx, 3xx)
	OutcomeDropped = "dropped" // the queue was full, or the server shut down before it was sent
	OutcomeRetried = "retried" // an attempt failed and another follows (metric only)
)

// Endpoint is one receiver of webhooks.
type Endpoint struct {
	// URL is where deliveries are POSTed: http or https.
	URL string
	// Secret is the HMAC-SHA256 key the deliveries are signed with; at
	// least MinSecretLen bytes.
	Secret string
	// Events are the event types the endpoint receives; empty, or "*",
	// means every event.
	Events []string
}

// MinSecretLen is the shortest secret an endpoint may have.
const MinSecretLen = webhook.MinSecretLen

// Validate checks an endpoint: an absolute http(s) URL with a host and no
// fragment, a secret of at least MinSecretLen bytes, known event types.
func (e Endpoint) Validate() error {
	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Errorf("webhook url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook url %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("webhook url %q: no host", u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("webhook url %q: a fragment is never sent; remove it", u.Redacted())
	}
	if len(e.Secret) < MinSecretLen {
		return fmt.Errorf("webhook %q: secret must be at least %d bytes", u.Redacted(), MinSecretLen)
	}
	for _, ev := range e.Events {
		if ev != "*" && !slices.Contains(Events, ev) {
			return fmt.Errorf("webhook %q: unknown event %q (known: %v)", u.Redacted(), ev, Events)
		}
	}
	return nil
}

// Config configures a Dispatcher. Zero fields take the defaults their
// comments give.
type Config struct {
	Endpoints []Endpoint
	// QueueLen bounds each endpoint's queue of deliveries waiting for a
	// worker; past it new deliveries are dropped. By default 1024.
	QueueLen int
	// Workers is how many deliveries to one endpoint are in flight at once.
	// By default 2.
	Workers int
	// Debounce is the window over which one document's doc.changed events
	// are merged into one carrying the latest version. By default
	// 1 * time.Second; negative sends every change.
	Debounce time.Duration
	// Timeout bounds one attempt (connect, send, answer). By default
	// 5 * time.Second.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one delivery. By default 5.
	MaxAttempts int
	// RetryMin is the wait before the second attempt; each later wait
	// doubles, up to RetryMax, with jitter. By default 1 * time.Second and
	// 1 * time.Minute.
	RetryMin time.Duration
	RetryMax time.Duration
	// LogSize is how many finished deliveries the log keeps. By default 200.
	LogSize int
	// Transport sends the requests; nil uses a dedicated http.Transport,
	// whose idle connections Close releases.
	Transport http.RoundTripper
	// Metrics counts deliveries by outcome; nil makes a private set.
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.QueueLen <= 0 {
		c.QueueLen = 1024
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Debounce == 0 {
		c.Debounce = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Minute
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.LogSize <= 0 {
		c.LogSize = 200
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Delivery is one entry of the delivery log.
type Delivery struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	// URL is the endpoint's URL with any password redacted.
	URL string `json:"url"`
	// Outcome is ok, failed or dropped.
	Outcome string `json:"outcome"`
	// Status is the HTTP status of the last attempt; 0 if none answered.
	Status int `json:"status,omitempty"`
	// Attempts is how many requests were made.
	Attempts int `json:"attempts"`
	// Error says why the last attempt failed.
	Error    string    `json:"error,omitempty"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished"`
}

// endpoint is an Endpoint made ready to deliver to.
type endpoint struct {
	url      string
	redacted string          // for logs and the delivery log
	secret   []byte          // read-only
	events   map[string]bool // nil: every event
	queue    chan *job       // closed by Close, after which nothing sends on it
	warned   atomic.Int64    // unix nanos of the last failure warning
}

func (ep *endpoint) wants(event string) bool { return ep.events == nil || ep.events[event] }

// job is one delivery of one event to one endpoint.
type job struct {
	ep      *endpoint
	id      string
	event   string
	body    []byte // the same on every attempt
	created time.Time
}

// pendingChange is a document's doc.changed waiting for its window to end.
type pendingChange struct {
	latest session.Event
	from   int // the version before the window's first change
}

// windowEnd is when a document's debounce window ends. Every window lasts
// Debounce, so windows end in the order they were opened.
type windowEnd struct {
	doc string
	at  time.Time
}

// Dispatcher sends events to webhook endpoints. It implements
// session.Notifier. It is safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	log    zerolog.Logger
	eps    []*endpoint
	wanted map[string]bool // event types some endpoint wants; read-only
	client *http.Client
	own    *http.Transport // our transport, if cfg.Transport was nil

	// ctx is cancelled when Close's deadline passes: in-flight requests and
	// backoff waits end at once.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex                // guards closed, changed and windows
	closed  bool                      // Close has begun: Notify drops
	changed map[string]*pendingChange // doc id → its pending doc.changed
	windows []windowEnd               // open windows, oldest first

	wake       chan struct{} // cap 1: a window opened
	quit       chan struct{} // closed by Close: the window loop flushes and exits
	loopWG     sync.WaitGroup
	workWG     sync.WaitGroup
	deliveries deliveryLog
	dropped    atomic.Int64 // unix nanos of the last queue-full warning
}

// New validates cfg's endpoints and starts the dispatcher. With no
// endpoints it starts nothing and Notify returns at once.
func New(cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	d := &Dispatcher{
		cfg:        cfg,
		log:        cfg.Logger.With().Str("component", "webhook").Logger(),
		wanted:     make(map[string]bool),
		changed:    make(map[string]*pendingChange),
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		deliveries: deliveryLog{ring: make([]Delivery, cfg.LogSize)},
	}
	for i, e := range cfg.Endpoints {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("webhooks[%d]: %w", i, err)
		}
		u, _ := url.Parse(e.URL)
		ep := &endpoint{url: e.URL, redacted: u.Redacted(), secret: []byte(e.Secret), queue: make(chan *job, cfg.QueueLen)}
		if len(e.Events) > 0 && !slices.Contains(e.Events, "*") {
			ep.events = make(map[string]bool)
			for _, ev := range e.Events {
				ep.events[ev] = true
			}
		}
		for _, ev := range Events {
			if ep.wants(ev) {
				d.wanted[ev] = true
			}
		}
		d.eps = append(d.eps, ep)
	}
	rt := cfg.Transport
	if rt == nil {
		d.own = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   cfg.Workers,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
		}
		rt = d.own
	}
	d.client = &http.Client{
		Transport: rt,
		// A redirect is an answer, not an invitation: following it would let
		// a receiver point the server at any address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if len(d.eps) == 0 {
		return d, nil
	}
	d.loopWG.Add(1)
	go d.windowLoop()
	for _, ep := range d.eps {
		for range cfg.Workers {
			d.workWG.Add(1)
			go d.worker(ep)
		}
	}
	return d, nil
}

var _ session.Notifier = (*Dispatcher)(nil)

// Notify queues e for the endpoints that want it. It never blocks: a
// delivery whose queue is full is dropped (and logged as such). e.Data must
// not be modified after the call. After Close, events are dropped.
func (d *Dispatcher) Notify(e session.Event) {
	if !d.wanted[e.Type] {
		return
	}
	if e.Type == session.EventDocChanged && d.cfg.Debounce > 0 {
		d.debounce(e)
		return
	}
	jobs := d.jobs(e)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		for _, j := range jobs {
			d.drop(j, "server shutting down")
		}
		return
	}
	d.enqueueLocked(jobs)
}

// debounce records a doc.changed in its document's window, opening one if
// there is none.
func (d *Dispatcher) debounce(e session.Event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		for _, j := range d.jobs(e) {
			d.drop(j, "server shutting down")
		}
		return
	}
	if p := d.changed[e.Doc]; p != nil {
		p.latest = e
		d.mu.Unlock()
		return
	}
	d.changed[e.Doc] = &pendingChange{latest: e, from: e.Version - 1}
	d.windows = append(d.windows, windowEnd{doc: e.Doc, at: time.Now().Add(d.cfg.Debounce)})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// enqueueLocked hands jobs to their endpoints' queues, dropping those that
// do not fit. Must be called with d.mu held (so that Close cannot close a
// queue meanwhile), or from the window loop before Close closes them.
func (d *Dispatcher) enqueueLocked(jobs []*job) {
	for _, j := range jobs {
		select {
		case j.ep.queue <- j:
		default:
			d.drop(j, "queue full")
		}
	}
}

// jobs encodes e once for each endpoint that wants it.
func (d *Dispatcher) jobs(e session.Event) []*job {
	var out []*job
	now := d.cfg.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	for _, ep := range d.eps {
		if !ep.wants(e.Type) {
			continue
		}
		id := newDeliveryID()
		body, err := json.Marshal(payload{ID: id, Event: e})
		if err != nil { // Data that does not encode: an internal bug
			d.log.Error().Err(err).Str("event", e.Type).Msg("webhook payload does not encode")
			return nil
		}
		out = append(out, &job{ep: ep, id: id, event: e.Type, body: body, created: now})
	}
	return out
}

// payload is the JSON body of a delivery: the event with the delivery id.
type payload struct {
	ID string `json:"id"`
	session.Event
}

// drop records a delivery that will never be sent.
func (d *Dispatcher) drop(j *job, why string) {
	d.cfg.Metrics.WebhookSent.WithLabelValues(OutcomeDropped).Inc()
	now := d.cfg.Now()
	d.deliveries.add(Delivery{ID: j.id, Event: j.event, URL: j.ep.redacted, Outcome: OutcomeDropped, Error: why, Created: j.created, Finished: now})
	if warnDue(&d.dropped, 10*time.Second) {
		d.log.Warn().Str("url", j.ep.redacted).Str("reason", why).Msg("webhook delivery dropped (further drops within 10s not logged)")
	}
}

// warnDue reports whether a rate-limited warning may be logged now, at most
// once per every.
func warnDue(last *atomic.Int64, every time.Duration) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(every) && last.CompareAndSwap(prev, now)
}

// windowLoop ends debounce windows as they expire; on quit it ends them
// all at once.
func (d *Dispatcher) windowLoop() {
	defer d.loopWG.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next, ok := d.flushWindows(time.Now(), false); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case <-d.wake:
		case <-timer.C:
		case <-d.quit:
			d.flushWindows(time.Now(), true)
			return
		}
	}
}

// flushWindows sends the doc.changed of every window ended by now (every
// window, if all) and reports when the next one ends.
func (d *Dispatcher) flushWindows(now time.Time, all bool) (next time.Time, ok bool) {
	var due []session.Event
	d.mu.Lock()
	i := 0
	for ; i < len(d.windows) && (all || !d.windows[i].at.After(now)); i++ {
		w := d.windows[i]
		p := d.changed[w.doc]
		delete(d.changed, w.doc)
		e := p.latest
		e.Data = map[string]int{"from_version": p.from}
		due = append(due, e)
	}
	d.windows = slices.Delete(d.windows, 0, i)
	if len(d.windows) > 0 {
		next, ok = d.windows[0].at, true
	}
	d.mu.Unlock()
	// Encoding and queueing happen outside the lock, so Notify never waits
	// on them; Close closes the queues only after this loop has exited.
	for _, e := range due {
		d.enqueueLocked(d.jobs(e))
	}
	return next, ok
}

// worker delivers one endpoint's jobs until its queue is closed and empty.
func (d *Dispatcher) worker(ep *endpoint) {
	defer d.workWG.Done()
	for j := range ep.queue {
		d.deliver(j)
	}
}

// deliver makes a job's attempts and records the outcome.
func (d *Dispatcher) deliver(j *job) {
	rec := Delivery{ID: j.id, Event: j.event, URL: j.ep.redacted, Created: j.created}
	finish := func(outcome string) {
		rec.Outcome = outcome
		rec.Finished = d.cfg.Now()
		d.cfg.Metrics.WebhookSent.WithLabelValues(outcome).Inc()
		d.deliveries.add(rec)
		if outcome == OutcomeFailed && warnDue(&j.ep.warned, 10*time.Second) {
			d.log.Warn().Str("url", j.ep.redacted).Str("event", j.event).Int("status", rec.Status).
				Int("attempts", rec.Attempts).Str("error", rec.Error).Msg("webhook delivery failed (further failures within 10s not logged)")
		}
	}
	for attempt := 1; ; attempt++ {
		if d.ctx.Err() != nil {
			rec.Error = "server shut down before the delivery succeeded"
			if attempt == 1 {
				finish(OutcomeDropped)
			} else {
				finish(OutcomeFailed)
			}
			return
		}
		rec.Attempts = attempt
		status, err := d.post(j, attempt)
		rec.Status = status
		switch {
		case err == nil && status >= 200 && status < 300:
			rec.Error = ""
			finish(OutcomeOK)
			return
		case err != nil:
			rec.Error = err.Error()
		default:
			rec.Error = fmt.Sprintf("receiver answered %d", status)
		}
		retryable := err != nil || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
		if !retryable || attempt >= d.cfg.MaxAttempts {
			finish(OutcomeFailed)
			return
		}
		d.cfg.Metrics.WebhookSent.WithLabelValues(OutcomeRetried).Inc()
		t := time.NewTimer(d.backoff(attempt))
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
	}
}

// backoff is the wait after failed attempt n (from 1): RetryMin doubled
// n-1 times, capped at RetryMax, of which a random half is waited (equal
// jitter), so that retries of many deliveries spread out.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.cfg.RetryMin
	for i := 1; i < n && w < d.cfg.RetryMax; i++ {
		w *= 2
	}
	w = min(w, d.cfg.RetryMax)
	return w/2 + rand.N(w/2+1)
}

// post makes one attempt. It returns the status, or an error if no answer
// came within the timeout.
func (d *Dispatcher) post(j *job, attempt int) (int, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(d.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tandem-webhook/1")
	req.Header.Set(webhook.HeaderEvent, j.event)
	req.Header.Set(webhook.HeaderDelivery, j.id)
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(j.ep.secret, ts, j.body))
	req.Header.Set(webhook.HeaderAttempt, strconv.Itoa(attempt))
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, fmt.Errorf("no answer within %v", d.cfg.Timeout)
		}
		return 0, err
	}
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Deliveries returns the delivery log, newest first.
func (d *Dispatcher) Deliveries() []Delivery { return d.deliveries.list() }

// Close stops taking events, sends what is pending (ending every debounce
// window now) and waits for the queues to drain, or for ctx: then in-flight
// requests are abandoned, what is left is recorded as dropped, and Close
// returns ctx.Err() once every goroutine has exited.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.quit)
	d.loopWG.Wait() // the last windows are queued
	for _, ep := range d.eps {
		close(ep.queue)
	}
	done := make(chan struct{})
	go func() {
		d.workWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		d.cancel() // every attempt and backoff ends; workers drain the rest as dropped
		<-done
	}
	d.cancel()
	if d.own != nil {
		d.own.CloseIdleConnections()
	}
	return err
}

// deliveryLog keeps the last finished deliveries in a ring.
type deliveryLog struct {
	mu   sync.Mutex // guards ring, next and n
	ring []Delivery
	next int // where the next entry goes
	n    int // entries held, at most len(ring)
}

func (l *deliveryLog) add(d Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = d
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
}

func (l *deliveryLog) list() []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Delivery, 0, l.n)
	for i := 1; i <= l.n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}

// newDeliveryID returns a random delivery id.
func newDeliveryID() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return "whd_" + hex.EncodeToString(b[:])
}
