package session

import "errors"

// The errors session returns. Each wraps with context where it arises
// (fmt.Errorf("...: %w", ErrX)); callers test them with errors.Is. The web
// layer maps each to a wire code and an HTTP status in one place
// (web/errors.go), so a new sentinel here needs a line there.

// Errors of requests about channels (the hub).
var (
	// ErrBadChannel: a channel name that is empty, too long or has a character
	// outside letters, digits and `_-:.@#=`.
	ErrBadChannel = errors.New("session: bad channel name")
	// ErrReserved: a channel in a reserved namespace (doc:) used as a channel.
	ErrReserved = errors.New("session: reserved namespace")
	// ErrNotSubscribed: a presence update or read receipt on a channel the
	// connection has not subscribed to.
	ErrNotSubscribed = errors.New("session: not subscribed")
	// ErrNotFound: no such message (retract of an unknown offset).
	ErrNotFound = errors.New("session: not found")
	// ErrForbidden: retracting someone else's message.
	ErrForbidden = errors.New("session: forbidden")
	// ErrBadOffset: a read receipt past the channel's last offset.
	ErrBadOffset = errors.New("session: offset past the end of the channel")
	// ErrTooLarge: a message's data over its namespace's MaxPayload.
	ErrTooLarge = errors.New("session: payload too large")
)

// Errors of requests about documents.
var (
	// ErrBadDocID: a document id that is empty, too long or has characters
	// outside letters, digits and `_-.@#=`.
	ErrBadDocID = errors.New("session: bad document id")
	// ErrDocNotFound: the document does not exist and may not be created.
	ErrDocNotFound = errors.New("session: document not found")
	// ErrNotOpen: an op, cursor or comment on a document this connection has
	// not opened.
	ErrNotOpen = errors.New("session: document not open")
	// ErrFutureVersion: a version the server has not reached, or negative.
	ErrFutureVersion = errors.New("session: version not reached yet")
	// ErrBadUID: an op without a usable uid.
	ErrBadUID = errors.New("session: bad uid")
	// ErrBadCursor: a cursor request with too many ranges.
	ErrBadCursor = errors.New("session: bad cursor")
	// ErrBadComment: a comment request that is malformed (unknown action,
	// missing field, range outside the text, unknown comment id).
	ErrBadComment = errors.New("session: bad comment request")
	// ErrCommentForbidden: editing or deleting someone else's comment.
	ErrCommentForbidden = errors.New("session: not your comment")
	// ErrDocTooLarge: the op would make the document, or is itself, larger
	// than the limits allow.
	ErrDocTooLarge = errors.New("session: document or op too large")
	// ErrOpRate: a user is sending ops to one document too fast.
	ErrOpRate = errors.New("session: too many ops")
	// ErrHistoryGone: the ops a request needs were compacted away; the client
	// must reopen the document without a version.
	ErrHistoryGone = errors.New("session: history compacted away")
	// ErrStorage: the document's storage failed; it was closed for everyone
	// and reloads on the next open.
	ErrStorage = errors.New("session: storage failure")
	// ErrTryAgain: a request was not carried out for a passing reason (a
	// storage read failed, the op was dropped with the op before it, the
	// document was replaced meanwhile); nothing changed, and the same
	// request may be sent again. The document stays open.
	ErrTryAgain = errors.New("session: not done; send it again")
)

// Errors of either kind.
var (
	// ErrClosed: the hub is shut down.
	ErrClosed = errors.New("session: closed")
	// ErrBusy: a connection has as many large replies pending as it may
	// (document snapshots still being sent); the request may be made again
	// once they have arrived.
	ErrBusy = errors.New("session: too many large replies pending on this connection; try again when they have arrived")
	// ErrSlow: the connection is closing (as a slow reader, or for any
	// other reason) and takes no more frames.
	ErrSlow = errors.New("session: connection closing")
)
