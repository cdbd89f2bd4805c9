package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
)

// User is a user as hooks send and receive it: the protocol's user.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Color string `json:"color,omitempty"`
}

// Transports a request may come by, as requests name them.
const (
	TransportWebSocket = "websocket"
	TransportHTTP      = "http"
)

// Handshake is what of the WebSocket handshake the connect hook receives:
// the cookies and headers the config's forward lists, those present only.
type Handshake struct {
	Cookies map[string]string `json:"cookies,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Handshake picks from the WebSocket upgrade request r what the config
// forwards to the connect hook. Take it in the upgrade handler (r is gone
// afterwards). With nothing to forward it returns the zero Handshake
// without allocating.
func (c *Caller) Handshake(r *http.Request) Handshake {
	var hs Handshake
	if c == nil || c.hooks[HookConnect] == nil {
		return hs
	}
	for _, name := range c.cookies {
		if ck, err := r.Cookie(name); err == nil {
			if hs.Cookies == nil {
				hs.Cookies = make(map[string]string)
			}
			hs.Cookies[name] = ck.Value
		}
	}
	for _, name := range c.headers {
		if v := r.Header.Values(name); len(v) > 0 {
			if hs.Headers == nil {
				hs.Headers = make(map[string]string)
			}
			hs.Headers[name] = strings.Join(v, ", ")
		}
	}
	return hs
}

// ConnectRequest is the connect hook's request body.
type ConnectRequest struct {
	// ClientID is the id the server gave the connection.
	ClientID string `json:"client_id"`
	// Token is the connect frame's token as sent (a JWT, an opaque token,
	// or empty); the server does not verify it when the hook is on.
	Token string `json:"token,omitempty"`
	// Client is the connect frame's client name ("tandem-js/1").
	Client string `json:"client,omitempty"`
	// RemoteAddr is the client's address (after trusted proxies).
	RemoteAddr string `json:"remote_addr,omitempty"`
	Handshake
}

// ConnectResult is the backend's yes to a connect.
type ConnectResult struct {
	// User always has an id, a name (the id if the backend gave none) and
	// a colour (the protocol's colour of the id if it gave none).
	User User
	// Grants are `action:pattern` strings, valid for auth.ParseGrants
	// (checked here). None: the connection may do nothing a grant allows.
	Grants []string
	// ExpiresAt is when the connection's rights end (zero: never); the
	// server then refreshes (refresh hook) or closes with 4001.
	ExpiresAt time.Time
	// Data is JSON for the connected frame's `data`, or nil.
	Data json.RawMessage
}

type connectAnswer struct {
	answerBase
	User      *User           `json:"user"`
	Grants    []string        `json:"grants"`
	ExpiresAt *time.Time      `json:"expires_at"`
	Data      json.RawMessage `json:"data"`
}

// Connect asks the backend who a new connection is. The backend decides
// for every connect, with a token or without: the server does not verify
// the token itself while the hook is on. It returns the result, or a
// *Refusal (unauthorized unless the backend said otherwise: send the
// error frame and close with 4001), or a *Failure. With policy allow, the
// failure matches ErrFallback: the server then verifies the token itself
// as it does without the hook (and so, in production mode, refuses a
// connection whose token it cannot verify). ErrNotConfigured when off.
func (c *Caller) Connect(ctx context.Context, req ConnectRequest) (ConnectResult, error) {
	if !c.Enabled(HookConnect) {
		return ConnectResult{}, ErrNotConfigured
	}
	hk := c.hooks[HookConnect]
	var ans connectAnswer
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return ConnectResult{}, err
	}
	if ans.User == nil {
		return ConnectResult{}, c.badAnswer(hk, errors.New(`no "user" in the answer`))
	}
	res := ConnectResult{User: *ans.User, Grants: ans.Grants}
	if err := c.checkIdentity(&res.User, res.Grants, ans.ExpiresAt, &res.ExpiresAt); err != nil {
		return ConnectResult{}, c.badAnswer(hk, err)
	}
	res.Data = compactData(ans.Data)
	return res, nil
}

// RefreshRequest is the refresh hook's request body.
type RefreshRequest struct {
	// User is who the connection is now.
	User     User   `json:"user"`
	ClientID string `json:"client_id"`
	// Token is the refresh frame's token; empty when the server refreshes
	// on its own because the connection's rights expire.
	Token string `json:"token,omitempty"`
}

// RefreshResult is the backend's yes to a refresh: the connection's new
// rights, which replace the old ones at once.
type RefreshResult struct {
	// User is the request's user, or the answer's (the same id, perhaps a
	// new name or colour).
	User      User
	Grants    []string
	ExpiresAt time.Time
}

type refreshAnswer struct {
	answerBase
	User      *User      `json:"user"`
	Grants    []string   `json:"grants"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Refresh asks the backend to renew a connection's rights. It returns the
// new grants and expiry, a *Refusal (unauthorized by default: send the
// error and close with 4001), or a *Failure; with policy allow the
// failure matches ErrFallback, and the server does what it does without
// the hook (verifies the frame's token, or closes at expiry).
// ErrNotConfigured when off.
func (c *Caller) Refresh(ctx context.Context, req RefreshRequest) (RefreshResult, error) {
	if !c.Enabled(HookRefresh) {
		return RefreshResult{}, ErrNotConfigured
	}
	hk := c.hooks[HookRefresh]
	var ans refreshAnswer
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return RefreshResult{}, err
	}
	res := RefreshResult{User: req.User, Grants: ans.Grants}
	if ans.User != nil {
		if ans.User.ID != req.User.ID {
			return RefreshResult{}, c.badAnswer(hk, fmt.Errorf("the answer's user %q is not the connection's", ans.User.ID))
		}
		res.User = *ans.User
	}
	if err := c.checkIdentity(&res.User, res.Grants, ans.ExpiresAt, &res.ExpiresAt); err != nil {
		return RefreshResult{}, c.badAnswer(hk, err)
	}
	return res, nil
}

// SubscribeRequest is the subscribe hook's request body.
type SubscribeRequest struct {
	User     User   `json:"user,omitzero"`
	ClientID string `json:"client_id,omitempty"`
	Channel  string `json:"channel"`
	// Transport is "websocket" (a subscribe frame) or "http" (a user
	// reading the channel's history or presence).
	Transport string `json:"transport"`
}

// SubscribeResult is the backend's yes to a subscription.
type SubscribeResult struct {
	// Data is JSON for the subscribed frame's `data`, or nil.
	Data json.RawMessage
	// Failure is set when the backend failed and the policy allowed the
	// subscription (for the log); Data is then nil.
	Failure *Failure
}

type dataAnswer struct {
	answerBase
	Data json.RawMessage `json:"data"`
}

// Subscribe asks the backend whether a subscription may go on; call it
// after the grants allowed it. It returns the result (perhaps with data
// for `subscribed`), a *Refusal (forbidden by default), or a *Failure
// with policy refuse. With policy allow a failure allows, noted in
// Result.Failure. When the hook is off it allows at once, at no cost.
func (c *Caller) Subscribe(ctx context.Context, req SubscribeRequest) (SubscribeResult, error) {
	if !c.Enabled(HookSubscribe) {
		return SubscribeResult{}, nil
	}
	hk := c.hooks[HookSubscribe]
	var ans dataAnswer
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return allowed[SubscribeResult](err, func(f *Failure) SubscribeResult { return SubscribeResult{Failure: f} })
	}
	return SubscribeResult{Data: compactData(ans.Data)}, nil
}

// PublishRequest is the publish hook's request body.
type PublishRequest struct {
	// User is the publisher; absent for an API key's broadcast.
	User     User   `json:"user,omitzero"`
	ClientID string `json:"client_id,omitempty"`
	// APIKey names the API key of a POST /api/broadcast (its config name).
	APIKey    string          `json:"api_key,omitempty"`
	Channel   string          `json:"channel"`
	Event     string          `json:"event,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Ephemeral bool            `json:"ephemeral,omitempty"`
	// Transport is "websocket" or "http".
	Transport string `json:"transport"`
}

// PublishResult is the backend's yes to a message.
type PublishResult struct {
	// Data replaces the message's data when not nil (the backend's
	// database id added, the text moderated). The server checks it against
	// the namespace's max_payload like any data.
	Data json.RawMessage
	// Failure is set when the backend failed and the policy allowed the
	// message unchanged (for the log).
	Failure *Failure
}

// Publish asks the backend whether a message may be stored and broadcast;
// call it after the grants and rate limits allowed it, before the hub
// stores it. It returns the result (perhaps with replacement data), a
// *Refusal (forbidden by default), or a *Failure with policy refuse. With
// policy allow a failure lets the message through unchanged. When the
// hook is off it allows at once, at no cost.
func (c *Caller) Publish(ctx context.Context, req PublishRequest) (PublishResult, error) {
	if !c.Enabled(HookPublish) {
		return PublishResult{}, nil
	}
	hk := c.hooks[HookPublish]
	var ans dataAnswer
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return allowed[PublishResult](err, func(f *Failure) PublishResult { return PublishResult{Failure: f} })
	}
	return PublishResult{Data: compactData(ans.Data)}, nil
}

// DocLoadRequest is the doc_load hook's request body.
type DocLoadRequest struct {
	Doc string `json:"doc"`
	// User and ClientID name who opened the document, when a client did.
	User     User   `json:"user,omitzero"`
	ClientID string `json:"client_id,omitempty"`
}

// DocLoadResult is the initial content the backend gives a document.
type DocLoadResult struct {
	Content string
}

type docLoadAnswer struct {
	answerBase
	Content *string `json:"content"`
}

// DocLoad asks the backend for a document Tandem does not have, before the
// session would create it. It returns its content (the document is
// created with it), a *Refusal (not_found by default: the open fails so),
// or a *Failure; with policy allow the failure matches ErrFallback and
// the server creates the document empty, as without the hook (beware:
// the backend's copy is then replaced by doc_store). ErrNotConfigured
// when off.
func (c *Caller) DocLoad(ctx context.Context, req DocLoadRequest) (DocLoadResult, error) {
	if !c.Enabled(HookDocLoad) {
		return DocLoadResult{}, ErrNotConfigured
	}
	hk := c.hooks[HookDocLoad]
	var ans docLoadAnswer
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return DocLoadResult{}, err
	}
	if ans.Content == nil {
		return DocLoadResult{}, c.badAnswer(hk, errors.New(`no "content" in the answer (refuse with {"error":{"code":"not_found"}} when there is no such document)`))
	}
	return DocLoadResult{Content: *ans.Content}, nil
}

// DocOpenRequest is the doc_open hook's request body.
type DocOpenRequest struct {
	User     User   `json:"user,omitzero"`
	ClientID string `json:"client_id,omitempty"`
	Doc      string `json:"doc"`
}

// DocOpenResult is the backend's yes to opening a document.
type DocOpenResult struct {
	// Failure is set when the backend failed and the policy allowed the
	// open (for the log).
	Failure *Failure
}

// DocOpen asks the backend whether a document may be opened; call it after
// the grants allowed it. It returns nil, a *Refusal (forbidden by
// default), or a *Failure with policy refuse; with policy allow a failure
// allows. When the hook is off it allows at once, at no cost.
func (c *Caller) DocOpen(ctx context.Context, req DocOpenRequest) (DocOpenResult, error) {
	if !c.Enabled(HookDocOpen) {
		return DocOpenResult{}, nil
	}
	hk := c.hooks[HookDocOpen]
	var ans answerBase
	if err := c.call(ctx, hk, hk.url, req, &ans); err != nil {
		return allowed[DocOpenResult](err, func(f *Failure) DocOpenResult { return DocOpenResult{Failure: f} })
	}
	return DocOpenResult{}, nil
}

// RPCRequest is the rpc hook's request body.
type RPCRequest struct {
	User     User            `json:"user,omitzero"`
	ClientID string          `json:"client_id,omitempty"`
	Method   string          `json:"method"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// RPCResult is the backend's answer to an rpc.
type RPCResult struct {
	// Data is the answer's JSON; `null` when it gave none.
	Data json.RawMessage
}

// MaxMethodLen bounds an rpc method's name, in bytes.
const MaxMethodLen = 128

// ValidMethod checks an rpc method name: 1 to MaxMethodLen bytes of
// letters, digits and _-.:/ .
func ValidMethod(m string) error {
	if m == "" || len(m) > MaxMethodLen || !validMethodChars(m) {
		return fmt.Errorf("rpc method %q: want 1 to %d letters, digits or _-.:/", m, MaxMethodLen)
	}
	return nil
}

func validMethodChars(m string) bool {
	for i := 0; i < len(m); i++ {
		b := m[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("_-.:/", b) >= 0) {
			return false
		}
	}
	return true
}

// RPC sends a client's rpc to the backend its method routes to. It returns
// the answer's data, a *Refusal (the backend's, not_found by default; or
// bad_request for a bad method name, or not_found for a method no route
// takes, both without a request), or a *Failure (the policy is always
// refuse). ErrNotConfigured when off.
func (c *Caller) RPC(ctx context.Context, req RPCRequest) (RPCResult, error) {
	if !c.Enabled(HookRPC) {
		return RPCResult{}, ErrNotConfigured
	}
	hk := c.hooks[HookRPC]
	if err := ValidMethod(req.Method); err != nil {
		return RPCResult{}, &Refusal{Hook: HookRPC, Code: proto.CodeBadRequest, Message: err.Error()}
	}
	u := hk.url
	if len(c.routes) > 0 {
		u = ""
		for _, rt := range c.routes {
			if strings.HasPrefix(req.Method, rt.prefix) {
				u = rt.url
				break
			}
		}
		if u == "" {
			return RPCResult{}, &Refusal{Hook: HookRPC, Code: proto.CodeNotFound, Message: fmt.Sprintf("no such method %q", req.Method)}
		}
	}
	var ans dataAnswer
	if err := c.call(ctx, hk, u, req, &ans); err != nil {
		return RPCResult{}, err
	}
	data := compactData(ans.Data)
	if data == nil {
		data = json.RawMessage("null")
	}
	return RPCResult{Data: data}, nil
}

// allowed returns, for a hook whose policy may allow, the allowed result
// when err is an allowed failure, and err otherwise.
func allowed[R any](err error, allow func(*Failure) R) (R, error) {
	var f *Failure
	if errors.As(err, &f) && f.Allowed {
		return allow(f), nil
	}
	var zero R
	return zero, err
}

// badAnswer is a Failure for an answer that parsed but is not valid, with
// the policy applied and counted.
func (c *Caller) badAnswer(hk *hook, err error) error {
	hk.m.failures[FailBadAnswer].Inc()
	return c.applyPolicy(hk, &Failure{Hook: hk.h, Kind: FailBadAnswer, Err: err})
}

// checkIdentity validates a connect or refresh answer's user, grants and
// expiry, fills the user's defaults and sets *exp.
func (c *Caller) checkIdentity(u *User, grants []string, expiresAt *time.Time, exp *time.Time) error {
	if err := checkText("user.id", u.ID, true); err != nil {
		return err
	}
	if err := checkText("user.name", u.Name, false); err != nil {
		return err
	}
	if u.Name == "" {
		u.Name = u.ID
	}
	switch {
	case u.Color == "":
		u.Color = proto.ColorOf(u.ID)
	case !validColor(u.Color):
		return fmt.Errorf("user.color %q: want #rgb or #rrggbb", u.Color)
	}
	if _, err := auth.ParseGrants(grants); err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	if expiresAt != nil && !expiresAt.IsZero() {
		if !expiresAt.After(c.now()) {
			return fmt.Errorf("expires_at %s is not in the future", expiresAt.Format(time.RFC3339))
		}
		*exp = *expiresAt
	}
	return nil
}

// maxText bounds a user's id and name, in bytes.
const maxText = 255

// checkText checks a user's id or name: at most 255 bytes, no control
// characters; required says whether it may be empty.
func checkText(field, s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%s: empty", field)
	case len(s) > maxText:
		return fmt.Errorf("%s: over %d bytes", field, maxText)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%s %q: control characters or invalid UTF-8", field, s)
	}
	return nil
}

// validColor reports whether s is #rgb or #rrggbb.
func validColor(s string) bool {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i] | 0x20
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return false
		}
	}
	return true
}

// compactData returns a backend's data without insignificant whitespace
// (no newline may reach a frame: frames are newline-separated), or nil
// for absent or null data.
func compactData(d json.RawMessage) json.RawMessage {
	if len(d) == 0 || bytes.Equal(d, []byte("null")) {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return nil // cannot happen: Unmarshal checked it
	}
	return b.Bytes()
}
