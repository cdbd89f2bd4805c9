package auth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests: a closed
// Verifier's JWKS refresh and its HTTP connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
