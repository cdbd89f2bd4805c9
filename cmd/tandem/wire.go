package main

import (
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
	"github.com/tandemhq/tandem/web"
)

// The storage the session declares is implemented by storage.DB.
var (
	_ session.Documents      = (*storage.DB)(nil)
	_ session.OpLog          = (*storage.DB)(nil)
	_ session.Snapshots      = (*storage.DB)(nil)
	_ session.Comments       = (*storage.DB)(nil)
	_ session.ChannelHistory = (*storage.DB)(nil)
	_ session.Receipts       = (*storage.DB)(nil)
	_ session.Users          = (*storage.DB)(nil)
	_ web.DocStore           = (*storage.DB)(nil)
)
