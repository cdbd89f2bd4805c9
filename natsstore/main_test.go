package natsstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the store's
// writers, followers, snapshotter and presence all stop on Close. The
// embedded server's access-time ticker is shared by every server in the
// process and stops a while after the last one: not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"))
}
