package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
)

// claims returns valid claims for user u1, to spoil one way or another.
func claims() auth.Claims {
	now := time.Now()
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: "u1", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Name: "Una", Allow: []string{"subscribe:*"},
	}
}

func sign(tb testing.TB, method jwt.SigningMethod, key any, c auth.Claims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// handmade builds a token with any header, signed with HMAC-SHA256 over the
// test secret: an RS256 header with an HMAC signature is the classic
// algorithm-confusion attack.
func handmade(tb testing.TB, header string, c auth.Claims) string {
	tb.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// TestAuthRejections: every way a token can fail gets an unauthorized
// error and close 4001.
func TestAuthRejections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret())
	secret := []byte(testSecret)
	for _, tc := range []struct {
		name  string
		token func() string
	}{
		{"alg none", func() string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())
		}},
		{"unexpected algorithm HS512", func() string { return sign(t, jwt.SigningMethodHS512, secret, claims()) }},
		{"RS256 header, HMAC signature", func() string { return handmade(t, `{"alg":"RS256","typ":"JWT"}`, claims()) }},
		{"bad signature", func() string { return sign(t, jwt.SigningMethodHS256, []byte("another secret"), claims()) }},
		{"expired", func() string {
			c := claims()
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			return sign(t, jwt.SigningMethodHS256, secret, c)
		}},
		{"not yet valid", func() string {
			c := claims()
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
			return sign(t, jwt.SigningMethodHS256, secret, c)
		}},
		{"missing sub", func() string {
			c := claims()
			c.Subject = ""
			return sign(t, jwt.SigningMethodHS256, secret, c)
		}},
		{"bad grant", func() string {
			c := claims()
			c.Allow = []string{"fly:*"}
			return sign(t, jwt.SigningMethodHS256, secret, c)
		}},
		{"garbage", func() string { return "not-a-jwt" }},
		{"two segments", func() string { return "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9" }},
		{"empty", func() string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts.URL)
			f := r.request(map[string]any{"type": "connect", "token": tc.token()})
			if f.Type != proto.TypeError || f.Code != proto.CodeUnauthorized {
				t.Fatalf("connect: got %s, want error unauthorized", f.Raw)
			}
			r.expectClose(proto.CloseUnauthorized, 15*time.Second)
		})
	}

	// The control: a good token connects.
	r := connectRaw(t, ts.URL, sign(t, jwt.SigningMethodHS256, secret, claims()), "")
	r.alive()

	// The Go client reports the rejection from Dial.
	_, err := client.Dial(ctxT(t), client.Config{URL: ts.URL, Token: "not-a-jwt"})
	var ce *client.Error
	if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &ce) || ce.Code != proto.CodeUnauthorized {
		t.Fatalf("Dial with a bad token: %v, want unauthorized", err)
	}
}

// TestDevModeRejectsTokens: a development-mode server verifies nothing, so
// it refuses a token rather than ignore it.
func TestDevModeRejectsTokens(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := dialRaw(t, ts.URL)
	if f := r.request(map[string]any{"type": "connect", "token": mint(t, "u1", "Una", time.Hour)}); f.Code != proto.CodeUnauthorized {
		t.Fatalf("connect with a token in development mode: %s", f.Raw)
	}
	r.expectClose(proto.CloseUnauthorized, 15*time.Second)
}

// TestGrants: without the grant a client cannot subscribe, publish or use
// presence; private channels (user:<id>) belong to their user.
func TestGrants(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret())
	alice := connectRaw(t, ts.URL, mint(t, "alice", "Alice", time.Hour,
		"subscribe:chat:*", "publish:chat:*", "presence:chat:*"), "")
	bob := connectRaw(t, ts.URL, mint(t, "bob", "Bob", time.Hour, "subscribe:chat:*"), "")

	if f := bob.request(map[string]any{"type": "subscribe", "channel": "user:bob"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("bob subscribes to his own user:bob: %s", f.Raw)
	}
	for _, tc := range []struct {
		name string
		req  map[string]any
		code string
	}{
		{"subscribe to another's private channel", map[string]any{"type": "subscribe", "channel": "user:bob"}, proto.CodeForbidden},
		{"publish to another's private channel", map[string]any{"type": "publish", "channel": "user:bob", "data": map[string]any{}}, proto.CodeForbidden},
		{"presence on another's private channel", map[string]any{"type": "presence", "channel": "user:bob", "state": map[string]any{}}, proto.CodeForbidden},
		{"publish to one's own private channel", map[string]any{"type": "publish", "channel": "user:alice", "data": map[string]any{}}, proto.CodeForbidden},
		{"subscribe without a grant", map[string]any{"type": "subscribe", "channel": "dashboard:sales"}, proto.CodeForbidden},
		{"publish without a grant", map[string]any{"type": "publish", "channel": "news:today", "data": map[string]any{}}, proto.CodeForbidden},
		{"publish where only the server publishes", map[string]any{"type": "publish", "channel": "dashboard:sales", "data": map[string]any{}}, proto.CodeForbidden},
	} {
		f := alice.request(tc.req)
		if f.Type != proto.TypeError || f.Code != tc.code {
			t.Errorf("%s: got %s, want error %s", tc.name, f.Raw, tc.code)
		}
	}
	if f := alice.request(map[string]any{"type": "subscribe", "channel": "user:alice"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("alice subscribes to her own user:alice: %s", f.Raw)
	}

	// Presence needs its grant: bob (no presence grant) neither sees nor
	// appears in presence, and may not set it.
	if f := alice.request(map[string]any{"type": "subscribe", "channel": "chat:g"}); f.Type != proto.TypeSubscribed || len(f.Members) != 1 {
		t.Fatalf("alice subscribes to chat:g: %s", f.Raw)
	}
	f := bob.request(map[string]any{"type": "subscribe", "channel": "chat:g"})
	if f.Type != proto.TypeSubscribed || len(f.Members) != 0 {
		t.Fatalf("bob without a presence grant subscribes: %s; want no member list", f.Raw)
	}
	if f := bob.request(map[string]any{"type": "presence", "channel": "chat:g", "state": map[string]any{"x": 1}}); f.Code != proto.CodeForbidden {
		t.Fatalf("bob sets presence without the grant: %s", f.Raw)
	}
	carl := connectRaw(t, ts.URL, mint(t, "carl", "Carl", time.Hour, "subscribe:chat:*", "presence:chat:*"), "")
	f = carl.request(map[string]any{"type": "subscribe", "channel": "chat:g"})
	if len(f.Members) != 2 {
		t.Fatalf("carl sees %d members (%s), want alice and himself only", len(f.Members), f.Raw)
	}
	// alice hears carl join, never bob.
	j := alice.next("a join", func(f frame) bool { return f.Type == proto.TypePresence })
	if j.Event != "join" || j.Member == nil || j.Member.User.ID != "carl" {
		t.Fatalf("alice got %s, want carl's join", j.Raw)
	}
}

// TestRefreshFewerGrants: a refreshed token with fewer grants ends the
// subscriptions it no longer allows, at once; a token for another user is
// refused with 4001.
func TestRefreshFewerGrants(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret())
	ctx := ctxT(t)
	both := mint(t, "dora", "Dora", time.Hour, "subscribe:chat:*", "subscribe:news:*", "publish:chat:*")
	fewer := mint(t, "dora", "Dora", time.Hour, "subscribe:chat:*", "publish:chat:*")

	// Raw: the frames.
	r := connectRaw(t, ts.URL, both, "")
	r.request(map[string]any{"type": "subscribe", "channel": "news:a"})
	r.request(map[string]any{"type": "subscribe", "channel": "chat:a"})
	r.send(map[string]any{"id": 100, "type": "refresh", "token": fewer})
	u := r.next("unsubscribed", func(f frame) bool { return f.Type == proto.TypeUnsubscribed })
	if u.Channel != "news:a" || u.Reason != "forbidden" {
		t.Fatalf("got %s, want news:a unsubscribed as forbidden", u.Raw)
	}
	if f := r.next("refreshed", func(f frame) bool { return f.ID != nil && *f.ID == 100 }); f.Type != proto.TypeRefreshed {
		t.Fatalf("refresh answered %s", f.Raw)
	}
	r.alive()

	// The Go client: the subscription ends with forbidden; the other
	// lives on.
	c := dial(t, ts.URL, func(c *client.Config) { c.Token = both })
	gone := make(chan error, 1)
	news, err := c.Subscribe(ctx, "news:b", nil, client.OnUnsubscribed(func(err error) { gone <- err }))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	if _, err := c.Subscribe(ctx, "chat:b", col.handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, fewer); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if err := recv(t, gone, 15*time.Second, "unsubscribed"); !errors.As(err, &ce) || ce.Code != proto.CodeForbidden {
		t.Fatalf("news:b ended with %v, want forbidden", err)
	}
	<-news.Done()
	if _, err := c.Publish(ctx, "chat:b", "m", map[string]int{"x": 1}, client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 1, 15*time.Second)

	// Another user's token is refused.
	r.send(map[string]any{"id": 101, "type": "refresh", "token": mint(t, "eve", "Eve", time.Hour, "subscribe:*")})
	if f := r.next("refresh answer", func(f frame) bool { return f.ID != nil && *f.ID == 101 }); f.Code != proto.CodeUnauthorized {
		t.Fatalf("refresh as another user: %s", f.Raw)
	}
	r.expectClose(proto.CloseUnauthorized, 15*time.Second)
}

// TestTokenExpiry: the server closes with 4001 when the token expires, and
// the Go client without a TokenFunc stops instead of reconnecting.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret())
	// Tokens carry whole seconds: a 2s lifetime ends 1 to 2 seconds on.
	short := func() string { return mint(t, "tim", "Tim", 2*time.Second, "subscribe:chat:*") }

	r := connectRaw(t, ts.URL, short(), "")
	r.expectClose(proto.CloseUnauthorized, 15*time.Second)

	statuses := make(chan client.Status, 8)
	var final error
	c := dial(t, ts.URL, func(c *client.Config) {
		c.Token = short()
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusDisconnected {
				final = err
			}
			statuses <- s
		}
	})
	for recv(t, statuses, 15*time.Second, "the client to stop") != client.StatusDisconnected {
	}
	if !errors.Is(final, client.ErrUnauthorized) {
		t.Fatalf("client stopped with %v, want ErrUnauthorized", final)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("ping after the client stopped: %v", err)
	}
}
