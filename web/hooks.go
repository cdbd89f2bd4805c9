package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
)

// Hooks: the application's backend decides (docs/hooks.md).
//
// Each hook is asked after Tandem's own checks (authorize: the grants, the
// namespace's rules, the rate budget), so a hook can only narrow what they
// allow; connect, which sets the grants, is the exception. What a hook
// says becomes a wire error in describe (errors.go), like any error.
//
// Where each is asked:
//   - connect and refresh: handleConnect and handleRefresh (handlers.go);
//     a connection whose rights expire asks refresh on its own
//     (autoRefresh).
//   - subscribe: handleSubscribe, and the HTTP history and presence routes
//     for a user (api_channels.go), in the namespaces that ask for it.
//   - publish: handlePublish and POST /api/broadcast, in the namespaces
//     that ask for it, before the hub stores the message.
//   - doc_open and doc_load: handleOpen (docs.go) and the HTTP document
//     routes (forDoc), before the session sees the request, so that no
//     document's goroutine ever waits on the backend.
//   - doc_store: the sessions tell the Caller of every durable version
//     (session.DocsConfig.Watcher); the Caller sends them on its own.
//   - rpc: handleRPC (rpc.go), off the read goroutine.
//
// The hooks that run on a connection's read goroutine (all but rpc and the
// automatic refresh) keep that connection's requests in order and make
// only it wait, at most a hook's timeout. With no hook configured the
// Caller is nil, conn.hooked is nil, and none of this costs anything.

// Hooks is what the edge is told of the application's hooks.
type Hooks struct {
	// Caller calls the backend; nil when no hook is on.
	Caller *hooks.Caller
	// Namespaces lists, by namespace name ("" is the default namespace),
	// the namespaces that ask for the subscribe, publish or broadcast
	// hooks; the others ask for none.
	Namespaces map[string]hooks.NamespaceHooks
}

// maxHookData bounds the data a connect or subscribe hook attaches to the
// connected or subscribed frame, in bytes: it rides in a frame of the
// connection's queue. More is an invalid answer.
const maxHookData = 64 << 10

// maxRPCInFlight bounds the rpc calls of one connection that wait for the
// backend at once; one more is refused with rate_limited.
const maxRPCInFlight = 8

// nsHooks returns the hooks that the namespace of channel asks for: none,
// without a lookup, when no hook is on.
func (s *Server) nsHooks(channel string) hooks.NamespaceHooks {
	if s.cfg.Hooks.Caller == nil || len(s.cfg.Hooks.Namespaces) == 0 {
		return hooks.NamespaceHooks{}
	}
	return s.cfg.Hooks.Namespaces[s.cfg.Hub.Namespace(channel).Name]
}

// hookUser is a protocol user as hooks send it.
func hookUser(u proto.User) hooks.User { return hooks.User{ID: u.ID, Name: u.Name, Color: u.Color} }

// principalUser is the user an HTTP request acts as, for a hook, and
// whether it is one: an API key or the development mode's open API is the
// application's own backend, not a user.
func principalUser(p principal) (hooks.User, bool) {
	if p.apiKey || p.Guest {
		return hooks.User{}, false
	}
	return hooks.User{ID: p.UserID, Name: p.Name, Color: proto.ColorOf(p.UserID)}, true
}

// badData is the error for hook data over maxHookData: the backend's
// answer is invalid, which the client sees as unavailable.
func badData(h hooks.Hook, n int) error {
	return &hooks.Failure{Hook: h, Kind: hooks.FailBadAnswer, Err: fmt.Errorf("data of %d bytes, at most %d", n, maxHookData)}
}

// connHooks is a connection's share of the hooks, made when any hook is
// on (nil otherwise).
type connHooks struct {
	// ctx ends when the connection closes: a call made for it ends then.
	ctx    context.Context
	cancel context.CancelFunc
	// hs and remote are what the connect hook is told of the handshake.
	hs     hooks.Handshake
	remote string

	// mu is held by the read goroutine while it handles a frame (handle),
	// and by an automatic refresh while it applies its answer: so the
	// refresh may touch what the read goroutine owns (subs, docs, expiry).
	mu      sync.Mutex
	stopped bool // guarded by mu: the connection ended; nothing more starts

	wg   sync.WaitGroup // rpc calls and automatic refreshes under way
	rpcs atomic.Int32   // rpc calls in flight
}

// newConnHooks takes what the hooks need of a WebSocket's handshake
// request (gone once upgraded); nil when no hook is on.
func (s *Server) newConnHooks(r *http.Request) *connHooks {
	caller := s.cfg.Hooks.Caller
	if caller == nil {
		return nil
	}
	h := &connHooks{hs: caller.Handshake(r)}
	if caller.Enabled(hooks.HookConnect) {
		h.remote = s.clientAddr(r).String()
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// hookCtx is the context of a hook call made for the connection.
func (c *conn) hookCtx() context.Context {
	if c.hooked == nil {
		return context.Background()
	}
	return c.hooked.ctx
}

// endHookCalls ends the calls made for the connection: it is closing.
func (c *conn) endHookCalls() {
	if c.hooked != nil {
		c.hooked.cancel()
	}
}

// stopHooks ends the connection's hook calls and waits for the goroutines
// they run on. The read goroutine calls it as it ends, before it leaves
// the channels and documents.
func (c *conn) stopHooks() {
	h := c.hooked
	if h == nil {
		return
	}
	h.cancel()
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.wg.Wait()
}

// lockHooks takes the connection's hook lock for the handling of one
// frame; the function it returns releases it.
func (c *conn) lockHooks() func() {
	h := c.hooked
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	return h.mu.Unlock
}

// connectHook asks the connect hook who the connection is. It returns
// nil, nil when the hook is off or failed with policy allow: Tandem then
// decides as without it.
func (c *conn) connectHook(req *proto.Request) (*hooks.ConnectResult, error) {
	caller := c.srv.cfg.Hooks.Caller
	if !caller.Enabled(hooks.HookConnect) {
		return nil, nil
	}
	h := c.hooked
	res, err := caller.Connect(h.ctx, hooks.ConnectRequest{
		ClientID: c.id, Token: req.Token, Client: req.Client, RemoteAddr: h.remote, Handshake: h.hs,
	})
	switch {
	case errors.Is(err, hooks.ErrFallback):
		c.logger().Warn().Err(err).Msg("connect hook failed; verifying the token as without it")
		return nil, nil
	case err != nil:
		return nil, err
	case len(res.Data) > maxHookData:
		return nil, badData(hooks.HookConnect, len(res.Data))
	}
	return &res, nil
}

// refuseConnect answers a connect the connect hook refused (the backend's
// code and message, then 4001) or could not decide (unavailable, then
// 1013: try again later).
func (c *conn) refuseConnect(id *int64, err error) {
	var f *hooks.Failure
	if errors.As(err, &f) && f.Kind == hooks.FailCanceled {
		return // the connection is closing
	}
	c.logger().Warn().Err(err).Msg("connect refused by the connect hook")
	c.sendError(id, err)
	if f != nil {
		c.fatal(proto.DisconnectAppUnavailable)
		return
	}
	c.fatal(proto.DisconnectRefused)
}

// hookIdentity is the identity a connect or refresh hook answered.
func hookIdentity(u hooks.User, grants []string, exp time.Time) (auth.Identity, proto.User) {
	g, _ := auth.ParseGrants(grants) // the hooks package checked them
	return auth.Identity{UserID: u.ID, Name: u.Name, Grants: g, Expires: exp},
		proto.User{ID: u.ID, Name: u.Name, Color: u.Color}
}

// refreshHook asks the refresh hook for the connection's new rights. done
// is false when the hook is off or failed with policy allow: the refresh
// then goes as without it.
func (c *conn) refreshHook(id *int64, token string) (done bool, err error) {
	caller := c.srv.cfg.Hooks.Caller
	if !caller.Enabled(hooks.HookRefresh) {
		return false, nil
	}
	c.idMu.Lock()
	user := c.user
	c.idMu.Unlock()
	res, err := caller.Refresh(c.hookCtx(), hooks.RefreshRequest{User: hookUser(user), ClientID: c.id, Token: token})
	var r *hooks.Refusal
	switch {
	case errors.Is(err, hooks.ErrFallback):
		return false, nil
	case errors.As(err, &r):
		c.sendError(id, err)
		c.fatal(proto.DisconnectRefused)
		return true, nil
	case err != nil:
		return true, err // unavailable: the connection keeps its rights until they expire
	}
	ident, u := hookIdentity(res.User, res.Grants, res.ExpiresAt)
	c.applyIdentity(ident, u)
	c.send(proto.Reply{ID: id, Type: proto.TypeRefreshed})
	return true, nil
}

// refreshLead is how long before a connection's rights expire it asks the
// refresh hook for new ones (at most half of what is left).
const refreshLead = 30 * time.Second

// refreshesItself reports whether the connection asks the refresh hook
// when its rights near their expiry, rather than closing at it.
func (c *conn) refreshesItself() bool {
	return c.hooked != nil && c.srv.cfg.Hooks.Caller.Enabled(hooks.HookRefresh)
}

// armRefresh asks the refresh hook for new rights a little before exp.
// Called with the hook lock held (from handle or autoRefresh).
func (c *conn) armRefresh(exp time.Time) {
	left := time.Until(exp)
	c.expiry = time.AfterFunc(left-min(left/2, refreshLead), func() { c.autoRefresh(exp) })
}

// autoRefresh asks the refresh hook for the rights of a connection whose
// rights expire at exp, on the expiry timer's goroutine, and applies the
// answer under the hook lock. A no closes the connection with 4001; a
// failure leaves the rights as they are until exp, when it closes.
func (c *conn) autoRefresh(exp time.Time) {
	h := c.hooked
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.wg.Add(1)
	c.idMu.Lock()
	user := c.user
	c.idMu.Unlock()
	h.mu.Unlock()
	defer h.wg.Done()

	res, err := c.srv.cfg.Hooks.Caller.Refresh(h.ctx, hooks.RefreshRequest{User: hookUser(user), ClientID: c.id})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	var r *hooks.Refusal
	switch {
	case err == nil:
		ident, u := hookIdentity(res.User, res.Grants, res.ExpiresAt)
		c.applyIdentity(ident, u)
	case errors.As(err, &r):
		c.sendError(nil, err)
		c.close(proto.DisconnectRefused)
	default:
		c.logger().Warn().Err(err).Msg("refresh hook failed; the connection's rights end at their expiry")
		c.expiry = time.AfterFunc(time.Until(exp), func() { c.close(proto.DisconnectTokenExpired) })
	}
}

// subscribeHook asks the subscribe hook, where the channel's namespace
// asks for it, whether the connection may subscribe; it returns the data
// for the subscribed frame.
func (c *conn) subscribeHook(channel string) (json.RawMessage, error) {
	if !c.srv.nsHooks(channel).Subscribe {
		return nil, nil
	}
	c.idMu.Lock()
	user := c.user
	c.idMu.Unlock()
	res, err := c.srv.cfg.Hooks.Caller.Subscribe(c.hookCtx(), hooks.SubscribeRequest{
		User: hookUser(user), ClientID: c.id, Channel: channel, Transport: hooks.TransportWebSocket,
	})
	if err != nil {
		return nil, err
	}
	if len(res.Data) > maxHookData {
		return nil, badData(hooks.HookSubscribe, len(res.Data))
	}
	return res.Data, nil
}

// httpSubscribeHook asks the subscribe hook, where the channel's
// namespace asks for it, whether a user may read the channel over HTTP
// (its history, its presence). API keys are not asked about.
func (s *Server) httpSubscribeHook(ctx context.Context, p principal, channel string) error {
	if !s.nsHooks(channel).Subscribe {
		return nil
	}
	u, ok := principalUser(p)
	if !ok {
		return nil
	}
	_, err := s.cfg.Hooks.Caller.Subscribe(ctx, hooks.SubscribeRequest{User: u, Channel: channel, Transport: hooks.TransportHTTP})
	return err
}

// publishHook asks the publish hook, where the channel's namespace asks
// for it for this publisher (a user: "publish"; the application's own
// backend: "broadcast"), whether a message may be stored, and returns its
// data: the message's own, or the backend's replacement, checked against
// the namespace's max_payload (or the frame limit).
func (s *Server) publishHook(ctx context.Context, req hooks.PublishRequest, server bool) (json.RawMessage, error) {
	nh := s.nsHooks(req.Channel)
	if server && !nh.Broadcast || !server && !nh.Publish {
		return req.Data, nil
	}
	res, err := s.cfg.Hooks.Caller.Publish(ctx, req)
	if err != nil || res.Data == nil {
		return req.Data, err
	}
	limit := s.cfg.Hub.Namespace(req.Channel).MaxPayload
	if limit <= 0 {
		limit = s.cfg.MaxFrameBytes
	}
	if len(res.Data) > limit {
		return nil, &requestError{proto.CodeTooLarge, fmt.Sprintf("the application's data for %s is %d bytes, at most %d", req.Channel, len(res.Data), limit)}
	}
	return res.Data, nil
}

// docHooks asks what the document hooks say before a document is opened
// or read (over WebSocket by a connection, over HTTP by a principal): the
// doc_open hook whether user may open it (users only; server-side callers
// are not asked), then, if Tandem does not have it, the doc_load hook for
// its content, with which it is created (through the sessions' own
// server-side create, so that no document's goroutine waits on the
// backend). clientID is empty over HTTP.
func (s *Server) docHooks(ctx context.Context, id string, user hooks.User, isUser bool, clientID string) error {
	caller := s.cfg.Hooks.Caller
	if caller == nil {
		return nil
	}
	if isUser {
		if _, err := caller.DocOpen(ctx, hooks.DocOpenRequest{User: user, ClientID: clientID, Doc: id}); err != nil {
			return err
		}
	}
	if !caller.Enabled(hooks.HookDocLoad) || s.cfg.Store == nil || s.cfg.Docs == nil {
		return nil
	}
	if _, err := s.cfg.Store.GetDoc(id); !errors.Is(err, doc.ErrNotFound) {
		return nil // Tandem has it (or storage failed, which the request will meet)
	}
	err := s.loads.do(id, func() error { return s.loadDoc(id, user, clientID) })
	if errors.Is(err, hooks.ErrFallback) {
		s.log.Warn().Err(err).Str("doc", id).Msg("doc_load hook failed; the document is created empty as without it")
		return nil
	}
	return err
}

// loadDoc asks the doc_load hook for a document Tandem does not have and
// creates it with the content the backend gave. Its context is its own
// (bounded by the hook's timeout, then by the create's): the callers that
// share the load may go away.
func (s *Server) loadDoc(id string, user hooks.User, clientID string) error {
	res, err := s.cfg.Hooks.Caller.DocLoad(context.Background(), hooks.DocLoadRequest{Doc: id, User: user, ClientID: clientID})
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	cres := s.cfg.Docs.Create(ctx, id, res.Content, "", "app")
	if cres.Err != nil && !errors.Is(cres.Err, doc.ErrExists) { // created meanwhile: it is there
		return cres.Err
	}
	return nil
}

// loadGroup runs one doc_load per document at a time: opens of a missing
// document that come while it loads wait for that load and share its
// outcome.
type loadGroup struct {
	mu    sync.Mutex           // guards calls
	calls map[string]*loadCall // loads under way, by document
}

type loadCall struct {
	done chan struct{} // closed when err is set
	err  error
}

// do runs fn for id unless a call for id is under way, and returns its
// error, or that of the call it waited for.
func (g *loadGroup) do(id string, fn func() error) error {
	g.mu.Lock()
	if c := g.calls[id]; c != nil {
		g.mu.Unlock()
		<-c.done
		return c.err
	}
	if g.calls == nil {
		g.calls = make(map[string]*loadCall)
	}
	c := &loadCall{done: make(chan struct{})}
	g.calls[id] = c
	g.mu.Unlock()
	c.err = fn()
	g.mu.Lock()
	delete(g.calls, id)
	g.mu.Unlock()
	close(c.done)
	return c.err
}
