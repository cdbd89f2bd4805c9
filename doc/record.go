package doc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/ot"
)

// ErrNotFound and ErrExists are what a store returns, wrapped, for a record
// that is missing or already there. They live here, beside the records, so
// that the session can test for them without importing a storage package.
// ErrCompacted is for versions whose ops compaction dropped, ErrInvalid for
// a request a store rejects as malformed, ErrDuplicateUID for an appended
// op whose uid the log already holds, and ErrConflict (a [*ConflictError])
// for an append that lost a compare-and-append to another writer.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrCompacted    = errors.New("compacted away")
	ErrInvalid      = errors.New("invalid argument")
	ErrDuplicateUID = errors.New("duplicate op uid")
	ErrConflict     = errors.New("version conflict")
)

// A ConflictError says where an append did not follow on from a shared
// log (cluster mode: another node appended first): Have is the next
// version (or offset) the log holds now, Got the first version the append
// carried. Nothing of the append was written. It matches [ErrConflict]
// under [errors.Is].
type ConflictError struct {
	Key       string
	Have, Got uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict on %q: next is %d, got %d", e.Key, e.Have, e.Got)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Info is a document's metadata as storage keeps it.
type Info struct {
	ID      string    `json:"id"`
	Title   string    `json:"title,omitempty"`
	Created time.Time `json:"created"`
	// Version is the document's current version: the number of ops applied
	// since it was created.
	Version int `json:"version"`
	// Epoch names this incarnation of the document: a random id made when
	// it is created or imported, so that a client holding a version of a
	// document that was deleted and created again under the same id can
	// tell. Storage sets it; it is never empty for a stored document.
	Epoch string `json:"epoch,omitempty"`
}

// OpRecord is one entry of a document's op log: the op that took the
// document from Version to Version+1, who made it and when.
type OpRecord struct {
	// Version is the version the op applied to.
	Version int `json:"version"`
	// Op is canonical and already transformed to apply at Version.
	Op ot.Op `json:"op"`
	// UID is the client-chosen unique id of the op, used for exactly-once
	// delivery across reconnects.
	UID      string    `json:"uid"`
	User     string    `json:"user,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Time     time.Time `json:"ts"`
}

// Snapshot is a document's full content at a version.
type Snapshot struct {
	Version int    `json:"version"`
	Content string `json:"content"`
}

// Comment is a comment anchored to a range of a document's text. Replies
// name their thread's first comment in Parent.
type Comment struct {
	ID string `json:"id"`
	// Range is where the comment sits at document version Version; moving
	// it through the ops after Version gives where it sits now.
	Range   ot.Range `json:"range"`
	Version int      `json:"version"`
	// User is the author's user id; UserName their name when written.
	User      string    `json:"user"`
	UserName  string    `json:"user_name,omitempty"`
	Text      string    `json:"text"`
	Parent    string    `json:"parent,omitempty"`
	Resolved  bool      `json:"resolved"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Message is one published message of a channel's history. A retracted
// message keeps its offset as a tombstone: Retracted is true and Data is
// empty.
type Message struct {
	Channel string `json:"channel"`
	// Offset is the message's position in its channel, from 1, consecutive.
	Offset   uint64          `json:"offset"`
	Event    string          `json:"event,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	User     string          `json:"user,omitempty"`
	ClientID string          `json:"client_id,omitempty"`
	Time     time.Time       `json:"ts"`
	// Retracted marks a tombstone; RetractedBy is who retracted it.
	Retracted   bool   `json:"retracted,omitempty"`
	RetractedBy string `json:"retracted_by,omitempty"`
	// NoEcho is the client id of a publisher that asked not to get its
	// own message (echo false), so that the node it is connected to leaves
	// it out when the message comes back from a shared log (cluster
	// mode). It is never sent to clients.
	NoEcho string `json:"no_echo,omitempty"`
}

// User is a user the server has seen, for @mentions by name.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// HistoryLimit bounds how much of a channel's history storage keeps: at
// most MaxCount messages and none older than MaxAge. A zero field means no
// bound of that kind. Offsets keep counting past trimmed messages.
type HistoryLimit struct {
	MaxCount int           `json:"max_count,omitempty"`
	MaxAge   time.Duration `json:"max_age,omitempty"`
}
