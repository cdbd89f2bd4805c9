package chatapp_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/examples/hooks-sqlite/chatapp"
	"github.com/tandemhq/tandem/hooks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "example-secret-0123456789"

// app runs the example backend over the SQLite file path on 127.0.0.1
// until the test ends (or stop is called), like main.go does.
type app struct {
	*httptest.Server
	db *sql.DB
}

func startApp(t *testing.T, path string) *app {
	t.Helper()
	db, err := chatapp.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{db: db, Server: httptest.NewServer(chatapp.New(db, secret, []string{"spam", "Scam"}))}
	t.Cleanup(a.stop)
	return a
}

func (a *app) stop() {
	a.Close()
	_ = a.db.Close()
}

// caller is the server's side: a hooks.Caller with the hooks the example's
// config turns on, pointed at the backend's /tandem prefix.
func caller(t *testing.T, url string) *hooks.Caller {
	t.Helper()
	cfg, err := hooks.ParseConfig([]byte(`{
		"url": "` + url + `/tandem", "secret": "` + secret + `",
		"publish": {}, "doc_load": {}, "doc_store": {"debounce": "20ms"},
		"rpc": {"routes": [{"prefix": "chat."}]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := hooks.New(cfg, hooks.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func closeCaller(t *testing.T, c *hooks.Caller) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// TestChatMessages: a message goes through the publish hook into SQLite
// and comes back with its database id; a message with a banned word is
// refused with the reason the client will see, and never stored; the
// history rpc reads the table.
func TestChatMessages(t *testing.T) {
	a := startApp(t, filepath.Join(t.TempDir(), "chat.db"))
	c := caller(t, a.URL)
	ctx := context.Background()
	ann := hooks.User{ID: "ann", Name: "Ann"}
	for i, text := range []string{"hello", "how are you?"} {
		res, err := c.Publish(ctx, hooks.PublishRequest{User: ann, ClientID: "c_1", Channel: "chat:1", Event: "message",
			Data: json.RawMessage(`{"text":"` + text + `","mood":"fine"}`), Transport: hooks.TransportWebSocket})
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			ID   int64  `json:"id"`
			Text string `json:"text"`
			Mood string `json:"mood"`
		}
		if err := json.Unmarshal(res.Data, &d); err != nil || d.ID != int64(i+1) || d.Text != text || d.Mood != "fine" {
			t.Fatalf("message %d: replacement data %s (%v), want id %d with the original fields", i, res.Data, err, i+1)
		}
	}

	_, err := c.Publish(ctx, hooks.PublishRequest{User: ann, Channel: "chat:1", Event: "message", Data: json.RawMessage(`{"text":"cheap SCAM here"}`), Transport: "websocket"})
	code, msg, _ := hooks.WireError(err)
	if code != "forbidden" || msg != `message refused: "scam" is not allowed here` {
		t.Fatalf("banned word: got %v (%q %q)", err, code, msg)
	}
	// Typing indicators pass unchanged, and are not stored.
	res, err := c.Publish(ctx, hooks.PublishRequest{User: ann, Channel: "chat:1", Event: "typing", Data: json.RawMessage(`{}`), Ephemeral: true, Transport: "websocket"})
	if err != nil || res.Data != nil {
		t.Fatalf("typing: %s %v", res.Data, err)
	}
	var n int
	if err := a.db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("messages in SQLite: %d (%v), want 2: the refused one is not there", n, err)
	}

	rpc, err := c.RPC(ctx, hooks.RPCRequest{User: ann, Method: "chat.history", Data: json.RawMessage(`{"channel":"chat:1","limit":10}`)})
	if err != nil {
		t.Fatal(err)
	}
	var hist struct{ Messages []chatapp.Message }
	if err := json.Unmarshal(rpc.Data, &hist); err != nil || len(hist.Messages) != 2 || hist.Messages[0].Text != "hello" || hist.Messages[1].User != "ann" {
		t.Fatalf("history %s: %v", rpc.Data, err)
	}
	if _, err := c.RPC(ctx, hooks.RPCRequest{Method: "billing.charge"}); !errors.As(err, new(*hooks.Refusal)) {
		t.Fatalf("a method no route takes: %v", err)
	}
}

// TestDocumentsRoundTrip: doc_store keeps a document's latest content in
// SQLite, and after a restart of both sides with Tandem's own data gone,
// doc_load gives it back; stores are idempotent by version.
func TestDocumentsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	a := startApp(t, path)
	c := caller(t, a.URL)
	if _, err := c.DocLoad(context.Background(), hooks.DocLoadRequest{Doc: "notes"}); !isNotFound(err) {
		t.Fatalf("a document the app does not have: %v, want not_found", err)
	}
	text := ""
	for v := 1; v <= 30; v++ {
		text += "x"
		c.StoreDoc(hooks.DocSnapshot{Doc: "notes", Version: v, Epoch: "ep1", Content: text})
	}
	closeCaller(t, c) // the server's shutdown drains doc_store
	a.stop()

	// Both restart; the server lost its data, the application did not.
	a = startApp(t, path)
	c = caller(t, a.URL)
	res, err := c.DocLoad(context.Background(), hooks.DocLoadRequest{Doc: "notes"})
	if err != nil || res.Content != text {
		t.Fatalf("after the restart: %q %v, want %q", res.Content, err, text)
	}

	// A repeat or an older version of the same epoch changes nothing; a
	// new epoch (the document made anew from doc_load) replaces it.
	c.StoreDoc(hooks.DocSnapshot{Doc: "notes", Version: 12, Epoch: "ep1", Content: "old"})
	closeCaller(t, c)
	c = caller(t, a.URL)
	if got := load(t, c, "notes"); got != text {
		t.Fatalf("an older version replaced the newer: %q", got)
	}
	c.StoreDoc(hooks.DocSnapshot{Doc: "notes", Version: 1, Epoch: "ep2", Content: text + "!"})
	closeCaller(t, c)
	c = caller(t, a.URL)
	if got := load(t, c, "notes"); got != text+"!" {
		t.Fatalf("the new incarnation was not kept: %q", got)
	}
}

// TestUnsignedRefused: a request without a valid signature changes
// nothing.
func TestUnsignedRefused(t *testing.T) {
	a := startApp(t, filepath.Join(t.TempDir(), "chat.db"))
	body := []byte(`{"channel":"chat:1","event":"message","data":{"text":"forged"},"transport":"websocket"}`)
	resp, err := http.Post(a.URL+"/tandem/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var n int
	_ = a.db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n)
	if resp.StatusCode != http.StatusUnauthorized || n != 0 {
		t.Fatalf("unsigned publish: status %d, %d messages stored", resp.StatusCode, n)
	}
}

func load(t *testing.T, c *hooks.Caller, doc string) string {
	t.Helper()
	res, err := c.DocLoad(context.Background(), hooks.DocLoadRequest{Doc: doc})
	if err != nil {
		t.Fatal(err)
	}
	return res.Content
}

func isNotFound(err error) bool {
	code, _, _ := hooks.WireError(err)
	return code == "not_found"
}
