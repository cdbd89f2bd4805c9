package auth_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/auth/authtest"
)

// jwksVerifier returns a verifier of the provider's tokens (and of HS256
// ones, with secret) at the real clock; the test's cleanup closes it.
func jwksVerifier(t *testing.T, p *authtest.Provider, secret string) *auth.Verifier {
	t.Helper()
	v, err := auth.New(auth.Config{Secret: []byte(secret), JWKSURL: p.URL, Audience: audience, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// now returns good claims for user at the real clock.
func now(user string) auth.Claims {
	return with(func(c *auth.Claims) {
		c.Subject, c.IssuedAt, c.ExpiresAt = user, jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Hour))
	})
}

// TestJWKSAlgorithms: tokens of every asymmetric algorithm verify against
// the provider's keys, with a kid or without, beside HS256 tokens.
func TestJWKSAlgorithms(t *testing.T) {
	keys := []*authtest.Key{
		authtest.NewKey(t, "RS256", "rsa-1"), authtest.NewKey(t, "PS256", "pss-1"),
		authtest.NewKey(t, "ES256", "ec-1"), authtest.NewKey(t, "ES384", "ec384-1"), authtest.NewKey(t, "EdDSA", "ed-1"),
	}
	p := authtest.NewProvider(t, keys...)
	v := jwksVerifier(t, p, secret)
	for _, k := range keys {
		id, err := v.Verify(k.Sign(t, now("u-"+k.KID)))
		if err != nil || id.UserID != "u-"+k.KID {
			t.Errorf("%s token: %+v, %v", k.Method.Alg(), id, err)
		}
	}
	noKID := *keys[2]
	noKID.KID = ""
	if _, err := v.Verify(noKID.Sign(t, now("u"))); err != nil {
		t.Errorf("ES256 token without a kid: %v", err)
	}
	if _, err := v.Verify(hs(t, now("u"))); err != nil {
		t.Errorf("HS256 token beside JWKS: %v", err)
	}
	if p.Fetches() != 1 {
		t.Errorf("%d fetches, want 1 (at start)", p.Fetches())
	}
}

// TestJWKSRefusals: a token signed by a key the provider does not publish,
// one whose kid names a key of another algorithm, and the classic
// algorithm confusion (HS256 signed with the provider's public key) are
// refused, each in the protocol's terms; a JWKS-only verifier takes no
// HS256 token at all.
func TestJWKSRefusals(t *testing.T) {
	rsaKey, ecKey := authtest.NewKey(t, "RS256", "rsa-1"), authtest.NewKey(t, "ES256", "ec-1")
	bare := authtest.NewKey(t, "RS256", "bare")
	bare.NoALG = true
	p := authtest.NewProvider(t, rsaKey, ecKey, bare)
	v := jwksVerifier(t, p, secret)
	only := jwksVerifier(t, p, "")

	stranger := authtest.NewKey(t, "ES256", "ec-1") // the published kid, another key
	unknown := authtest.NewKey(t, "ES256", "nobody-knows")
	noKID := authtest.NewKey(t, "EdDSA", "")
	pub, err := x509.MarshalPKIXPublicKey(rsaKey.Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, now("u"))
	confused.Header["kid"] = "rsa-1"
	confusedTok, err := confused.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	ecAsRSA := &authtest.Key{KID: "ec-1", Method: jwt.SigningMethodES384, Private: authtest.NewKey(t, "ES384", "").Private}

	for _, tc := range []struct {
		name   string
		v      *auth.Verifier
		token  string
		reason string
	}{
		{"a published kid, another key", v, stranger.Sign(t, now("u")), "token signature invalid"},
		{"an unknown kid", v, unknown.Sign(t, now("u")), "token signing key unknown"},
		{"no kid, no key of its algorithm", v, noKID.Sign(t, now("u")), "token signing key unknown"},
		{"a kid of another algorithm's key", v, ecAsRSA.Sign(t, now("u")), "token signing key unknown"},
		{"a kid of a key without alg, of another kind", v, (&authtest.Key{KID: "bare", Method: jwt.SigningMethodES256, Private: ecKey.Private}).Sign(t, now("u")), "token signing key does not fit its algorithm"},
		{"HS256 signed with the public key", v, confusedTok, "token signature invalid"},
		{"HS256 to a JWKS-only verifier", only, confusedTok, "token algorithm not accepted"},
		{"audience of another app", v, rsaKey.Sign(t, with(func(c *auth.Claims) {
			*c = now("u")
			c.Audience = jwt.ClaimStrings{"another-app"}
		})), "token audience not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Verify(tc.token)
			checkRefusal(t, err, tc.reason, auth.ErrInvalidToken)
		})
	}
}
