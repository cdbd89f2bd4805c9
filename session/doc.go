// Package session holds Tandem's live state: the channels and the open
// documents. The web edge (package web) calls it; it calls storage only
// through the small interfaces it declares (store.go).
//
// # Channels
//
// The [Hub] owns the channels: their subscribers, presence and the order of
// publishes. A stored publish gets the next offset, is appended through
// storage's group commit without waiting, and is delivered to every
// subscriber (encoded once, the same bytes to all) when it is durable, so
// subscribers see offsets once and in order. Subscribing with a position
// recovers what was missed before any live message arrives; the history is
// read outside the channel's lock while the channel holds the new
// subscriber's live frames back (see [Hub.Subscribe]), so no lock is held
// across a storage read. A channel has an epoch from its first subscribe.
//
// Files: hub.go (channels, subscribe, publish, recovery, receipts),
// presence.go (members in client id order, paged in large rooms, events in
// batches, count mode), mentions.go (@names resolved by a small pool of
// workers fed by a bounded queue), namespace.go (per-namespace options).
//
// # Documents
//
// [Docs] runs one goroutine per loaded document (docSession), which alone
// owns its content, version, comments, members and cursors: no locks on
// that state. Where an op goes, function by function:
//
//   - [Docs.Submit] hands it to the document's goroutine through a bounded
//     queue (docs.go: submit), loading the document first if needed
//     (doc_lifecycle.go: load).
//   - submitOp (doc_ops.go) checks the member, the version and the uid: a
//     uid applied before is acked with its original version (lookupUID,
//     which asks storage when memory cannot prove a uid new), then the op
//     rate and size.
//   - commitOp transforms it over the history since its base version, one
//     op at a time with the history's inserts first (transformOver), applies
//     it to the in-memory document (moving comment anchors), remembers it,
//     and appends it to storage without waiting (OpLog.AppendOpAsync: many
//     documents' ops share one commit and one fsync).
//   - When storage reports it durable (committed, on storage's goroutine,
//     which only records it and wakes the document), drainDurable and
//     publish move stored cursors through it, in version order, and
//     deliver acks the author and sends the op to every other member:
//     the ops that became durable together go to each member in one call
//     (BatchSender), so that its connection writes them at once. A big
//     document with a broadcast window (DocsConfig.BroadcastWindow) holds
//     them and sends each member what it holds once per window
//     (doc_hold.go).
//
// Cursors (doc_cursors.go) are moved to the durable head and coalesced;
// comments (doc_comments.go) are stored on the durable head; edits made on
// the server side (doc_edits.go: the HTTP API's create, replace and delete)
// go through the same goroutine as an editor's op, the diff of a replaced
// text computed off it. A document nobody has open writes a snapshot and
// its comments, then unloads (doc_lifecycle.go). Large replies (a snapshot
// of a long document) are streamed by the connection (large.go). Changes to
// the set of documents are announced on [DocsChannel] (docs_events.go).
//
// # Cluster mode
//
// When the storage is shared with other Tandem nodes (NATS JetStream,
// package natsstore), the same types run in cluster mode, found by type
// assertion on the interfaces in store.go, so neither the OT nor the web
// layer knows which mode it runs in. A document whose OpLog is a
// SharedOpLog applies an op only once it is in the log, whichever node
// stored it: its own ops wait in their original form, are transformed over
// the log and appended by compare-and-append, and are transformed again
// and resubmitted after losing to another node; a follower delivers what
// the other nodes stored (doc_cluster.go). A channel whose history is a
// SharedChannelLog gets its offsets from the store and delivers only what
// its follower delivers; presence, ephemeral messages, cursors and
// notices cross nodes over a PresenceBus and an EphemeralBus
// (hub_cluster.go). docs/cluster.md has the whole design.
//
// # Errors, storage and events
//
// Every sentinel is in errors.go; the web edge maps each to a wire code in
// one place. The package declares the storage interfaces it uses
// (store.go); storage.DB implements them, and the binary asserts the fit.
// Joins, leaves, changes, comments and mentions go to an optional
// [Notifier] (webhooks). Everything exported is safe for concurrent use.
package session
