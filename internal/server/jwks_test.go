package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/auth/authtest"
	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/internal/server"
)

// jwksAudience is the aud the JWKS tests' server requires.
const jwksAudience = "tandem-jwks-test"

// withJWKS verifies tokens against the provider's keys (beside HS256 with
// the test secret) and requires jwksAudience; minRefresh, when not zero,
// sets auth.jwks_min_refresh.
func withJWKS(p *authtest.Provider, minRefresh time.Duration) serverOpt {
	return func(c *server.Config) {
		c.JWTSecret = testSecret
		c.JWKSURL = p.URL
		c.File.Auth.Audience = jwksAudience
		c.File.Auth.JWKSMinRefresh = server.Duration(minRefresh)
	}
}

// idpClaims are the claims an identity provider would issue for user.
func idpClaims(user string, allow ...string) auth.Claims {
	now := time.Now()
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: user, Audience: jwt.ClaimStrings{jwksAudience}, Issuer: "https://id.example.com/",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Name: user, Allow: allow,
	}
}

// TestJWKSConnect: tokens signed with RS256, ES256 and EdDSA keys from the
// provider's JWKS connect over the real WebSocket and call the HTTP API,
// beside HS256 tokens; a token signed by a key the provider does not
// publish is refused with 4001.
func TestJWKSConnect(t *testing.T) {
	t.Parallel()
	keys := []*authtest.Key{authtest.NewKey(t, "RS256", "rsa-1"), authtest.NewKey(t, "ES256", "ec-1"), authtest.NewKey(t, "EdDSA", "ed-1")}
	p := authtest.NewProvider(t, keys...)
	ts := startServer(t, withJWKS(p, 0))
	for _, k := range keys {
		user := "user-" + k.Method.Alg()
		r := dialRaw(t, ts.URL)
		f := r.request(map[string]any{"type": "connect", "token": k.Sign(t, idpClaims(user, "subscribe:chat:*"))})
		var u proto.User
		if f.Type != proto.TypeConnected || json.Unmarshal(f.User, &u) != nil || u.ID != user {
			t.Fatalf("%s: connect answered %s", k.Method.Alg(), f.Raw)
		}
		if f := r.request(map[string]any{"type": "subscribe", "channel": "chat:jwks"}); f.Type != proto.TypeSubscribed {
			t.Fatalf("%s: subscribe answered %s", k.Method.Alg(), f.Raw)
		}
		if status, out := authHTTP(t, ts, "GET", "/api/docs", k.Sign(t, idpClaims("ops", "admin:*")), nil); status != 200 {
			t.Fatalf("%s: HTTP with an admin token: %d %v", k.Method.Alg(), status, out)
		}
	}
	hsTok, err := mustVerifier(t, auth.Config{Secret: []byte(testSecret), Audience: jwksAudience}).Mint("hana", "Hana", nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	connectRaw(t, ts.URL, hsTok, "").alive()
	refusedConnect(t, ts.URL, mint(t, "nora", "Nora", time.Hour), "token audience not accepted") // HS256 without the aud

	stranger := authtest.NewKey(t, "ES256", "stranger")
	refusedConnect(t, ts.URL, stranger.Sign(t, idpClaims("mallory", "admin:*")), "token signing key unknown")
	if status, out := authHTTP(t, ts, "GET", "/api/docs", stranger.Sign(t, idpClaims("mallory", "admin:*")), nil); status != 401 || out["message"] != "token signing key unknown" {
		t.Fatalf("HTTP with a stranger's token: %d %v", status, out)
	}
}

// mustVerifier builds a verifier; the test's cleanup closes it.
func mustVerifier(tb testing.TB, c auth.Config) *auth.Verifier {
	tb.Helper()
	v, err := auth.New(c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	return v
}

// TestJWKSRotation: the provider replaces its key; a token naming the new
// kid connects after the refresh it causes, and the old key is gone.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := authtest.NewKey(t, "ES256", "2026-01"), authtest.NewKey(t, "ES256", "2026-02")
	p := authtest.NewProvider(t, oldKey)
	ts := startServer(t, withJWKS(p, 0))
	connectRaw(t, ts.URL, oldKey.Sign(t, idpClaims("ann")), "").alive()

	p.SetKeys(newKey)
	connectRaw(t, ts.URL, newKey.Sign(t, idpClaims("ann")), "").alive()
	refusedConnect(t, ts.URL, oldKey.Sign(t, idpClaims("ann")), "token signing key unknown")
	if n := p.Fetches(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2: one at start, one for the new kid", n)
	}
}

// TestJWKSBurstBounded: a burst of tokens naming random kids, sent at once
// on 40 connections, costs at most one JWKS fetch beyond the one at start
// (the default jwks_min_refresh is a minute, far longer than the test),
// and every such token is refused while good tokens keep connecting.
func TestJWKSBurstBounded(t *testing.T) {
	t.Parallel()
	key := authtest.NewKey(t, "EdDSA", "ed-1")
	p := authtest.NewProvider(t, key)
	ts := startServer(t, withJWKS(p, 0))
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			k := authtest.NewKey(t, "EdDSA", fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()))
			r := dialRaw(t, ts.URL)
			r.send(map[string]any{"id": 1, "type": "connect", "token": k.Sign(t, idpClaims("mallory", "admin:*"))})
			f, err := r.read(15 * time.Second)
			switch {
			case err != nil:
				errs <- fmt.Errorf("connect %d: %v", i, err)
			case f.Code != proto.CodeUnauthorized || f.Message != "token signing key unknown":
				errs <- fmt.Errorf("connect %d: %s", i, f.Raw)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := p.Fetches(); got > 2 {
		t.Fatalf("%d JWKS fetches for %d unknown kids; want at most 2 (start, and one refresh per minute)", got, n)
	}
	connectRaw(t, ts.URL, key.Sign(t, idpClaims("ann")), "").alive()
}

// TestJWKSDownAtStart: the server starts while the provider is down,
// refuses the provider's tokens until its keys load, and takes them once
// the provider is back (a refresh at most jwks_min_refresh after the last).
func TestJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	key := authtest.NewKey(t, "RS256", "rsa-1")
	p := authtest.NewProvider(t, key)
	p.SetDown(true)
	ts := startServer(t, withJWKS(p, 100*time.Millisecond))
	refusedConnect(t, ts.URL, key.Sign(t, idpClaims("ann")), "token signing key unknown")
	hsTok, err := mustVerifier(t, auth.Config{Secret: []byte(testSecret), Audience: jwksAudience}).Mint("hana", "Hana", nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	connectRaw(t, ts.URL, hsTok, "").alive() // HS256 works meanwhile

	p.SetDown(false)
	connectRaw(t, ts.URL, key.Sign(t, idpClaims("ann")), "").alive()
	if n := p.Fetches(); n != 3 {
		t.Fatalf("%d JWKS fetches, want 3: at start, for the first token, for the second", n)
	}
}
