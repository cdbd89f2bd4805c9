// Package auth verifies the JWTs clients connect with, keeps the list of
// revoked tokens, and decides what a token's grants allow.
//
// # Tokens
//
// A token's claims give `sub` (the user id), `name`, `exp`, `iat`, `jti`
// and `allow`, a list of `action:pattern` grants where action is one of
// read, write, comment, subscribe, publish, presence or admin, and pattern
// is a channel or document name in which `*` matches any run of
// characters, `:` included. An admin grant allows every action on the names
// it matches.
//
// A [Verifier] checks tokens with golang-jwt, choosing the key by the
// token's `alg`: HS256 tokens against the shared secret, and RS256/384/512,
// PS256/384/512, ES256/384/512 and EdDSA tokens against the public keys an
// identity provider publishes at a JWKS URL (jwks.go). Either or both may
// be configured. `none` is never accepted, an HMAC token is never checked
// against a key from the JWKS, and an asymmetric one never against the
// secret. By default a token must carry `exp`; Config.Audience and
// Config.Issuer, when set, must match `aud` and `iss`.
//
// A refused token gets a *[TokenError] whose message says what was wrong in
// the protocol's terms ("token expired", "token signature invalid", "token
// revoked"); it matches [ErrInvalidToken], [ErrNoSubject], [ErrBadGrant] or
// [ErrRevoked] under errors.Is.
//
// # Revocation
//
// [Revocations] holds revoked tokens (by TokenID, until they expire) and
// revoked users (every token issued at or before a time), in memory and in
// a [RevocationStore] (storage's revoked bucket), so that a revocation
// survives a restart. A Verifier configured with one refuses revoked
// tokens.
//
// # Concurrency
//
// Everything here is safe for concurrent use. A Verifier with a JWKS URL
// runs a refresh goroutine until [Verifier.Close].
package auth
