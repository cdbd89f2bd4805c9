package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net/http"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwks holds an identity provider's public keys, fetched from its JWKS URL
// by MicahParks/jwkset and looked up by MicahParks/keyfunc.
//
// The keys are fetched at start, every Config.JWKSRefresh, and when a token
// names a `kid` the cache lacks, at most once per Config.JWKSMinRefresh
// (a rate.Limiter with a burst of one): tokens with random kids cost at
// most one fetch per interval, whatever their number. A lookup that finds
// the limiter spent waits for it only when the wait fits in JWKSTimeout;
// with the default interval, longer than the timeout, it fails at once
// ("token signing key unknown"). The refresh fetches the
// whole set, so a key that rotated in becomes known at the first refresh
// after it was published, whoever triggered that refresh.
type jwks struct {
	ctx    context.Context // ends with close; the refresh goroutine's lifetime
	cancel context.CancelFunc
	tr     *http.Transport // its idle connections are closed by close
	kf     keyfunc.Keyfunc
	cfg    Config
}

// startJWKS fetches the keys once and starts the periodic refresh. A
// failed first fetch is logged and not fatal.
func startJWKS(cfg Config) (*jwks, error) {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	client := &http.Client{Transport: tr, Timeout: cfg.JWKSTimeout}
	log := cfg.Logger.With().Str("component", "auth").Str("jwks_url", cfg.JWKSURL).Logger()
	remote, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               cfg.JWKSTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           cfg.JWKSRefresh,
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.Warn().Err(err).Msg("JWKS fetch failed; tokens signed with keys not loaded yet are refused")
		},
	})
	if err == nil {
		var store jwkset.Storage
		store, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: remote},
			RateLimitWaitMax:  cfg.JWKSTimeout,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSMinRefresh), 1),
		})
		if err == nil {
			j := &jwks{ctx: ctx, cancel: cancel, tr: tr, cfg: cfg}
			j.kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
			if err == nil {
				if keys, err := store.KeyReadAll(ctx); err == nil && len(keys) > 0 {
					log.Info().Int("keys", len(keys)).Msg("JWKS loaded")
				}
				return j, nil
			}
		}
	}
	cancel()
	tr.CloseIdleConnections()
	return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
}

// close stops the refresh goroutine and drops idle connections.
func (j *jwks) close() {
	j.cancel()
	j.tr.CloseIdleConnections()
}

// key finds the key for t by its kid (fetching the set again, rate
// permitting, when the kid is unknown), or every key that fits t's
// algorithm when t names no kid.
func (j *jwks) key(t *jwt.Token) (any, error) {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.JWKSTimeout)
	defer cancel()
	k, err := j.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, invalid(reasonKeyUnknown, err)
	}
	if set, ok := k.(jwt.VerificationKeySet); ok {
		var keys []jwt.VerificationKey
		for _, k := range set.Keys {
			if fits(t.Method, k) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, invalid(reasonKeyUnknown, nil)
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
	if !fits(t.Method, k) {
		return nil, invalid(reasonKeyMismatch, nil)
	}
	return k, nil
}

// fits reports whether key is a public key of the kind method verifies
// with (and, for ECDSA, of its curve).
func fits(method jwt.SigningMethod, key any) bool {
	switch m := method.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case *jwt.SigningMethodECDSA:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve.Params().BitSize == m.CurveBits
	case *jwt.SigningMethodEd25519:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
