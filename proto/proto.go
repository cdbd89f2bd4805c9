// Package proto holds the frames of Tandem's wire protocol, version 1
// (docs/PROTOCOL.md): what a client sends, what the server answers and
// pushes, the error codes and the close codes. The server (web, session) and
// the Go client share these types so that both speak exactly one contract.
//
// Frames are JSON objects. A client frame is decoded once into a [Request],
// whose fields cover every request type; which fields matter depends on
// Type. Server frames are built from the typed structs below and encoded
// with encoding/json; a broadcast is encoded once and the same bytes go to
// every subscriber.
package proto

import (
	"bytes"
	"encoding/json"
	"hash/fnv"

	"github.com/tandemhq/tandem/ot"
)

// Version is the protocol version this package implements.
const Version = 1

// Request types a client sends.
const (
	TypeConnect     = "connect"
	TypeRefresh     = "refresh"
	TypePing        = "ping"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypeRetract     = "retract"
	TypePresence    = "presence"
	TypeRead        = "read"
	TypeOpen        = "open"
	TypeClose       = "close"
	TypeOp          = "op"
	TypeCursor      = "cursor"
	TypeComment     = "comment"
	// TypeMembers asks for a page of a channel's members; the answer has
	// the same type.
	TypeMembers = "members"
	// TypeRPC calls a method of the application's backend (its rpc hook,
	// docs/hooks.md); the answer is an RPCResult or an error frame.
	TypeRPC = "rpc"
)

// Frame types the server sends (besides the echoes of request types above
// that it also uses: presence, op, cursor, comment, retracted).
const (
	TypeConnected    = "connected"
	TypeRefreshed    = "refreshed"
	TypePong         = "pong"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribed = "unsubscribed"
	TypePublished    = "published"
	TypeMessage      = "message"
	TypeRetracted    = "retracted"
	TypeReceipt      = "receipt"
	TypeSnapshot     = "snapshot"
	TypeOpened       = "opened"
	TypeClosed       = "closed"
	TypeAck          = "ack"
	TypeError        = "error"
	TypeRPCResult    = "rpc_result"
)

// Error codes of an error frame.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeRateLimited  = "rate_limited"
	CodeTooLarge     = "too_large"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// WebSocket close codes the server uses.
const (
	CloseGoingAway     = 1001 // server shutting down
	CloseInvalidUTF8   = 1007 // a text frame that is not UTF-8
	CloseTryAgainLater = 1013 // over a connection cap
	CloseUnauthorized  = 4001 // no connect first, bad or expired token
	CloseAbuse         = 4002 // protocol abuse (in the protocol; this server sends the more specific codes)
	CloseRateLimit     = 4008 // rate limit exceeded repeatedly
	CloseTooLarge      = 4009 // frame over the size limit
	CloseSlowReader    = 4010 // send queue overflowed
)

// The reasons behind these codes, with their texts, are the Disconnect
// values (disconnect.go).

// Since is a subscriber's recovery position: the last offset it saw, in the
// channel epoch it saw it in.
type Since struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Request is any client frame. ID is nil when the frame carries no id.
type Request struct {
	ID   *int64 `json:"id,omitempty"`
	Type string `json:"type"`

	// connect, refresh. User and Name name a guest in development mode
	// only (an addition to the protocol); with a token they are ignored.
	Token  string `json:"token,omitempty"`
	Client string `json:"client,omitempty"`
	User   string `json:"user,omitempty"`
	Name   string `json:"name,omitempty"`

	// channels
	Channel   string          `json:"channel,omitempty"`
	Since     *Since          `json:"since,omitempty"`
	Event     string          `json:"event,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Ephemeral bool            `json:"ephemeral,omitempty"`
	Echo      *bool           `json:"echo,omitempty"`
	Offset    uint64          `json:"offset,omitempty"`
	State     json.RawMessage `json:"state,omitempty"`
	// PresenceBatch (subscribe) asks for presence changes in batch frames.
	PresenceBatch bool `json:"presence_batch,omitempty"`
	// After and Limit (members) ask for up to Limit members whose client
	// ids sort after After.
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`

	// documents. Epoch, with Version on open, names the incarnation of the
	// document the version belongs to (an addition to the protocol).
	Doc     string         `json:"doc,omitempty"`
	Version *int           `json:"version,omitempty"`
	Epoch   string         `json:"epoch,omitempty"`
	Op      ot.Op          `json:"op,omitempty"`
	UID     string         `json:"uid,omitempty"`
	Ranges  []ot.Selection `json:"ranges,omitempty"`

	// comments
	Action    string    `json:"action,omitempty"`
	Range     *ot.Range `json:"range,omitempty"`
	Text      *string   `json:"text,omitempty"`
	Parent    *string   `json:"parent,omitempty"`
	CommentID string    `json:"comment_id,omitempty"`

	// rpc: the method to call, with Data as its argument.
	Method string `json:"method,omitempty"`
}

// User is a user as frames show it.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Color string `json:"color"`
}

// Member is one presence entry of a channel or document.
type Member struct {
	ClientID string          `json:"client_id"`
	User     User            `json:"user"`
	State    json.RawMessage `json:"state,omitempty"`
}

// From says who published a message.
type From struct {
	User     string `json:"user,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// Error is an error frame.
type Error struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
	// Channel or Doc name what the request was about, when it had one.
	Channel string `json:"channel,omitempty"`
	Doc     string `json:"doc,omitempty"`
}

// Connected answers connect.
type Connected struct {
	ID           *int64 `json:"id,omitempty"`
	Type         string `json:"type"`
	ClientID     string `json:"client_id"`
	User         User   `json:"user"`
	PingInterval int    `json:"ping_interval"`
	Server       string `json:"server"`
	// Limits are the server's size limits, so that a client can split a
	// large edit into ops that fit them. Clients must accept its absence
	// (older servers) and then assume 64 KiB for both byte limits.
	Limits *Limits `json:"limits,omitempty"`
	// Data is what the application's connect hook attached, if anything.
	Data json.RawMessage `json:"data,omitempty"`
}

// Limits are the size limits a client's document ops must respect.
type Limits struct {
	// MaxFrameBytes bounds one client frame as sent, JSON-encoded, in bytes:
	// a larger one closes the connection with 4009.
	MaxFrameBytes int `json:"max_frame_bytes"`
	// MaxOpBytes bounds the UTF-8 bytes one op inserts (too_large).
	MaxOpBytes int `json:"max_op_bytes"`
	// MaxDocLen bounds a document's length in code points (too_large).
	MaxDocLen int `json:"max_doc_len"`
}

// Reply is a bare answer carrying only an id and a type (refreshed, pong).
type Reply struct {
	ID   *int64 `json:"id,omitempty"`
	Type string `json:"type"`
}

// Message is a published channel message as subscribers receive it, and as
// it appears in subscribed.messages. A retracted message in recovered
// history has Retracted set and no data.
type Message struct {
	Type      string          `json:"type,omitempty"` // "message" when pushed
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset,omitempty"`
	Event     string          `json:"event,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	From      *From           `json:"from,omitempty"`
	TS        string          `json:"ts"`
	Retracted bool            `json:"retracted,omitempty"`
}

// Subscribed answers subscribe.
type Subscribed struct {
	ID          *int64            `json:"id,omitempty"`
	Type        string            `json:"type"`
	Channel     string            `json:"channel"`
	Offset      uint64            `json:"offset"`
	Epoch       string            `json:"epoch"`
	Recovered   bool              `json:"recovered"`
	Messages    []Message         `json:"messages"`
	Members     []Member          `json:"members,omitempty"`
	MemberCount *int              `json:"member_count,omitempty"`
	Receipts    map[string]uint64 `json:"receipts"`
	// MembersNext is set when Members is only the first page (in client
	// id order): a members request with after MembersNext continues.
	MembersNext string `json:"members_next,omitempty"`
	// Data is what the application's subscribe hook attached, if anything.
	Data json.RawMessage `json:"data,omitempty"`
}

// RPCResult answers an rpc: the application's answer (null when it gave
// none).
type RPCResult struct {
	ID     *int64          `json:"id,omitempty"`
	Type   string          `json:"type"` // "rpc_result"
	Method string          `json:"method"`
	Data   json.RawMessage `json:"data"`
}

// Members answers a members request: the members whose client ids sort
// after After, in client id order, up to and including Next when Next is
// set (it is the After of the next page), else to the end; and the
// channel's member count. Mode "count" says the channel keeps only a
// count now (Members is then empty).
type Members struct {
	ID      *int64   `json:"id,omitempty"`
	Type    string   `json:"type"` // "members"
	Channel string   `json:"channel"`
	After   string   `json:"after,omitempty"`
	Members []Member `json:"members"`
	Count   int      `json:"count"`
	Next    string   `json:"next,omitempty"`
	Mode    string   `json:"mode,omitempty"`
}

// ChannelReply answers unsubscribe, retract and publish (Offset set for a
// stored publish), and tells a client it was unsubscribed (Reason).
type ChannelReply struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Reason  string `json:"reason,omitempty"`
	By      string `json:"by,omitempty"`
}

// Presence is a presence event: join, update, leave, count, mode (Mode
// says "count" or "full"), or batch (Events lists joins, updates and
// leaves, and Count the members after them).
type Presence struct {
	Type    string          `json:"type"` // "presence"
	Channel string          `json:"channel,omitempty"`
	Doc     string          `json:"doc,omitempty"`
	Event   string          `json:"event"`
	Member  *Member         `json:"member,omitempty"`
	Count   *int            `json:"count,omitempty"`
	Mode    string          `json:"mode,omitempty"`
	Events  []PresenceEvent `json:"events,omitempty"`
}

// PresenceEvent is one change in a batch presence frame.
type PresenceEvent struct {
	Event  string `json:"event"` // join, update or leave
	Member Member `json:"member"`
}

// Receipt is a read receipt broadcast.
type Receipt struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"` // "receipt"
	Channel string `json:"channel"`
	User    string `json:"user"`
	Offset  uint64 `json:"offset"`
	TS      string `json:"ts"`
}

// Encode marshals a server frame. Frames are plain structs of strings,
// numbers and raw JSON, so this cannot fail short of a bug; it panics then.
// It does not escape `<`, `>` and `&` the way json.Marshal does for HTML:
// frames are not HTML, and the escape would make each of them six bytes.
func Encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("proto: encode frame: " + err.Error())
	}
	b := buf.Bytes()
	return b[:len(b)-1] // Encode ends each value with a newline
}

// TimeLayout is how frames write times: RFC 3339 in UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// DocOp is an applied op as clients receive it, as `opened` lists the
// missed ones, and as the HTTP API's GET /api/docs/{id}/ops lists the log
// (without Doc: the page names the document). Version is the version it
// applied to.
type DocOp struct {
	Type     string `json:"type,omitempty"` // "op" when pushed
	Doc      string `json:"doc,omitempty"`
	Version  int    `json:"version"`
	Op       ot.Op  `json:"op"`
	UID      string `json:"uid"`
	User     string `json:"user,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	TS       string `json:"ts"`
}

// Ack acknowledges a client's op once it is durable.
type Ack struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"` // "ack"
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	UID     string `json:"uid"`
}

// Comment is a comment as frames carry it.
type Comment struct {
	ID        string   `json:"id"`
	Range     ot.Range `json:"range"`
	User      User     `json:"user"`
	Text      string   `json:"text"`
	Parent    *string  `json:"parent"`
	Resolved  bool     `json:"resolved"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at,omitempty"`
}

// CommentFrame answers and broadcasts a comment action.
type CommentFrame struct {
	ID      *int64  `json:"id,omitempty"`
	Type    string  `json:"type"` // "comment"
	Doc     string  `json:"doc"`
	Action  string  `json:"action"`
	Comment Comment `json:"comment"`
}

// Cursor is a member's cursor and selections, at Version.
type Cursor struct {
	Type     string         `json:"type,omitempty"` // "cursor" when pushed
	Doc      string         `json:"doc"`
	Version  int            `json:"version"`
	ClientID string         `json:"client_id"`
	User     *User          `json:"user,omitempty"`
	Ranges   []ot.Selection `json:"ranges"`
}

// Snapshot answers open without a version, and an open with a version of
// another incarnation of the document (Reset true). Epoch names the
// document's incarnation (an addition to the protocol).
type Snapshot struct {
	ID       *int64    `json:"id,omitempty"`
	Type     string    `json:"type"` // "snapshot"
	Doc      string    `json:"doc"`
	Version  int       `json:"version"`
	Epoch    string    `json:"epoch"`
	Reset    bool      `json:"reset,omitempty"`
	Content  string    `json:"content"`
	Comments []Comment `json:"comments"`
	Members  []Member  `json:"members"`
	Cursors  []Cursor  `json:"cursors"`
}

// Opened answers open with a version: the ops since then.
type Opened struct {
	ID       *int64    `json:"id,omitempty"`
	Type     string    `json:"type"` // "opened"
	Doc      string    `json:"doc"`
	Version  int       `json:"version"`
	Epoch    string    `json:"epoch"`
	Ops      []DocOp   `json:"ops"`
	Comments []Comment `json:"comments"`
	Members  []Member  `json:"members"`
	Cursors  []Cursor  `json:"cursors"`
}

// colors is the palette users are drawn in.
var colors = []string{"#e0457b", "#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#14b8a6", "#f97316", "#6366f1", "#84cc16"}

// ColorOf returns a user's colour: a palette entry picked by a hash of the
// id, so every server and client draws a user alike.
func ColorOf(userID string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	return colors[h.Sum32()%uint32(len(colors))]
}

// Closed answers close, and tells a client that a document closed under
// it (Reason "deleted" or "unavailable").
type Closed struct {
	ID     *int64 `json:"id,omitempty"`
	Type   string `json:"type"` // "closed"
	Doc    string `json:"doc"`
	Reason string `json:"reason,omitempty"`
}
