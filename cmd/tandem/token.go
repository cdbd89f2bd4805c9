package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
)

// runToken is `tandem token`: it mints an HS256 JWT for a user with the
// given grants, signed with $TANDEM_JWT_SECRET (or --secret), with a random
// jti (so that it can be revoked alone) and iat now (so that revoking the
// user's tokens issued before a time reaches it).
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tandem token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "signing secret (default $TANDEM_JWT_SECRET)")
	user := fs.String("user", "", "user id (the token's sub); required")
	name := fs.String("name", "", "display name (default the user id)")
	allow := fs.String("allow", "", `comma-separated grants, e.g. "read:doc:*,write:doc:team-*,subscribe:chat:*"`)
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime; 0 for a token without exp (refused unless the server's config says \"auth\": {\"require_exp\": false})")
	aud := fs.String("audience", "", "the token's aud (the server's auth.audience, if it sets one)")
	iss := fs.String("issuer", "", "the token's iss (the server's auth.issuer, if it sets one)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem token --user ID [--name NAME] [--allow GRANTS] [--ttl 24h] [--audience AUD] [--issuer ISS]\n\nPrints a JWT for the user, signed with $TANDEM_JWT_SECRET.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *secret == "" {
		*secret = os.Getenv("TANDEM_JWT_SECRET")
	}
	if *secret == "" {
		return errors.New("token: no secret: set TANDEM_JWT_SECRET or pass --secret")
	}
	if *user == "" {
		fs.Usage()
		return errUsage
	}
	var grants []string
	for _, g := range strings.Split(*allow, ",") {
		if g = strings.TrimSpace(g); g != "" {
			grants = append(grants, g)
		}
	}
	if _, err := auth.ParseGrants(grants); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	v, err := auth.New(auth.Config{Secret: []byte(*secret), Audience: *aud, Issuer: *iss, AllowNoExp: true})
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := v.Mint(*user, *name, grants, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
