package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/server"
)

// TestHookConcurrencyBound: 1,000 clients subscribe at once in a
// namespace whose subscribe hook answers slowly.
//
// With a timeout long enough for all (20 ms a request, 8 at a time: about
// 2.5 s of work, timeout 60 s), every subscribe is answered, and the
// backend never has more than max_concurrent (8) requests in flight at
// once, over at most twice that many TCP connections (8 in use, at most 8
// idle).
//
// With every slot taken (8 rpc calls the backend holds) and a 1 s
// timeout, the 1,000 subscribes wait for a slot and fail with
// unavailable (overloaded): the backend gets none of them, and still
// never more than 8 requests at once.
//
// Bounded: 1,000 connections on 127.0.0.1 per part, each read within
// 60 s; in practice each part runs in a few seconds.
func TestHookConcurrencyBound(t *testing.T) {
	const clients, bound = 1000, 8
	t.Run("answered", func(t *testing.T) {
		b := hkStart(t, hkSecret)
		b.on("subscribe", func([]byte) hkReply { return hkReply{delay: 20 * time.Millisecond} })
		a := apiStart(t, hkEdits(hkNamespace("room", "subscribe"),
			func(c *server.Config) { c.File.Limits.MaxConnectionsPerIP = -1 },
			withHooks(t, `{"url": %q, "secret": %q, "max_concurrent": %d, "subscribe": {"timeout": "60s"}}`, b.URL, hkSecret, bound)))
		answers := hkStorm(t, a.ws, clients)
		for i, ans := range answers {
			if ans != "subscribed" {
				t.Fatalf("client %d: %q", i, ans)
			}
		}
		b.mu.Lock()
		maxIn, maxConns, got := b.maxInFlight, b.maxConns, len(b.got["subscribe"])
		b.mu.Unlock()
		t.Logf("the backend got %d requests, at most %d at once, over at most %d connections", got, maxIn, maxConns)
		if maxIn > bound {
			t.Errorf("the backend had %d requests in flight at once, over the bound %d", maxIn, bound)
		}
		if maxConns > 2*bound {
			t.Errorf("the server had %d connections to the backend at once, over %d", maxConns, 2*bound)
		}
		if got != clients {
			t.Errorf("the backend got %d requests, want %d", got, clients)
		}
		if v := metricValue(t, a.srv.Addr(), `tandem_hook_in_flight{hook="subscribe"}`); v != 0 {
			t.Errorf("in flight after the storm: %v", v)
		}
	})
	t.Run("overloaded", func(t *testing.T) {
		b := hkStart(t, hkSecret)
		release := make(chan struct{})
		free := sync.OnceFunc(func() { close(release) })
		t.Cleanup(free)
		b.on("rpc", func([]byte) hkReply {
			<-release
			return hkYes
		})
		a := apiStart(t, hkEdits(hkNamespace("room", "subscribe"),
			func(c *server.Config) { c.File.Limits.MaxConnectionsPerIP = -1 },
			withHooks(t, `{"url": %q, "secret": %q, "max_concurrent": %d, "subscribe": {"timeout": "1s"}, "rpc": {"timeout": "60s"}}`,
				b.URL, hkSecret, bound)))
		holder := connectRaw(t, a.ws, "", "holder")
		for i := range bound {
			holder.send(map[string]any{"type": "rpc", "method": "hold", "id": 100 + i})
		}
		testwait.For(t, 10*time.Second, "every slot taken", func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.inFlight == bound
		})
		answers := hkStorm(t, a.ws, clients)
		for i, ans := range answers {
			if ans != "error unavailable too many requests are waiting for the application's backend" {
				t.Fatalf("client %d: %q", i, ans)
			}
		}
		free()
		for range bound {
			holder.next("the held calls' answers", func(f frame) bool { return f.Type == "rpc_result" })
		}
		b.mu.Lock()
		maxIn, subs := b.maxInFlight, len(b.got["subscribe"])
		b.mu.Unlock()
		if maxIn > bound || subs != 0 {
			t.Errorf("the backend had %d requests at once and got %d subscribes", maxIn, subs)
		}
		addr := a.srv.Addr()
		if v := metricValue(t, addr, `tandem_hook_failures_total{hook="subscribe",kind="overloaded"}`); v != clients {
			t.Errorf("overloaded subscribes: %v", v)
		}
		if v := metricValue(t, addr, `tandem_hook_calls_total{hook="subscribe"}`); v != clients {
			t.Errorf("subscribe calls: %v", v)
		}
	})
}

// hkStorm connects n clients (64 dialing at a time), then has all of them
// subscribe at once, each to one of ten channels, and returns each one's
// answer: "subscribed", or "error <code> <message>".
func hkStorm(t *testing.T, url string, n int) []string {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	t.Cleanup(func() {
		for _, ws := range conns {
			if ws != nil {
				ws.Close()
			}
		}
	})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = ws
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			if err := ws.WriteJSON(map[string]any{"id": 1, "type": "connect", "user": fmt.Sprintf("u%d", i)}); err != nil {
				errs <- err
				return
			}
			if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"connected"`) {
				errs <- fmt.Errorf("connect: %s, %v", msg, err)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	start := make(chan struct{})
	answers := make([]string, n)
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := ws.WriteJSON(map[string]any{"id": 2, "type": "subscribe", "channel": fmt.Sprintf("room:%d", i%10)}); err != nil {
				answers[i] = err.Error()
				return
			}
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					answers[i] = err.Error()
					return
				}
				for line := range strings.SplitSeq(string(msg), "\n") {
					var f struct {
						ID                  *int64
						Type, Code, Message string
					}
					if json.Unmarshal([]byte(line), &f) == nil && f.ID != nil && *f.ID == 2 {
						answers[i] = strings.TrimSpace(f.Type + " " + f.Code + " " + f.Message)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return answers
}
