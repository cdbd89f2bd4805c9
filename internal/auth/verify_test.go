package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/storage"
)

const (
	secret   = "auth-test-secret-0123456789abcdef"
	audience = "tandem-test"
	issuer   = "https://id.example.com/"
)

// t0 is the tests' clock: now, for every verifier here.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

// good returns valid claims for u1, to spoil one way or another.
func good() auth.Claims {
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: "u1", ID: "j1", Audience: jwt.ClaimStrings{audience}, Issuer: issuer,
			IssuedAt: jwt.NewNumericDate(t0.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		},
		Name: "Una", Allow: []string{"subscribe:chat:*", "write:doc:team-*"},
	}
}

// with returns good claims after edit.
func with(edit func(*auth.Claims)) auth.Claims {
	c := good()
	edit(&c)
	return c
}

func sign(tb testing.TB, method jwt.SigningMethod, key any, c auth.Claims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func hs(tb testing.TB, c auth.Claims) string {
	return sign(tb, jwt.SigningMethodHS256, []byte(secret), c)
}

// handmade builds a token from a raw header and payload, signed with
// HMAC-SHA256 over the secret whatever the header says.
func handmade(header, payload string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// protocolTerms is the form of every refusal: it speaks of the token and
// its claims, never of Go types or the JWT library.
var protocolTerms = regexp.MustCompile(`^token [a-z ]+( "[^"]*": want action:pattern with action one of [a-z, ]+)?$`)

// checkRefusal fails unless err is a refusal with exactly reason that
// matches every sentinel in kinds.
func checkRefusal(t *testing.T, err error, reason string, kinds ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %q", reason)
	}
	if err.Error() != reason {
		t.Errorf("refused with %q, want %q", err.Error(), reason)
	}
	if !protocolTerms.MatchString(err.Error()) {
		t.Errorf("message %q is not in the protocol's terms", err.Error())
	}
	for _, k := range kinds {
		if !errors.Is(err, k) {
			t.Errorf("%q does not match %v", err, k)
		}
	}
	var te *auth.TokenError
	if !errors.As(err, &te) {
		t.Errorf("%T is not a *TokenError", err)
	}
}

// TestVerify: every way a token can be good or bad, through one verifier
// with a secret, an audience, an issuer and revocations.
func TestVerify(t *testing.T) {
	rev, err := auth.LoadRevocations(context.Background(), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.RevokeToken(context.Background(), "j-revoked", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := rev.RevokeUser(context.Background(), "u-gone", t0.Add(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(auth.Config{Secret: []byte(secret), Audience: audience, Issuer: issuer, Revocations: rev, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	badGrant := `token has a bad grant "fly:*": want action:pattern with action one of read, write, comment, subscribe, publish, presence, admin`
	for _, tc := range []struct {
		name   string
		token  string
		reason string // "" for accepted
		kinds  []error
	}{
		{"good", hs(t, good()), "", nil},
		{"expired within the leeway", hs(t, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-2 * time.Second)) })), "", nil},
		{"aud among several", hs(t, with(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other", audience} })), "", nil},
		{"issued after its user's revocation", hs(t, with(func(c *auth.Claims) {
			c.Subject, c.IssuedAt = "u-gone", jwt.NewNumericDate(t0.Add(time.Second))
		})), "", nil},

		{"expired", hs(t, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour)) })), "token expired", []error{auth.ErrInvalidToken}},
		{"not yet valid", hs(t, with(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(time.Hour)) })), "token not valid yet", []error{auth.ErrInvalidToken}},
		{"expired and not yet valid", hs(t, with(func(c *auth.Claims) {
			c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(t0.Add(time.Hour)), jwt.NewNumericDate(t0.Add(-time.Hour))
		})), "token expired", []error{auth.ErrInvalidToken}},
		{"no exp", hs(t, with(func(c *auth.Claims) { c.ExpiresAt = nil })), "token has no exp", []error{auth.ErrInvalidToken}},
		{"wrong alg HS512", sign(t, jwt.SigningMethodHS512, []byte(secret), good()), "token algorithm not accepted", []error{auth.ErrInvalidToken}},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()), "token algorithm not accepted", []error{auth.ErrInvalidToken}},
		{"RS256 header, HMAC signature", handmade(`{"alg":"RS256","typ":"JWT"}`, `{"sub":"u1","exp":9999999999}`), "token algorithm not accepted", []error{auth.ErrInvalidToken}},
		{"unknown alg", handmade(`{"alg":"XS999","typ":"JWT"}`, `{"sub":"u1","exp":9999999999}`), "token algorithm not accepted", []error{auth.ErrInvalidToken}},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("another secret of the same length!"), good()), "token signature invalid", []error{auth.ErrInvalidToken}},
		{"tampered payload", func() string {
			parts := strings.Split(hs(t, good()), ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":9999999999,"allow":["admin:*"]}`))
			return strings.Join(parts, ".")
		}(), "token signature invalid", []error{auth.ErrInvalidToken}},
		{"missing sub", hs(t, with(func(c *auth.Claims) { c.Subject = "" })), "token has no sub", []error{auth.ErrNoSubject}},
		{"bad grant", hs(t, with(func(c *auth.Claims) { c.Allow = []string{"read:doc:*", "fly:*"} })), badGrant, []error{auth.ErrBadGrant}},
		{"aud mismatch", hs(t, with(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"another-app"} })), "token audience not accepted", []error{auth.ErrInvalidToken}},
		{"no aud", hs(t, with(func(c *auth.Claims) { c.Audience = nil })), "token audience not accepted", []error{auth.ErrInvalidToken}},
		{"iss mismatch", hs(t, with(func(c *auth.Claims) { c.Issuer = "https://evil.example.com/" })), "token issuer not accepted", []error{auth.ErrInvalidToken}},
		{"revoked by jti", hs(t, with(func(c *auth.Claims) { c.ID = "j-revoked" })), "token revoked", []error{auth.ErrRevoked, auth.ErrInvalidToken}},
		{"revoked with its user, issued before", hs(t, with(func(c *auth.Claims) { c.Subject = "u-gone" })), "token revoked", []error{auth.ErrRevoked}},
		{"revoked with its user, issued the same second", hs(t, with(func(c *auth.Claims) {
			c.Subject, c.IssuedAt = "u-gone", jwt.NewNumericDate(t0)
		})), "token revoked", []error{auth.ErrRevoked}},
		{"revoked with its user, no iat", hs(t, with(func(c *auth.Claims) { c.Subject, c.IssuedAt = "u-gone", nil })), "token revoked", []error{auth.ErrRevoked}},
		{"garbage", "not-a-jwt", "token malformed", []error{auth.ErrInvalidToken}},
		{"empty", "", "token malformed", []error{auth.ErrInvalidToken}},
		{"two segments", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9", "token malformed", []error{auth.ErrInvalidToken}},
		{"exp of the wrong type", handmade(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u1","exp":"tomorrow"}`), "token malformed", []error{auth.ErrInvalidToken}},
		{"allow of the wrong type", handmade(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u1","exp":9999999999,"allow":"admin:*"}`), "token malformed", []error{auth.ErrInvalidToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.token)
			if tc.reason != "" {
				checkRefusal(t, err, tc.reason, tc.kinds...)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.UserID == "" || id.TokenID != "j1" || id.Expires.IsZero() || id.IssuedAt.IsZero() {
				t.Fatalf("identity %+v", id)
			}
		})
	}

	id, err := v.Verify(hs(t, good()))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "u1" || id.Name != "Una" || !id.Expires.Equal(t0.Add(time.Hour)) || !id.IssuedAt.Equal(t0.Add(-time.Minute)) ||
		!id.Grants.Allows(auth.ActionWrite, "doc:team-x") || id.Grants.Allows(auth.ActionWrite, "doc:other") {
		t.Fatalf("identity of the good token: %+v", id)
	}
}

// TestVerifyLongLived: with AllowNoExp a token without exp is accepted and
// never expires.
func TestVerifyLongLived(t *testing.T) {
	v, err := auth.New(auth.Config{Secret: []byte(secret), AllowNoExp: true, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(hs(t, with(func(c *auth.Claims) { c.ExpiresAt = nil })))
	if err != nil || !id.Expires.IsZero() {
		t.Fatalf("long-lived token: %+v, %v", id, err)
	}
	// An exp, when there is one, still counts.
	checkRefusal(t, func() error {
		_, err := v.Verify(hs(t, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour)) })))
		return err
	}(), "token expired", auth.ErrInvalidToken)
}

// TestTokenIDWithoutJTI: a token without a jti (or with one too long to
// keep) is named by a digest of itself, so that it can be revoked alone.
func TestTokenIDWithoutJTI(t *testing.T) {
	rev, _ := auth.LoadRevocations(context.Background(), nil, clock)
	v, err := auth.New(auth.Config{Secret: []byte(secret), Revocations: rev, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	a := hs(t, with(func(c *auth.Claims) { c.ID = "" }))
	b := hs(t, with(func(c *auth.Claims) { c.ID, c.Name = strings.Repeat("j", 300), "Other" }))
	ia, err := v.Verify(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := v.Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ia.TokenID, "#") || !strings.HasPrefix(ib.TokenID, "#") || ia.TokenID == ib.TokenID {
		t.Fatalf("token ids %q and %q: want two distinct digests", ia.TokenID, ib.TokenID)
	}
	if err := rev.RevokeToken(context.Background(), ia.TokenID, ia.Expires); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(a)
	checkRefusal(t, err, "token revoked", auth.ErrRevoked)
	if _, err := v.Verify(b); err != nil {
		t.Fatalf("the other token of the same user: %v", err)
	}
}

// TestMint: Mint's tokens carry a fresh jti, iat, and the verifier's
// audience and issuer, and verify; without a ttl they have no exp and are
// refused by default.
func TestMint(t *testing.T) {
	v, err := auth.New(auth.Config{Secret: []byte(secret), Audience: audience, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ids := map[string]bool{}
	for range 2 {
		tok, err := v.Mint("u1", "Una", []string{"read:doc:*"}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		id, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("a minted token: %v", err)
		}
		if len(id.TokenID) != 32 || id.IssuedAt.Unix() != now.Unix() {
			t.Fatalf("minted identity %+v: want a 32-digit jti and iat now", id)
		}
		ids[id.TokenID] = true
	}
	if len(ids) != 2 {
		t.Fatal("two mints gave the same jti")
	}
	tok, err := v.Mint("u1", "Una", nil, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(tok)
	checkRefusal(t, err, "token has no exp", auth.ErrInvalidToken)
	if _, err := auth.NewVerifier(nil).Mint("u1", "", nil, time.Hour, now); err == nil {
		t.Fatal("minted without a secret")
	}
}

// TestNewErrors: a verifier needs a secret or a JWKS URL, and a JWKS URL
// must be https (or http to a loopback address).
func TestNewErrors(t *testing.T) {
	for _, c := range []auth.Config{
		{},
		{JWKSURL: "http://id.example.com/jwks.json"},
		{JWKSURL: "https://"},
		{JWKSURL: "/jwks.json"},
		{JWKSURL: "ftp://127.0.0.1/jwks.json"},
	} {
		if v, err := auth.New(c); err == nil {
			v.Close()
			t.Errorf("New(%+v): no error", c)
		}
	}
	for _, u := range []string{"https://id.example.com/jwks.json", "http://127.0.0.1:9/jwks.json", "http://localhost/jwks.json", "http://[::1]:8/k"} {
		if err := auth.CheckJWKSURL(u); err != nil {
			t.Errorf("CheckJWKSURL(%q): %v", u, err)
		}
	}
}

// TestRevocationsPersist: revocations written through a real store come
// back after it is closed and reopened; expired token entries do not.
func TestRevocationsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	open := func() *storage.DB {
		db, err := storage.Open(path, storage.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	ctx := context.Background()
	db := open()
	rev, err := auth.LoadRevocations(ctx, db, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.RevokeToken(ctx, "j-soon", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := rev.RevokeToken(ctx, "j-later", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if in, err := rev.RevokeUser(ctx, "u-gone", t0.Add(1500*time.Millisecond)); err != nil || !in.Equal(t0.Add(time.Second)) {
		t.Fatalf("RevokeUser: %v, %v; want the time truncated to its second", in, err)
	}
	if in, _ := rev.RevokeUser(ctx, "u-gone", t0.Add(-time.Hour)); !in.Equal(t0.Add(time.Second)) {
		t.Fatalf("an earlier revocation moved it back to %v", in)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open()
	defer db.Close()
	later := func() time.Time { return t0.Add(10 * time.Minute) } // j-soon has expired
	rev, err = auth.LoadRevocations(ctx, db, later)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(auth.Config{Secret: []byte(secret), Revocations: rev, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		jti, sub string
		iat      time.Time
		revoked  bool
	}{
		{"j-later", "u1", t0, true},
		{"j-soon", "u1", t0, false}, // its entry went with its expiry (the token is long-lived here)
		{"j-other", "u-gone", t0.Add(time.Second), true},
		{"j-other", "u-gone", t0.Add(2 * time.Second), false},
	} {
		c := with(func(c *auth.Claims) {
			c.ID, c.Subject, c.IssuedAt, c.ExpiresAt = tc.jti, tc.sub, jwt.NewNumericDate(tc.iat), jwt.NewNumericDate(t0.Add(2*time.Hour))
		})
		_, err := v.Verify(hs(t, c))
		if got := errors.Is(err, auth.ErrRevoked); got != tc.revoked {
			t.Errorf("%s of %s issued %v after the restart: %v, want revoked %v", tc.jti, tc.sub, tc.iat.Sub(t0), err, tc.revoked)
		}
	}
	if tokens, _, err := db.Revocations(time.Time{}); err != nil || len(tokens) != 1 {
		t.Fatalf("stored token revocations after the load's prune: %v, %v; want j-later only", tokens, err)
	}
}
