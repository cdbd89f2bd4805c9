// Package authtest is a test identity provider: signing keys of every
// algorithm Tandem verifies against a JWKS, and an HTTP server on
// 127.0.0.1 that publishes their public halves as a JWKS, counting the
// fetches. Only tests import it.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key of the provider.
type Key struct {
	KID     string
	Method  jwt.SigningMethod
	Private crypto.Signer
	// NoALG publishes the key without its "alg" (a JWK may omit it).
	NoALG bool
}

// NewKey generates a key for alg: RS256, PS256, ES256, ES384 or EdDSA.
func NewKey(tb testing.TB, alg, kid string) *Key {
	tb.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("authtest: no key for %s", alg)
	}
	if err != nil {
		tb.Fatalf("authtest: generate %s key: %v", alg, err)
	}
	return &Key{KID: kid, Method: jwt.GetSigningMethod(alg), Private: priv}
}

// Sign signs claims with the key, naming its kid in the header (none when
// KID is empty).
func (k *Key) Sign(tb testing.TB, claims jwt.Claims) string {
	tb.Helper()
	t := jwt.NewWithClaims(k.Method, claims)
	if k.KID != "" {
		t.Header["kid"] = k.KID
	}
	s, err := t.SignedString(k.Private)
	if err != nil {
		tb.Fatalf("authtest: sign with %s: %v", k.Method.Alg(), err)
	}
	return s
}

// jwk returns the public half as a JWK with kid, alg and use "sig".
func (k *Key) jwk() (jwkset.JWKMarshal, error) {
	meta := jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.Method.Alg()), USE: jwkset.UseSig}
	if k.NoALG {
		meta.ALG = ""
	}
	j, err := jwkset.NewJWKFromKey(k.Private.Public(), jwkset.JWKOptions{Metadata: meta})
	if err != nil {
		return jwkset.JWKMarshal{}, err
	}
	return j.Marshal(), nil
}

// Provider serves a JWKS on 127.0.0.1 at URL. It is safe for concurrent use.
type Provider struct {
	URL string

	srv     *httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex // guards keys and down
	keys    []*Key
	down    bool
}

// NewProvider starts a provider publishing keys; the test's cleanup stops
// it.
func NewProvider(tb testing.TB, keys ...*Key) *Provider {
	tb.Helper()
	p := &Provider{keys: keys}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL + "/.well-known/jwks.json"
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	keys, down := p.keys, p.down
	p.mu.Unlock()
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		j, err := k.jwk()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		set.Keys = append(set.Keys, j)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// SetKeys replaces the published keys (a rotation).
func (p *Provider) SetKeys(keys ...*Key) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

// SetDown makes the provider answer 503 (true) or serve its keys again.
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// Fetches returns how many requests the provider has had.
func (p *Provider) Fetches() int { return int(p.fetches.Load()) }
