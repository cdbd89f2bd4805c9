// Package session holds Tandem's live state.
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
// Members are kept in client id order and read in pages in large rooms;
// @mentions are resolved by a small pool of workers fed by a bounded
// queue.
//
// # Documents
//
// [Docs] runs one goroutine per loaded document, which alone owns its
// content, version, comments, members and cursors: no locks on that state.
// An op is transformed over the history since its base version (one op at
// a time, the history's inserts first), applied, appended without waiting,
// and acknowledged and broadcast once durable, in version order. A document
// nobody has open writes a snapshot and unloads.
//
// # Storage and events
//
// The package declares the small storage interfaces it uses (store.go);
// storage.DB implements them, and cmd/tandem asserts the fit. Joins,
// leaves, changes, comments and mentions go to an optional [Notifier]
// (webhooks). Everything exported is safe for concurrent use.
package session
