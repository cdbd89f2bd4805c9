package storage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRevocationsPersist: revoked tokens and users survive a reopen; a
// token entry lasts until its token expires and is then pruned; a user's
// revocation never moves back.
func TestRevocationsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cfg := Config{Now: func() time.Time { return clock }}
	db := openAt(t, path, cfg)
	c := ctx(t)

	for _, tc := range []struct {
		id    string
		until time.Time
	}{
		{"jti-live", now.Add(time.Hour)},
		{"jti-soon", now.Add(time.Minute)},
		{"jti-forever", time.Time{}},
	} {
		if err := db.RevokeToken(c, tc.id, tc.until); err != nil {
			t.Fatalf("RevokeToken(%q): %v", tc.id, err)
		}
	}
	if err := db.RevokeUser(c, "u1", now); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeUser(c, "u1", now.Add(-time.Hour)); err != nil { // earlier: ignored
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, cfg)
	tokens, users, err := db.Revocations(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 3 || !tokens["jti-live"].Equal(now.Add(time.Hour)) || !tokens["jti-forever"].IsZero() {
		t.Fatalf("tokens after reopen: %v", tokens)
	}
	if len(users) != 1 || !users["u1"].Equal(now) {
		t.Fatalf("users after reopen: %v (want u1 at %s: a revocation never moves back)", users, now)
	}

	// Two minutes on, jti-soon has expired: not reported, and pruned.
	later := now.Add(2 * time.Minute)
	if tokens, _, _ = db.Revocations(later); len(tokens) != 2 {
		t.Fatalf("tokens after jti-soon expired: %v", tokens)
	}
	if n, err := db.PruneRevocations(c, later); err != nil || n != 1 {
		t.Fatalf("PruneRevocations: %d, %v; want 1 pruned", n, err)
	}
	// A revocation prunes too: two hours on, jti-live goes when jti-new comes.
	clock = now.Add(2 * time.Hour)
	if err := db.RevokeToken(c, "jti-new", clock.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if tokens, users, err = db.Revocations(time.Time{}); err != nil || len(tokens) != 2 || len(users) != 1 {
		t.Fatalf("after the second prune: %v %v %v; want jti-forever and jti-new, and u1", tokens, users, err)
	}
	if _, ok := tokens["jti-live"]; ok {
		t.Fatal("jti-live was not pruned")
	}
}

// TestRevocationsBadInput: bad ids are refused and change nothing.
func TestRevocationsBadInput(t *testing.T) {
	db := openTestDB(t, Config{})
	c := ctx(t)
	for name, err := range map[string]error{
		"empty token id":   db.RevokeToken(c, "", time.Now()),
		"long token id":    db.RevokeToken(c, strings.Repeat("x", maxIDLen+1), time.Now()),
		"bad UTF-8 user":   db.RevokeUser(c, "\xff", time.Now()),
		"empty user":       db.RevokeUser(c, "", time.Now()),
		"user before 1970": db.RevokeUser(c, "u", time.Unix(-5, 0)),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if tokens, users, err := db.Revocations(time.Now()); err != nil || len(tokens)+len(users) != 0 {
		t.Fatalf("after bad input: %v %v %v", tokens, users, err)
	}
}
