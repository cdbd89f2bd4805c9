package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
)

// errUnauthorized answers a request without valid credentials.
var errUnauthorized = &requestError{proto.CodeUnauthorized, "send Authorization: Bearer <API key or admin JWT>"}

// Authentication: who an HTTP API request acts as. The WebSocket's
// connect verifies its token with the same Verifier (handlers.go), which
// also refuses revoked tokens; revocation itself (POST
// /api/users/{id}/disconnect) is here.

// authenticate finds who a request acts as: an API key (compared in
// constant time; a server-side principal, exempt from publish rates), or a
// JWT (a user, publishing on the user's HTTP rate budget). In development
// mode with no API keys configured, the API is open to an identity with
// every grant.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		if s.DevMode() && len(s.cfg.APIKeys) == 0 {
			return principal{Identity: auth.Identity{UserID: "api", Name: "API", Grants: auth.All, Guest: true}}, nil
		}
		return principal{}, errUnauthorized
	}
	var found *APIKey
	for i := range s.cfg.APIKeys {
		k := &s.cfg.APIKeys[i]
		if subtle.ConstantTimeCompare([]byte(k.Key), []byte(token)) == 1 {
			found = k
		}
	}
	if found != nil {
		grants := found.Grants
		if grants == nil {
			grants = auth.All
		}
		name := found.Name
		if name == "" {
			name = "api"
		}
		return principal{Identity: auth.Identity{UserID: "api:" + name, Name: name, Grants: grants}, apiKey: true}, nil
	}
	if s.cfg.Verifier == nil {
		return principal{}, &requestError{proto.CodeUnauthorized, "unknown API key"}
	}
	ident, err := s.cfg.Verifier.Verify(token) // revoked tokens included
	if err != nil {
		return principal{}, &requestError{proto.CodeUnauthorized, err.Error()}
	}
	return principal{Identity: ident, budget: s.budgets.budgetFor(ident.UserID)}, nil
}

// disconnectReq is the optional body of POST /api/users/{id}/disconnect.
type disconnectReq struct {
	// RevokeBefore, "now" or an RFC 3339 time not in the future, revokes
	// every token of the user issued at or before it (by `iat`).
	RevokeBefore string `json:"revoke_before"`
}

// apiDisconnect closes every connection of a user with 4001 and revokes the
// tokens they connected with (by jti) until those expire; with
// revoke_before it also revokes every token of the user issued by then.
// Revocations are persisted and hold across restarts.
func (s *Server) apiDisconnect(w http.ResponseWriter, r *http.Request, p principal) error {
	user := r.PathValue("id")
	if user == "" || len(user) > 255 {
		return badRequest("bad user id")
	}
	if _, err := s.authorize(p, accessAdmin, "user:"+user); err != nil {
		return err
	}
	var body disconnectReq
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return badRequest(`body: want {"revoke_before":"now"} or no body`)
		}
	}
	var before time.Time
	if body.RevokeBefore != "" {
		if s.cfg.Verifier == nil {
			return badRequest("this server runs in development mode and verifies no tokens: nothing to revoke")
		}
		now := s.cfg.Now()
		if body.RevokeBefore == "now" {
			before = now
		} else if before, err = time.Parse(time.RFC3339, body.RevokeBefore); err != nil || before.After(now) {
			return badRequest(`revoke_before must be "now" or an RFC 3339 time not in the future`)
		}
	}
	n, tokens, in, err := s.disconnectAndRevoke(r.Context(), user, before)
	out := map[string]any{"user": user, "disconnected": n, "revoked_tokens": tokens}
	if !in.IsZero() {
		out["revoked_before"] = in.UTC().Format(time.RFC3339)
	}
	if err != nil {
		return err // in force in memory; the write to storage failed
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// disconnectAndRevoke revokes the tokens userID's connections use (by
// TokenID, until they expire) and, when before is not zero, every token of
// the user issued at or before it; then it closes those connections with
// 4001. It returns the connections closed, the tokens revoked, and the
// user's revocation time in force (zero when none was asked). In
// development mode (no verifier) it only closes. A failure to persist is
// returned after everything else was done: the revocation holds in memory.
func (s *Server) disconnectAndRevoke(ctx context.Context, userID string, before time.Time) (n, tokens int, in time.Time, err error) {
	victims := s.connsOf(userID)
	var rev *auth.Revocations
	if s.cfg.Verifier != nil {
		rev = s.cfg.Verifier.Revocations()
	}
	var errs []error
	if rev != nil {
		revoked := map[string]bool{}
		for _, c := range victims {
			id := c.identity()
			if id.TokenID == "" || revoked[id.TokenID] {
				continue
			}
			revoked[id.TokenID] = true
			errs = append(errs, rev.RevokeToken(ctx, id.TokenID, id.Expires))
		}
		tokens = len(revoked)
		if !before.IsZero() {
			var err error
			in, err = rev.RevokeUser(ctx, userID, before)
			errs = append(errs, err)
		}
	}
	// Look again: a connection that got in while the tokens were being
	// revoked goes too.
	victims = s.connsOf(userID)
	for _, c := range victims {
		c.close(proto.DisconnectByAdmin)
	}
	return len(victims), tokens, in, errors.Join(errs...)
}

// connsOf returns the open connections of a user.
func (s *Server) connsOf(userID string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for c := range s.conns {
		if c.userID() == userID {
			out = append(out, c)
		}
	}
	return out
}
