package session

import "time"

// Event types a Notifier receives.
const (
	EventDocChanged         = "doc.changed"    // an op became durable (Version is the new version)
	EventDocJoined          = "doc.joined"     // a client opened a document
	EventDocLeft            = "doc.left"       // a client closed it or went away
	EventCommentAdded       = "comment.added"  // Data is the comment
	EventMention            = "mention"        // User was @mentioned; Data holds the text
	EventChannelJoined      = "channel.joined" // a client subscribed
	EventChannelLeft        = "channel.left"   // a client unsubscribed or went away
	EventClientDisconnected = "client.disconnected"
)

// Event is something that happened which systems outside the server may
// want to hear of, through webhooks.
type Event struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"ts"`
	Doc      string    `json:"doc,omitempty"`
	Channel  string    `json:"channel,omitempty"`
	User     string    `json:"user,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Version  int       `json:"version,omitempty"`
	Data     any       `json:"data,omitempty"`
}

// Notifier receives events. Notify is called on hot paths (a document's
// goroutine, the hub under a channel lock): it must not block or call back
// into the hub or documents.
type Notifier interface {
	Notify(Event)
}

// notify sends e to n, if there is one.
func notify(n Notifier, e Event) {
	if n != nil {
		n.Notify(e)
	}
}
