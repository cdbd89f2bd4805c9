package auth

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by Verify and ParseGrants. Verify's errors are
// *TokenError values that match these under errors.Is.
var (
	// ErrInvalidToken: the token is malformed, badly signed, signed with an
	// algorithm or a key that is not accepted, expired, not yet valid,
	// without `exp` where one is required, for another audience or issuer,
	// or revoked.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrNoSubject: the token names no user (no `sub`).
	ErrNoSubject = errors.New("auth: token has no subject")
	// ErrBadGrant: an `allow` entry is not `action:pattern` with a known action.
	ErrBadGrant = errors.New("auth: bad grant")
	// ErrRevoked: the token, or every token of its user issued by then, was
	// revoked. It also matches ErrInvalidToken.
	ErrRevoked = errors.New("auth: token revoked")
)

// TokenError is why Verify refused a token. Its message is in the
// protocol's terms, fit to send to the client; Cause keeps the JWT or JWKS
// library's own error, if any, for the server's log.
type TokenError struct {
	// Reason is the message: "token expired", "token signature invalid"...
	Reason string
	// Kind is ErrInvalidToken, ErrNoSubject, ErrBadGrant or ErrRevoked.
	Kind error
	// Cause is the underlying library error, or nil.
	Cause error
}

func (e *TokenError) Error() string { return e.Reason }

// Unwrap returns the sentinels the error matches (never Cause, so that no
// library type leaks through errors.As).
func (e *TokenError) Unwrap() []error {
	if e.Kind == ErrRevoked {
		return []error{ErrRevoked, ErrInvalidToken}
	}
	return []error{e.Kind}
}

// invalid returns an ErrInvalidToken refusal.
func invalid(reason string, cause error) *TokenError {
	return &TokenError{Reason: reason, Kind: ErrInvalidToken, Cause: cause}
}

// Reasons of refusal that are compared in tests and mapped from golang-jwt.
const (
	reasonMalformed    = "token malformed"
	reasonAlgorithm    = "token algorithm not accepted"
	reasonKeyUnknown   = "token signing key unknown"
	reasonKeyMismatch  = "token signing key does not fit its algorithm"
	reasonSignature    = "token signature invalid"
	reasonExpired      = "token expired"
	reasonNotYetValid  = "token not valid yet"
	reasonNoExp        = "token has no exp"
	reasonAudience     = "token audience not accepted"
	reasonIssuer       = "token issuer not accepted"
	reasonNoSubject    = "token has no sub"
	reasonRevoked      = "token revoked"
	reasonInvalid      = "token invalid"
	reasonBadGrantHead = "token has a bad grant "
)

// jwtReasons maps golang-jwt's sentinels to reasons, most telling first:
// claims errors come joined, and an expired token that is also not yet
// valid is reported as expired.
var jwtReasons = []struct {
	err    error
	reason string
}{
	{jwt.ErrTokenMalformed, reasonMalformed},
	{jwt.ErrTokenSignatureInvalid, reasonSignature},
	{jwt.ErrTokenExpired, reasonExpired},
	{jwt.ErrTokenNotValidYet, reasonNotYetValid},
}

// refusal turns a golang-jwt parse error into a TokenError. keyfuncRan says
// whether the parser got as far as asking for a key: when it did not and
// the error is not about the token's form, the algorithm was refused.
func refusal(err error, keyfuncRan bool) *TokenError {
	if te, ok := errors.AsType[*TokenError](err); ok {
		return te // from the keyfunc
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return invalid(reasonMalformed, err)
	}
	if !keyfuncRan {
		// WithValidMethods refused the alg (ErrTokenSignatureInvalid), or
		// golang-jwt knows no such alg (ErrTokenUnverifiable).
		return invalid(reasonAlgorithm, err)
	}
	for _, m := range jwtReasons {
		if errors.Is(err, m.err) {
			return invalid(m.reason, err)
		}
	}
	return invalid(reasonInvalid, err)
}
