package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// handle decodes one client frame and dispatches it. It runs on the read
// goroutine, holding the hook lock (hooks.go) when hooks are on.
func (c *conn) handle(data []byte) {
	defer c.lockHooks()()
	var req proto.Request
	if err := proto.DecodeRequest(data, &req); err != nil {
		if !c.isConnected() {
			c.fatal(proto.DisconnectNoConnect)
			return
		}
		c.sendError(peekID(data), badRequest(describeJSON("the frame", err)))
		return
	}
	if !c.isConnected() {
		if req.Type != proto.TypeConnect {
			c.fatal(proto.DisconnectNoConnect)
			return
		}
		c.handleConnect(&req)
		return
	}
	var err error
	switch req.Type {
	case proto.TypeConnect:
		err = badRequest("already connected")
	case proto.TypePing:
		c.send(proto.Reply{ID: req.ID, Type: proto.TypePong})
	case proto.TypeRefresh:
		err = c.handleRefresh(&req)
	case proto.TypeSubscribe:
		err = c.handleSubscribe(&req)
	case proto.TypeUnsubscribe:
		err = c.handleUnsubscribe(&req)
	case proto.TypePublish:
		err = c.handlePublish(&req)
	case proto.TypeRetract:
		err = c.handleRetract(&req)
	case proto.TypePresence:
		err = c.handlePresence(&req)
	case proto.TypeRead:
		err = c.handleRead(&req)
	case proto.TypeMembers:
		err = c.handleMembers(&req)
	case proto.TypeOpen:
		err = c.handleOpen(&req)
	case proto.TypeClose:
		err = c.handleCloseDoc(&req)
	case proto.TypeOp:
		err = c.handleOp(&req)
	case proto.TypeCursor:
		err = c.handleCursor(&req)
	case proto.TypeComment:
		err = c.handleComment(&req)
	case proto.TypeRPC:
		err = c.handleRPC(&req)
	case "":
		err = badRequest("frame has no type")
	default:
		err = badRequest(fmt.Sprintf("unknown type %q", req.Type))
	}
	if err != nil {
		c.sendErrorAbout(req.ID, req.Channel, req.Doc, err)
	}
}

// handleConnect authenticates the connection: the application's connect
// hook decides when it is on, else the token.
func (c *conn) handleConnect(req *proto.Request) {
	cfg := &c.srv.cfg
	hooked, err := c.connectHook(req)
	if err != nil {
		c.refuseConnect(req.ID, err)
		return
	}
	var ident auth.Identity
	var user proto.User
	var data json.RawMessage
	switch {
	case hooked != nil:
		ident, user = hookIdentity(hooked.User, hooked.Grants, hooked.ExpiresAt)
		data = hooked.Data
	case cfg.Verifier == nil && req.Token == "":
		ident = guest(req.User, req.Name)
	case cfg.Verifier == nil:
		c.send(proto.Error{ID: req.ID, Type: proto.TypeError, Code: proto.CodeUnauthorized,
			Message: "this server runs in development mode and verifies no tokens; connect with an empty token"})
		c.fatal(proto.DisconnectUnauthorized)
		return
	default:
		ident, err = cfg.Verifier.Verify(req.Token) // revoked tokens included
		if err != nil {
			ev := c.logger().Warn().Err(err)
			if te, ok := errors.AsType[*auth.TokenError](err); ok && te.Cause != nil {
				ev = ev.AnErr("cause", te.Cause) // the library's detail, for the log only
			}
			ev.Msg("connect rejected")
			c.send(proto.Error{ID: req.ID, Type: proto.TypeError, Code: proto.CodeUnauthorized, Message: err.Error()})
			c.fatal(proto.DisconnectUnauthorized)
			return
		}
	}
	if hooked == nil {
		user = proto.User{ID: ident.UserID, Name: ident.Name, Color: proto.ColorOf(ident.UserID)}
	}
	c.idMu.Lock()
	c.ident, c.user, c.connected = ident, user, true
	c.idMu.Unlock()
	c.armExpiry(ident.Expires)
	c.readDeadline = time.Now().Add(2 * cfg.PingInterval)
	_ = c.ws.SetReadDeadline(c.readDeadline)
	ctx, cancel := requestContext()
	if err := cfg.Users.PutUser(ctx, doc.User{ID: user.ID, Name: user.Name}); err != nil {
		c.logger().Error().Err(err).Msg("remember user")
	}
	cancel()
	limits := &proto.Limits{MaxFrameBytes: cfg.MaxFrameBytes}
	if cfg.Docs != nil {
		limits.MaxOpBytes, limits.MaxDocLen = cfg.Docs.Limits()
	}
	c.send(proto.Connected{
		ID: req.ID, Type: proto.TypeConnected, ClientID: c.id, User: user,
		PingInterval: int(cfg.PingInterval / time.Second), Server: cfg.ServerName,
		Limits: limits, Data: data,
	})
	c.logger().Info().Bool("guest", ident.Guest).Bool("hook", hooked != nil).Msg("connected")
}

// guest returns a development-mode identity with every grant.
func guest(userID, name string) auth.Identity {
	if userID == "" || session.ValidChannel(userID) != nil || strings.Contains(userID, ":") {
		userID = "guest-" + newClientID()[2:]
	}
	if name == "" || len(name) > 64 || !isPrintable(name) {
		name = userID
	}
	return auth.Identity{UserID: userID, Name: name, Grants: auth.All, Guest: true}
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// armExpiry closes the connection with 4001 when the token expires, or,
// with the refresh hook on, asks it for new rights a little before.
func (c *conn) armExpiry(exp time.Time) {
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if exp.IsZero() {
		return
	}
	if c.refreshesItself() {
		c.armRefresh(exp)
		return
	}
	c.expiry = time.AfterFunc(time.Until(exp), func() { c.close(proto.DisconnectTokenExpired) })
}

// handleRefresh replaces the token (or asks the refresh hook); grants it
// no longer has take effect at once.
func (c *conn) handleRefresh(req *proto.Request) error {
	cfg := &c.srv.cfg
	if done, err := c.refreshHook(req.ID, req.Token); done || err != nil {
		return err
	}
	if cfg.Verifier == nil {
		c.send(proto.Reply{ID: req.ID, Type: proto.TypeRefreshed})
		return nil
	}
	ident, err := cfg.Verifier.Verify(req.Token) // revoked tokens included
	if err == nil && ident.UserID != c.userID() {
		err = &requestError{proto.CodeUnauthorized, "the new token is for another user"}
	}
	if err != nil {
		c.sendError(req.ID, err)
		c.fatal(proto.DisconnectUnauthorized)
		return nil
	}
	c.applyIdentity(ident, proto.User{})
	c.send(proto.Reply{ID: req.ID, Type: proto.TypeRefreshed})
	return nil
}

// applyIdentity gives the connection refreshed rights: what the new grants
// no longer allow is dropped at once (unsubscribed, reason forbidden).
// user, when it has an id, also replaces the user's name and colour (the
// refresh hook's answer). Read goroutine, or under the hook lock.
func (c *conn) applyIdentity(ident auth.Identity, user proto.User) {
	cfg := &c.srv.cfg
	c.idMu.Lock()
	c.ident = ident
	c.user.Name = ident.Name
	if user.ID != "" {
		c.user.Color = user.Color
	}
	c.idMu.Unlock()
	c.armExpiry(ident.Expires)
	for ch := range c.subs {
		if _, err := c.srv.authorize(principal{Identity: ident}, accessSubscribe, ch); err != nil {
			cfg.Hub.Unsubscribe(ch, c.id)
			delete(c.subs, ch)
			c.srv.subscriptions.Add(-1)
			c.srv.cfg.Metrics.Subscriptions.Dec()
			c.send(proto.ChannelReply{Type: proto.TypeUnsubscribed, Channel: ch, Reason: "forbidden"})
		}
	}
	for id := range c.docs {
		if _, err := c.srv.authorize(principal{Identity: ident}, accessDocRead, id); err != nil {
			c.srv.cfg.Docs.CloseDoc(c.docClient(id), nil, id)
			delete(c.docs, id)
			c.send(proto.ChannelReply{Type: proto.TypeUnsubscribed, Channel: docChannel(id), Reason: "forbidden"})
		}
	}
}

func (c *conn) handleSubscribe(req *proto.Request) error {
	v, err := c.srv.authorize(c.principal(), accessSubscribe, req.Channel)
	if err != nil {
		return err
	}
	_, again := c.subs[req.Channel]
	if !again && len(c.subs) >= c.srv.cfg.MaxSubscriptions {
		return badRequest(fmt.Sprintf("at most %d subscriptions per connection", c.srv.cfg.MaxSubscriptions))
	}
	data, err := c.subscribeHook(req.Channel)
	if err != nil {
		return err
	}
	c.idMu.Lock()
	member := proto.Member{ClientID: c.id, User: c.user, State: json.RawMessage("{}")}
	c.idMu.Unlock()
	err = c.srv.cfg.Hub.Subscribe(session.SubscribeRequest{
		ID: req.ID, Channel: req.Channel, Since: req.Since, Sub: c, Member: member, Presence: v.seesPresence,
		PresenceBatch: req.PresenceBatch, Data: data,
	})
	if err != nil {
		return err
	}
	if !again {
		c.subs[req.Channel] = struct{}{}
		c.srv.subscriptions.Add(1)
		c.srv.cfg.Metrics.Subscriptions.Inc()
	}
	return nil
}

func (c *conn) handleUnsubscribe(req *proto.Request) error {
	if err := session.ValidChannel(req.Channel); err != nil {
		return badRequest(err.Error())
	}
	if _, ok := c.subs[req.Channel]; ok {
		c.srv.cfg.Hub.Unsubscribe(req.Channel, c.id)
		delete(c.subs, req.Channel)
		c.srv.subscriptions.Add(-1)
		c.srv.cfg.Metrics.Subscriptions.Dec()
	}
	c.send(proto.ChannelReply{ID: req.ID, Type: proto.TypeUnsubscribed, Channel: req.Channel})
	return nil
}

func (c *conn) handlePublish(req *proto.Request) error {
	if len(req.Data) > 0 && !json.Valid(req.Data) {
		return badRequest("data is not valid JSON")
	}
	if _, err := c.srv.authorize(c.principal(), accessPublish, req.Channel); err != nil {
		return err
	}
	c.idMu.Lock()
	ident, user := c.ident, c.user
	c.idMu.Unlock()
	data, err := c.srv.publishHook(c.hookCtx(), hooks.PublishRequest{
		User: hookUser(user), ClientID: c.id, Channel: req.Channel, Event: req.Event, Data: req.Data,
		Ephemeral: req.Ephemeral, Transport: hooks.TransportWebSocket,
	}, false)
	if err != nil {
		return err
	}
	skip := ""
	if req.Echo != nil && !*req.Echo {
		skip = c.id
	}
	id, channel := req.ID, req.Channel
	c.srv.cfg.Hub.Publish(session.Publication{
		Channel: req.Channel, Event: req.Event, Data: data, Ephemeral: req.Ephemeral,
		From: proto.From{User: ident.UserID, ClientID: c.id}, FromName: ident.Name, SkipClient: skip,
	}, func(offset uint64, err error) {
		if err != nil {
			c.sendErrorAbout(id, channel, "", err)
			return
		}
		c.send(proto.ChannelReply{ID: id, Type: proto.TypePublished, Channel: channel, Offset: offset})
	})
	return nil
}

func (c *conn) handleRetract(req *proto.Request) error {
	v, err := c.srv.authorize(c.principal(), accessRetract, req.Channel)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext()
	defer cancel()
	if err := c.srv.cfg.Hub.Retract(ctx, req.Channel, req.Offset, c.userID(), v.admin); err != nil {
		return err
	}
	if req.ID != nil {
		c.send(proto.ChannelReply{ID: req.ID, Type: proto.TypeRetracted, Channel: req.Channel, Offset: req.Offset})
	}
	return nil
}

func (c *conn) handlePresence(req *proto.Request) error {
	if _, err := c.srv.authorize(c.principal(), accessPresence, req.Channel); err != nil {
		return err
	}
	if _, ok := c.subs[req.Channel]; !ok {
		return badRequest("subscribe to " + req.Channel + " before setting presence")
	}
	state := req.State
	if len(state) == 0 {
		state = json.RawMessage("{}")
	}
	if !isJSONObject(state) || !json.Valid(state) {
		return badRequest("state must be a JSON object")
	}
	return c.srv.cfg.Hub.SetPresence(req.Channel, c.id, state)
}

func (c *conn) handleRead(req *proto.Request) error {
	if err := session.ValidChannel(req.Channel); err != nil {
		return badRequest(err.Error())
	}
	if _, ok := c.subs[req.Channel]; !ok {
		return badRequest("subscribe to " + req.Channel + " before marking it read")
	}
	ctx, cancel := requestContext()
	defer cancel()
	return c.srv.cfg.Hub.MarkRead(ctx, req.Channel, c.id, c.userID(), req.Offset)
}

// handleMembers queues a page of a channel's members; the hub answers, in
// order with the presence events it sends this connection.
func (c *conn) handleMembers(req *proto.Request) error {
	v, err := c.srv.authorize(c.principal(), accessSubscribe, req.Channel)
	if err != nil {
		return err
	}
	if !v.seesPresence {
		return forbidden("no presence grant for " + req.Channel)
	}
	if _, ok := c.subs[req.Channel]; !ok {
		return badRequest("subscribe to " + req.Channel + " before asking for its members")
	}
	if req.Limit < 0 {
		return badRequest("limit must not be negative")
	}
	return c.srv.cfg.Hub.SendMembers(session.MembersRequest{
		ID: req.ID, Channel: req.Channel, ClientID: c.id, After: req.After, Limit: req.Limit,
	})
}
