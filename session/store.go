package session

import (
	"context"
	"encoding/json"

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

// WriteExpecter is an op log that can use a hint of the appends to come
// (storage.DB implements it): a busy log waits a little for them, and
// commits them with the appends already queued, rather than commit
// without them and again for them. A document's session lends it the
// editors it has just acked (they send their next op as soon as they
// have one) and takes each back when that editor's next op comes, or
// when the editor has not come back soon (expectFor).
type WriteExpecter interface {
	// ExpectWrites adds n, which may be negative, to the appends expected.
	ExpectWrites(n int)
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

// Cluster mode. Several Tandem nodes share one store (NATS JetStream,
// package natsstore): the interfaces below are what the session needs
// besides the ones above. None is needed in single-node mode; storage.DB
// implements none of them. Docs runs a document in cluster mode when its
// OpLog is a SharedOpLog; the hub runs its channels in cluster mode when
// its History is a SharedChannelLog. See cluster.md in docs/ for the
// whole design.

// SharedOpLog is an op log that other nodes append to as well: an append
// is a compare-and-append at its version, and fails with a
// *doc.ConflictError when another node got there first.
type SharedOpLog interface {
	OpLog
	// FollowOps delivers the document's ops from version from on, in
	// order, each once, as any node stores them. deliver may block
	// (delivery waits); onErr reports, once, why delivery stopped
	// (doc.ErrNotFound: the document was deleted). stop returns once
	// deliver is no longer running.
	FollowOps(ctx context.Context, docID string, from int, deliver func([]doc.OpRecord), onErr func(error)) (stop func(), err error)
	// FindUID looks for an op with uid at versions >= base, the only place
	// an op made against base can have landed.
	FindUID(ctx context.Context, docID, uid string, base int) (doc.OpRecord, bool, error)
	// ResumeAppends lifts the fence a failed AppendOpAsync puts on the
	// document: after a failure every append of the document fails until
	// then, so that no op made on top of a failed one lands.
	ResumeAppends(docID string)
}

// CommentWatcher tells a document's session of comment changes made
// through other nodes.
type CommentWatcher interface {
	// WatchComments calls fn with every change stored after the call: the
	// comment as stored (Range valid at Version), or deleted and the ID.
	// fn may block; stop returns once it is no longer running.
	WatchComments(ctx context.Context, docID string, fn func(c doc.Comment, deleted bool)) (stop func(), err error)
}

// Ephemeral kinds of EphemeralBus.
const (
	EphemeralChannel = "ch"  // a channel's ephemeral messages and notices
	EphemeralDoc     = "doc" // a document's cursors
)

// EphemeralBus carries frames that are never stored (cursors, ephemeral
// channel messages, retraction and receipt notices) to the other nodes
// that serve the same channel or document: at most once, in order per
// node.
type EphemeralBus interface {
	PublishEphemeral(kind, name string, payload []byte) error
	// SubscribeEphemeral calls fn with what other nodes publish for that
	// name until unsubscribe; fn must not block.
	SubscribeEphemeral(kind, name string, fn func(payload []byte)) (unsubscribe func(), err error)
}

// RemoteMember is a member of a channel (or document: "doc:<id>")
// connected to another node. Info is what that node joined it with: the
// encoded proto.Member.
type RemoteMember struct {
	Node     string
	ClientID string
	Info     json.RawMessage
}

// RemoteEvent is a join, update or leave of a member on another node.
type RemoteEvent struct {
	Kind   string // "join", "update" or "leave"
	Member RemoteMember
}

// PresenceBus spreads who is in a channel or document between nodes. A
// node that dies takes its members out on every other node within a
// bounded time (see docs/cluster.md).
type PresenceBus interface {
	// Join, Update and Leave announce this node's member.
	Join(channel, clientID string, info json.RawMessage) error
	Update(channel, clientID string, info json.RawMessage) error
	Leave(channel, clientID string) error
	// Watch returns every node's members now and calls fn for each change
	// on another node until stop; fn must not block nor call back.
	Watch(channel string, fn func(RemoteEvent)) (members []RemoteMember, stop func(), err error)
}

// SharedChannelLog is a channel history that other nodes publish to as
// well (cluster mode): the store assigns offsets, and every node delivers
// what any node stored, from a follower. The hub runs a channel this way
// when its History is a SharedChannelLog and Shared says so for the
// channel; other channels keep the single-node path (ChannelHistory).
type SharedChannelLog interface {
	// Shared reports whether channel is shared with other nodes.
	Shared(channel string) bool
	// PublishMessage stores msg with the channel's next offset (msg.Offset
	// is ignored) and returns it as stored, with the channel's epoch.
	PublishMessage(ctx context.Context, msg doc.Message) (doc.Message, string, error)
	// FollowChannel delivers the messages after offset after, in order,
	// each once, as any node stores them; a message of a new epoch comes
	// with it. deliver may block; stop returns once it no longer runs.
	FollowChannel(ctx context.Context, channel string, after uint64, deliver func(msg doc.Message, epoch string), onErr func(error)) (stop func(), err error)
}
