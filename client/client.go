package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/proto"
)

// Status is the state of a client's connection.
type Status uint8

const (
	// StatusConnecting: Dial is making the first connection.
	StatusConnecting Status = iota
	// StatusConnected: connected and authenticated; subscriptions are
	// (being) restored.
	StatusConnected
	// StatusReconnecting: the connection was lost; the client is trying
	// again with backoff.
	StatusReconnecting
	// StatusDisconnected: stopped for good, by Close or because the server
	// rejected the token and TokenFunc gave no new one.
	StatusDisconnected
)

func (s Status) String() string {
	switch s {
	case StatusConnecting:
		return "connecting"
	case StatusConnected:
		return "connected"
	case StatusReconnecting:
		return "reconnecting"
	default:
		return "disconnected"
	}
}

// Config configures a client. URL is required; a zero field elsewhere takes
// the default its comment gives.
type Config struct {
	// URL is the server's WebSocket endpoint, "ws://host:port/ws". An
	// http(s) URL is turned into ws(s), and an empty path becomes "/ws".
	URL string
	// Token is the JWT to connect with; empty in development mode.
	Token string
	// TokenFunc, if set, gives a fresh token: for the first connection when
	// Token is empty, before the current token expires (the client then
	// sends refresh), when reconnecting with an expired token, and after the
	// server rejected a token (close 4001). Without it, or when it fails or
	// returns the token that was rejected, a 4001 stops the client for good.
	// It is called from the client's own goroutines, never concurrently
	// with itself.
	TokenFunc func(ctx context.Context) (string, error)
	// User and Name name the guest in development mode (ignored by a server
	// that verifies tokens). Without User the server makes up a guest id on
	// every connection.
	User, Name string
	// ClientName is sent in connect. By default "tandem-go/1".
	ClientName string
	// Header is sent with the WebSocket handshake (Origin, cookies, ...).
	Header http.Header
	// Dialer dials the WebSocket; by default a websocket.Dialer with
	// HandshakeTimeout.
	Dialer *websocket.Dialer
	// OnStatus is called on every status change with the error that caused
	// it (nil for StatusConnected and for Close).
	OnStatus func(Status, error)
	// OnError is called with error frames the server pushes outside any
	// request (a frame the server could not read at all, for instance).
	OnError func(*Error)
	// Logger gets the client's lifecycle events; by default nothing is
	// logged.
	Logger zerolog.Logger
	// ReconnectMin and ReconnectMax bound the reconnect backoff: attempt n
	// waits a random time up to min(ReconnectMax, ReconnectMin·2ⁿ). By
	// default 100 * time.Millisecond and 10 * time.Second.
	ReconnectMin, ReconnectMax time.Duration
	// NoReconnect makes a lost connection final (StatusDisconnected).
	NoReconnect bool
	// HandshakeTimeout bounds dialing plus the connect exchange. By default
	// 10 * time.Second.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame write. By default 10 * time.Second.
	WriteTimeout time.Duration
	// MaxMessageBytes bounds one WebSocket message from the server (a
	// subscribed frame carries the recovered history). By default 64 MiB.
	MaxMessageBytes int64
	// MaxOpBytes lowers the server's bound on the text one document op
	// inserts (Limits.MaxOpBytes); it cannot raise it. By default (0) the
	// server's limit applies, as its connected frame says (64 KiB from a
	// server that does not say).
	MaxOpBytes int
	// CursorInterval is the shortest time between two cursor frames of one
	// document; updates within it are coalesced (the latest wins). By
	// default 50 * time.Millisecond, the server's broadcast interval.
	CursorInterval time.Duration
}

func (c *Config) setDefaults() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("client: URL: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return fmt.Errorf("client: URL %q: want ws://, wss://, http:// or https://", c.URL)
	}
	if u.Path == "" {
		u.Path = "/ws"
	}
	c.URL = u.String()
	if c.ClientName == "" {
		c.ClientName = fmt.Sprintf("tandem-go/%d", proto.Version)
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 100 * time.Millisecond
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = 10 * time.Second
	}
	c.ReconnectMax = max(c.ReconnectMax, c.ReconnectMin)
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 20
	}
	if c.CursorInterval <= 0 {
		c.CursorInterval = 50 * time.Millisecond
	}
	if c.Dialer == nil {
		c.Dialer = &websocket.Dialer{HandshakeTimeout: c.HandshakeTimeout, Proxy: http.ProxyFromEnvironment}
	}
	return nil
}

// stableAfter is how long a connection must last for the backoff to start
// again from its minimum; a connection that keeps dropping at once (a
// server that accepts and then closes) keeps backing off.
const stableAfter = 10 * time.Second

// Client is a connection to a Tandem server that reconnects on its own and
// restores its subscriptions and open documents. It is safe for concurrent
// use. Lock order: a Document's or Subscription's mutex may be held while
// taking c.mu; c.mu is never held while taking a Document's.
type Client struct {
	cfg Config
	log zerolog.Logger
	cb  *dispatcher

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the run goroutine returns
	wg     sync.WaitGroup

	nextID atomic.Int64
	tfMu   sync.Mutex // serialises TokenFunc calls

	// openedHook, set by tests before any OpenDoc, runs in OpenDoc once
	// the snapshot is applied, just before OpenDoc returns.
	openedHook func(*Document)

	mu       sync.Mutex // guards every field below
	status   Status
	conn     *wsConn       // the live connection; nil while there is none
	ready    chan struct{} // closed once conn is set, replaced when it is lost
	err      error         // why the client stopped for good
	closed   bool          // Close was called
	token    string
	user     proto.User
	clientID string
	limits   Limits          // of the live (or last) connection
	connData json.RawMessage // connected.data of the live (or last) connection (rpc.go)
	subs     map[string]*Subscription
	docs     map[string]*Document
	pending  map[int64]*pending
	refresh  *time.Timer // auto-refresh of the token
}

// pending is a request waiting for its reply.
type pending struct {
	conn  *wsConn
	reply chan result // cap 1: the reader never waits
	// sub is set for subscribe requests, whose reply the reader applies to
	// the subscription itself, before any later frame.
	sub     *Subscription
	resumed bool // the subscribe carried since
	// doc is set for document requests (open, op, comment), whose reply
	// the reader applies to the document before any later frame; gen is
	// the document's open generation when it was sent, and uid the op's.
	doc  *Document
	kind docReq
	gen  uint64
	uid  string
}

type result struct {
	f   *inbound
	err error
}

// Dial connects to the server, authenticates, and returns a client whose
// background goroutine keeps the connection up until Close. It fails if
// the first connection fails (it does not retry that one); ctx bounds only
// this first connection.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "client").Logger(),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		status:  StatusConnecting,
		token:   cfg.Token,
		subs:    make(map[string]*Subscription),
		docs:    make(map[string]*Document),
		pending: make(map[int64]*pending),
	}
	if c.token == "" && cfg.TokenFunc != nil {
		tok, err := c.tokenFunc(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: token: %w", err)
		}
		c.token = tok
	}
	conn, info, err := c.connect(ctx, c.token)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cb = newDispatcher()
	if cfg.OnStatus != nil {
		c.cb.push(func() { cfg.OnStatus(StatusConnecting, nil) })
	}
	c.attach(conn, info)
	go c.run(conn)
	return c, nil
}

// Status returns the connection's current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// ClientID returns the server's id for the current (or last) connection;
// it changes with every reconnection.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Limits returns the size limits the client applies to document ops: the
// server's, from the connected frame of the current (or last) connection.
func (c *Client) Limits() Limits {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limits
}

// User returns who the server says this client is.
func (c *Client) User() proto.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// Close ends the connection (with a close frame), every subscription and
// every goroutine of the client. Requests in flight fail with ErrClosed.
// Callbacks already queued run before it returns, except those of the
// ended subscriptions, and the last OnStatus is StatusDisconnected. It must
// not be called from a callback (it waits for the callbacks to finish).
// Calling it again does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	conn := c.conn
	c.stopRefreshLocked()
	c.mu.Unlock()
	c.cancel()
	if conn != nil {
		// Say goodbye and give the server a moment to answer the close;
		// the read goroutine ends when it does, or when the socket closes.
		conn.closeWith(websocket.CloseNormalClosure, "client closing")
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		conn.ws.Close()
	}
	<-c.done
	c.wg.Wait()
	c.cb.stop()
	return nil
}

// run is the client's connection goroutine: it reads the live connection
// and, when the connection ends, reconnects with backoff and restores the
// subscriptions. It alone reads from connections.
func (c *Client) run(conn *wsConn) {
	defer close(c.done)
	b := &backoff{min: c.cfg.ReconnectMin, max: c.cfg.ReconnectMax}
	for {
		err := c.readLoop(conn)
		conn.ws.Close()
		if time.Since(conn.started) >= stableAfter {
			b.reset()
		}
		if c.ctx.Err() != nil {
			c.finish(ErrClosed)
			return
		}
		c.lost(conn, err)
		if c.cfg.NoReconnect {
			c.finish(err)
			return
		}
		var info *proto.Connected
		conn, info, err = c.reconnect(b, err)
		if conn == nil {
			c.finish(err)
			return
		}
		c.attach(conn, info)
	}
}

// reconnect dials until it is connected, the client is closed, or the
// token is rejected with no new one to try.
func (c *Client) reconnect(b *backoff, cause error) (*wsConn, *proto.Connected, error) {
	for {
		token, err := c.nextToken(cause)
		if err != nil {
			return nil, nil, err
		}
		delay := b.next()
		c.log.Info().Err(cause).Dur("delay", delay).Msg("reconnecting")
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, nil, ErrClosed
		}
		conn, info, err := c.connect(c.ctx, token)
		if err == nil {
			return conn, info, nil
		}
		if c.ctx.Err() != nil {
			return nil, nil, ErrClosed
		}
		cause = err
	}
}

// nextToken picks the token for the next connection attempt. After a
// rejection (4001 or an unauthorized answer to connect) only a new token
// from TokenFunc is worth trying.
func (c *Client) nextToken(cause error) (string, error) {
	c.mu.Lock()
	cur := c.token
	c.mu.Unlock()
	tf := c.cfg.TokenFunc
	switch {
	case errors.Is(cause, ErrUnauthorized):
		if tf == nil {
			return "", fmt.Errorf("%w: %w", ErrUnauthorized, cause)
		}
		tok, err := c.callTokenFunc()
		if err != nil || tok == "" || tok == cur {
			return "", fmt.Errorf("%w: token rejected and TokenFunc gave no new one (%v): %w", ErrUnauthorized, err, cause)
		}
		cur = tok
	case tf != nil:
		if exp := tokenExpiry(cur); !exp.IsZero() && time.Until(exp) < 5*time.Second {
			if tok, err := c.callTokenFunc(); err == nil && tok != "" {
				cur = tok
			} else {
				c.log.Warn().Err(err).Msg("token refresh before reconnecting failed")
			}
		}
	}
	c.mu.Lock()
	c.token = cur
	c.mu.Unlock()
	return cur, nil
}

func (c *Client) callTokenFunc() (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	return c.tokenFunc(ctx)
}

// tokenFunc calls Config.TokenFunc, never concurrently with itself.
func (c *Client) tokenFunc(ctx context.Context) (string, error) {
	c.tfMu.Lock()
	defer c.tfMu.Unlock()
	return c.cfg.TokenFunc(ctx)
}

// attach makes a freshly connected conn the live one and restores every
// subscription on it, each from the last position it saw. The subscribe
// frames go out from their own goroutine, so that the caller (the reader)
// is reading while the server answers them.
func (c *Client) attach(conn *wsConn, info *proto.Connected) {
	user := info.User
	c.mu.Lock()
	if c.closed {
		// Close came while this connection was being made, and did not
		// see it: drop it, and the reader ends at once.
		c.mu.Unlock()
		conn.ws.Close()
		return
	}
	c.conn = conn
	c.status = StatusConnected
	c.user, c.clientID = user, info.ClientID
	c.limits = limitsOf(info.Limits, c.cfg.MaxOpBytes)
	c.connData = info.Data
	frames := make([][]byte, 0, len(c.subs))
	for _, sub := range c.subs {
		frames = append(frames, c.subscribeFrameLocked(conn, sub))
	}
	nsubs := len(frames)
	docs := make([]*Document, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, d)
	}
	close(c.ready)
	c.scheduleRefreshLocked()
	c.mu.Unlock()
	// Documents are reopened from the version they know (lock order: a
	// document's lock before c.mu, so outside the section above).
	var opens outbox
	for _, d := range docs {
		d.reopen(conn, &opens)
	}
	for _, o := range opens {
		frames = append(frames, o.data)
	}
	if len(frames) > 0 {
		c.wg.Add(1) // on the run goroutine: before Close waits for wg
	}
	c.log.Info().Str("client_id", info.ClientID).Str("user", user.ID).Int("resubscribe", nsubs).Int("reopen", len(docs)).Msg("connected")
	if f := c.cfg.OnStatus; f != nil {
		c.cb.push(func() { f(StatusConnected, nil) })
	}
	if len(frames) == 0 {
		return
	}
	go func() {
		defer c.wg.Done()
		for _, fr := range frames {
			if err := conn.write(fr); err != nil {
				conn.ws.Close() // the reader ends and we come round again
				return
			}
		}
	}()
}

// lost records that conn ended: requests waiting on it fail, and new ones
// wait for the next connection.
func (c *Client) lost(conn *wsConn, err error) {
	c.log.Info().Err(err).Msg("connection lost")
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
		c.ready = make(chan struct{})
	}
	c.failPendingLocked(conn, fmt.Errorf("%w: %w", ErrDisconnected, err))
	c.status = StatusReconnecting
	c.stopRefreshLocked()
	docs := make([]*Document, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, d)
	}
	c.mu.Unlock()
	for _, d := range docs {
		d.lostConn(conn)
	}
	if f := c.cfg.OnStatus; f != nil && !c.cfg.NoReconnect {
		c.cb.push(func() { f(StatusReconnecting, err) })
	}
}

// finish stops the client for good: every request and subscription ends
// with err.
func (c *Client) finish(err error) {
	c.mu.Lock()
	c.conn = nil
	c.status = StatusDisconnected
	c.err = err
	c.failPendingLocked(nil, err)
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	clear(c.subs)
	docs := make([]*Document, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, d)
	}
	c.stopRefreshLocked()
	c.mu.Unlock()
	for _, s := range subs {
		s.end(err)
	}
	for _, d := range docs {
		d.end(err)
	}
	c.log.Info().Err(err).Msg("disconnected")
	if f := c.cfg.OnStatus; f != nil {
		if errors.Is(err, ErrClosed) {
			err = nil
		}
		c.cb.push(func() { f(StatusDisconnected, err) })
	}
}

// failPendingLocked fails the requests waiting on conn (every request when
// conn is nil). Must be called with c.mu held.
func (c *Client) failPendingLocked(conn *wsConn, err error) {
	for id, p := range c.pending {
		if conn == nil || p.conn == conn {
			delete(c.pending, id)
			p.reply <- result{err: err}
		}
	}
}

// scheduleRefreshLocked arms the token's auto-refresh. Must be called with
// c.mu held.
func (c *Client) scheduleRefreshLocked() {
	c.stopRefreshLocked()
	if c.cfg.TokenFunc == nil || c.closed {
		return
	}
	exp := tokenExpiry(c.token)
	if exp.IsZero() {
		return
	}
	c.wg.Add(1)
	c.refresh = time.AfterFunc(refreshDelay(time.Now(), exp), func() {
		defer c.wg.Done()
		c.autoRefresh()
	})
}

// stopRefreshLocked disarms the auto-refresh. Must be called with c.mu held.
func (c *Client) stopRefreshLocked() {
	if c.refresh != nil && c.refresh.Stop() {
		c.wg.Done()
	}
	c.refresh = nil
}

// autoRefresh gets a new token from TokenFunc and sends it. A failure is
// logged: the server then closes with 4001 at expiry, and reconnecting
// asks TokenFunc again.
func (c *Client) autoRefresh() {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	tok, err := c.tokenFunc(ctx)
	if err == nil {
		err = c.Refresh(ctx, tok)
	}
	if err != nil && c.ctx.Err() == nil {
		c.log.Warn().Err(err).Msg("token refresh failed")
	}
}

// Refresh replaces the connection's token with a new one for the same
// user, and uses it for later reconnections. Grants the new token lacks
// take effect at once: the server drops those subscriptions (each ends with
// an *Error of code forbidden). A rejected token closes the connection
// (4001).
func (c *Client) Refresh(ctx context.Context, token string) error {
	if _, err := c.request(ctx, &proto.Request{Type: proto.TypeRefresh, Token: token}); err != nil {
		return err
	}
	c.mu.Lock()
	c.token = token
	if c.conn != nil {
		c.scheduleRefreshLocked()
	}
	c.mu.Unlock()
	return nil
}

// Ping asks the server for a pong and waits for it.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.request(ctx, &proto.Request{Type: proto.TypePing})
	return err
}

// PublishOptions are the optional parts of a publish.
type PublishOptions struct {
	// Ephemeral skips history: current subscribers get the message with no
	// offset, and Publish returns 0.
	Ephemeral bool
	// NoEcho leaves this connection out of the delivery.
	NoEcho bool
}

// Publish publishes an event on a channel (subscribed or not) and waits
// until the server has stored it; it returns the message's offset. data is
// encoded with encoding/json (a json.RawMessage goes as is); nil sends no
// data. If the connection is lost before the answer it fails with
// ErrDisconnected, and the message may or may not have been published.
func (c *Client) Publish(ctx context.Context, channel, event string, data any, opts PublishOptions) (uint64, error) {
	req := &proto.Request{Type: proto.TypePublish, Channel: channel, Event: event, Ephemeral: opts.Ephemeral}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return 0, fmt.Errorf("client: publish data: %w", err)
		}
		req.Data = raw
	}
	if opts.NoEcho {
		no := false
		req.Echo = &no
	}
	f, err := c.request(ctx, req)
	if err != nil {
		return 0, err
	}
	reply, ok := f.body.(*proto.ChannelReply)
	if !ok {
		return 0, fmt.Errorf("client: publish on %s answered with %s", channel, f.Type)
	}
	return reply.Offset, nil
}

// Subscribe subscribes to a channel and returns once the server has
// confirmed it. handler gets the channel's messages one at a time, in
// offset order, each once, across reconnections: after a reconnection the
// client resubscribes from the last offset it saw, and the messages
// recovered come to handler before any later one. Recovered messages of the
// first subscribe (WithSince) are queued for handler before Subscribe
// returns. Handlers and the other callbacks run on the client's callback
// goroutine, one at a time; a callback may call the client's methods.
func (c *Client) Subscribe(ctx context.Context, channel string, handler func(Message), opts ...SubscribeOption) (*Subscription, error) {
	sub := newSubscription(c, channel, handler, opts)
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrClosed
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return nil, err
	case c.subs[channel] != nil:
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrAlreadySubscribed, channel)
	}
	c.subs[channel] = sub
	conn := c.conn
	var frame []byte
	if conn != nil {
		frame = c.subscribeFrameLocked(conn, sub)
	}
	// Otherwise the next connection subscribes it (attach).
	c.mu.Unlock()
	if conn != nil {
		if err := conn.write(frame); err != nil {
			conn.ws.Close() // reconnect; attach subscribes again
		}
	}
	select {
	case <-sub.ready:
		return sub, nil
	case <-sub.done:
		return nil, sub.Err()
	case <-ctx.Done():
		c.dropSub(sub, ctx.Err())
		return nil, ctx.Err()
	}
}

// subscribeFrameLocked registers a subscribe request for sub on conn and
// returns its frame, with since when sub has a position. Must be called
// with c.mu held.
func (c *Client) subscribeFrameLocked(conn *wsConn, sub *Subscription) []byte {
	id := c.nextID.Add(1)
	// This client understands batched presence (Subscription.onPresence).
	req := proto.Request{ID: &id, Type: proto.TypeSubscribe, Channel: sub.channel, PresenceBatch: true}
	sub.mu.Lock()
	if sub.positioned {
		req.Since = &proto.Since{Offset: sub.last, Epoch: sub.epoch}
	}
	sub.mu.Unlock()
	c.pending[id] = &pending{conn: conn, reply: make(chan result, 1), sub: sub, resumed: req.Since != nil}
	return mustEncode(req)
}

// dropSub forgets a subscription that ended on the client's side and tells
// the server, without waiting, if it may be subscribed there.
func (c *Client) dropSub(sub *Subscription, err error) {
	c.mu.Lock()
	if c.subs[sub.channel] == sub {
		delete(c.subs, sub.channel)
	}
	conn := c.conn
	c.mu.Unlock()
	sub.end(err)
	if conn != nil {
		_ = conn.write(mustEncode(proto.Request{Type: proto.TypeUnsubscribe, Channel: sub.channel}))
	}
}

// current returns the live connection, waiting for one while the client
// reconnects.
func (c *Client) current(ctx context.Context) (*wsConn, error) {
	for {
		c.mu.Lock()
		conn, ready, closed, err := c.conn, c.ready, c.closed, c.err
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case err != nil:
			return nil, err
		case conn != nil:
			return conn, nil
		}
		select {
		case <-ready:
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// send registers reqs as pending on the live connection (waiting for one)
// and writes them in order.
func (c *Client) send(ctx context.Context, reqs ...*proto.Request) ([]*pending, error) {
	conn, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	ps := make([]*pending, len(reqs))
	frames := make([][]byte, len(reqs))
	c.mu.Lock()
	for i, r := range reqs {
		id := c.nextID.Add(1)
		r.ID = &id
		ps[i] = &pending{conn: conn, reply: make(chan result, 1)}
		c.pending[id] = ps[i]
		frames[i] = mustEncode(r)
	}
	c.mu.Unlock()
	for _, f := range frames {
		if err := conn.write(f); err != nil {
			conn.ws.Close() // let the reader notice and reconnect
			c.forget(reqs...)
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, err)
		}
	}
	return ps, nil
}

// forget drops pending requests nobody waits for any more.
func (c *Client) forget(reqs ...*proto.Request) {
	c.mu.Lock()
	for _, r := range reqs {
		if r.ID != nil {
			delete(c.pending, *r.ID)
		}
	}
	c.mu.Unlock()
}

// request sends one request and waits for its reply; an error frame comes
// back as an *Error.
func (c *Client) request(ctx context.Context, req *proto.Request) (*inbound, error) {
	ps, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ps[0].reply:
		if r.err != nil {
			return nil, r.err
		}
		if e := r.f.asError(); e != nil {
			return nil, e
		}
		return r.f, nil
	case <-ctx.Done():
		c.forget(req)
		return nil, ctx.Err()
	}
}

// confirm sends a request the server answers only when it fails (presence,
// read), followed by a ping: frames are handled in order, so the pong
// means the request went through, and an error before it means it did not.
func (c *Client) confirm(ctx context.Context, req *proto.Request) error {
	ping := &proto.Request{Type: proto.TypePing}
	ps, err := c.send(ctx, req, ping)
	if err != nil {
		return err
	}
	check := func(r result) error {
		if r.err != nil {
			return r.err
		}
		if e := r.f.asError(); e != nil {
			return e
		}
		return nil
	}
	select {
	case r := <-ps[0].reply:
		c.forget(ping)
		return check(r)
	case r := <-ps[1].reply:
		// The reader delivers replies in order: an error answering req
		// would already be waiting.
		select {
		case r0 := <-ps[0].reply:
			return check(r0)
		default:
			c.forget(req)
		}
		return check(r)
	case <-ctx.Done():
		c.forget(req, ping)
		return ctx.Err()
	}
}

func mustEncode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("client: encode request: " + err.Error())
	}
	return b
}
