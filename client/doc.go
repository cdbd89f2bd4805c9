// Package client is the Go client of Tandem's wire protocol
// (docs/PROTOCOL.md): connect with a JWT (or as a development-mode guest),
// subscribe to channels with a handler, publish, presence, read receipts,
// retraction and token refresh; and collaborative documents: open, edit
// with the OT client algorithm, cursors, members and comments. The
// benchmark tool and the integration tests use it.
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
// # Documents
//
//	d, err := c.OpenDoc(ctx, "notes-1", client.DocHandlers{ // returns once the snapshot is in
//		OnChange: func(ch client.Change) { ... }, // others' ops, as applied here
//	})
//	err = d.Insert(5, "hi")  // local at once; never waits
//	err = d.WaitSynced(ctx)  // every edit acknowledged
//
// The callbacks passed to OpenDoc ([DocHandlers]) are in place before the
// open is sent, so they see every event after the snapshot, those that
// arrive before OpenDoc returns included.
//
// A [Document] is a replica of the text. Submit (and Insert, Delete)
// applies an edit locally at once and sends it: one op is in flight at a
// time, later edits are composed in a buffer (split so that no op inserts
// more than the server's limits), and every incoming op is transformed over
// the op in flight and the buffer, the incoming op's inserts first, before
// it is applied and reported to OnChange. Positions count code points.
// Each op carries a uid, "<random prefix>-<seq>", fixed when the op goes
// in flight and kept across reconnections, so the server applies it at
// most once. Others' cursors ([Document.Cursors]) and comment ranges
// ([Document.Comments]) are kept in positions of the local text: moved
// through the pending ops when they arrive and through every change after.
// This client's cursor ([Document.SetCursor]) is sent when nothing is in
// flight (mapped back to the server version), at most once per
// Config.CursorInterval. AddComment waits until the edits made before it
// are acknowledged, so that the commented text is on the server.
//
// The server's answers reach the document on the read goroutine: an edit
// it rejects for good (too_large, forbidden, bad_request) is undone
// locally, with the edits made after it transformed over the undo, and
// reported to OnError as an [*OpError] and to OnChange as [ChangeUndo]; one
// it refuses for now (rate_limited, unavailable) is sent again, with the
// same uid, after a backoff delay. Comment actions return the server's
// error.
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
// and [Subscription.Recovered] reports it. Every open document is
// reopened from the last server version it saw: the ops missed come back
// and are applied like live ones (the op in flight among them counts as
// acknowledged), then an op still in flight is resent with its uid at the
// new version. When the server no longer has that history (compacted, or
// it lost data), the document is reloaded from a snapshot
// ([ChangeReload]) and the edits it had pending go to OnLost. The reopen
// carries the document's epoch ([Document.Epoch]): when the document was
// deleted and created again under its id meanwhile, the server sends the
// new one's snapshot instead of its ops, the text is replaced
// ([ChangeReset]) and the edits pending against the old one go to OnLost. Requests made while
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
// and one that runs the callbacks (handlers, OnStatus, OnPresence, a
// document's OnChange, ...) one at a time, in the order the frames
// arrived; no lock is held while a callback runs. Writes from any
// goroutine are serialised by a mutex. Documents add no goroutine: the
// read goroutine applies their frames (and sends the next op after an
// ack), Submit sends from the caller's goroutine, and short-lived timers
// resend after a refusal and send a coalesced cursor; Close waits for
// them. A callback may call the client's
// methods, except Close; a slow callback delays later callbacks but never
// the connection (the callback queue is unbounded). Close stops both
// goroutines and waits for them.
//
// # Caveats
//
// The server closes a connection whose send queue overflows (4010), and a
// large recovery arrives as one frame: a subscription far behind a busy
// channel can meet that limit. A document's snapshot arrives as one
// message of up to tens of megabytes (escaped): Config.MaxMessageBytes
// (64 MiB by default) must stay above that. Presence state belongs to a connection and
// starts empty after a reconnection.
//
// A callback set with a Document's On... methods (rather than passed to
// OpenDoc) reports what happened after it was set; [Document.Text] is
// always current. [Change].Op applies to the local text
// as it was just before the change: a caller that mirrors the text and
// submits edits from other goroutines must take the mirror from Text, not
// replay Change ops over its own edits. A reload from a snapshot drops the
// edits still pending (OnLost has them); the first of them may have reached
// the server before its history went. Others' cursors and comment ranges
// are moved locally at every change; where a concurrent insert lands
// exactly on one of their ends they can differ from the server's until
// the next frame about them. A document holds its text twice (the local
// replica and the server's version, which an undo needs).
package client
