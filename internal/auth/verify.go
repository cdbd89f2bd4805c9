package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// Claims are the JWT claims Tandem reads.
type Claims struct {
	jwt.RegisteredClaims
	Name  string   `json:"name,omitempty"`
	Allow []string `json:"allow,omitempty"`
}

// Config configures a Verifier. At least one of Secret and JWKSURL must be
// set; a zero field elsewhere takes the default its comment gives.
type Config struct {
	// Secret verifies HS256 tokens. Empty: HS256 tokens are refused.
	Secret []byte
	// JWKSURL is where an identity provider publishes the public keys that
	// verify its RS*, PS*, ES* and EdDSA tokens (https, or http to a
	// loopback address). Empty: those algorithms are refused.
	JWKSURL string
	// Audience, when set, must be one of a token's `aud` values.
	Audience string
	// Issuer, when set, must be a token's `iss`.
	Issuer string
	// AllowNoExp accepts tokens without `exp`, which never expire. By
	// default a token must carry `exp`.
	AllowNoExp bool
	// Leeway is the clock skew allowed on `exp` and `nbf`. By default 5 *
	// time.Second.
	Leeway time.Duration
	// JWKSRefresh is how often the JWKS is fetched again. By default 1 *
	// time.Hour.
	JWKSRefresh time.Duration
	// JWKSMinRefresh is the least time between two fetches caused by
	// tokens naming a `kid` the cached keys lack (at most one fetch per
	// JWKSMinRefresh, however many such tokens come). By default 1 *
	// time.Minute.
	JWKSMinRefresh time.Duration
	// JWKSTimeout bounds one fetch of the JWKS. By default 10 * time.Second.
	JWKSTimeout time.Duration
	// Revocations, when set, refuses revoked tokens.
	Revocations *Revocations
	// Logger hears of JWKS fetch failures (warn).
	Logger zerolog.Logger
	// Now returns the current time; by default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Leeway <= 0 {
		c.Leeway = 5 * time.Second
	}
	if c.JWKSRefresh <= 0 {
		c.JWKSRefresh = time.Hour
	}
	if c.JWKSMinRefresh <= 0 {
		c.JWKSMinRefresh = time.Minute
	}
	if c.JWKSTimeout <= 0 {
		c.JWKSTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Algorithms accepted: HMAC with the secret, the rest with JWKS keys.
var (
	hmacAlgs = []string{"HS256"}
	jwksAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	secret []byte
	jwks   *jwks // nil without a JWKS URL
	parser *jwt.Parser
}

// New returns a verifier for cfg. With a JWKS URL it fetches the keys once
// before returning (bounded by JWKSTimeout) and then every JWKSRefresh; a
// failed first fetch is logged, not returned: tokens signed by the
// provider are refused ("token signing key unknown") until its keys load.
// Close stops the refresh.
func New(cfg Config) (*Verifier, error) {
	cfg.setDefaults()
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: neither a secret nor a JWKS URL")
	}
	if cfg.JWKSURL != "" {
		if err := CheckJWKSURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	v := &Verifier{cfg: cfg, secret: slices.Clone(cfg.Secret)}
	var algs []string
	if len(v.secret) > 0 {
		algs = append(algs, hmacAlgs...)
	}
	if cfg.JWKSURL != "" {
		var err error
		if v.jwks, err = startJWKS(cfg); err != nil {
			return nil, err
		}
		algs = append(algs, jwksAlgs...)
	}
	v.parser = newParser(cfg, algs)
	return v, nil
}

// NewVerifier returns a verifier of HS256 tokens signed with secret, with
// every other option at its default (exp required, no revocations). An
// empty secret refuses every token.
func NewVerifier(secret []byte) *Verifier {
	cfg := Config{Secret: secret}
	cfg.setDefaults()
	return &Verifier{cfg: cfg, secret: slices.Clone(secret), parser: newParser(cfg, hmacAlgs)}
}

// newParser returns a parser that accepts algs only.
func newParser(cfg Config, algs []string) *jwt.Parser {
	return jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithLeeway(cfg.Leeway), jwt.WithTimeFunc(cfg.Now))
}

// CheckJWKSURL reports whether u may serve keys: an absolute https URL, or
// http to a loopback address (a key fetched in the clear could be swapped
// for an attacker's on the way).
func CheckJWKSURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return fmt.Errorf("JWKS URL %q is not an absolute URL", u)
	}
	switch host := p.Hostname(); {
	case p.Scheme == "https":
		return nil
	case p.Scheme == "http" && (host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")):
		return nil
	}
	return fmt.Errorf("JWKS URL %q must be https (http only to a loopback address)", u)
}

// Close stops the JWKS refresh, if any. Verify keeps working on the keys
// already loaded.
func (v *Verifier) Close() {
	if v.jwks != nil {
		v.jwks.close()
	}
}

// Revocations returns the revocations the verifier checks, or nil.
func (v *Verifier) Revocations() *Revocations { return v.cfg.Revocations }

// Verify parses and checks a token and returns the identity it carries. A
// refusal is a *TokenError matching ErrInvalidToken (bad form, algorithm,
// key, signature or claims, or revoked, which also matches ErrRevoked),
// ErrNoSubject or ErrBadGrant.
func (v *Verifier) Verify(token string) (Identity, error) {
	var claims Claims
	keyfuncRan := false
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		keyfuncRan = true
		return v.key(t)
	})
	if err != nil {
		return Identity{}, refusal(err, keyfuncRan)
	}
	switch {
	case claims.ExpiresAt == nil && !v.cfg.AllowNoExp:
		return Identity{}, invalid(reasonNoExp, nil)
	case v.cfg.Audience != "" && !slices.Contains(claims.Audience, v.cfg.Audience):
		return Identity{}, invalid(reasonAudience, nil)
	case v.cfg.Issuer != "" && claims.Issuer != v.cfg.Issuer:
		return Identity{}, invalid(reasonIssuer, nil)
	case claims.Subject == "":
		return Identity{}, &TokenError{Reason: reasonNoSubject, Kind: ErrNoSubject}
	}
	grants, bad, ok := parseGrants(claims.Allow)
	if !ok {
		return Identity{}, &TokenError{Kind: ErrBadGrant,
			Reason: fmt.Sprintf("%s%q: want action:pattern with action one of %s", reasonBadGrantHead, bad, strings.Join(actions, ", "))}
	}
	id := Identity{UserID: claims.Subject, Name: claims.Name, Grants: grants, TokenID: tokenID(claims.ID, token)}
	if id.Name == "" {
		id.Name = id.UserID
	}
	if claims.ExpiresAt != nil {
		id.Expires = claims.ExpiresAt.Time
	}
	if claims.IssuedAt != nil {
		id.IssuedAt = claims.IssuedAt.Time
	}
	if v.cfg.Revocations != nil && v.cfg.Revocations.Revoked(id) {
		return Identity{}, &TokenError{Reason: reasonRevoked, Kind: ErrRevoked}
	}
	return id, nil
}

// key is the keyfunc: it picks the key by the token's algorithm, the
// secret for HMAC and the JWKS for the others, never one for the other.
// WithValidMethods has already refused the algorithms not configured.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.secret) == 0 {
			return nil, invalid(reasonAlgorithm, nil)
		}
		return v.secret, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS, *jwt.SigningMethodECDSA, *jwt.SigningMethodEd25519:
		if v.jwks == nil {
			return nil, invalid(reasonAlgorithm, nil)
		}
		return v.jwks.key(t)
	}
	return nil, invalid(reasonAlgorithm, nil)
}

// tokenID is the id revocation uses: the jti when it is 1 to 255 bytes of
// UTF-8, else a digest of the token, so that a token without a usable jti
// can still be revoked.
func tokenID(jti, token string) string {
	if jti != "" && len(jti) <= 255 && utf8.ValidString(jti) {
		return jti
	}
	sum := sha256.Sum256([]byte(token))
	return "#" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mint signs an HS256 token for user with the given name, grants and
// lifetime (0: no `exp`, accepted only with AllowNoExp), a random `jti`,
// `iat` now, and the verifier's audience and issuer if it has them.
// `tandem token` and the tests use it.
func (v *Verifier) Mint(user, name string, allow []string, ttl time.Duration, now time.Time) (string, error) {
	if len(v.secret) == 0 {
		return "", errors.New("auth: no secret to sign with")
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // never fails (crypto/rand)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: user, IssuedAt: jwt.NewNumericDate(now), ID: hex.EncodeToString(jti[:]), Issuer: v.cfg.Issuer,
		},
		Name:  name,
		Allow: allow,
	}
	if v.cfg.Audience != "" {
		claims.Audience = jwt.ClaimStrings{v.cfg.Audience}
	}
	if ttl > 0 {
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(v.secret)
}
