package hooks

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testwait"
)

// TestConcurrencyBound: 1,000 simultaneous subscribes against a backend
// that sleeps never have more requests in flight at the backend than the
// bound, and every one of them is answered (the waiting ones within their
// timeout, 60 s here: 1,000 × 20 ms / 16 is about 1.3 s of work).
func TestConcurrencyBound(t *testing.T) {
	const calls, bound = 1000, 16
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		time.Sleep(20 * time.Millisecond)
		return 200, `{"data":{"ok":true}}`
	})
	cfg := Config{URL: b.URL, Secret: testSecret, MaxConcurrent: bound, Timeout: Duration(60 * time.Second), Subscribe: &HookConfig{}}
	c, reg := newCaller(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	start := make(chan struct{})
	for range calls {
		wg.Go(func() {
			<-start
			res, err := c.Subscribe(context.Background(), SubscribeRequest{User: User{ID: "u1"}, Channel: "chat:1", Transport: TransportWebSocket})
			if err == nil && string(res.Data) != `{"ok":true}` {
				err = errors.New("no data")
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a call failed: %v", err)
		}
	}
	if got := len(b.requests()); got != calls {
		t.Fatalf("the backend got %d requests, want %d", got, calls)
	}
	if m := b.maxInFlight.Load(); m > bound {
		t.Fatalf("the backend saw %d requests at once, over the bound of %d", m, bound)
	} else {
		t.Logf("at most %d requests at once at the backend (bound %d)", m, bound)
	}
	if n := counter(t, reg, "tandem_hook_in_flight", "hook", "subscribe"); n != 0 {
		t.Fatalf("in flight after the calls: %v", n)
	}
	if n := counter(t, reg, "tandem_hook_calls_total", "hook", "subscribe"); n != calls {
		t.Fatalf("calls_total %v", n)
	}
}

// TestHookBound: a hook's own bound holds within the global one, so that
// a slow hook leaves slots to the others.
func TestHookBound(t *testing.T) {
	const bound = 3
	release := make(chan struct{})
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		if g.hook == "rpc" {
			<-release
		}
		return 200, `{"user":{"id":"u1"}}`
	})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free) // before the backend's Close, which waits for its handlers
	cfg := Config{URL: b.URL, Secret: testSecret, MaxConcurrent: 8, Timeout: Duration(30 * time.Second),
		RPC: &RPCConfig{HookConfig: HookConfig{MaxConcurrent: bound}}, Connect: &HookConfig{}}
	c, _ := newCaller(t, cfg)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _, _ = c.RPC(context.Background(), RPCRequest{Method: "slow"}) })
	}
	testwait.For(t, 10*time.Second, "the rpc calls to fill their bound", func() bool { return b.inFlight.Load() == bound })
	// The slow rpc calls hold 3 of 8 slots: connects still go through.
	for range 5 {
		if _, err := c.Connect(context.Background(), ConnectRequest{ClientID: "c"}); err != nil {
			t.Fatalf("connect while rpc is slow: %v", err)
		}
	}
	free()
	wg.Wait()
	if m := b.maxInFlight.Load(); m > bound+1 {
		t.Fatalf("max in flight %d: the rpc bound of %d was not held", m, bound)
	}
}

// TestOverloaded: a call that finds no free slot within its timeout fails
// as overloaded, with the policy applied: refused, or allowed.
func TestOverloaded(t *testing.T) {
	release := make(chan struct{})
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		if g.hook == "doc_open" {
			<-release
		}
		return 200, `{}`
	})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)
	cfg := Config{URL: b.URL, Secret: testSecret, MaxConcurrent: 1,
		DocOpen:   &HookConfig{Timeout: Duration(30 * time.Second)},
		Subscribe: &HookConfig{Timeout: Duration(200 * time.Millisecond)},
		Publish:   &HookConfig{Timeout: Duration(200 * time.Millisecond), OnFailure: PolicyAllow}}
	c, reg := newCaller(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := c.DocOpen(context.Background(), DocOpenRequest{Doc: "d"})
		done <- err
	}()
	testwait.For(t, 10*time.Second, "the slot to be taken", func() bool { return b.inFlight.Load() == 1 })

	_, err := c.Subscribe(context.Background(), SubscribeRequest{Channel: "chat:1"})
	var f *Failure
	if !errors.As(err, &f) || f.Kind != FailOverloaded || f.Allowed {
		t.Fatalf("subscribe: got %v, want overloaded, refused", err)
	}
	res, err := c.Publish(context.Background(), PublishRequest{Channel: "chat:1"})
	if err != nil || res.Failure == nil || res.Failure.Kind != FailOverloaded {
		t.Fatalf("publish: got %+v %v, want allowed with an overloaded failure", res, err)
	}
	if n := counter(t, reg, "tandem_hook_failures_total", "kind", "overloaded"); n != 2 {
		t.Fatalf("overloaded failures: %v", n)
	}
	if n := counter(t, reg, "tandem_hook_in_flight", "hook", "doc_open"); n != 1 {
		t.Fatalf("doc_open in flight: %v", n)
	}
	free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(b.requests()) != 1 {
		t.Fatalf("the backend got %d requests: the overloaded calls must send none", len(b.requests()))
	}
}

// TestMetrics: calls, latency, refusals and failures by kind per hook.
func TestMetrics(t *testing.T) {
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		if parse[PublishRequest](g.body).Event == "no" {
			return 200, `{"error":{"code":"forbidden","message":"no"}}`
		}
		if parse[PublishRequest](g.body).Event == "boom" {
			return 503, ``
		}
		return 200, `{}`
	})
	c, reg := newCaller(t, allHooks(b.URL))
	for _, ev := range []string{"ok", "ok", "no", "boom"} {
		_, _ = c.Publish(context.Background(), PublishRequest{Channel: "chat:1", Event: ev})
	}
	for name, want := range map[string]float64{
		"tandem_hook_calls_total":      4,
		"tandem_hook_duration_seconds": 4,
		"tandem_hook_refusals_total":   1,
		"tandem_hook_failures_total":   1,
		"tandem_hook_in_flight":        0,
	} {
		if got := counter(t, reg, name, "hook", "publish"); got != want {
			t.Errorf("%s{hook=publish} = %v, want %v", name, got, want)
		}
	}
	if got := counter(t, reg, "tandem_hook_failures_total", "hook", "publish", "kind", "bad_answer"); got != 1 {
		t.Errorf("failures{bad_answer} = %v", got)
	}
	if got := counter(t, reg, "tandem_hook_calls_total", "hook", "subscribe"); got != 0 {
		t.Errorf("subscribe calls %v", got)
	}
}
