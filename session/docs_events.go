package session

import (
	"encoding/json"
	"errors"

	"github.com/tandemhq/tandem/proto"
)

// DocsChannel is the server-only channel on which the set of documents is
// announced: a document created (by its first writer, through the HTTP
// API, or by an import), deleted, renamed or compacted. Document lists and
// dashboards subscribe to it instead of polling.
const DocsChannel = "system:docs"

// Announce publishes a change to the set of documents on DocsChannel:
// event ("created", "deleted", "renamed", "compacted") about docID, with
// extra fields (a new title) beside its id. It is the one publisher of
// DocsChannel: the sessions announce what they do (a document created by
// its first writer, deleted), and the HTTP API what it does to documents
// in storage directly (an import, a rename, a compaction). It does not
// wait for the message to be stored.
func (d *Docs) Announce(event, docID string, extra map[string]string) {
	hub := d.cfg.Hub
	if hub == nil {
		return
	}
	fields := map[string]string{"id": docID}
	for k, v := range extra {
		if k != "id" {
			fields[k] = v
		}
	}
	data, _ := json.Marshal(fields) // strings only: cannot fail
	hub.Publish(Publication{Channel: DocsChannel, Event: event, Data: data, From: proto.From{User: "system"}},
		func(_ uint64, err error) {
			if err != nil && !errors.Is(err, ErrClosed) {
				d.log.Error().Err(err).Str("event", event).Str("doc", docID).Msg("announce on " + DocsChannel)
			}
		})
}
