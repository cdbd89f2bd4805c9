package natsstore_test

import (
	"github.com/tandemhq/tandem/natsstore"
	"github.com/tandemhq/tandem/session"
)

// The session's storage interfaces a Store implements as they are. The
// channel history is not among them: in cluster mode the store, not the
// hub, assigns offsets (PublishMessage), so the hub's publish path changes
// (see the package documentation and the integration proposal).
var (
	_ session.Documents = (*natsstore.Store)(nil)
	_ session.OpLog     = (*natsstore.Store)(nil)
	_ session.Snapshots = (*natsstore.Store)(nil)
	_ session.Comments  = (*natsstore.Store)(nil)
	_ session.Receipts  = (*natsstore.Store)(nil)
	_ session.Users     = (*natsstore.Store)(nil)
)
