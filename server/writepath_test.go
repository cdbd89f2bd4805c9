package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestBacklogArrivesInOrder: a subscriber that stops reading while 1,500
// messages of 8 KB are published fills its socket, so that the server's
// non-blocking writes take only part of what is queued and hand the rest
// to the connection's own write goroutine, and its queue grows past what
// one WebSocket message holds (500 frames). When it reads again, every
// message arrives once and in order, no WebSocket message holds more than
// 500 frames, and some hold more than one (what was queued is written in
// batches).
func TestBacklogArrivesInOrder(t *testing.T) {
	ts := startServer(t, withNoSync(), withNamespace("fan", fanNamespace), withLimits(func(l *server.LimitsConfig) {
		l.MaxQueueBytes = 64 << 20
		l.FrameRate, l.FrameBurst = 10000, 10000
	}))
	const (
		n       = 1500
		channel = "fan:backlog"
	)
	r := stall(t, ts.URL, channel)
	pub := guest(t, ts.URL, "pub")
	pad := strings.Repeat("b", 8<<10)
	for i := 1; i <= n; i++ {
		if _, err := pub.Publish(ctxT(t), channel, "tick", map[string]any{"i": i, "pad": pad}, client.PublishOptions{}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	next, messages, most := uint64(1), 0, 0
	for next <= n {
		_ = r.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, data, err := r.ws.ReadMessage()
		if err != nil {
			t.Fatalf("after offset %d: %v", next-1, err)
		}
		messages++
		lines := bytes.Split(data, []byte{'\n'})
		most = max(most, len(lines))
		for _, line := range lines {
			var m struct {
				Type   string `json:"type"`
				Offset uint64 `json:"offset"`
			}
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("a frame that is not JSON: %.100q: %v", line, err)
			}
			if m.Type != proto.TypeMessage {
				continue
			}
			if m.Offset != next {
				t.Fatalf("offset %d arrived when %d was due", m.Offset, next)
			}
			next++
		}
	}
	t.Logf("%d messages in %d WebSocket messages, at most %d frames in one", n, messages, most)
	if most > 500 {
		t.Fatalf("a WebSocket message held %d frames, more than 500", most)
	}
	if messages >= n {
		t.Fatalf("%d WebSocket messages for %d frames: nothing was batched", messages, n)
	}
}

// TestPingGetsPong: a client's ping is answered with a pong carrying its
// payload, written by the connection's writer among the frames queued.
func TestPingGetsPong(t *testing.T) {
	ts := startServer(t)
	r := connectRaw(t, ts.URL, "", "pinger")
	pongs := make(chan string, 4)
	r.ws.SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	for i := range 3 {
		payload := fmt.Sprintf("ping %d", i)
		if err := r.ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		// A request whose answer comes after the pong: reading it reads
		// the pong first.
		if f := r.request(map[string]any{"type": "subscribe", "channel": fmt.Sprintf("room%d", i)}); f.Type != proto.TypeSubscribed {
			t.Fatalf("subscribe: %s", f.Raw)
		}
		select {
		case got := <-pongs:
			if got != payload {
				t.Fatalf("pong %q, want %q", got, payload)
			}
		default:
			t.Fatalf("no pong for %q before the answer that followed it", payload)
		}
	}
}

// TestClientCloseIsEchoed: a client that closes gets a close frame with
// its own code back, as RFC 6455 asks, and the server drops the
// connection.
func TestClientCloseIsEchoed(t *testing.T) {
	ts := startServer(t)
	for _, code := range []int{websocket.CloseNormalClosure, 4321} {
		r := connectRaw(t, ts.URL, "", "closer")
		if err := r.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		_ = r.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var err error
		for err == nil {
			_, _, err = r.ws.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("closed with %d: the connection ended with %v, want close %d echoed", code, err, code)
		}
		testwait.For(t, 10*time.Second, "the server to drop the connection", func() bool { return ts.Server().Web.Conns() == 0 })
	}
}
