package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestConnectTimeoutWhateverItSends: a socket that never sends connect is
// closed with 4001 at the connect timeout whatever else it sends: pongs
// extend nothing, pings get no pong, and the server sends it no ping (its
// ping interval is a fifth of the connect timeout). A binary frame before
// connect closes it at once. Bounds: closed no earlier than the timeout
// after the dial began (the server's clock starts later than that, so
// no scheduling delay can break this bound) and within the timeout plus
// 3 s (a binary frame: within 3 s).
func TestConnectTimeoutWhateverItSends(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	ts := startServer(t, withLimits(func(l *server.LimitsConfig) {
		l.ConnectTimeout = server.Duration(timeout)
		l.PingInterval = server.Duration(timeout / 5)
	}))
	for _, tc := range []struct {
		name   string
		send   func(ws *websocket.Conn) error // called every 50 ms until the close
		early  bool                           // closed at once, not at the timeout
		reason string
	}{
		{"nothing", nil, false, "no connect within"},
		{"pongs", func(ws *websocket.Conn) error {
			return ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
		}, false, "no connect within"},
		{"pings", func(ws *websocket.Conn) error {
			return ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
		}, false, "no connect within"},
		{"binary frames", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"connect","token":""}`))
		}, true, "the first frame must be connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ws, _, err := websocket.DefaultDialer.Dial(ts.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			var pings, pongs atomic.Int32
			ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
			ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
			stop := make(chan struct{})
			defer close(stop)
			if tc.send != nil {
				go func() {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for {
						if tc.send(ws) != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-tick.C:
						}
					}
				}()
			}
			_ = ws.SetReadDeadline(time.Now().Add(timeout + 3*time.Second))
			_, msg, err := ws.ReadMessage()
			took := time.Since(start)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("after %v: read %q, %v; want close %d", took, msg, err, proto.CloseUnauthorized)
			}
			if ce.Code != proto.CloseUnauthorized || !strings.Contains(ce.Text, tc.reason) {
				t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, proto.CloseUnauthorized, tc.reason)
			}
			if !tc.early && took < timeout {
				t.Fatalf("closed after %v, before the connect timeout %v", took, timeout)
			}
			if n := pings.Load(); n > 0 {
				t.Fatalf("the server sent %d pings to a socket that never connected", n)
			}
			if n := pongs.Load(); n > 0 {
				t.Fatalf("the server answered %d pings of a socket that never connected", n)
			}
		})
	}
}

// TestConnectionCaps: the N+1th connection from one address, and the
// N+1th in all, is closed at once with 1013 and counted in
// tandem_connections_refused_total; a closed connection frees its place;
// X-Forwarded-For names the client only when the peer is a trusted proxy.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withLimits(func(l *server.LimitsConfig) {
		l.MaxConnectionsPerIP = 2
		l.MaxConnections = 4
	}), func(c *server.Config) { c.File.TrustedProxies = []string{"127.0.0.1"} })
	dial := func(forwardedFor string) *websocket.Conn {
		t.Helper()
		h := http.Header{}
		if forwardedFor != "" {
			h.Set("X-Forwarded-For", forwardedFor)
		}
		ws, _, err := websocket.DefaultDialer.Dial(ts.URL, h)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	connect := func(forwardedFor, user string) *websocket.Conn {
		t.Helper()
		ws := dial(forwardedFor)
		if err := ws.WriteJSON(map[string]any{"type": "connect", "user": user}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"connected"`) {
			t.Fatalf("connect %s from %q: %s %v", user, forwardedFor, msg, err)
		}
		return ws
	}
	refused := func(forwardedFor, reason string) {
		t.Helper()
		ws := dial(forwardedFor)
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1013 || !strings.Contains(ce.Text, reason) {
			t.Fatalf("a connection over the cap from %q: read %q, %v; want close 1013 %q", forwardedFor, msg, err, reason)
		}
	}
	count := func(reason string) float64 {
		return metricValue(t, ts.Addr, fmt.Sprintf("tandem_connections_refused_total{reason=%q}", reason))
	}

	a1 := connect("203.0.113.1", "a1")
	connect("203.0.113.1, 127.0.0.1", "a2") // the proxy's own hop is skipped
	refused("203.0.113.1", "from your address")
	if n := count("per_ip"); n != 1 {
		t.Fatalf("tandem_connections_refused_total{reason=per_ip} = %v after one refusal", n)
	}
	// Another address has its own place; a forged hop left of the
	// client's is ignored.
	connect("203.0.113.2", "b1")
	connect("203.0.113.1, 203.0.113.2", "b2")
	refused("203.0.113.3", "connection limit") // 4 open: the total
	if n := count("total"); n != 1 {
		t.Fatalf("tandem_connections_refused_total{reason=total} = %v after one refusal", n)
	}
	// A closed connection gives its place back.
	a1.Close()
	testwait.For(t, 10*time.Second, "a1's place to be free", func() bool {
		return ts.Server().Web.Conns() == 3
	})
	connect("203.0.113.1", "a3")

	// A peer that is not a trusted proxy is its own client, whatever its
	// headers say.
	plain := startServer(t, withLimits(func(l *server.LimitsConfig) { l.MaxConnectionsPerIP = 1 }))
	ws, _, err := websocket.DefaultDialer.Dial(plain.URL, http.Header{"X-Forwarded-For": {"198.51.100.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws2, _, err := websocket.DefaultDialer.Dial(plain.URL, http.Header{"X-Forwarded-For": {"198.51.100.2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	if _, _, err := ws2.ReadMessage(); !errors.As(err, &ce) || ce.Code != 1013 {
		t.Fatalf("a second connection from 127.0.0.1 with another X-Forwarded-For, no trusted proxy: %v; want close 1013", err)
	}
}
