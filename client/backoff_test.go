package client

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestBackoffFullJitter(t *testing.T) {
	// With a random source that returns its maximum, the delays are the
	// ceilings: doubling from min, capped at max.
	b := &backoff{min: 100 * time.Millisecond, max: time.Second, rand: func(n int64) int64 { return n - 1 }}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		if got := b.next(); got != want*time.Millisecond {
			t.Fatalf("attempt %d: ceiling %v, want %v", i, got, want*time.Millisecond)
		}
	}
	b.reset()
	if got := b.next(); got != 100*time.Millisecond {
		t.Fatalf("after reset: %v", got)
	}
	// The real source stays within [0, ceiling].
	b = &backoff{min: 10 * time.Millisecond, max: 80 * time.Millisecond}
	for i := range 200 {
		ceil := min(10*time.Millisecond<<min(i, 10), 80*time.Millisecond)
		if d := b.next(); d < 0 || d > ceil {
			t.Fatalf("attempt %d: %v outside [0, %v]", i, d, ceil)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		token string
		want  int64 // Unix seconds; 0 for none
	}{
		{enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"sub":"u","exp":1700000000}`)) + ".sig", 1700000000},
		{enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"sub":"u"}`)) + ".sig", 0},
		{"", 0},
		{"not.a.jwt", 0},
		{"a.b", 0},
	} {
		got := tokenExpiry(tc.token)
		if (tc.want == 0) != got.IsZero() || (tc.want != 0 && got.Unix() != tc.want) {
			t.Errorf("tokenExpiry(%q) = %v, want %d", tc.token, got, tc.want)
		}
	}
}

func TestRefreshDelay(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left, want time.Duration
	}{
		{3 * time.Second, 2 * time.Second},      // a third before
		{time.Hour, time.Hour - 30*time.Second}, // at most 30s before
		{-time.Second, 0},                       // expired: now
	} {
		if got := refreshDelay(now, now.Add(tc.left)); got != tc.want {
			t.Errorf("refreshDelay with %v left = %v, want %v", tc.left, got, tc.want)
		}
	}
}
