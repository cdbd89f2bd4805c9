package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"
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

// Grant allows one action on the names its pattern matches.
type Grant struct {
	Action  string
	Pattern string
}

func (g Grant) String() string { return g.Action + ":" + g.Pattern }

// Grants is a set of grants; it allows what any of them allows.
type Grants []Grant

// ParseGrants parses `action:pattern` strings. It fails with ErrBadGrant,
// naming the first entry that is not `action:pattern` with a known action
// and a non-empty pattern.
func ParseGrants(allow []string) (Grants, error) {
	gs, bad, ok := parseGrants(allow)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadGrant, bad)
	}
	return gs, nil
}

// parseGrants parses grants; on failure it returns the first bad entry.
func parseGrants(allow []string) (gs Grants, bad string, ok bool) {
	gs = make(Grants, 0, len(allow))
	for _, a := range allow {
		action, pattern, ok := strings.Cut(a, ":")
		if !ok || pattern == "" || !slices.Contains(actions, action) {
			return nil, a, false
		}
		gs = append(gs, Grant{Action: action, Pattern: pattern})
	}
	return gs, "", true
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
	// IssuedAt is the token's `iat`; zero when it has none.
	IssuedAt time.Time
	// TokenID names the token for revocation: its `jti` when it has one of
	// 1 to 255 bytes, otherwise "#" and a digest of the whole token.
	TokenID string
	// Guest marks a development-mode guest.
	Guest bool
}
