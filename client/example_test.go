package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// exampleServer starts a real Tandem server for an example: development
// mode (guests connect without a token, named by Config.User), on a free
// port of 127.0.0.1, with its data in a temporary directory. It returns
// the server's WebSocket URL and a function that stops the server and
// removes its data.
func exampleServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "tandem-example-")
	if err != nil {
		log.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Addr, cfg.Data = "127.0.0.1:0", dir
	srv := server.New(cfg, zerolog.Nop())
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	return "ws://" + srv.Addr() + "/ws", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		_ = os.RemoveAll(dir)
	}
}

// Connect to a server, here as the development-mode guest "ann" (against
// a production server, set Config.Token or Config.TokenFunc instead).
func ExampleDial() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, client.Config{URL: url, User: "ann", Name: "Ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	u := c.User()
	fmt.Println(c.Status(), "as", u.ID, u.Name)
	fmt.Println("one op inserts at most", c.Limits().MaxOpBytes, "bytes")
	// Output:
	// connected as ann Ann
	// one op inserts at most 65536 bytes
}

// Open a document and edit it together: Ann writes, Bob opens it and
// adds to it, and Ann's OnChange, passed to OpenDoc, gets Bob's op.
func ExampleClient_OpenDoc() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	ann, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer ann.Close()
	changes := make(chan client.Change, 1)
	da, err := ann.OpenDoc(ctx, "notes-1", client.DocHandlers{
		OnChange: func(ch client.Change) { changes <- ch },
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := da.Insert(0, "hello"); err != nil { // applied locally at once
		log.Fatal(err)
	}
	if err := da.WaitSynced(ctx); err != nil { // acknowledged by the server
		log.Fatal(err)
	}

	bob, err := client.Dial(ctx, client.Config{URL: url, User: "bob"})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	db, err := bob.OpenDoc(ctx, "notes-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob opens %q at version %d\n", db.Text(), db.Version())
	if err := db.Insert(5, " world"); err != nil {
		log.Fatal(err)
	}

	ch := <-changes
	fmt.Printf("ann gets a %s op from %s: %v\n", ch.Kind, ch.User, ch.Op)
	fmt.Printf("ann has %q at version %d\n", da.Text(), da.Version())
	// Output:
	// bob opens "hello" at version 1
	// ann gets a remote op from bob: [5," world"]
	// ann has "hello world" at version 2
}

// Subscribe to a channel with a handler, and publish on it.
// Edit makes an op from the local text as it is when the op is submitted:
// here a line appended at the end, wherever others' ops have moved it.
func ExampleDocument_Edit() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	d, err := c.OpenDoc(ctx, "log-1")
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range []string{"first\n", "second\n"} {
		err := d.Edit(func(text client.LocalText) ot.Op {
			return ot.Splice(text.Len(), 0, line)
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := d.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q at version %d\n", d.Text(), d.Version())
	// Output:
	// "first\nsecond\n" at version 2
}

func ExampleClient_Subscribe() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan client.Message, 1)
	sub, err := c.Subscribe(ctx, "chat:lobby", func(m client.Message) { got <- m })
	if err != nil {
		log.Fatal(err)
	}
	offset, err := sub.Publish(ctx, "message", map[string]string{"text": "hi all"}, client.PublishOptions{})
	if err != nil {
		log.Fatal(err)
	}

	m := <-got
	var body struct{ Text string }
	if err := m.Decode(&body); err != nil {
		log.Fatal(err)
	}
	fmt.Println("published at offset", offset)
	fmt.Printf("%s %d from %s: %s\n", m.Event, m.Offset, m.From.User, body.Text)
	// Output:
	// published at offset 1
	// message 1 from ann: hi all
}

// Resume a subscription from a position saved earlier (by this process or
// a previous one): the messages published meanwhile come first, each once.
func ExampleWithSince() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	first, err := c.Subscribe(ctx, "chat:log", nil)
	if err != nil {
		log.Fatal(err)
	}
	offset, err := first.Publish(ctx, "message", "one", client.PublishOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_, epoch := first.Position() // the channel's epoch, with the offset: a position
	if err := first.Unsubscribe(ctx); err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"two", "three"} {
		if _, err := c.Publish(ctx, "chat:log", "message", text, client.PublishOptions{}); err != nil {
			log.Fatal(err)
		}
	}

	got := make(chan client.Message, 2)
	again, err := c.Subscribe(ctx, "chat:log", func(m client.Message) { got <- m },
		client.WithSince(offset, epoch))
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		m := <-got
		fmt.Printf("%d %s recovered=%v\n", m.Offset, m.Data, m.Recovered)
	}
	fmt.Println("all recovered:", again.Recovered())
	// Output:
	// 2 "two" recovered=true
	// 3 "three" recovered=true
	// all recovered: true
}

// Presence: Ann sees Bob join, set a state, and leave.
func ExampleSubscription_SetPresence() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	ann, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer ann.Close()
	events := make(chan client.PresenceEvent, 8)
	if _, err := ann.Subscribe(ctx, "chat:room", nil,
		client.OnPresence(func(e client.PresenceEvent) { events <- e })); err != nil {
		log.Fatal(err)
	}

	bob, err := client.Dial(ctx, client.Config{URL: url, User: "bob"})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	sub, err := bob.Subscribe(ctx, "chat:room", nil)
	if err != nil {
		log.Fatal(err)
	}
	e := <-events
	fmt.Println(e.Event, e.Member.User.ID, "members:", e.Count)

	if err := sub.SetPresence(ctx, map[string]bool{"typing": true}); err != nil {
		log.Fatal(err)
	}
	e = <-events
	fmt.Println(e.Event, e.Member.User.ID, string(e.Member.State))

	if err := sub.Unsubscribe(ctx); err != nil {
		log.Fatal(err)
	}
	e = <-events
	fmt.Println(e.Event, e.Member.User.ID, "members:", e.Count)
	// Output:
	// join bob members: 2
	// update bob {"typing":true}
	// leave bob members: 1
}

// The server's refusals come back as an *Error with the wire code
// (proto.Code...).
func ExampleError() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, client.Config{URL: url, User: "ann"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.OpenDoc(ctx, "no spaces in ids")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("open:", e.Code, e.Code == proto.CodeBadRequest)
	}
	_, err = c.Publish(ctx, "system:stats", "message", "hi", client.PublishOptions{})
	if errors.As(err, &e) {
		fmt.Println("publish:", e.Code, e.Channel)
	}
	// Output:
	// open: bad_request true
	// publish: forbidden system:stats
}
