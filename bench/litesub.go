package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// liteSub is a fan-out subscriber that speaks the protocol directly and
// parses only what it counts (offset and the publisher's timestamp), so
// that a thousand of them sharing the machine with the server measure the
// server rather than the subscribers' JSON decoding.
type liteSub struct {
	ws *websocket.Conn
	s  *fanSub
}

// dialLite connects, subscribes and starts reading.
func dialLite(ctx context.Context, wsURL, token, user, channel string, s *fanSub) (*liteSub, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	ws, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, err
	}
	send := func(v any) error { return ws.WriteJSON(v) }
	if err := send(map[string]any{"id": 1, "type": "connect", "token": token, "user": user}); err != nil {
		ws.Close()
		return nil, err
	}
	if err := send(map[string]any{"id": 2, "type": "subscribe", "channel": channel}); err != nil {
		ws.Close()
		return nil, err
	}
	// Wait for subscribed, so that every publish after this reaches us.
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for subscribed := false; !subscribed; {
		_, data, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if bytes.Contains(line, []byte(`"type":"error"`)) {
				ws.Close()
				return nil, fmt.Errorf("subscribe: %s", line)
			}
			if bytes.Contains(line, []byte(`"type":"subscribed"`)) {
				subscribed = true
			}
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	l := &liteSub{ws: ws, s: s}
	go l.read()
	return l, nil
}

var (
	keyOffset = []byte(`"offset":`)
	keyT      = []byte(`"t":`)
	msgPrefix = []byte(`{"type":"message"`)
)

func (l *liteSub) read() {
	var buf []byte // reused: a message is parsed before the next is read
	for {
		data, err := readMessage(l.ws, buf[:0])
		buf = data
		now := time.Now()
		if err != nil {
			l.s.mu.Lock()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				l.s.closeCode = ce.Code
			}
			l.s.closed = err
			l.s.mu.Unlock()
			return
		}
		l.s.mu.Lock()
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if !bytes.HasPrefix(line, msgPrefix) {
				continue
			}
			off := uint64(numberAfter(line, keyOffset))
			s := l.s
			switch {
			case off <= s.last:
				s.dup++
			case off != s.last+1:
				s.gaps++
			}
			if off > s.last {
				s.last = off
			}
			s.count++
			if t := numberAfter(line, keyT); t > 0 {
				s.lat = append(s.lat, now.Sub(time.Unix(0, t)))
			}
		}
		l.s.mu.Unlock()
	}
}

func (l *liteSub) close() { _ = l.ws.Close() }

// readMessage reads the next message into buf (growing it), so that a
// subscriber reading thousands of messages allocates nothing per message.
func readMessage(ws *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// numberAfter returns the integer after the first occurrence of key in
// line, or 0.
func numberAfter(line, key []byte) int64 {
	i := bytes.Index(line, key)
	if i < 0 {
		return 0
	}
	var n int64
	for _, b := range line[i+len(key):] {
		if b < '0' || b > '9' {
			break
		}
		n = n*10 + int64(b-'0')
	}
	return n
}
