package doc

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The limits every path that creates or changes a document applies (the
// live sessions, the HTTP API, import), so that a document that one path
// accepts is one that every other path can serve. Callers may configure
// lower or higher values; these are the defaults.
const (
	// MaxIDLen is the longest document id, in bytes.
	MaxIDLen = 200
	// MaxTitleBytes bounds a document's title, in bytes of UTF-8.
	MaxTitleBytes = 200
	// DefaultMaxLen bounds a document's length, in code points.
	DefaultMaxLen = 4_000_000
	// DefaultMaxOpBytes bounds the text one op inserts, in bytes.
	DefaultMaxOpBytes = 64 << 10
	// DefaultMaxCommentBytes bounds one comment's text, in bytes. A comment
	// escaped six-fold in JSON (control characters) stays under 24 KiB.
	DefaultMaxCommentBytes = 4 << 10
	// DefaultMaxComments bounds the comments of one document, replies
	// included. With DefaultMaxLen and DefaultMaxCommentBytes the worst-case
	// snapshot (every character a control character, escaped six-fold) is
	// about 50 MB, under the 64 MiB message limit of the Go client.
	DefaultMaxComments = 1000
)

// ErrBadID: a document id that breaks [ValidID]'s rule.
var ErrBadID = errors.New("bad document id")

// ValidID checks a document id: 1 to MaxIDLen bytes of letters, digits and
// `_-.@#=`, and neither "." nor "..". Every path that names a document
// (the wire protocol, the HTTP API, storage, import) applies this one rule.
// The error wraps ErrBadID.
func ValidID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: must be 1 to %d bytes", ErrBadID, MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: invalid UTF-8", ErrBadID)
	}
	if id == "." || id == ".." {
		// Path segments with a meaning of their own in /api/docs/{id}.
		return fmt.Errorf("%w: %q is not a document id", ErrBadID, id)
	}
	for _, r := range id {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-.@#=", r) {
			return fmt.Errorf("%w: character %q not allowed", ErrBadID, r)
		}
	}
	return nil
}

// ValidTitle checks a document title: at most MaxTitleBytes bytes of
// valid UTF-8.
func ValidTitle(title string) error {
	if len(title) > MaxTitleBytes || !utf8.ValidString(title) {
		return fmt.Errorf("title: at most %d bytes of UTF-8", MaxTitleBytes)
	}
	return nil
}

// Limits are the size limits of documents and their comments. A zero field
// means its default.
type Limits struct {
	// MaxLen bounds a document's length in code points; DefaultMaxLen by
	// default.
	MaxLen int
	// MaxCommentBytes bounds one comment's text in bytes;
	// DefaultMaxCommentBytes by default.
	MaxCommentBytes int
	// MaxComments bounds the comments (replies included) of one document;
	// DefaultMaxComments by default.
	MaxComments int
}

// WithDefaults returns l with every zero (or negative) field set to its
// default.
func (l Limits) WithDefaults() Limits {
	if l.MaxLen <= 0 {
		l.MaxLen = DefaultMaxLen
	}
	if l.MaxCommentBytes <= 0 {
		l.MaxCommentBytes = DefaultMaxCommentBytes
	}
	if l.MaxComments <= 0 {
		l.MaxComments = DefaultMaxComments
	}
	return l
}
