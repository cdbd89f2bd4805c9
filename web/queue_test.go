package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
)

// queueConn starts a server with cfg (its Hub and Users filled in)
// and connects a client: the server's side of it, and the client's
// socket, its handshake read.
func queueConn(t *testing.T, cfg Config) (*conn, *websocket.Conn) {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "tandem.db"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hub := session.NewHub(session.HubConfig{History: db, Receipts: db, Users: db})
	cfg.Hub, cfg.Users = hub, db
	s := New(cfg)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		hub.Close()
		_ = db.Close()
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"type":"connect","token":""}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"connected"`)) {
		t.Fatalf("connect: %s, %v", msg, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		return c, ws
	}
	t.Fatal("no connection on the server")
	return nil, nil
}

// TestSendQueueMemory: a connection that has been written to keeps its
// send queue's memory for the next frames (no allocation per batch), and
// lets it go once a write carries only a ping, the mark of a quiet
// connection; every frame arrives, in order, across the reuse.
func TestSendQueueMemory(t *testing.T) {
	c, ws := queueConn(t, Config{})
	var got []string // every frame the client read, in order
	pings := make(chan struct{}, 16)
	ws.SetPingHandler(func(string) error { pings <- struct{}{}; return nil })
	readUntil := func(last string) {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(got) == 0 || got[len(got)-1] != last {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("after %d frames: %v", len(got), err)
			}
			for f := range bytes.SplitSeq(msg, []byte("\n")) {
				got = append(got, string(f))
			}
		}
	}
	spare := func() int {
		c.qmu.Lock()
		defer c.qmu.Unlock()
		return cap(c.spare)
	}

	// Batches of frames, each written before the next is queued.
	want := []string{}
	for batch := range 5 {
		for i := range 40 {
			f := fmt.Sprintf(`{"type":"t","n":"%d.%d"}`, batch, i)
			want = append(want, f)
			if !c.Send([]byte(f)) {
				t.Fatal("Send refused a frame")
			}
		}
		readUntil(want[len(want)-1])
		testwait.For(t, 10*time.Second, "the written queue kept for the next frames", func() bool { return spare() > 0 })
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the client read %d frames, not the %d sent in order", len(got), len(want))
	}

	// A ping alone: the connection is quiet and keeps no queue memory.
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	go func() { // gorilla sees control frames while it reads
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	c.ping()
	select {
	case <-pings:
	case <-time.After(10 * time.Second):
		t.Fatal("no ping arrived")
	}
	testwait.For(t, 10*time.Second, "the queue memory let go after a ping alone", func() bool { return spare() == 0 })
}

// TestSendBatch: a batch of frames is written as one WebSocket message, in
// order; a batch over the queue's bound closes the connection as a slow
// reader, and none of it is written.
func TestSendBatch(t *testing.T) {
	c, ws := queueConn(t, Config{MaxQueueFrames: 150})
	var batch [][]byte
	var want []string
	for i := range 100 {
		f := fmt.Sprintf(`{"type":"t","n":%d}`, i)
		batch, want = append(batch, []byte(f)), append(want, f)
	}
	if !c.SendBatch(batch) {
		t.Fatal("SendBatch refused 100 frames")
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != strings.Join(want, "\n") {
		t.Fatalf("the first message has %d frames, not the batch of 100 in order", bytes.Count(msg, []byte("\n"))+1)
	}

	batch = append(batch, batch[:51]...) // 151 frames
	if c.SendBatch(batch) {
		t.Fatal("SendBatch took 151 frames, over the bound of 150")
	}
	_, msg, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != proto.CloseSlowReader {
		t.Fatalf("after the batch over the bound: message %.40q, error %v; want a close as a slow reader", msg, err)
	}
}
