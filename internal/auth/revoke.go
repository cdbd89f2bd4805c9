package auth

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RevocationStore persists revocations; storage.DB implements it. Its
// methods are safe for concurrent use and block until the write is durable.
type RevocationStore interface {
	// RevokeToken records a revoked token id until the token expires at
	// until (zero: never).
	RevokeToken(ctx context.Context, tokenID string, until time.Time) error
	// RevokeUser records that the user's tokens issued at or before the
	// second of before are revoked; a later time already stored stays.
	RevokeUser(ctx context.Context, userID string, before time.Time) error
	// Revocations returns every revoked token whose token had not expired
	// at now, and every revoked user.
	Revocations(now time.Time) (tokens, users map[string]time.Time, err error)
	// PruneRevocations drops the entries of tokens expired before now.
	PruneRevocations(ctx context.Context, now time.Time) (int, error)
}

// Revocations is the set of revoked tokens and users, kept in memory for
// the check on every connect, refresh and HTTP request, and written through
// to a RevocationStore. It is safe for concurrent use.
type Revocations struct {
	store RevocationStore // nil: memory only
	now   func() time.Time

	mu     sync.RWMutex
	tokens map[string]time.Time // guarded by mu: token id → expiry (zero: never)
	users  map[string]time.Time // guarded by mu: user id → tokens issued at or before it are revoked
}

// LoadRevocations reads every revocation from store (nil: keep them in
// memory only) after pruning the entries of expired tokens. now is the
// clock; nil means time.Now.
func LoadRevocations(ctx context.Context, store RevocationStore, now func() time.Time) (*Revocations, error) {
	if now == nil {
		now = time.Now
	}
	r := &Revocations{store: store, now: now, tokens: map[string]time.Time{}, users: map[string]time.Time{}}
	if store == nil {
		return r, nil
	}
	if _, err := store.PruneRevocations(ctx, now()); err != nil {
		return nil, fmt.Errorf("prune revocations: %w", err)
	}
	tokens, users, err := store.Revocations(now())
	if err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	r.tokens, r.users = tokens, users
	return r, nil
}

// RevokeToken revokes the token named tokenID (an Identity's TokenID)
// until until, when it expires anyway (zero: for good). An empty id, or a
// token already expired, needs nothing. The revocation holds in memory at
// once, even when writing it to the store fails (the error says so).
func (r *Revocations) RevokeToken(ctx context.Context, tokenID string, until time.Time) error {
	now := r.now()
	if tokenID == "" || (!until.IsZero() && until.Before(now)) {
		return nil
	}
	r.mu.Lock()
	for id, exp := range r.tokens { // forget expired entries
		if !exp.IsZero() && exp.Before(now) {
			delete(r.tokens, id)
		}
	}
	r.tokens[tokenID] = until
	r.mu.Unlock()
	if r.store == nil {
		return nil
	}
	if err := r.store.RevokeToken(ctx, tokenID, until); err != nil {
		return fmt.Errorf("revoke token (in force until restart): %w", err)
	}
	return nil
}

// RevokeUser revokes every token of userID issued at or before the second
// of before, and returns the time in force: a revocation never moves back,
// so an earlier before leaves a later one in place. It holds in memory at
// once, even when writing it to the store fails.
func (r *Revocations) RevokeUser(ctx context.Context, userID string, before time.Time) (time.Time, error) {
	before = before.Truncate(time.Second)
	r.mu.Lock()
	if old, ok := r.users[userID]; ok && !old.Before(before) {
		before = old
	}
	r.users[userID] = before
	r.mu.Unlock()
	if r.store == nil {
		return before, nil
	}
	if err := r.store.RevokeUser(ctx, userID, before); err != nil {
		return before, fmt.Errorf("revoke user (in force until restart): %w", err)
	}
	return before, nil
}

// Revoked reports whether id's token is revoked: by its TokenID, or because
// its user's tokens issued at or before some time are, and it was issued
// then (a token without `iat` counts as issued before any such time).
func (r *Revocations) Revoked(id Identity) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if exp, ok := r.tokens[id.TokenID]; ok && id.TokenID != "" && (exp.IsZero() || !exp.Before(r.now())) {
		return true
	}
	before, ok := r.users[id.UserID]
	return ok && (id.IssuedAt.IsZero() || !id.IssuedAt.After(before))
}
