package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/server"
)

func TestTokenCommand(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"token", "--secret", "s3cret-for-tests", "--user", "u1", "--name", "Ann",
		"--allow", "read:doc:*, write:doc:team-*"}, &out, &errb)
	if err != nil {
		t.Fatalf("token: %v (%s)", err, errb.String())
	}
	ident, err := auth.NewVerifier([]byte("s3cret-for-tests")).Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("the minted token does not verify: %v", err)
	}
	if ident.UserID != "u1" || ident.Name != "Ann" || !ident.Grants.Allows("write", "doc:team-x") || ident.Grants.Allows("write", "doc:other") {
		t.Errorf("identity %+v", ident)
	}
	for _, args := range [][]string{
		{"token", "--secret", "x"},                                    // no user
		{"token", "--secret", "x", "--user", "u", "--allow", "fly:*"}, // bad grant
		{"token", "--user", "u"},                                      // no secret
	} {
		t.Setenv("TANDEM_JWT_SECRET", "")
		if err := run(context.Background(), args, &out, &errb); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := run(context.Background(), []string{"nope"}, &out, &errb); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: %v", err)
	}
}

// TestTokenCommandClaims: `tandem token` mints a random jti and iat now
// (so that a token can be revoked alone or with its user's), and the
// audience and issuer it is told.
func TestTokenCommandClaims(t *testing.T) {
	const secret = "token-test-secret-0123456789abcdef"
	ids := map[string]bool{}
	for range 2 {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"token", "--secret", secret, "--user", "u1", "--audience", "app", "--issuer", "https://id/"}, &out, &errb)
		if err != nil {
			t.Fatalf("token: %v (%s)", err, errb.String())
		}
		v, err := auth.New(auth.Config{Secret: []byte(secret), Audience: "app", Issuer: "https://id/"})
		if err != nil {
			t.Fatal(err)
		}
		ident, err := v.Verify(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("the minted token does not verify with its audience and issuer: %v", err)
		}
		if ident.TokenID == "" || strings.HasPrefix(ident.TokenID, "#") || time.Since(ident.IssuedAt) > time.Minute {
			t.Fatalf("identity %+v: want a jti and iat now", ident)
		}
		ids[ident.TokenID] = true
	}
	if len(ids) != 2 {
		t.Fatal("two tokens share a jti")
	}
}

// TestServeEnvAuth: `tandem serve` reads TANDEM_JWKS_URL, and refuses to
// start with a short TANDEM_JWT_SECRET or TANDEM_API_KEYS entry.
func TestServeEnvAuth(t *testing.T) {
	t.Setenv("TANDEM_JWKS_URL", "https://id.example.com/jwks.json")
	t.Setenv("TANDEM_JWT_SECRET", "")
	t.Setenv("TANDEM_API_KEYS", "")
	m := serveFlags{Config: server.DefaultConfig()}
	if err := m.ParseFlags(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if m.Config.JWKSURL != "https://id.example.com/jwks.json" || !m.Config.Production() {
		t.Fatalf("config %+v: want the JWKS URL and production mode", m.Config)
	}
	t.Setenv("TANDEM_JWKS_URL", "")
	for env, want := range map[string]string{
		"TANDEM_JWT_SECRET": "TANDEM_JWT_SECRET is 12 bytes",
		"TANDEM_API_KEYS":   "TANDEM_API_KEYS: key 1 of 1 is 12 characters",
	} {
		t.Setenv(env, "short-secret")
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve with a short %s: %v, want %q", env, err, want)
		}
		t.Setenv(env, "")
	}
}
