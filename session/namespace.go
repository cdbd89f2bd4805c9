package session

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PresenceMode says how a namespace's channels track who is there.
type PresenceMode uint8

const (
	// PresenceFull: subscribed lists the members; join, update and leave
	// events reach every subscriber allowed to see presence.
	PresenceFull PresenceMode = iota
	// PresenceCount: only a count, for very large channels; subscribed
	// carries member_count and a periodic count event replaces join/leave.
	PresenceCount
	// PresenceOff: no presence at all.
	PresenceOff
)

func (m PresenceMode) String() string {
	switch m {
	case PresenceFull:
		return "full"
	case PresenceCount:
		return "count"
	default:
		return "off"
	}
}

// ParsePresenceMode parses "full", "count" or "off".
func ParsePresenceMode(s string) (PresenceMode, error) {
	switch s {
	case "full", "":
		return PresenceFull, nil
	case "count":
		return PresenceCount, nil
	case "off":
		return PresenceOff, nil
	}
	return 0, fmt.Errorf("presence mode %q: want full, count or off", s)
}

// Namespace holds the options shared by every channel whose name starts
// with `Name:`. The zero value of a field means what its comment says.
type Namespace struct {
	Name string
	// HistorySize is how many messages a channel keeps; 0 keeps none
	// (every publish is then delivered live only, with an offset).
	HistorySize int
	// HistoryAge drops messages older than this; 0 keeps them forever.
	HistoryAge time.Duration
	// Presence is how presence is tracked.
	Presence PresenceMode
	// ClientPublish lets clients with a publish grant publish; otherwise
	// only the HTTP API (server-side keys) and admins do.
	ClientPublish bool
	// Private channels are `ns:<user id>`: only that user (and admins) may
	// subscribe, whatever the grants say.
	Private bool
	// ServerOnly namespaces carry what the server itself says (system:
	// its stats and document events): no client, admin or API key may
	// publish there.
	ServerOnly bool
	// Reserved namespaces cannot be subscribed or published as channels
	// (doc: carries documents' live traffic through their own requests).
	Reserved bool
	// Mentions makes a published `data.text` notify each @mentioned user
	// the server knows on `user:<id>`.
	Mentions bool
	// MaxPayload bounds a message's data in bytes; 0 means the frame limit.
	MaxPayload int
	// PublishRate is how many messages per second one connection may publish
	// in a channel of this namespace (burst PublishBurst); 0: no limit
	// beyond the connection's own.
	PublishRate  float64
	PublishBurst int
	// MaxPresenceState bounds a member's presence state, in bytes as
	// encoded on the wire; a larger state is refused (too_large). By
	// default DefaultMaxPresenceState (4 KiB).
	MaxPresenceState int
	// PresenceBatch is the window in which a channel's joins, updates and
	// leaves go out as one batch frame to the subscribers that asked for
	// batches: a change in a quiet channel goes out at once, and those
	// that follow within the window wait for its end. By default
	// DefaultPresenceBatch (100 ms).
	PresenceBatch time.Duration
	// PresenceCountAbove and PresenceCountBelow make a full-presence
	// channel switch itself to count mode when it has more than
	// PresenceCountAbove members, and back to full presence when it has
	// fewer than PresenceCountBelow, telling its members each time. By
	// default DefaultPresenceCountAbove (1,000) and four fifths of
	// PresenceCountAbove; a negative PresenceCountAbove never switches.
	// Full presence costs every member a record of every other member's
	// join: a join storm into a room of N members sends N²/2 records, 0.5
	// million at 1,000 members but 50 million at 10,000.
	PresenceCountAbove int
	PresenceCountBelow int
}

// Defaults of the presence options of a namespace.
const (
	DefaultMaxPresenceState   = 4 << 10
	DefaultPresenceBatch      = 100 * time.Millisecond
	DefaultPresenceCountAbove = 1000
)

// maxPresenceState returns MaxPresenceState or its default.
func (ns *Namespace) maxPresenceState() int {
	if ns.MaxPresenceState > 0 {
		return ns.MaxPresenceState
	}
	return DefaultMaxPresenceState
}

// presenceBatch returns PresenceBatch or its default.
func (ns *Namespace) presenceBatch() time.Duration {
	if ns.PresenceBatch > 0 {
		return ns.PresenceBatch
	}
	return DefaultPresenceBatch
}

// countBounds returns the member counts above which a full-presence
// channel switches to count mode and below which it switches back; above
// is 0 when it never switches.
func (ns *Namespace) countBounds() (above, below int) {
	switch {
	case ns.PresenceCountAbove < 0:
		return 0, 0
	case ns.PresenceCountAbove == 0:
		above = DefaultPresenceCountAbove
	default:
		above = ns.PresenceCountAbove
	}
	below = ns.PresenceCountBelow
	if below <= 0 || below > above {
		below = above * 4 / 5
	}
	return above, below
}

// DefaultNamespaces returns the namespaces a new server has without any
// configuration: the default namespace (names without `:`), chat, doc,
// dashboard, user and system. Each call returns fresh values.
func DefaultNamespaces() map[string]*Namespace {
	return map[string]*Namespace{
		"": {Name: "", HistorySize: 100, HistoryAge: 24 * time.Hour, Presence: PresenceFull,
			ClientPublish: true, PublishRate: 20, PublishBurst: 40},
		"chat": {Name: "chat", HistorySize: 1000, HistoryAge: 7 * 24 * time.Hour, Presence: PresenceFull,
			ClientPublish: true, Mentions: true, PublishRate: 10, PublishBurst: 20, MaxPayload: 16 << 10},
		"doc": {Name: "doc", Reserved: true, Presence: PresenceFull},
		"dashboard": {Name: "dashboard", HistorySize: 100, HistoryAge: 24 * time.Hour, Presence: PresenceCount,
			ClientPublish: false},
		"user":   {Name: "user", HistorySize: 100, HistoryAge: 7 * 24 * time.Hour, Presence: PresenceOff, Private: true},
		"system": {Name: "system", HistorySize: 60, HistoryAge: time.Hour, Presence: PresenceCount, ServerOnly: true},
	}
}

// MaxChannelName is the longest channel name, in bytes.
const MaxChannelName = 255

// ValidChannel checks a channel name against the protocol's rules.
func ValidChannel(name string) error {
	if name == "" || len(name) > MaxChannelName {
		return fmt.Errorf("%w: must be 1 to %d bytes", ErrBadChannel, MaxChannelName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: invalid UTF-8", ErrBadChannel)
	}
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-:.@#=", r) {
			continue
		}
		return fmt.Errorf("%w: character %q not allowed", ErrBadChannel, r)
	}
	return nil
}

// NamespaceOf returns the namespace part of a channel name: what comes
// before the first `:`, or "" for the default namespace.
func NamespaceOf(channel string) string {
	ns, _, ok := strings.Cut(channel, ":")
	if !ok {
		return ""
	}
	return ns
}
