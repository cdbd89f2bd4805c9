package browser_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/server"
)

// TestJSPresence: tandem.js in a real browser keeps a large room's member
// list from batched presence and pages of members, and follows the room
// to count mode and back.
func TestJSPresence(t *testing.T) {
	ts := startServerWith(t, func(c *serverConfig) {
		// A small send queue makes small pages: a few members with 1 KB
		// states each.
		c.File.Limits.MaxQueueBytes = 64 << 10
		c.File.Limits.PresenceCountInterval = server.Duration(100 * time.Millisecond)
		if c.File.Namespaces == nil {
			c.File.Namespaces = map[string]server.NamespaceConfig{}
		}
		c.File.Namespaces["room"] = server.NamespaceConfig{Presence: "full", PresenceBatch: server.Duration(50 * time.Millisecond),
			PresenceCountAbove: 30, PresenceCountBelow: 20}
	})
	const channel = "room:big"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	state := map[string]string{"note": strings.Repeat("x", 1000)}
	var subs []*client.Subscription
	join := func(n int) {
		for range n {
			i := len(subs)
			c, err := client.Dial(ctx, client.Config{URL: wsURL, User: fmt.Sprintf("go%02d", i)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			sub, err := c.Subscribe(ctx, channel, nil, client.WithoutMemberList())
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.SetPresence(ctx, state); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub)
		}
	}
	join(20)

	p := newPage(t, "js")
	p.do(chromedp.Navigate(ts.URL + "/"))
	eval[bool](p, `(async () => {
		const tandem = await import("/tandem.js");
		window.jsClient = new tandem.Client({url: location.origin, user: "js", name: "JS"});
		window.jsSub = window.jsClient.subscribe("room:big", () => {});
		window.jsModes = [];
		window.jsSub.presence.on("mode", (m) => window.jsModes.push(m));
		await window.jsSub.ready;
		return true;
	})()`)
	const full = `[...window.jsSub.presence.members.values()].filter((m) => m.state?.note?.length === 1000).length`
	p.waitFor("the list read page by page", `window.jsSub.presence.members.size === 21 && `+full+` === 20 && window.jsSub.presence.count === 21`)

	join(5) // a burst: batched
	p.waitFor("the joins", `window.jsSub.presence.members.size === 26 && `+full+` === 25 && window.jsSub.presence.count === 26`)
	if err := subs[0].SetPresence(ctx, map[string]string{"note": "short"}); err != nil {
		t.Fatal(err)
	}
	if err := subs[1].Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	p.waitFor("an update and a leave", `window.jsSub.presence.members.size === 25 && `+full+` === 23 && window.jsSub.presence.count === 25`)

	join(6) // 31 members: count mode
	p.waitFor("count mode", `window.jsModes.join() === "count" && window.jsSub.presence.members.size === 0 && window.jsSub.presence.count === 31`)
	// Down to 20: still count mode; to 19: full presence again, and the
	// list is read anew.
	for _, s := range append(subs[20:31], subs[2]) {
		if err := s.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.waitFor("full presence again", `window.jsModes.join() === "count,full" && window.jsSub.presence.members.size === 19 && `+full+` === 17 && window.jsSub.presence.count === 19`)
}
