package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
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
