package server_test

// Helpers of the HTTP API tests (api_*_test.go). Their names start with
// "api" so that they never meet the other tests' helpers in this package.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

// apiKeyAll is an API key with every grant ($TANDEM_API_KEYS style).
const apiKeyAll = "api-test-key-all-0123456789"

// apiServer is a real server on 127.0.0.1:0 with a bbolt file in a
// temporary directory, spoken to over HTTP.
type apiServer struct {
	t    testing.TB
	srv  *server.Server
	base string // http://host:port
	ws   string // ws://host:port/ws
	http *http.Client
	stop func() // closes the server, once
}

// apiStart starts a server with apiKeyAll configured, after edit adjusts
// its config; the test's cleanup stops it.
func apiStart(t testing.TB, edit func(*server.Config)) *apiServer {
	t.Helper()
	ts := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.APIKeys = []string{apiKeyAll}
		if edit != nil {
			edit(c)
		}
	}))
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	a := &apiServer{t: t, srv: ts.Server(), base: ts.HTTP, ws: ts.URL,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	a.stop = sync.OnceFunc(func() {
		ts.Stop()
		tr.CloseIdleConnections()
	})
	t.Cleanup(a.stop)
	return a
}

// apiResponse is an HTTP answer.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiError decodes the body as the API's error object.
func (r apiResponse) apiError() (code, msg string) {
	var e struct {
		Type, Code, Message string
	}
	if json.Unmarshal(r.body, &e) != nil || e.Type != "error" {
		return "", ""
	}
	return e.Code, e.Message
}

// do sends a request. body is nil, a string or []byte (sent as is, as
// contentType), or anything else (sent as JSON). token "" sends no
// Authorization header.
func (a *apiServer) do(method, path, token string, body any, header ...string) apiResponse {
	a.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1] // the client sends req.Host, not a Host header
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// call sends a request with apiKeyAll, fails the test unless the status is
// want, and decodes the answer into out (if not nil).
func (a *apiServer) call(method, path string, body any, want int, out any) apiResponse {
	a.t.Helper()
	r := a.do(method, path, apiKeyAll, body)
	if r.status != want {
		a.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			a.t.Fatalf("%s %s: decoding %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// apiDocState is GET /api/docs/{id}.
type apiDocState struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Head    int    `json:"head"`
	Content string `json:"content"`
}

func (a *apiServer) getDoc(id string, version int) apiDocState {
	a.t.Helper()
	path := "/api/docs/" + id
	if version >= 0 {
		path += fmt.Sprintf("?version=%d", version)
	}
	var d apiDocState
	a.call("GET", path, nil, 200, &d)
	return d
}

// apiFrame is any server frame, decoded loosely.
type apiFrame struct {
	ID       *int64          `json:"id"`
	Type     string          `json:"type"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Channel  string          `json:"channel"`
	Offset   uint64          `json:"offset"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	From     *proto.From     `json:"from"`
	Doc      string          `json:"doc"`
	Version  int             `json:"version"`
	Content  string          `json:"content"`
	Op       ot.Op           `json:"op"`
	UID      string          `json:"uid"`
	User     json.RawMessage `json:"user"`
	Comments json.RawMessage `json:"comments"`
	Comment  *proto.Comment  `json:"comment"`
	Raw      string          `json:"-"`
}

// userID returns the frame's "user" when it is a string (op frames).
func (f apiFrame) userID() string {
	var s string
	_ = json.Unmarshal(f.User, &s)
	return s
}

// apiConn is a raw WebSocket connection whose frames a goroutine reads
// into a channel.
type apiConn struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan apiFrame // closed when the connection ends
	held   []apiFrame    // frames next passed over; only the test goroutine uses it
	closed chan struct{} // closed with the reason in err
	err    error
	wmu    sync.Mutex // guards writes and nextID
	nextID int64
}

// apiDial connects a development-mode guest named user; the test's
// cleanup closes the connection and waits for its reader.
func (a *apiServer) dial(user string) *apiConn {
	a.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(a.ws, nil)
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	c := &apiConn{t: a.t, ws: ws, frames: make(chan apiFrame, 1<<14), closed: make(chan struct{})}
	go c.read()
	a.t.Cleanup(func() {
		_ = ws.Close()
		<-c.closed
	})
	if f := c.request(map[string]any{"type": "connect", "user": user, "name": user, "client": "api-test"}); f.Type != "connected" {
		a.t.Fatalf("connect: %s", f.Raw)
	}
	return c
}

func (c *apiConn) read() {
	defer close(c.closed)
	defer close(c.frames)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			var f apiFrame
			if err := json.Unmarshal(line, &f); err != nil {
				c.err = fmt.Errorf("frame %q: %w", line, err)
				return
			}
			f.Raw = string(line)
			select {
			case c.frames <- f:
			default:
				c.err = fmt.Errorf("test reader fell behind")
				return
			}
		}
	}
}

// send writes v with a fresh id (set into v) and returns the id.
func (c *apiConn) send(v map[string]any) int64 {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nextID++
	v["id"] = c.nextID
	b, err := json.Marshal(v)
	if err == nil {
		err = c.ws.WriteMessage(websocket.TextMessage, b)
	}
	if err != nil {
		c.t.Errorf("write %s: %v", b, err)
	}
	return c.nextID
}

// next returns the first frame, in arrival order, that match accepts,
// waiting for it; frames it passes over stay for later calls.
func (c *apiConn) next(what string, match func(apiFrame) bool) apiFrame {
	c.t.Helper()
	for i, f := range c.held {
		if match(f) {
			c.held = append(c.held[:i:i], c.held[i+1:]...)
			return f
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				<-c.closed
				c.t.Fatalf("waiting for %s: connection ended: %v", what, c.err)
			}
			if match(f) {
				return f
			}
			c.held = append(c.held, f)
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// request sends v and waits for the frame answering it.
func (c *apiConn) request(v map[string]any) apiFrame {
	c.t.Helper()
	id := c.send(v)
	return c.next(fmt.Sprintf("the answer to %v", v), func(f apiFrame) bool { return f.ID != nil && *f.ID == id })
}

// subscribe subscribes to channel and fails the test unless it works.
func (c *apiConn) subscribe(channel string) apiFrame {
	c.t.Helper()
	f := c.request(map[string]any{"type": "subscribe", "channel": channel})
	if f.Type != "subscribed" {
		c.t.Fatalf("subscribe %s: %s", channel, f.Raw)
	}
	return f
}

// message waits for the next message on channel.
func (c *apiConn) message(channel string) apiFrame {
	c.t.Helper()
	return c.next("a message on "+channel, func(f apiFrame) bool { return f.Type == "message" && f.Channel == channel })
}

// apiWaitFor polls cond until it holds or timeout passes.
func apiWaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
