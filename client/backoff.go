package client

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"
)

// backoff computes reconnect delays: exponential with full jitter, capped
// (the "Full Jitter" of the AWS architecture blog's "Exponential Backoff
// And Jitter"): attempt n waits a uniformly random time in
// [0, min(max, min·2ⁿ)]. Full jitter spreads a herd of clients that lost the
// same server evenly instead of in synchronised waves.
type backoff struct {
	min, max time.Duration
	attempt  int
	rand     func(n int64) int64 // uniform in [0, n); rand.Int64N by default
}

// next returns the delay before the next attempt and counts it.
func (b *backoff) next() time.Duration {
	ceil := b.min
	for i := 0; i < b.attempt && ceil < b.max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.max)
	b.attempt++
	if ceil <= 0 {
		return 0
	}
	rnd := b.rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceil) + 1))
}

// reset starts the sequence again after a successful connection.
func (b *backoff) reset() { b.attempt = 0 }

// tokenExpiry returns a JWT's `exp` without verifying anything (the server
// does that); zero when the token has none or is not a JWT. The client only
// uses it to refresh in time.
func tokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == "" {
		return time.Time{}
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 {
		return time.Time{}
	}
	sec := int64(exp)
	return time.Unix(sec, int64((exp-float64(sec))*1e9))
}

// refreshDelay says when to refresh a token that expires at exp: a third of
// its remaining life before it, at most 30 seconds before.
func refreshDelay(now, exp time.Time) time.Duration {
	left := exp.Sub(now)
	if left <= 0 {
		return 0
	}
	return left - min(left/3, 30*time.Second)
}
