package server_test

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

// stackBytes is the memory in goroutine stacks after two collections,
// which shrink the stacks of parked goroutines that use little of them.
func stackBytes() float64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64())
}

// TestIdleConnectionStack: an idle connection that has connected,
// subscribed and opened a document keeps a small stack once collections
// have run (its read goroutine waits in web's awaitInput, not deep in
// gorilla's reader, where the runtime would not shrink it below 8 KB).
// The clients here are plain WebSockets read on the test's goroutine, so
// every goroutine a connection adds is the server's.
//
// Without -race only: the race detector's larger frames keep the stacks
// at 8 KB either way. `make test` runs it so, beside the race run.
func TestIdleConnectionStack(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes differ under the race detector; make test runs this without -race")
	}
	ts := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.File.Limits.MaxConnectionsPerIP = -1
	}))
	const n = 300
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	before := stackBytes()
	goroutines := runtime.NumGoroutine()
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial(ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
		for _, f := range []string{
			`{"id":1,"type":"connect","token":""}`,
			fmt.Sprintf(`{"id":2,"type":"subscribe","channel":"chat:idle-%d"}`, i%10),
			fmt.Sprintf(`{"id":3,"type":"open","doc":"idle-%d"}`, i%10),
		} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		// Read until the open is answered (id 3), then leave it idle.
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for answered := false; !answered; {
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			answered = containsID3(b)
		}
	}
	testwait.For(t, 10*time.Second, "every connection's goroutines to settle", func() bool {
		return runtime.NumGoroutine() <= goroutines+n+20
	})
	perConn := (stackBytes() - before) / n
	t.Logf("%.0f bytes of stack per idle connection", perConn)
	const limit = 6 << 10
	if perConn > limit {
		t.Fatalf("%.0f bytes of stack per idle connection, want at most %d (about 4 KB: one read goroutine with a shrunk stack)", perConn, limit)
	}
}

// containsID3 reports whether a server message holds the reply with id 3.
func containsID3(b []byte) bool {
	for i := 0; i+7 <= len(b); i++ {
		if string(b[i:i+7]) == `"id":3,` || string(b[i:i+7]) == `{"id":3` {
			return true
		}
	}
	return false
}
