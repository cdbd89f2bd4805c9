package hooks

import (
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/proto"
)

// ErrNotConfigured: Connect, Refresh, DocLoad or RPC was called while its
// hook is off (or on a nil *Caller). Tandem then does what it does without
// hooks; for rpc that is a not_found error (see [WireError]).
var ErrNotConfigured = errors.New("hooks: hook not configured")

// ErrFallback is matched (errors.Is) by the *Failure that Connect, Refresh
// and DocLoad return when the backend failed and the hook's policy is
// allow: the server goes on with its own rules, as if the hook were off
// (its own token verification; creating a missing document empty).
var ErrFallback = errors.New("hooks: backend failed; policy allows: fall back to the server's own rules")

// Refusal is the backend's no: its answer's
// {"error":{"code":"...","message":"..."}}. Code is one of the protocol's
// error codes (an empty or unknown code is replaced by the hook's default:
// unauthorized for connect and refresh, not_found for doc_load and rpc,
// forbidden for the others) and Message is what the client sees in the
// error frame.
type Refusal struct {
	Hook    Hook
	Code    string
	Message string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s hook refused: %s: %s", r.Hook, r.Code, r.Message)
}

// FailureKind says how a call to the backend failed.
type FailureKind uint8

const (
	// FailTimeout: no complete answer within the hook's timeout.
	FailTimeout FailureKind = iota + 1
	// FailDown: the backend could not be reached (connection refused,
	// reset, DNS).
	FailDown
	// FailBadAnswer: an answer that is not one: a status other than 2xx, a
	// body that is not the hook's JSON, over max_answer_bytes, or with
	// invalid fields (a bad grant, a user without an id).
	FailBadAnswer
	// FailOverloaded: no slot under the concurrency bound freed up within
	// the timeout.
	FailOverloaded
	// FailCanceled: the caller's context ended first (the client went
	// away, the server is shutting down). The policy is not applied: the
	// caller no longer waits for an answer.
	FailCanceled

	numFailureKinds
)

var failureKindNames = [numFailureKinds]string{"", "timeout", "down", "bad_answer", "overloaded", "canceled"}

func (k FailureKind) String() string {
	if k > 0 && k < numFailureKinds {
		return failureKindNames[k]
	}
	return fmt.Sprintf("failure(%d)", k)
}

// Failure is a call that got no valid answer. As an error it is returned
// when the hook's policy is refuse (or the kind is FailCanceled); with
// policy allow it is returned only by Connect, Refresh and DocLoad, where
// it matches ErrFallback, and otherwise rides along in the result for
// logging while the request goes on.
type Failure struct {
	Hook Hook
	Kind FailureKind
	// Allowed: the policy let the request go on.
	Allowed bool
	// Err is the detail, for the server's log only: it may name the
	// backend's address, which clients must not see.
	Err error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s hook failed (%s): %v", f.Hook, f.Kind, f.Err)
}

// Unwrap lets errors.Is find ErrFallback (when Allowed) and the detail.
func (f *Failure) Unwrap() []error {
	if f.Allowed {
		return []error{ErrFallback, f.Err}
	}
	return []error{f.Err}
}

// Message is what a client sees for a failure: it says which kind, never
// the backend's address or error text.
func (f *Failure) Message() string {
	switch f.Kind {
	case FailTimeout:
		return "the application's backend did not answer in time"
	case FailDown:
		return "the application's backend cannot be reached"
	case FailBadAnswer:
		return "the application's backend gave an invalid answer"
	case FailOverloaded:
		return "too many requests are waiting for the application's backend"
	case FailCanceled:
		return "the request was canceled"
	}
	return "the application's backend failed"
}

// WireError maps an error of this package to the protocol's error code and
// message, for the edge's one error-mapping function: a Refusal gives the
// backend's code and message; a Failure gives unavailable (a client may
// retry later); ErrNotConfigured gives not_found (an rpc nobody answers).
// ok is false for any other error.
func WireError(err error) (code, message string, ok bool) {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code, r.Message, true
	}
	var f *Failure
	if errors.As(err, &f) {
		return proto.CodeUnavailable, f.Message(), true
	}
	if errors.Is(err, ErrNotConfigured) {
		return proto.CodeNotFound, "no such method: the server has no rpc hook", true
	}
	return "", "", false
}

// wireCodes are the protocol's error codes a backend may refuse with.
var wireCodes = []string{
	proto.CodeBadRequest, proto.CodeUnauthorized, proto.CodeForbidden, proto.CodeNotFound,
	proto.CodeRateLimited, proto.CodeTooLarge, proto.CodeConflict, proto.CodeUnavailable, proto.CodeInternal,
}

// defaultCode is the code of a refusal of hook h that names none (or one
// the protocol does not have).
func defaultCode(h Hook) string {
	switch h {
	case HookConnect, HookRefresh:
		return proto.CodeUnauthorized
	case HookDocLoad, HookRPC:
		return proto.CodeNotFound
	}
	return proto.CodeForbidden
}
