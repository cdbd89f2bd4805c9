// Package chatapp is the application backend of the hooks example
// (docs/hooks.md, "A chat backend with SQLite"): the server a chat
// application would run beside Tandem, keeping its own data in SQLite
// through database/sql and a pure-Go driver. Tandem calls it through its
// hooks:
//
//   - publish: a chat message ("message" event with data.text) is
//     refused when it contains a banned word; otherwise it is stored in
//     the messages table first, and its data comes back with the row's id
//     added, so every subscriber gets the message with its database id.
//     Other events (typing indicators) pass unchanged.
//   - doc_load: a document Tandem does not have is read from the documents
//     table (not_found when it is not there either).
//   - doc_store: a document's content after its changes settle is kept in
//     the documents table, idempotently: a version no newer than the one
//     stored is ignored, unless its epoch differs (a new incarnation).
//   - rpc "chat.history": the last messages of a channel, from SQLite.
//
// Every request's signature is checked with the same verifier as
// webhooks'. main.go beside this package runs it; the test runs it
// in-process against the server's hooks.Caller.
package chatapp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	_ "github.com/ncruces/go-sqlite3/driver" // database/sql driver "sqlite3", pure Go

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/webhook"
)

// schema creates the application's tables.
const schema = `
CREATE TABLE IF NOT EXISTS messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	channel    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	text       TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_channel ON messages(channel, id);
CREATE TABLE IF NOT EXISTS documents (
	id         TEXT PRIMARY KEY,
	epoch      TEXT NOT NULL,
	version    INTEGER NOT NULL,
	content    TEXT NOT NULL,
	updated_at TEXT NOT NULL
);`

// OpenDB opens (creating if need be) the SQLite database at path and its
// tables. One connection serialises the writes, which is plenty here.
func OpenDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create tables: %w", err)
	}
	return db, nil
}

// App is the backend. It is an http.Handler serving /publish, /doc_load,
// /doc_store and /rpc under whatever prefix it is mounted at (Tandem's
// hooks.url); it is safe for concurrent use.
type App struct {
	db     *sql.DB
	secret []byte
	banned []string // lower case
	mux    *http.ServeMux
}

// MaxBody bounds a request body (a doc_store carries a whole document).
const MaxBody = 16 << 20

// New returns the backend over db, checking requests against secret (the
// hooks' secret in Tandem's config) and refusing messages with any of
// the banned words (matched whole, ignoring case).
func New(db *sql.DB, secret string, banned []string) *App {
	a := &App{db: db, secret: []byte(secret), mux: http.NewServeMux()}
	for _, w := range banned {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			a.banned = append(a.banned, w)
		}
	}
	a.mux.Handle("POST /publish", a.hook(a.publish))
	a.mux.Handle("POST /doc_load", a.hook(a.docLoad))
	a.mux.Handle("POST /doc_store", a.hook(a.docStore))
	a.mux.Handle("POST /rpc", a.hook(a.rpc))
	return a
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Tandem posts to <hooks.url>/<hook>: serve the last path element.
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	a.mux.ServeHTTP(w, r2)
}

// refusal is a hook's no: {"error":{"code":..., "message":...}}.
type refusal struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (r *refusal) Error() string { return r.Code + ": " + r.Message }

// hook wraps a handler: it reads and verifies the signed body, runs fn and
// writes its answer (or its refusal) as JSON. Another error is a 500,
// which Tandem treats as a failure of the backend.
func (a *App) hook(fn func(ctx context.Context, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// Check the raw body, before parsing it, as the webhooks' docs say.
		if err := webhook.Verify(a.secret, r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp),
			body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		ans, err := fn(r.Context(), body)
		var ref *refusal
		switch {
		case errors.As(err, &ref):
			ans = map[string]any{"error": ref}
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		case ans == nil:
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	})
}

// publish stores a chat message and returns its data with the row's id,
// or refuses it.
func (a *App) publish(ctx context.Context, body []byte) (any, error) {
	var req hooks.PublishRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if req.Event != "message" || req.Ephemeral {
		return nil, nil // typing indicators and the like: allowed, unchanged
	}
	var data map[string]any
	if err := json.Unmarshal(req.Data, &data); err != nil || data == nil {
		return nil, &refusal{"bad_request", "a chat message's data is an object with a text"}
	}
	text, _ := data["text"].(string)
	if strings.TrimSpace(text) == "" {
		return nil, &refusal{"bad_request", "a chat message needs a text"}
	}
	if w := a.bannedWord(text); w != "" {
		return nil, &refusal{"forbidden", fmt.Sprintf("message refused: %q is not allowed here", w)}
	}
	from := req.User.ID
	if from == "" {
		from = "api:" + req.APIKey
	}
	res, err := a.db.ExecContext(ctx, `INSERT INTO messages(channel, user_id, text, created_at) VALUES (?, ?, ?, ?)`,
		req.Channel, from, text, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, fmt.Errorf("store message: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	data["id"] = id
	return map[string]any{"data": data}, nil
}

// bannedWord returns the first banned word text contains, whole and
// ignoring case, or "".
func (a *App) bannedWord(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		for _, b := range a.banned {
			if w == b {
				return b
			}
		}
	}
	return ""
}

// docLoad gives a document's content from the documents table.
func (a *App) docLoad(ctx context.Context, body []byte) (any, error) {
	var req hooks.DocLoadRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var content string
	err := a.db.QueryRowContext(ctx, `SELECT content FROM documents WHERE id = ?`, req.Doc).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &refusal{"not_found", fmt.Sprintf("no document %q", req.Doc)}
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"content": content}, nil
}

// docStore keeps a document's content: a newer version, or any version of
// another epoch (the document was made anew), replaces the stored one; a
// repeat or an older version changes nothing. Tandem may send a version
// twice; it never sends an older one after a newer one, but the check
// costs nothing.
func (a *App) docStore(ctx context.Context, body []byte) (any, error) {
	var s hooks.DocSnapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, err
	}
	_, err := a.db.ExecContext(ctx, `
		INSERT INTO documents(id, epoch, version, content, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET epoch = excluded.epoch, version = excluded.version,
			content = excluded.content, updated_at = excluded.updated_at
		WHERE excluded.epoch != documents.epoch OR excluded.version > documents.version`,
		s.Doc, s.Epoch, s.Version, s.Content, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, fmt.Errorf("store document: %w", err)
	}
	return nil, nil // 204: stored
}

// Message is a stored chat message, as chat.history answers it.
type Message struct {
	ID   int64  `json:"id"`
	User string `json:"user"`
	Text string `json:"text"`
	TS   string `json:"ts"`
}

// rpc answers chat.history: {"channel":"chat:1","limit":20} gives the
// channel's last messages, oldest first.
func (a *App) rpc(ctx context.Context, body []byte) (any, error) {
	var req hooks.RPCRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if req.Method != "chat.history" {
		return nil, &refusal{"not_found", fmt.Sprintf("no method %q", req.Method)}
	}
	var args struct {
		Channel string `json:"channel"`
		Limit   int    `json:"limit"`
	}
	if err := json.Unmarshal(req.Data, &args); err != nil || args.Channel == "" {
		return nil, &refusal{"bad_request", `chat.history takes {"channel":"...","limit":N}`}
	}
	if args.Limit <= 0 || args.Limit > 100 {
		args.Limit = 100
	}
	rows, err := a.db.QueryContext(ctx, `SELECT id, user_id, text, created_at FROM messages WHERE channel = ? ORDER BY id DESC LIMIT ?`,
		args.Channel, args.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	msgs := []Message{}
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.ID, &m.User, &m.Text, &m.TS); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return map[string]any{"data": map[string]any{"messages": msgs}}, nil
}
