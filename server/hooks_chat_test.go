package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/examples/hooks-sqlite/chatapp"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/server"
)

// TestHookChatExample runs the chat example of docs/hooks.md end to end:
// the example backend (examples/hooks-sqlite, SQLite through database/sql)
// on 127.0.0.1, the real server configured as the page says, Go clients
// over WebSocket. Messages arrive with their SQLite ids; a message with a
// banned word is refused with the backend's reason and never reaches
// history (Tandem's or SQLite's); the chat.history rpc reads SQLite.
// Then the documents: one edited over WebSocket is stored in SQLite by
// doc_store; the server stops, its bbolt data is deleted, and the
// document, opened again, comes back from SQLite through doc_load.
func TestHookChatExample(t *testing.T) {
	db, err := chatapp.OpenDB(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(chatapp.New(db, hkSecret, []string{"spam", "scam"}))
	t.Cleanup(func() {
		app.Close()
		_ = db.Close()
	})
	// The config is the page's, as the example prints it, with the
	// backend's address and secret.
	page, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(page), "## A chat backend with SQLite")
	_, block, _ := strings.Cut(section, "It prints the `hooks` object for Tandem's config:\n\n```json\n")
	block, _, ok := strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/hooks.md: no config in \"A chat backend with SQLite\"")
	}
	block = strings.NewReplacer("http://127.0.0.1:9000", app.URL, "<TANDEM_HOOKS_SECRET>", hkSecret).Replace(block)
	ts := startServer(t, func(c *server.Config) {
		dec := json.NewDecoder(strings.NewReader(block))
		dec.DisallowUnknownFields() // as tandem serve --config reads it
		if err := dec.Decode(&c.File); err != nil {
			t.Fatal(err)
		}
	})

	ann := guest(t, ts.URL, "ann")
	bob := guest(t, ts.URL, "bob")
	got := newCollector()
	ctx := ctxT(t)
	if _, err := bob.Subscribe(ctx, "chat:42", got.handle); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"hello", "buy spam now", "bye"} {
		_, err := ann.Publish(ctx, "chat:42", "message", map[string]string{"text": text}, client.PublishOptions{})
		var ce *client.Error
		if text == "buy spam now" {
			if !errors.As(err, &ce) || ce.Code != "forbidden" || ce.Message != `message refused: "spam" is not allowed here` {
				t.Fatalf("the banned word: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("publish %q: %v", text, err)
		}
	}
	msgs := got.wait(t, 2, 10*time.Second)
	rows, err := db.Query(`SELECT id, text FROM messages WHERE channel = 'chat:42' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID   int64  `json:"id"`
		Text string `json:"text"`
	}
	var stored []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ID, &r.Text); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, r)
	}
	rows.Close()
	if len(stored) != 2 || stored[0].Text != "hello" || stored[1].Text != "bye" {
		t.Fatalf("SQLite holds %+v", stored)
	}
	for i, m := range msgs {
		var d row
		if err := json.Unmarshal(m.Data, &d); err != nil || d != stored[i] {
			t.Fatalf("message %d arrived as %s, SQLite has %+v", i, m.Data, stored[i])
		}
	}
	// Tandem's history: the two, with their ids; the refused one never.
	resp, err := http.Get("http://" + ts.Addr + "/api/channels/chat:42/history")
	if err != nil {
		t.Fatal(err)
	}
	var hist struct{ Messages []struct{ Data row } }
	err = json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	if err != nil || len(hist.Messages) != 2 || hist.Messages[0].Data != stored[0] || hist.Messages[1].Data != stored[1] {
		t.Fatalf("history %+v (%v)", hist, err)
	}
	out, err := ann.RPC(ctx, "chat.history", map[string]any{"channel": "chat:42", "limit": 10})
	var rpc struct{ Messages []chatapp.Message }
	if err != nil || json.Unmarshal(out, &rpc) != nil || len(rpc.Messages) != 2 || rpc.Messages[1].Text != "bye" || rpc.Messages[1].User != "ann" {
		t.Fatalf("chat.history: %s %v", out, err)
	}

	// Documents: created over HTTP, edited over WebSocket, stored in
	// SQLite by doc_store.
	resp, err = http.Post("http://"+ts.Addr+"/api/docs", "application/json", bytes.NewReader([]byte(`{"id":"notes","content":"Agenda"}`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	r := connectRaw(t, ts.URL, "", "ann")
	s := hkSnap(t, r.request(map[string]any{"type": "open", "doc": "notes"}))
	for i, ins := range []string{": hooks", " and SQLite"} {
		if f := r.request(map[string]any{"type": "op", "doc": "notes", "version": s.Version + i, "op": []any{6 + 7*i, ins}, "uid": ins}); f.Type != "ack" {
			t.Fatalf("op: %s", f.Raw)
		}
	}
	const want = "Agenda: hooks and SQLite"
	sqlDoc := func() (content string, version int) {
		_ = db.QueryRow(`SELECT content, version FROM documents WHERE id = 'notes'`).Scan(&content, &version)
		return
	}
	testwait.For(t, 10*time.Second, "the document in SQLite", func() bool { c, v := sqlDoc(); return c == want && v == s.Version+2 })

	// The server stops, and its data is deleted: the document comes back
	// from the application.
	ts.Stop()
	if err := os.RemoveAll(ts.Config.Data); err != nil {
		t.Fatal(err)
	}
	ts.Restart() // starts it again: it is stopped already
	r = connectRaw(t, ts.URL, "", "ann")
	if s := hkSnap(t, r.request(map[string]any{"type": "open", "doc": "notes"})); s.Content != want {
		t.Fatalf("after the restart the document is %q, want %q", s.Content, want)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d messages in SQLite (%v)", n, err)
	}
}
