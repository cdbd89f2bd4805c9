package session

import (
	"context"

	"github.com/tandemhq/tandem/doc"
)

// The storage the session uses, declared here as small interfaces (one per
// use) and implemented by storage.DB; cmd/tandem asserts the fit at compile
// time. Errors are storage's sentinels (storage.ErrConflict, ErrNotFound,
// ...), which the session tests with errors.Is through the web layer's error
// mapping.

// Documents finds and creates documents.
type Documents interface {
	// CreateDoc creates an empty document at version 0 and returns its
	// stored metadata, with a new Epoch; it fails if the id is taken.
	CreateDoc(ctx context.Context, info doc.Info) (doc.Info, error)
	// GetDoc returns a document's metadata and current version.
	GetDoc(id string) (doc.Info, error)
	// DeleteDoc deletes a document with everything attached to it.
	DeleteDoc(ctx context.Context, id string) error
}

// OpLog is a document's durable op log, as the document's goroutine uses
// it: append without waiting (ack each op when its done reports nil), look
// an op up by uid for exactly-once, and read the history an incoming op
// must be transformed over.
//
// An append of an op whose uid the log holds fails with an error wrapping
// doc.ErrDuplicateUID and writes nothing; the session answers it as a
// resend (the original's version), never as a failure of the document.
type OpLog interface {
	// AppendOpAsync queues rec, whose Version must be the log's next one,
	// and calls done once it is durable or has failed. Appends submitted in
	// order are committed in order. done must not block.
	AppendOpAsync(docID string, rec doc.OpRecord, done func(error))
	// OpByUIDBefore returns the op with the given uid, if the log holds
	// it at a version below before (it may also find one above: the index
	// is the truth). The session keeps the uids from some version on in
	// memory and asks only about the ones before, which keeps the lookup
	// cheap.
	OpByUIDBefore(docID, uid string, before int) (doc.OpRecord, bool, error)
	// Ops returns the ops with versions in [from, to).
	Ops(docID string, from, to int) ([]doc.OpRecord, error)
}

// Snapshots loads a document to open it and saves its content on close.
type Snapshots interface {
	// Head returns the latest snapshot and the ops after it.
	Head(docID string) (doc.Snapshot, []doc.OpRecord, error)
	// ContentAt returns the content at a durable version.
	ContentAt(docID string, v int) (string, error)
	// PutSnapshot stores the content at a version.
	PutSnapshot(ctx context.Context, docID string, snap doc.Snapshot) error
}

// Comments stores a document's comments; each Range is valid at its
// comment's Version, and the session moves it through the later ops.
type Comments interface {
	Comments(docID string) ([]doc.Comment, error)
	PutComment(ctx context.Context, docID string, c doc.Comment) error
	// PutComments writes several comments in one durable write (a
	// session's comments on unload).
	PutComments(ctx context.Context, docID string, cs []doc.Comment) error
	DeleteComment(ctx context.Context, docID, id string) error
}

// ChannelHistory is the hub's durable channel history. The hub assigns
// offsets consecutively from 1 and appends without waiting.
type ChannelHistory interface {
	// AppendMessageAsync queues msg, trims the history to limits in the
	// same commit, and calls done once it is durable or has failed.
	AppendMessageAsync(msg doc.Message, limits doc.HistoryLimit, done func(error))
	// EnsureChannelAsync gives a channel without a stored epoch that
	// epoch (with no messages), through the group commit, and reports the
	// epoch the channel has once that is durable. done must not block.
	EnsureChannelAsync(channel, epoch string, done func(stored string, err error))
	// ChannelState returns the last offset and the epoch; 0 and "" for a
	// channel without history or epoch.
	ChannelState(channel string) (lastOffset uint64, epoch string, err error)
	// MessagesSince returns up to limit messages after offset.
	MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error)
	// Retract replaces a message with a tombstone.
	Retract(ctx context.Context, channel string, offset uint64, by string) error
}

// Receipts stores read receipts; a receipt only moves forward.
type Receipts interface {
	SetReceipt(ctx context.Context, user, channel string, offset uint64) error
	Receipts(channel string) (map[string]uint64, error)
}

// Users remembers the users the server has seen, for @mentions by name.
type Users interface {
	PutUser(ctx context.Context, u doc.User) error
	GetUser(id string) (doc.User, bool, error)
	UserByName(name string) (doc.User, bool, error)
}
