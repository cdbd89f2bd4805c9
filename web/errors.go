package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// Where an error becomes a code: describe is the one function that turns
// any error a request met into what its client is told, for both
// transports. A WebSocket request gets an error frame with the code and
// the message (conn.sendErrorAbout); an HTTP request gets the status and
// the same error object as its body (Server.apiFail, and each failed item
// of a broadcast batch). An error describe does not know is internal: the
// client gets "internal error" and nothing of its text, and the caller logs
// the detail.

// requestError is an error with a wire code chosen where it arose (a bad
// field, a missing grant).
type requestError struct {
	code string
	msg  string
}

func (e *requestError) Error() string { return e.code + ": " + e.msg }

// mediaTypeError is a request body of a type its route does not take: the
// HTTP API answers 415 with the code bad_request.
type mediaTypeError struct{ msg string }

func (e *mediaTypeError) Error() string { return e.msg }

func badRequest(msg string) error { return &requestError{proto.CodeBadRequest, msg} }
func forbidden(msg string) error  { return &requestError{proto.CodeForbidden, msg} }

// failure is what a client is told of an error.
type failure struct {
	// Code is the wire code (proto.Code*), Message what the client may read:
	// in the protocol's terms, without the names of the packages that
	// wrapped it.
	Code, Message string
	// Status is the HTTP status of the code (415 for a body of the wrong
	// type, whose code is bad_request).
	Status int
	// Internal marks an error describe does not know: the caller logs it,
	// since Message says nothing of it.
	Internal bool
}

// frame is the failure as the error object both transports send: the body
// of a failed HTTP request, an error frame over WebSocket (which also
// carries the request's id and what it was about).
func (f failure) frame() proto.Error {
	return proto.Error{Type: proto.TypeError, Code: f.Code, Message: f.Message}
}

// describe maps err to what the client is told. The order matters where an
// error could match twice: the most specific cause comes first.
func describe(err error) failure {
	// What the application's hooks said (or that they failed), with the
	// backend's message word for word.
	if code, msg, ok := hooks.WireError(err); ok {
		return failure{Code: code, Message: msg, Status: statusOf[code]}
	}
	code, msg := classify(err)
	if code == "" {
		return failure{Code: proto.CodeInternal, Message: "internal error", Status: http.StatusInternalServerError, Internal: true}
	}
	f := failure{Code: code, Message: publicMessage(msg), Status: statusOf[code]}
	var mte *mediaTypeError
	if errors.As(err, &mte) {
		f.Status = http.StatusUnsupportedMediaType
	}
	return f
}

// classify returns err's wire code and message, or "" for an error it does
// not know.
func classify(err error) (code, msg string) {
	var re *requestError
	var mte *mediaTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		return re.code, re.msg
	case errors.As(err, &mte):
		return proto.CodeBadRequest, mte.msg
	case errors.As(err, &mbe):
		return proto.CodeTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit)

	// Channels.
	case errors.Is(err, session.ErrBadChannel), errors.Is(err, session.ErrBadOffset),
		errors.Is(err, session.ErrNotSubscribed), errors.Is(err, session.ErrReserved):
		return proto.CodeBadRequest, err.Error()
	case errors.Is(err, session.ErrForbidden):
		return proto.CodeForbidden, err.Error()
	case errors.Is(err, session.ErrNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, session.ErrTooLarge):
		return proto.CodeTooLarge, err.Error()

	// Documents.
	case errors.Is(err, session.ErrBadDocID), errors.Is(err, session.ErrNotOpen), errors.Is(err, session.ErrFutureVersion),
		errors.Is(err, session.ErrBadComment), errors.Is(err, session.ErrBadUID), errors.Is(err, session.ErrBadCursor):
		return proto.CodeBadRequest, err.Error()
	case errors.Is(err, session.ErrDocNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, session.ErrDocTooLarge):
		return proto.CodeTooLarge, err.Error()
	case errors.Is(err, session.ErrOpRate):
		return proto.CodeRateLimited, err.Error()
	case errors.Is(err, session.ErrCommentForbidden):
		return proto.CodeForbidden, err.Error()
	case errors.Is(err, session.ErrHistoryGone):
		return proto.CodeConflict, err.Error()
	case errors.Is(err, session.ErrStorage):
		return proto.CodeUnavailable, "storage unavailable; reopen the document"

	// Either.
	case errors.Is(err, session.ErrTryAgain), errors.Is(err, session.ErrBusy):
		return proto.CodeUnavailable, err.Error()
	case errors.Is(err, session.ErrClosed):
		return proto.CodeUnavailable, "server shutting down"
	case errors.Is(err, context.DeadlineExceeded):
		return proto.CodeUnavailable, "timed out"

	// Tokens.
	case errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrNoSubject), errors.Is(err, auth.ErrBadGrant):
		return proto.CodeUnauthorized, err.Error()

	// Ops.
	case errors.Is(err, ot.ErrPastEnd), errors.Is(err, ot.ErrZeroLength), errors.Is(err, ot.ErrBadComponent),
		errors.Is(err, ot.ErrInvalidUTF8), errors.Is(err, ot.ErrTooLarge), errors.Is(err, ot.ErrNotArray):
		return proto.CodeBadRequest, err.Error()

	// Records, as storage reports them to the HTTP API's reads and imports.
	case errors.Is(err, doc.ErrCompacted):
		return proto.CodeNotFound, err.Error() + " (the document was compacted; ask for a later version)"
	case errors.Is(err, doc.ErrNotFound):
		return proto.CodeNotFound, err.Error()
	case errors.Is(err, doc.ErrExists):
		return proto.CodeConflict, err.Error()
	case errors.Is(err, doc.ErrInvalid), errors.Is(err, doc.ErrBadID):
		return proto.CodeBadRequest, err.Error()
	}
	return "", ""
}

// statusOf is the HTTP status of each wire code.
var statusOf = map[string]int{
	proto.CodeBadRequest:   http.StatusBadRequest,
	proto.CodeUnauthorized: http.StatusUnauthorized,
	proto.CodeForbidden:    http.StatusForbidden,
	proto.CodeNotFound:     http.StatusNotFound,
	proto.CodeRateLimited:  http.StatusTooManyRequests,
	proto.CodeTooLarge:     http.StatusRequestEntityTooLarge,
	proto.CodeConflict:     http.StatusConflict,
	proto.CodeUnavailable:  http.StatusServiceUnavailable,
	proto.CodeInternal:     http.StatusInternalServerError,
}
