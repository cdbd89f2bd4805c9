package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Revocations (auth.RevocationStore) live in the revocations bucket: a
// revoked token under t.<token id> with the time it expires (zero:
// never), a revoked user under u.<user id> with the time up to which the
// user's tokens are revoked.

type revocation struct {
	At time.Time `json:"at"`
}

// RevokeToken records a revoked token id until the token expires at until.
func (s *Store) RevokeToken(ctx context.Context, tokenID string, until time.Time) error {
	if err := checkID("token id", tokenID); err != nil {
		return err
	}
	val, _ := json.Marshal(revocation{At: until.UTC()})
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	key := "t." + encode(tokenID)
	if e, err := s.kvGet(ctx, s.kvRevoke, key); err == nil && string(e.Value()) == string(val) {
		return nil // there already (a node applying another node's revocation)
	}
	if _, err := s.kvPut(ctx, s.kvRevoke, key, val); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// WatchRevocations calls fn with every revocation stored after the call,
// by any node: kind "t" for a token (at: when it expires, zero: never),
// "u" for a user (at: the time up to which the user's tokens are revoked).
// fn runs on one goroutine; stop ends the watch.
func (s *Store) WatchRevocations(fn func(kind, name string, at time.Time)) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.kvRevoke.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch revocations: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			kind, tok, ok := strings.Cut(e.Key(), ".")
			name, ok2 := decode(tok)
			var r revocation
			if ok && ok2 && json.Unmarshal(e.Value(), &r) == nil {
				fn(kind, name, r.At)
			}
		}
	}()
	return func() {
		_ = w.Stop()
		cancel()
		<-done
	}, nil
}

// RevokeUser records that the user's tokens issued at or before the second
// of before are revoked; a later time already stored stays (compare-and-set).
func (s *Store) RevokeUser(ctx context.Context, userID string, before time.Time) error {
	if err := checkID("user id", userID); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	key := "u." + encode(userID)
	before = before.UTC().Truncate(time.Second)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, err := s.kvGet(ctx, s.kvRevoke, key)
		var rev uint64
		if err == nil {
			var old revocation
			if json.Unmarshal(e.Value(), &old) == nil && !old.At.Before(before) {
				return nil
			}
			rev = e.Revision()
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("revoke user: %w", err)
		}
		val, _ := json.Marshal(revocation{At: before})
		if rev == 0 {
			_, err = s.kvCreate(ctx, s.kvRevoke, key, val)
		} else {
			_, err = s.kvUpdate(ctx, s.kvRevoke, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !isRevMismatch(err) {
			return fmt.Errorf("revoke user: %w", err)
		}
	}
	return fmt.Errorf("revoke user: %w", ErrContended)
}

// Revocations returns every revoked token not expired at now, and every
// revoked user.
func (s *Store) Revocations(now time.Time) (tokens, users map[string]time.Time, err error) {
	tokens, users = map[string]time.Time{}, map[string]time.Time{}
	err = s.eachRevocation(func(kind, name string, at time.Time, _ uint64) {
		switch kind {
		case "t":
			if at.IsZero() || at.After(now) {
				tokens[name] = at
			}
		case "u":
			users[name] = at
		}
	})
	return tokens, users, err
}

// PruneRevocations deletes the entries of tokens expired before now.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int, error) {
	var expired []string
	err := s.eachRevocation(func(kind, name string, at time.Time, _ uint64) {
		if kind == "t" && !at.IsZero() && at.Before(now) {
			expired = append(expired, "t."+encode(name))
		}
	})
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	n := 0
	for _, key := range expired {
		if err := s.kvRevoke.Purge(ctx, key); err == nil {
			n++
		}
	}
	return n, nil
}

// eachRevocation reads the bucket through one watcher.
func (s *Store) eachRevocation(fn func(kind, name string, at time.Time, rev uint64)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.RequestTimeout)
	defer cancel()
	w, err := s.kvRevoke.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			break
		}
		kind, tok, ok := strings.Cut(e.Key(), ".")
		name, ok2 := decode(tok)
		var r revocation
		if !ok || !ok2 || json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		fn(kind, name, r.At, e.Revision())
	}
	return ctx.Err()
}
