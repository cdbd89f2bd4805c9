package client

import (
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/ot"
)

// Errors the client returns; test for them with errors.Is.
var (
	// ErrClosed: the client was closed (Close), or a subscription ended
	// because its client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected: the connection was lost before the server answered.
	// The request may or may not have taken effect; the client reconnects
	// on its own, so retrying is possible once it has.
	ErrDisconnected = errors.New("client: disconnected before the reply")
	// ErrUnauthorized: the server rejected the token (close 4001) and
	// Config.TokenFunc gave no new one, so the client stopped reconnecting.
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrAlreadySubscribed: Subscribe to a channel the client is already
	// subscribed to (one Subscription per channel).
	ErrAlreadySubscribed = errors.New("client: already subscribed")
	// ErrUnsubscribed: the subscription has ended (Unsubscribe, or the
	// server dropped it).
	ErrUnsubscribed = errors.New("client: not subscribed")
	// ErrDocOpen: OpenDoc for a document the client has open already (one
	// Document per id).
	ErrDocOpen = errors.New("client: document already open")
	// ErrDocClosed: the document was closed with Document.Close.
	ErrDocClosed = errors.New("client: document closed")
	// ErrDocDeleted: the document was deleted on the server while open.
	ErrDocDeleted = errors.New("client: document deleted")
)

// Error is an error frame with which the server answered a request. Its
// Code is one of the proto.Code… constants.
type Error struct {
	Code    string
	Message string
	// Channel names the channel the request was about, when it had one;
	// Doc the document.
	Channel string
	Doc     string
}

func (e *Error) Error() string {
	switch {
	case e.Channel != "":
		return fmt.Sprintf("tandem: %s (%s): %s", e.Code, e.Channel, e.Message)
	case e.Doc != "":
		return fmt.Sprintf("tandem: %s (doc %s): %s", e.Code, e.Doc, e.Message)
	}
	return fmt.Sprintf("tandem: %s: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrUnauthorized) true for an unauthorized error
// frame.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && e.Code == proto.CodeUnauthorized
}

// CloseError is how the server closed a connection: a WebSocket close code
// (proto.Close…) and its reason text.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("tandem: connection closed with %d: %s", e.Code, e.Text)
}

// Is makes errors.Is(err, ErrUnauthorized) true for close 4001.
func (e *CloseError) Is(target error) bool {
	return target == ErrUnauthorized && e.Code == proto.CloseUnauthorized
}

// OpError is an edit the server rejected for good (too large, no write
// grant, ...). The client has undone it in the local text (a Change of
// kind ChangeUndo) and carried on with the edits made after it.
type OpError struct {
	Doc string
	UID string
	// Op is the rejected op, against the server text of that time.
	Op ot.Op
	// Rest are the other pieces of the same edit, cut to the server's
	// limits, undone with it without being sent (each applies after the
	// one before, the first after Op).
	Rest []ot.Op
	Err  *Error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("tandem: op %s on %s rejected and undone: %v", e.UID, e.Doc, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// terminalSubscribeCode reports whether an error answering a (re)subscribe
// ends the subscription, rather than being worth another try on the next
// connection.
func terminalSubscribeCode(code string) bool {
	switch code {
	case proto.CodeBadRequest, proto.CodeForbidden, proto.CodeUnauthorized, proto.CodeNotFound, proto.CodeTooLarge:
		return true
	}
	return false
}
