package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rs/zerolog"
	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestGracefulShutdown: closing the server closes every connection with
// 1001 and leaves no goroutine behind. (Not parallel: goleak checks the
// whole process.)
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 15 * time.Second}
	resp, err := hc.Get("http://" + ts.Addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}

	raw := connectRaw(t, ts.URL, "", "raw")
	raw.request(map[string]any{"type": "subscribe", "channel": "chat:bye"})
	idle := dialRaw(t, ts.URL) // never sent connect
	ended := make(chan error, 1)
	c := dial(t, ts.URL, func(c *client.Config) {
		c.NoReconnect = true
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusDisconnected {
				ended <- err
			}
		}
	})
	if _, err := c.Subscribe(ctxT(t), "chat:bye", nil); err != nil {
		t.Fatal(err)
	}

	// Everyone reads while the server goes away, so that each answers
	// the close at once.
	closed := make(chan error, 2)
	for _, r := range []*rawConn{raw, idle} {
		go func() {
			for {
				if _, err := r.read(10 * time.Second); err != nil {
					closed <- err
					return
				}
			}
		}()
	}
	start := time.Now()
	ts.Stop()
	t.Logf("shutdown took %v", time.Since(start))
	for range 2 {
		if err := recv(t, closed, 15*time.Second, "the raw connections to close"); !isClose(err, proto.CloseGoingAway) {
			t.Fatalf("raw connection ended with %v, want close 1001", err)
		}
	}
	var ce *client.CloseError
	if err := recv(t, ended, 15*time.Second, "the client to stop"); !errors.As(err, &ce) || ce.Code != proto.CloseGoingAway {
		t.Fatalf("client stopped with %v, want close 1001", err)
	}
	_ = c.Close()
	goleak.VerifyNone(t)
}

// TestRunFailsCleanly: a server that cannot listen (the address is taken)
// returns the error and leaves no goroutine behind: everything Run started
// before the listen (the web edge's ping loop among them) is stopped. (Not
// parallel: goleak checks the whole process.)
func TestRunFailsCleanly(t *testing.T) {
	taken := startServer(t)
	before := goleak.IgnoreCurrent()
	cfg := server.DefaultConfig()
	cfg.Addr = taken.Addr
	cfg.Data = t.TempDir()
	srv := server.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a taken address: %v, want a listen error", err)
	}
	goleak.VerifyNone(t, before)
}
