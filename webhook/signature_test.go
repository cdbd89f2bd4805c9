package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/tandemhq/tandem/webhook"
)

const testSecret = "0123456789abcdef-secret"

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"whd_1","type":"mention"}`)
	// Computed independently: python3 hmac.new(secret, b"1700000000."+body, sha256).
	const want = "sha256=603b39d42446b10bab2c603846c6ca9f3ef4e6818e1d72ee59451af5f6774135"
	if got := Sign([]byte(testSecret), "1700000000", body); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	now := time.Unix(1700000000, 0).Add(time.Minute)
	for _, tc := range []struct {
		name    string
		sig, ts string
		body    string
		want    error
	}{
		{"good", want, "1700000000", string(body), nil},
		{"body changed", want, "1700000000", `{"id":"whd_1","type":"mentioN"}`, ErrBadSignature},
		{"timestamp changed", want, "1700000001", string(body), ErrBadSignature},
		{"no prefix", strings.TrimPrefix(want, "sha256="), "1700000000", string(body), ErrBadSignature},
		{"empty", "", "1700000000", string(body), ErrBadSignature},
		{"stale", Sign([]byte(testSecret), "1699990000", body), "1699990000", string(body), ErrStale},
		{"future", Sign([]byte(testSecret), "1700009999", body), "1700009999", string(body), ErrStale},
		{"not a number", Sign([]byte(testSecret), "soon", body), "soon", string(body), ErrStale},
	} {
		if err := Verify([]byte(testSecret), tc.sig, tc.ts, []byte(tc.body), now, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}
