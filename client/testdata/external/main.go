// Command external is a program of another module that uses the Go client
// and the webhook verifier the way their users do: TestExternalModule
// copies it into a module of its own, with a replace directive pointing at
// the repository, and vets it. Every variable is declared with the type
// the call returns, so a type that another module may not name (one under
// internal/) fails the build.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/webhook"
)

func main() {
	ctx := context.Background()
	cfg := client.Config{
		URL:       "ws://127.0.0.1:8080/ws",
		TokenFunc: func(context.Context) (string, error) { return "", nil },
		Header:    http.Header{},
		Dialer:    &websocket.Dialer{},
		Logger:    zerolog.Nop(),
		OnStatus:  func(s client.Status, err error) { fmt.Println(s, err) },
		OnError:   func(e *client.Error) { fmt.Println(e.Code == proto.CodeInternal) },
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		explain(err)
		return
	}
	defer c.Close()

	var (
		user     proto.User    = c.User()
		limits   client.Limits = c.Limits()
		status   client.Status = c.Status()
		clientID string        = c.ClientID()
	)
	fmt.Println(user.ID, user.Name, user.Color, limits.MaxOpBytes, limits.MaxFrameBytes, limits.MaxDocLen, status == client.StatusConnected, clientID)

	// Channels.
	sub, err := c.Subscribe(ctx, "chat:lobby",
		func(m client.Message) {
			var from proto.From = m.From
			var data json.RawMessage = m.Data
			var at time.Time = m.Time
			fmt.Println(m.Channel, m.Offset, m.Event, from.User, from.ClientID, len(data), at, m.Retracted, m.Recovered, m.Decode(new(any)))
		},
		client.OnPresence(func(e client.PresenceEvent) {
			var member proto.Member = e.Member
			var who proto.User = member.User
			var state json.RawMessage = member.State
			fmt.Println(e.Channel, e.Event, member.ClientID, who.Name, len(state), e.Count, e.Mode)
		}),
		client.OnReceipt(func(r client.Receipt) { fmt.Println(r.Channel, r.User, r.Offset, r.Time) }),
		client.OnRetract(func(r client.Retraction) { fmt.Println(r.Channel, r.Offset, r.By) }),
		client.OnSubscribed(func(e client.SubscribedEvent) {
			var members []proto.Member = e.Members
			var receipts map[string]uint64 = e.Receipts
			fmt.Println(e.Channel, e.Offset, e.Epoch, e.Resumed, e.Recovered, len(members), e.MemberCount, len(receipts))
		}),
		client.OnUnsubscribed(func(err error) { explain(err) }),
		client.WithSince(0, ""),
		client.WithoutMemberList(),
	)
	if err != nil {
		explain(err)
		return
	}
	var opts []client.SubscribeOption = []client.SubscribeOption{client.WithoutMemberList()}
	var members []proto.Member = sub.Members()
	fetched, err := sub.FetchMembers(ctx)
	var fetchedMembers []proto.Member = fetched
	offset, epoch := sub.Position()
	var receipts map[string]uint64 = sub.Receipts()
	fmt.Println(len(opts), len(members), len(fetchedMembers), err, offset, epoch, len(receipts), sub.MemberCount(), sub.Recovered(), sub.Channel())
	var published uint64
	published, err = sub.Publish(ctx, "message", map[string]string{"text": "hi"}, client.PublishOptions{NoEcho: true})
	fmt.Println(published, err, sub.SetPresence(ctx, map[string]bool{"typing": true}), sub.MarkRead(ctx, published), sub.Retract(ctx, published))
	_, err = c.Publish(ctx, "chat:lobby", "message", nil, client.PublishOptions{Ephemeral: true})
	fmt.Println(err, c.Ping(ctx), c.Refresh(ctx, "token"), sub.Unsubscribe(ctx), sub.Err())
	<-sub.Done()

	// Documents.
	var handlers client.DocHandlers = client.DocHandlers{
		OnChange: func(ch client.Change) {
			var op ot.Op = ch.Op
			var kind client.ChangeKind = ch.Kind
			fmt.Println(op, kind == client.ChangeRemote, kind.String(), ch.Version, ch.UID, ch.User, ch.ClientID, ch.Time)
		},
		OnCursor: func(cur client.Cursor) {
			var who proto.User = cur.User
			var ranges []ot.Selection = cur.Ranges
			fmt.Println(cur.ClientID, who.ID, ranges)
		},
		OnPresence: func(e client.PresenceEvent) { fmt.Println(e.Member.User.Name) },
		OnComment: func(e client.CommentEvent) {
			var cm client.Comment = e.Comment
			fmt.Println(e.Action, cm.ID)
		},
		OnError: func(err error) {
			var oe *client.OpError
			if errors.As(err, &oe) {
				var rejected ot.Op = oe.Op
				var rest []ot.Op = oe.Rest
				var why *client.Error = oe.Err
				fmt.Println(oe.Doc, oe.UID, rejected, len(rest), why.Code == proto.CodeTooLarge)
			}
		},
		OnLost: func(l client.Lost) {
			var ops []ot.Op = l.Ops
			fmt.Println(len(ops), l.Version, l.Text)
		},
		OnClosed: func(err error) { fmt.Println(errors.Is(err, client.ErrDocDeleted)) },
	}
	var opt client.DocOption = handlers
	d, err := c.OpenDoc(ctx, "notes-1", opt)
	if err != nil {
		explain(err)
		return
	}
	var doc *client.Document = d
	fmt.Println(doc.ID(), doc.Text(), doc.Len(), doc.Version(), doc.Epoch(), doc.Synced())
	fmt.Println(d.Submit(ot.Op{ot.Retain(1), ot.Insert("x"), ot.Delete(1)}), d.Insert(0, "hi"), d.Delete(0, 1), d.WaitSynced(ctx))
	fmt.Println(d.SetCursor([]ot.Selection{{Anchor: 0, Head: 2}}))
	var cursors []client.Cursor = d.Cursors()
	var docMembers []proto.Member = d.Members()
	comment, err := d.AddComment(ctx, ot.Range{From: 0, To: 2}, "look", "")
	var added client.Comment = comment
	var where ot.Range = added.Range
	var author proto.User = added.User
	var comments []client.Comment = d.Comments()
	fmt.Println(len(cursors), len(docMembers), err, where.From, where.To, author.Name, added.Parent, added.Resolved, added.CreatedAt, added.UpdatedAt, len(comments))
	fmt.Println(d.EditComment(ctx, added.ID, "see"), d.ResolveComment(ctx, added.ID), d.ReopenComment(ctx, added.ID), d.DeleteComment(ctx, added.ID))
	d.OnChange(func(client.Change) {})
	d.OnCursor(func(client.Cursor) {})
	d.OnPresence(func(client.PresenceEvent) {})
	d.OnComment(func(client.CommentEvent) {})
	d.OnError(func(error) {})
	d.OnLost(func(client.Lost) {})
	d.OnClosed(func(error) {})
	fmt.Println(d.Close(ctx), d.Err())
	<-d.Done()
}

// explain tells the client's errors apart.
func explain(err error) {
	var e *client.Error
	var ce *client.CloseError
	switch {
	case errors.As(err, &e):
		fmt.Println(e.Code == proto.CodeNotFound, e.Message, e.Channel, e.Doc)
	case errors.As(err, &ce):
		fmt.Println(ce.Code == proto.CloseUnauthorized, ce.Text)
	}
	for _, sentinel := range []error{client.ErrClosed, client.ErrDisconnected, client.ErrUnauthorized, client.ErrAlreadySubscribed,
		client.ErrUnsubscribed, client.ErrDocOpen, client.ErrDocClosed, client.ErrDocDeleted} {
		fmt.Println(errors.Is(err, sentinel))
	}
}

// receive is a webhook receiver, as docs/webhooks.md describes it.
func receive(secret []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		err = webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), 5*time.Minute)
		switch {
		case errors.Is(err, webhook.ErrBadSignature), errors.Is(err, webhook.ErrStale):
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var sig string = webhook.Sign(secret, r.Header.Get(webhook.HeaderTimestamp), body)
		fmt.Println(sig, r.Header.Get(webhook.HeaderEvent), r.Header.Get(webhook.HeaderDelivery), r.Header.Get(webhook.HeaderAttempt))
	}
}

var _ = receive
