// Package client is the Go client of Tandem's wire protocol
// (docs/PROTOCOL.md): connect with a JWT (or as a development-mode guest),
// subscribe to channels with a handler, publish, presence, read receipts,
// retraction and token refresh. The benchmark tool and the integration
// tests use it.
//
// # Basics
//
//	c, err := client.Dial(ctx, client.Config{URL: "ws://127.0.0.1:8080/ws", Token: tok})
//	defer c.Close()
//	sub, err := c.Subscribe(ctx, "chat:42", func(m client.Message) { ... },
//		client.OnPresence(func(e client.PresenceEvent) { ... }))
//	off, err := sub.Publish(ctx, "message", map[string]string{"text": "hi @bob"}, client.PublishOptions{})
//
// Every request takes a context and waits for the server's answer, matched
// by id; an error frame comes back as an [*Error] with its wire code.
//
// # Reconnection
//
// When the connection drops (the server restarts, the network blips, the
// server closes it with 1001 or 4010), the client reconnects with
// exponential backoff and full jitter, capped by Config.ReconnectMax, and
// resubscribes every channel from the last offset it saw (subscribe with
// `since`). So a handler sees every offset of its channel once and in
// order across reconnections; when the server could not recover everything
// (history trimmed, epoch changed), [SubscribedEvent].Recovered is false
// and [Subscription.Recovered] reports it. Requests made while
// reconnecting wait for the new connection (or their context). A request
// in flight when the connection drops fails with [ErrDisconnected]: it may
// or may not have taken effect, so the client never resends it on its own.
// After close 4001 (unauthorized) the client reconnects only if
// Config.TokenFunc gives a new token; otherwise it stops
// ([StatusDisconnected], [ErrUnauthorized]). With TokenFunc set, the client
// also refreshes the token before it expires.
//
// # Goroutines
//
// A client runs one goroutine that reads the connection and reconnects,
// and one that runs the callbacks (handlers, OnStatus, OnPresence, ...)
// one at a time, in the order the frames arrived. Writes from any
// goroutine are serialised by a mutex. A callback may call the client's
// methods, except Close; a slow callback delays later callbacks but never
// the connection (the callback queue is unbounded). Close stops both
// goroutines and waits for them.
//
// # Caveats
//
// The server closes a connection whose send queue overflows (4010), and a
// large recovery arrives as one frame: a subscription far behind a busy
// channel can meet that limit. Presence state belongs to a connection and
// starts empty after a reconnection. Documents (open, op, cursor, comment)
// are not part of this package yet; their frames carry a `doc` field, and
// the read goroutine's route is where a document type with the same
// reconnect-and-resume shape as [Subscription] will plug in.
package client
