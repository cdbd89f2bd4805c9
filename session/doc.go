// Package session holds Tandem's live state: the channel hub (subscribe,
// fan-out, presence, history, receipts) and one goroutine per open document,
// which alone owns that document's content, version, comments and
// subscribers. It declares the small storage interfaces it uses (store.go);
// the storage package implements them. (Filled by the realtime milestones.)
package session
