package server_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestBadFrames sends frames a client must not send, one after another on
// one connection: each gets the documented error (with the frame's id when
// the server could read one), and the connection keeps working.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret(), withLimits(func(l *server.LimitsConfig) { l.FrameRate, l.FrameBurst = 1000, 1000 }))
	grants := []string{"subscribe:*", "publish:*", "presence:*", "read:doc:*", "write:doc:*"}

	// olga's message, for retracting someone else's.
	olga := connectRaw(t, ts.URL, mint(t, "olga", "Olga", time.Hour, grants...), "")
	if f := olga.request(map[string]any{"type": "publish", "channel": "chat:bad", "data": map[string]string{"text": "mine"}}); f.Offset != 1 {
		t.Fatalf("olga publishes: %s", f.Raw)
	}
	r := connectRaw(t, ts.URL, mint(t, "mal", "Mal", time.Hour, grants...), "")
	if f := r.request(map[string]any{"type": "subscribe", "channel": "chat:bad"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("subscribe: %s", f.Raw)
	}

	huge := "chat:" + strings.Repeat("a", 300)
	bigData := `"` + strings.Repeat("x", 20<<10) + `"` // over chat's 16 KiB max payload, under the frame limit
	const (
		bad      = proto.CodeBadRequest
		noID     = false
		echoesID = true
	)
	for i, tc := range []struct {
		name   string
		frame  string // %[1]d is the frame's id
		code   string
		withID bool // the server could read the id and echoes it
	}{
		{"malformed JSON", `{"id":%[1]d,"type":"ping"`, bad, noID},
		{"trailing garbage", `{"id":%[1]d,"type":"ping"} x`, bad, noID},
		{"an array", `[1,2,3]`, bad, noID},
		{"a string", `"ping"`, bad, noID},
		{"a number", `42`, bad, noID},
		{"null", `null`, bad, noID},
		{"empty object", `{}`, bad, noID},
		{"missing type", `{"id":%[1]d}`, bad, echoesID},
		{"unknown type", `{"id":%[1]d,"type":"dance"}`, bad, echoesID},
		{"type in capitals", `{"id":%[1]d,"type":"PING"}`, bad, echoesID},
		{"type not a string", `{"id":%[1]d,"type":7}`, bad, echoesID},
		{"id a string", `{"id":"seven","type":"ping"}`, bad, noID},
		{"id a fraction", `{"id":1.5,"type":"ping"}`, bad, noID},
		{"connect again", `{"id":%[1]d,"type":"connect","token":""}`, bad, echoesID},
		{"channel not a string", `{"id":%[1]d,"type":"subscribe","channel":42}`, bad, echoesID},
		{"subscribe without channel", `{"id":%[1]d,"type":"subscribe"}`, bad, echoesID},
		{"huge channel name", `{"id":%[1]d,"type":"subscribe","channel":"` + huge + `"}`, bad, echoesID},
		{"space in channel name", `{"id":%[1]d,"type":"subscribe","channel":"chat:a b"}`, bad, echoesID},
		{"slash in channel name", `{"id":%[1]d,"type":"subscribe","channel":"chat/../etc"}`, bad, echoesID},
		{"markup in channel name", `{"id":%[1]d,"type":"subscribe","channel":"chat:<script>"}`, bad, echoesID},
		{"NUL in channel name", `{"id":%[1]d,"type":"subscribe","channel":"chat:\u0000"}`, bad, echoesID},
		{"since not an object", `{"id":%[1]d,"type":"subscribe","channel":"chat:x","since":"yesterday"}`, bad, echoesID},
		{"negative since offset", `{"id":%[1]d,"type":"subscribe","channel":"chat:x","since":{"offset":-1,"epoch":"e"}}`, bad, echoesID},
		{"subscribe to reserved doc:", `{"id":%[1]d,"type":"subscribe","channel":"doc:notes"}`, bad, echoesID},
		{"publish to reserved doc:", `{"id":%[1]d,"type":"publish","channel":"doc:notes","data":{}}`, bad, echoesID},
		{"publish without channel", `{"id":%[1]d,"type":"publish","data":{}}`, bad, echoesID},
		{"publish data not JSON", `{"id":%[1]d,"type":"publish","channel":"chat:bad","data":tru}`, bad, noID},
		{"publish data too large", `{"id":%[1]d,"type":"publish","channel":"chat:bad","data":` + bigData + `}`, proto.CodeTooLarge, echoesID},
		{"echo not a bool", `{"id":%[1]d,"type":"publish","channel":"chat:bad","echo":"no"}`, bad, echoesID},
		{"ephemeral not a bool", `{"id":%[1]d,"type":"publish","channel":"chat:bad","ephemeral":1}`, bad, echoesID},
		{"publish to another's private channel", `{"id":%[1]d,"type":"publish","channel":"user:olga","data":{}}`, proto.CodeForbidden, echoesID},
		{"presence on an unsubscribed channel", `{"id":%[1]d,"type":"presence","channel":"chat:elsewhere","state":{}}`, bad, echoesID},
		{"presence state not an object", `{"id":%[1]d,"type":"presence","channel":"chat:bad","state":5}`, bad, echoesID},
		{"presence state an array", `{"id":%[1]d,"type":"presence","channel":"chat:bad","state":[1]}`, bad, echoesID},
		{"read past the last offset", `{"id":%[1]d,"type":"read","channel":"chat:bad","offset":99}`, bad, echoesID},
		{"read on an unsubscribed channel", `{"id":%[1]d,"type":"read","channel":"chat:elsewhere","offset":1}`, bad, echoesID},
		{"read offset not a number", `{"id":%[1]d,"type":"read","channel":"chat:bad","offset":"1"}`, bad, echoesID},
		{"retract someone else's message", `{"id":%[1]d,"type":"retract","channel":"chat:bad","offset":1}`, proto.CodeForbidden, echoesID},
		{"retract a missing offset", `{"id":%[1]d,"type":"retract","channel":"chat:bad","offset":99}`, proto.CodeNotFound, echoesID},
		{"retract without offset", `{"id":%[1]d,"type":"retract","channel":"chat:bad"}`, proto.CodeNotFound, echoesID},
		{"unsubscribe a bad name", `{"id":%[1]d,"type":"unsubscribe","channel":"chat:a b"}`, bad, echoesID},
		{"op on a document not opened", `{"id":%[1]d,"type":"op","doc":"notes","version":0,"op":["x"],"uid":"u-1"}`, bad, echoesID},
		{"binary frame", "", bad, noID},
	} {
		id := int64(1000 + i)
		if tc.frame == "" {
			if err := r.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
				t.Fatalf("%s: write: %v", tc.name, err)
			}
		} else {
			text := tc.frame
			if strings.Contains(text, "%[1]d") {
				text = fmt.Sprintf(text, id)
			}
			r.sendText(text)
		}
		f := r.next(tc.name, func(f frame) bool {
			if tc.withID {
				return f.ID != nil && *f.ID == id
			}
			return f.Type == proto.TypeError
		})
		switch {
		case f.Type != proto.TypeError || f.Code != tc.code:
			t.Errorf("%s: got %s, want error %s", tc.name, f.Raw, tc.code)
		case !tc.withID && f.ID != nil:
			t.Errorf("%s: the error carries id %d from a frame the server could not read", tc.name, *f.ID)
		case f.Message == "":
			t.Errorf("%s: error without a message: %s", tc.name, f.Raw)
		}
		r.alive()
	}
}

// TestFatalFrames: frames that end the connection, each with its close
// code.
func TestFatalFrames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret(), withLimits(func(l *server.LimitsConfig) { l.MaxFrameBytes = 4 << 10 }))
	token := mint(t, "mal", "Mal", time.Hour, "subscribe:*")
	over := `{"type":"ping","pad":"` + strings.Repeat("x", 5<<10) + `"}`
	for _, tc := range []struct {
		name      string
		connected bool
		send      func(*rawConn)
		wantError string // an error frame comes first
		code      int
	}{
		{"request before connect", false, func(r *rawConn) { r.sendText(`{"id":1,"type":"ping"}`) }, "", proto.CloseUnauthorized},
		{"garbage before connect", false, func(r *rawConn) { r.sendText(`hello`) }, "", proto.CloseUnauthorized},
		{"frame over the limit before connect", false, func(r *rawConn) { r.sendText(over) }, "", proto.CloseTooLarge},
		{"frame over the limit", true, func(r *rawConn) { r.sendText(over) }, "", proto.CloseTooLarge},
		{"invalid UTF-8", true, func(r *rawConn) { r.sendText("{\"type\":\"ping\",\"x\":\"\xff\xfe\"}") }, "", proto.CloseInvalidUTF8},
		{"refresh with a bad token", true, func(r *rawConn) {
			r.sendText(`{"id":7,"type":"refresh","token":"not-a-jwt"}`)
		}, proto.CodeUnauthorized, proto.CloseUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *rawConn
			if tc.connected {
				r = connectRaw(t, ts.URL, token, "")
			} else {
				r = dialRaw(t, ts.URL)
			}
			tc.send(r)
			if tc.wantError != "" {
				if f := r.next("error", func(f frame) bool { return f.Type == proto.TypeError }); f.Code != tc.wantError {
					t.Fatalf("got %s, want error %s", f.Raw, tc.wantError)
				}
			}
			r.expectClose(tc.code, 15*time.Second)
		})
	}
}

// TestRateLimit: frames over the connection's rate get rate_limited, and
// repeated abuse closes the connection with 4008. Publishing too fast in a
// namespace with a publish rate gets rate_limited too.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret(), withLimits(func(l *server.LimitsConfig) { l.FrameRate, l.FrameBurst = 2, 5 }))
	r := connectRaw(t, ts.URL, mint(t, "flood", "Flood", time.Hour, "subscribe:*"), "")
	for i := range 200 {
		if err := r.ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"id":%d,"type":"ping"}`, i)); err != nil {
			break // closed already
		}
	}
	var pongs, limited int
	for {
		f, err := r.read(15 * time.Second)
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != proto.CloseRateLimit {
				t.Fatalf("after %d pongs and %d rate_limited: connection ended with %v, want close 4008", pongs, limited, err)
			}
			break
		}
		switch {
		case f.Type == proto.TypePong:
			pongs++
		case f.Type == proto.TypeError && f.Code == proto.CodeRateLimited && f.ID != nil:
			limited++
		default:
			t.Fatalf("unexpected frame %s", f.Raw)
		}
	}
	if pongs < 5 || limited == 0 {
		t.Fatalf("%d pongs, %d rate_limited errors: want the burst answered, then rate_limited", pongs, limited)
	}
	t.Logf("%d pongs, %d rate_limited, then 4008", pongs, limited)

	// chat allows a user 10 publishes a second (burst 20).
	ts2 := startServer(t, withSecret())
	p := connectRaw(t, ts2.URL, mint(t, "chatty", "Chatty", time.Hour, "publish:chat:*"), "")
	for i := range 40 {
		p.send(map[string]any{"id": i, "type": "publish", "channel": "chat:fast", "data": map[string]int{"i": i}})
	}
	var published, refused int
	for published+refused < 40 {
		f := p.next("publish answers", func(f frame) bool { return f.ID != nil })
		switch {
		case f.Type == proto.TypePublished:
			published++
		case f.Code == proto.CodeRateLimited:
			refused++
		default:
			t.Fatalf("unexpected answer %s", f.Raw)
		}
	}
	if published < 20 || refused == 0 {
		t.Fatalf("%d published, %d rate_limited: want the burst of 20 through, then rate_limited", published, refused)
	}
	p.alive()
}

// TestConnectTimeout: a client that never sends connect is dropped.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := startServer(t, withLimits(func(l *server.LimitsConfig) { l.ConnectTimeout = server.Duration(timeout) }))
	start := time.Now() // before the dial: the server's clock starts after it
	r := dialRaw(t, ts.URL)
	_, err := r.read(15 * time.Second)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("a client that never sent connect: %v; want the server to drop it", err)
	}
	if took := time.Since(start); took < timeout || took > timeout+2*time.Second {
		t.Fatalf("dropped after %v, want about %v", took, timeout)
	}
}
