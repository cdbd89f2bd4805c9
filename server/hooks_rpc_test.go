package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/testwait"
)

// TestHookRPC: an rpc frame is answered by the backend its method routes
// to: rpc_result with its data, or an error frame with its code and
// message; a method no route takes is not_found without a request; a bad
// method name or a missing id is bad_request; a timeout is unavailable; a
// connection has at most 8 calls waiting, and the answers come in any
// order. The Go client's RPC and the connect and subscribe hooks' data
// reach the Go client too.
func TestHookRPC(t *testing.T) {
	b := hkStart(t, hkSecret)
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // never leave the backend's handlers waiting
	b.on("rpc", func(body []byte) hkReply {
		switch hkField[string](t, body, "method") {
		case "chat.echo":
			return hkJSON(map[string]any{"data": map[string]any{"echo": hkField[any](t, body, "data")}})
		case "chat.nothing":
			return hkYes
		case "chat.secret":
			return hkNo("forbidden", "admins only")
		case "chat.wait":
			<-release
			return hkJSON(map[string]any{"data": "done"})
		case "slow.x":
			return hkReply{delay: 5 * time.Second}
		}
		return hkNo("", "no such method here")
	})
	b.on("connect", func([]byte) hkReply {
		return hkJSON(map[string]any{"user": map[string]string{"id": "ann"}, "grants": []string{"subscribe:*"}, "data": map[string]int{"level": 3}})
	})
	b.on("subscribe", func([]byte) hkReply { return hkJSON(map[string]any{"data": "welcome"}) })
	a := apiStart(t, hkEdits(hkNamespace("chat", "subscribe"), withHooks(t, `{"url": %q, "secret": %q, "connect": {}, "subscribe": {},
		"rpc": {"timeout": "2s", "routes": [{"prefix": "chat."}, {"prefix": "slow.", "url": %q}]}}`, b.URL, hkSecret, b.URL+"/rpc")))
	r, _ := hkConnect(t, a.ws, "")

	f := r.request(map[string]any{"type": "rpc", "method": "chat.echo", "data": map[string]int{"n": 1}})
	if f.Type != "rpc_result" || string(f.Data) != `{"echo":{"n":1}}` || f.Raw != `{"id":2,"type":"rpc_result","method":"chat.echo","data":{"echo":{"n":1}}}` {
		t.Fatalf("rpc: %s", f.Raw)
	}
	var req hooks.RPCRequest
	b.last("rpc", &req)
	if req.User.ID != "ann" || req.ClientID == "" || req.Method != "chat.echo" || string(req.Data) != `{"n":1}` {
		t.Fatalf("the backend got %+v", req)
	}
	if f := r.request(map[string]any{"type": "rpc", "method": "chat.nothing"}); f.Type != "rpc_result" || string(f.Data) != "null" {
		t.Fatalf("rpc without data: %s", f.Raw)
	}
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "chat.secret"}), "forbidden", "admins only")
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "chat.other"}), "not_found", "no such method here")
	n := len(b.requests("rpc"))
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "billing.pay"}), "not_found", `no such method "billing.pay"`)
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "bad method!"}), "bad_request", "rpc method")
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": ""}), "bad_request", "rpc method")
	if len(b.requests("rpc")) != n {
		t.Fatal("the backend was asked about a method no route takes")
	}
	r.send(map[string]any{"type": "rpc", "method": "chat.echo"})
	if f := r.next("the error", func(f frame) bool { return f.Type == "error" }); f.Code != "bad_request" || f.ID != nil {
		t.Fatalf("rpc without id: %s", f.Raw)
	}
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "slow.x"}), "unavailable", "did not answer in time")

	// At most 8 calls wait at once, and the connection's other frames are
	// answered meanwhile.
	for i := range 9 {
		r.send(map[string]any{"type": "rpc", "method": "chat.wait", "id": 1000 + i})
	}
	f = r.next("the ninth call's refusal", func(f frame) bool { return f.ID != nil && *f.ID == 1008 })
	hkExpectError(t, f, "rate_limited", "at most 8 rpc calls")
	r.alive() // the calls wait off the read goroutine
	releaseOnce()
	got := map[int64]bool{}
	for len(got) < 8 {
		f := r.next("the waiting calls' answers", func(f frame) bool { return f.Type == "rpc_result" })
		if string(f.Data) != `"done"` {
			t.Fatalf("answer %s", f.Raw)
		}
		got[*f.ID] = true
	}

	// The Go client.
	c := dial(t, a.ws, nil)
	if d := c.ConnectData(); string(d) != `{"level":3}` {
		t.Fatalf("ConnectData %s", d)
	}
	ctx := ctxT(t)
	out, err := c.RPC(ctx, "chat.echo", map[string]string{"q": "x"})
	if err != nil || string(out) != `{"echo":{"q":"x"}}` {
		t.Fatalf("RPC: %s, %v", out, err)
	}
	var ce *client.Error
	if _, err := c.RPC(ctx, "chat.secret", nil); !errors.As(err, &ce) || ce.Code != "forbidden" || ce.Message != "admins only" {
		t.Fatalf("RPC refused: %v", err)
	}
	sub, err := c.Subscribe(ctx, "chat:1", func(client.Message) {})
	if err != nil || string(sub.Data()) != `"welcome"` {
		t.Fatalf("Subscribe: %v, data %s", err, sub.Data())
	}
	b.checkSignatures()
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_refusals_total{hook="rpc"}`); v != 3 {
		t.Errorf("rpc refusals: %v", v)
	}
	testwait.For(t, 10*time.Second, "no rpc in flight", func() bool {
		return metricValue(t, a.srv.Addr(), `tandem_hook_in_flight{hook="rpc"}`) == 0
	})
}

// TestHookRPCOff: without the rpc hook an rpc is not_found; with a backend
// that cannot be reached, unavailable.
func TestHookRPCOff(t *testing.T) {
	a := apiStart(t, nil)
	r := connectRaw(t, a.ws, "", "ann")
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "chat.echo"}), "not_found", "no rpc hook")
	c := dial(t, a.ws, nil)
	var ce *client.Error
	if _, err := c.RPC(context.Background(), "x", json.RawMessage(`{}`)); !errors.As(err, &ce) || ce.Code != "not_found" {
		t.Fatalf("RPC: %v", err)
	}

	a = apiStart(t, withHooks(t, `{"url": %q, "secret": %q, "rpc": {}}`, hkDeadURL(t), hkSecret))
	r = connectRaw(t, a.ws, "", "ann")
	hkExpectError(t, r.request(map[string]any{"type": "rpc", "method": "chat.echo"}), "unavailable", "cannot be reached")
}
