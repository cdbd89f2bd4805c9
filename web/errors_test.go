package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// TestDescribe: every error the server's packages return reaches a client
// with its own code and status, the same over both transports (describe
// is all there is), in the protocol's terms; an error describe does not
// know is internal, and nothing of its text leaks.
func TestDescribe(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("open notes at v3: %w", err) }
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{badRequest("version must not be negative"), proto.CodeBadRequest, 400},
		{forbidden("no write grant for doc:notes"), proto.CodeForbidden, 403},
		{&requestError{proto.CodeUnavailable, "this server serves no documents"}, proto.CodeUnavailable, 503},
		{&mediaTypeError{"send the body with Content-Type: application/json"}, proto.CodeBadRequest, 415},
		{&http.MaxBytesError{Limit: 1 << 20}, proto.CodeTooLarge, 413},
		// Channels.
		{wrap(session.ErrBadChannel), proto.CodeBadRequest, 400},
		{wrap(session.ErrReserved), proto.CodeBadRequest, 400},
		{wrap(session.ErrNotSubscribed), proto.CodeBadRequest, 400},
		{wrap(session.ErrBadOffset), proto.CodeBadRequest, 400},
		{wrap(session.ErrForbidden), proto.CodeForbidden, 403},
		{wrap(session.ErrNotFound), proto.CodeNotFound, 404},
		{wrap(session.ErrTooLarge), proto.CodeTooLarge, 413},
		// Documents.
		{wrap(session.ErrBadDocID), proto.CodeBadRequest, 400},
		{wrap(session.ErrNotOpen), proto.CodeBadRequest, 400},
		{wrap(session.ErrFutureVersion), proto.CodeBadRequest, 400},
		{wrap(session.ErrBadUID), proto.CodeBadRequest, 400},
		{wrap(session.ErrBadCursor), proto.CodeBadRequest, 400},
		{wrap(session.ErrBadComment), proto.CodeBadRequest, 400},
		{wrap(session.ErrCommentForbidden), proto.CodeForbidden, 403},
		{wrap(session.ErrDocNotFound), proto.CodeNotFound, 404},
		{wrap(session.ErrDocTooLarge), proto.CodeTooLarge, 413},
		{wrap(session.ErrOpRate), proto.CodeRateLimited, 429},
		{wrap(session.ErrHistoryGone), proto.CodeConflict, 409},
		{wrap(session.ErrStorage), proto.CodeUnavailable, 503},
		{wrap(session.ErrTryAgain), proto.CodeUnavailable, 503},
		{wrap(session.ErrBusy), proto.CodeUnavailable, 503},
		{wrap(session.ErrClosed), proto.CodeUnavailable, 503},
		{context.DeadlineExceeded, proto.CodeUnavailable, 503},
		// Tokens and ops.
		{fmt.Errorf("%w: token expired", auth.ErrInvalidToken), proto.CodeUnauthorized, 401},
		{auth.ErrNoSubject, proto.CodeUnauthorized, 401},
		{wrap(ot.ErrPastEnd), proto.CodeBadRequest, 400},
		{wrap(ot.ErrNotArray), proto.CodeBadRequest, 400},
		// Records, as storage reports them.
		{wrap(doc.ErrNotFound), proto.CodeNotFound, 404},
		{wrap(doc.ErrExists), proto.CodeConflict, 409},
		{wrap(doc.ErrCompacted), proto.CodeNotFound, 404},
		{wrap(doc.ErrInvalid), proto.CodeBadRequest, 400},
	} {
		f := describe(tc.err)
		if f.Code != tc.code || f.Status != tc.status || f.Internal {
			t.Errorf("describe(%v) = %+v, want %s %d", tc.err, f, tc.code, tc.status)
		}
		if strings.Contains(f.Message, "session:") || strings.Contains(f.Message, "auth:") {
			t.Errorf("describe(%v): message %q names a package", tc.err, f.Message)
		}
		if e := f.frame(); e.Type != proto.TypeError || e.Code != f.Code || e.Message != f.Message {
			t.Errorf("describe(%v).frame() = %+v", tc.err, e)
		}
	}

	// Anything else is internal, and says nothing of itself.
	for _, err := range []error{
		errors.New("bolt: page 12 already freed at /var/lib/tandem/tandem.db"),
		fmt.Errorf("store comment: %w", errors.New("write /var/lib/tandem/tandem.db: no space left on device")),
	} {
		f := describe(err)
		if f.Code != proto.CodeInternal || f.Status != 500 || !f.Internal || f.Message != "internal error" {
			t.Errorf("describe(%v) = %+v, want an internal error that says nothing", err, f)
		}
	}
}
