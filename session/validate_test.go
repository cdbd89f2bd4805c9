package session

import (
	"errors"
	"strings"
	"testing"
)

func TestValidDocID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"notes", true},
		{"q3-plan_v2.final", true},
		{"team@acme#1=a", true},
		{"日本語", true},
		{"a.b", true},
		{"...", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"a%2Fb", false},
		{"\xff", false},
		{strings.Repeat("x", MaxDocID), true},
		{strings.Repeat("x", MaxDocID+1), false},
	} {
		err := ValidDocID(tc.id)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrBadDocID) {
			t.Errorf("ValidDocID(%q) = %v, want ok %t", tc.id, err, tc.ok)
		}
	}
}
