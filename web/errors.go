package web

import (
	"errors"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// requestError is an error with a wire code chosen where it arose.
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

// errorCode maps an error to its wire code and a message safe to show the
// client, in the protocol's terms (publicMessage). Unknown errors are
// internal: the client gets a generic message, and internal reports true
// so the caller logs the detail.
func errorCode(err error) (code, msg string, internal bool) {
	code, msg, internal = wireCode(err)
	return code, publicMessage(msg), internal
}

// wireCode is errorCode before the message is cleaned.
func wireCode(err error) (code, msg string, internal bool) {
	var re *requestError
	var mte *mediaTypeError
	switch {
	case errors.As(err, &re):
		return re.code, re.msg, false
	case errors.As(err, &mte):
		return proto.CodeBadRequest, mte.msg, false
	case errors.Is(err, session.ErrBadChannel), errors.Is(err, session.ErrBadOffset),
		errors.Is(err, session.ErrNotSubscribed), errors.Is(err, session.ErrReserved):
		return proto.CodeBadRequest, err.Error(), false
	case errors.Is(err, session.ErrBadDocID), errors.Is(err, session.ErrNotOpen), errors.Is(err, session.ErrFutureVersion),
		errors.Is(err, session.ErrBadComment), errors.Is(err, session.ErrBadUID), errors.Is(err, session.ErrBadCursor):
		return proto.CodeBadRequest, err.Error(), false
	case errors.Is(err, session.ErrDocNotFound):
		return proto.CodeNotFound, err.Error(), false
	case errors.Is(err, session.ErrDocTooLarge):
		return proto.CodeTooLarge, err.Error(), false
	case errors.Is(err, session.ErrOpRate):
		return proto.CodeRateLimited, err.Error(), false
	case errors.Is(err, session.ErrCommentForbidden):
		return proto.CodeForbidden, err.Error(), false
	case errors.Is(err, session.ErrHistoryGone):
		return proto.CodeConflict, err.Error(), false
	case errors.Is(err, session.ErrTryAgain), errors.Is(err, session.ErrBusy):
		return proto.CodeUnavailable, err.Error(), false
	case errors.Is(err, session.ErrStorage):
		return proto.CodeUnavailable, "storage unavailable; reopen the document", false
	case errors.Is(err, session.ErrForbidden):
		return proto.CodeForbidden, err.Error(), false
	case errors.Is(err, session.ErrNotFound):
		return proto.CodeNotFound, err.Error(), false
	case errors.Is(err, session.ErrTooLarge):
		return proto.CodeTooLarge, err.Error(), false
	case errors.Is(err, session.ErrClosed):
		return proto.CodeUnavailable, "server shutting down", false
	case errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrNoSubject), errors.Is(err, auth.ErrBadGrant):
		return proto.CodeUnauthorized, err.Error(), false
	case errors.Is(err, ot.ErrPastEnd), errors.Is(err, ot.ErrZeroLength), errors.Is(err, ot.ErrBadComponent),
		errors.Is(err, ot.ErrInvalidUTF8), errors.Is(err, ot.ErrTooLarge), errors.Is(err, ot.ErrNotArray):
		return proto.CodeBadRequest, err.Error(), false
	}
	return proto.CodeInternal, "internal error", true
}
