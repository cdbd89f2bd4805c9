package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/proto"
)

// wsConn is one WebSocket connection. The client's run goroutine is its
// only reader; writes from any goroutine are serialised by wmu (gorilla
// allows one concurrent writer; WriteControl and Close may be called
// concurrently with everything).
type wsConn struct {
	ws           *websocket.Conn
	wmu          sync.Mutex // serialises writes
	writeTimeout time.Duration
	readTimeout  time.Duration // 0: none
	started      time.Time
}

// write sends one frame.
func (w *wsConn) write(b []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_ = w.ws.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	return w.ws.WriteMessage(websocket.TextMessage, b)
}

// closeWith sends a close frame; the socket stays open for the answer.
func (w *wsConn) closeWith(code int, text string) {
	_ = w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}

// connect dials, sends connect and waits for connected. ctx (bounded by
// HandshakeTimeout) bounds all of it.
func (c *Client) connect(ctx context.Context, token string) (*wsConn, *proto.Connected, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	ws, _, err := c.cfg.Dialer.DialContext(ctx, c.cfg.URL, c.cfg.Header)
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial %s: %w", c.cfg.URL, err)
	}
	ws.SetReadLimit(c.cfg.MaxMessageBytes)
	conn := &wsConn{ws: ws, writeTimeout: c.cfg.WriteTimeout, started: time.Now()}
	// Closing the socket is how a cancelled ctx interrupts a blocked read.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	info, err := c.handshake(ctx, conn, token)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	if info.PingInterval > 0 {
		// The server pings every interval and drops a client silent for
		// two; a server silent for longer than that is gone.
		pi := time.Duration(info.PingInterval) * time.Second
		conn.readTimeout = 2*pi + pi/2 + time.Second
	}
	_ = ws.SetReadDeadline(time.Time{})
	return conn, info, nil
}

func (c *Client) handshake(ctx context.Context, conn *wsConn, token string) (*proto.Connected, error) {
	id := c.nextID.Add(1)
	req := proto.Request{
		ID: &id, Type: proto.TypeConnect, Token: token, Client: c.cfg.ClientName,
		User: c.cfg.User, Name: c.cfg.Name,
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.ws.SetReadDeadline(d)
	}
	if err := conn.write(mustEncode(req)); err != nil {
		return nil, fmt.Errorf("client: send connect: %w", err)
	}
	for {
		_, data, err := conn.ws.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("client: connect: %w", closeError(err))
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			f, err := decodeFrame(line)
			if err != nil || f.ID == nil || *f.ID != id {
				continue
			}
			switch b := f.body.(type) {
			case *proto.Connected:
				return b, nil
			case *proto.Error:
				return nil, f.asError()
			}
		}
	}
}

// closeError turns gorilla's close error into a *CloseError.
func closeError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Text: ce.Text}
	}
	return err
}

// readLoop reads conn until it ends and routes every frame. Server
// messages hold one or more JSON objects separated by newlines.
func (c *Client) readLoop(conn *wsConn) error {
	ws := conn.ws
	pong := ws.PingHandler()
	ws.SetPingHandler(func(data string) error {
		if conn.readTimeout > 0 {
			_ = ws.SetReadDeadline(time.Now().Add(conn.readTimeout))
		}
		return pong(data)
	})
	for {
		if conn.readTimeout > 0 {
			_ = ws.SetReadDeadline(time.Now().Add(conn.readTimeout))
		}
		_, data, err := ws.ReadMessage()
		if err != nil {
			return closeError(err)
		}
		for len(data) > 0 {
			var line []byte
			line, data, _ = bytes.Cut(data, []byte{'\n'})
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			f, err := decodeFrame(line)
			if err != nil {
				c.log.Warn().Err(err).Msg("unreadable frame from the server")
				continue
			}
			c.route(conn, f)
		}
	}
}

// route handles one frame on the read goroutine: a reply goes to its
// request, a push to its subscription or document.
func (c *Client) route(conn *wsConn, f *inbound) {
	if m, ok := f.body.(*proto.Members); ok {
		// A page of members applies to the subscription in order with its
		// presence events, whoever waits for it.
		if sub := c.subscription(m.Channel); sub != nil {
			sub.onMembers(m)
		}
	}
	if f.ID != nil {
		c.mu.Lock()
		p := c.pending[*f.ID]
		delete(c.pending, *f.ID)
		c.mu.Unlock()
		if p != nil {
			if p.sub != nil {
				c.subscribeReply(conn, p, f)
			}
			if p.doc != nil {
				p.doc.onReply(conn, p, f)
			}
			p.reply <- result{f: f}
			return
		}
		// A reply whose request gave up waiting. (What a reply announces,
		// such as a retraction, also comes as a push without id.)
		return
	}
	if id := docOf(f.body); id != "" {
		if d := c.document(id); d != nil {
			d.onPush(conn, f)
		}
		return
	}
	switch b := f.body.(type) {
	case *proto.Message:
		if sub := c.subscription(b.Channel); sub != nil {
			sub.onMessage(b)
		}
	case *proto.Presence:
		if sub := c.subscription(b.Channel); sub != nil {
			sub.onPresence(b)
		}
	case *proto.Receipt:
		if sub := c.subscription(b.Channel); sub != nil {
			sub.onReceipt(b)
		}
	case *proto.ChannelReply:
		switch f.Type {
		case proto.TypeRetracted:
			if sub := c.subscription(b.Channel); sub != nil {
				sub.onRetracted(b)
			}
		case proto.TypeUnsubscribed:
			c.onUnsubscribed(b)
		}
	case *proto.Error:
		c.log.Warn().Str("code", b.Code).Str("message", b.Message).Msg("error from the server")
		if h := c.cfg.OnError; h != nil {
			e := f.asError()
			c.cb.push(func() { h(e) })
		}
	case *proto.Members:
		// applied above
	default:
		c.log.Debug().Str("type", f.Type).Msg("frame ignored")
	}
}

// subscription returns the live subscription of a channel, or nil.
func (c *Client) subscription(channel string) *Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[channel]
}

// subscribeReply applies the answer to a subscribe: on success the
// recovered messages go to the handler before anything later on this
// connection; an error ends the subscription.
func (c *Client) subscribeReply(conn *wsConn, p *pending, f *inbound) {
	sub := p.sub
	if err := f.asError(); err != nil {
		err.Channel = sub.channel
		c.mu.Lock()
		if c.subs[sub.channel] == sub {
			delete(c.subs, sub.channel)
		}
		c.mu.Unlock()
		if sub.end(err) && sub.isConfirmed() {
			// A resubscribe failed: tell the user, whose Subscribe
			// returned long ago.
			if h := sub.opts.onUnsubscribed; h != nil {
				c.cb.push(func() { h(err) })
			}
		}
		return
	}
	reply, ok := f.body.(*proto.Subscribed)
	if !ok {
		return
	}
	if !sub.applySubscribed(reply, p.resumed) && c.subscription(sub.channel) == nil {
		// Ended while the subscribe was in flight (and not subscribed
		// again since): undo it on the server.
		_ = conn.write(mustEncode(proto.Request{Type: proto.TypeUnsubscribe, Channel: sub.channel}))
	}
}

// onUnsubscribed: the server dropped a subscription or a document (a
// refresh took the grant away).
func (c *Client) onUnsubscribed(f *proto.ChannelReply) {
	if id, ok := strings.CutPrefix(f.Channel, "doc:"); ok {
		if d := c.document(id); d != nil {
			code := f.Reason
			if code == "" {
				code = proto.CodeForbidden
			}
			d.mu.Lock()
			d.endByServerLocked(&Error{Code: code, Message: "the server closed the document", Channel: f.Channel})
			d.mu.Unlock()
		}
		return
	}
	c.mu.Lock()
	sub := c.subs[f.Channel]
	if sub != nil {
		delete(c.subs, f.Channel)
	}
	c.mu.Unlock()
	if sub == nil {
		return
	}
	err := &Error{Code: f.Reason, Message: "the server ended the subscription", Channel: f.Channel}
	if err.Code == "" {
		err.Code = proto.CodeForbidden
	}
	if sub.end(err) {
		if h := sub.opts.onUnsubscribed; h != nil {
			c.cb.push(func() { h(err) })
		}
	}
}
