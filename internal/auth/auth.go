// Package auth verifies the JWTs clients connect with and decides what their
// grants allow.
//
// A token's claims give `sub` (the user id), `name`, `exp` and `allow`, a
// list of `action:pattern` grants where action is one of read, write,
// comment, subscribe, publish, presence or admin, and pattern is a channel
// or document name in which `*` matches any run of characters, `:`
// included. An admin grant allows every action on the names it matches.
// Tokens are verified with golang-jwt: only the configured algorithms (HS256
// by default) are accepted, never `none`.
//
// Everything here is safe for concurrent use.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Actions a grant may name.
const (
	ActionRead      = "read"
	ActionWrite     = "write"
	ActionComment   = "comment"
	ActionSubscribe = "subscribe"
	ActionPublish   = "publish"
	ActionPresence  = "presence"
	ActionAdmin     = "admin"
)

var actions = []string{ActionRead, ActionWrite, ActionComment, ActionSubscribe, ActionPublish, ActionPresence, ActionAdmin}

// Errors returned by Verify and ParseGrants.
var (
	// ErrInvalidToken: the token is malformed, badly signed, signed with an
	// algorithm that is not accepted, expired or not yet valid.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrNoSubject: the token names no user (no `sub`).
	ErrNoSubject = errors.New("auth: token has no subject")
	// ErrBadGrant: an `allow` entry is not `action:pattern` with a known action.
	ErrBadGrant = errors.New("auth: bad grant")
)

// Grant allows one action on the names its pattern matches.
type Grant struct {
	Action  string
	Pattern string
}

func (g Grant) String() string { return g.Action + ":" + g.Pattern }

// Grants is a set of grants; it allows what any of them allows.
type Grants []Grant

// ParseGrants parses `action:pattern` strings.
func ParseGrants(allow []string) (Grants, error) {
	gs := make(Grants, 0, len(allow))
	for _, a := range allow {
		action, pattern, ok := strings.Cut(a, ":")
		if !ok || pattern == "" || !slices.Contains(actions, action) {
			return nil, fmt.Errorf("%w: %q", ErrBadGrant, a)
		}
		gs = append(gs, Grant{Action: action, Pattern: pattern})
	}
	return gs, nil
}

// All is the grant set of a development-mode guest and of API keys without
// limits: everything, everywhere.
var All = Grants{{Action: ActionAdmin, Pattern: "*"}}

// Allows reports whether the grants allow action on name.
func (gs Grants) Allows(action, name string) bool {
	for _, g := range gs {
		if (g.Action == action || g.Action == ActionAdmin) && Match(g.Pattern, name) {
			return true
		}
	}
	return false
}

// Strings returns the grants in their `action:pattern` form.
func (gs Grants) Strings() []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.String()
	}
	return out
}

// Match reports whether name matches pattern, in which `*` matches any run
// of characters (`:` included) and everything else matches itself.
func Match(pattern, name string) bool {
	// Iterative glob with backtracking to the last star: O(len(p)*len(n))
	// at worst, no recursion.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Identity is who a connection or an API call acts as.
type Identity struct {
	UserID string
	Name   string
	Grants Grants
	// Expires is when the token stops being valid; zero for never.
	Expires time.Time
	// TokenID is the token's `jti`, for denial before expiry.
	TokenID string
	// Guest marks a development-mode guest.
	Guest bool
}

// Claims are the JWT claims Tandem reads.
type Claims struct {
	jwt.RegisteredClaims
	Name  string   `json:"name,omitempty"`
	Allow []string `json:"allow,omitempty"`
}

// Verifier checks tokens signed with one HMAC secret.
type Verifier struct {
	secret  []byte
	methods []string
	leeway  time.Duration
}

// NewVerifier returns a verifier for HMAC tokens signed with secret. methods
// lists the accepted algorithms; empty means HS256 only.
func NewVerifier(secret []byte, methods ...string) *Verifier {
	if len(methods) == 0 {
		methods = []string{"HS256"}
	}
	return &Verifier{secret: slices.Clone(secret), methods: methods, leeway: 5 * time.Second}
}

// Verify parses and checks a token and returns the identity it carries. It
// fails with ErrInvalidToken (wrapping the reason) or ErrNoSubject, and on a
// malformed grant.
func (v *Verifier) Verify(token string) (Identity, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return v.secret, nil
	}, jwt.WithValidMethods(v.methods), jwt.WithLeeway(v.leeway))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return Identity{}, ErrNoSubject
	}
	grants, err := ParseGrants(claims.Allow)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{UserID: claims.Subject, Name: claims.Name, Grants: grants, TokenID: claims.ID}
	if id.Name == "" {
		id.Name = id.UserID
	}
	if claims.ExpiresAt != nil {
		id.Expires = claims.ExpiresAt.Time
	}
	return id, nil
}

// Mint signs a token for user with the given name, grants and lifetime (0:
// no expiry), with HS256. `tandem token` and the tests use it.
func (v *Verifier) Mint(user, name string, allow []string, ttl time.Duration, now time.Time) (string, error) {
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now)},
		Name:             name,
		Allow:            allow,
	}
	if ttl > 0 {
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(v.secret)
}
