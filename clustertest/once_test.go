package clustertest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/natstest"
)

// wsClient speaks the protocol by hand, to drop a connection at a chosen
// moment: right after an op is written, before its ack can come.
type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
	id int64
}

// frame is a server frame, decoded loosely.
type frame struct {
	ID      *int64 `json:"id"`
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Version int    `json:"version"`
	UID     string `json:"uid"`
	Content string `json:"content"`
	Ops     []struct {
		Version int    `json:"version"`
		UID     string `json:"uid"`
	} `json:"ops"`
}

func wsConnect(t testing.TB, url, user string) *wsClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &wsClient{t: t, ws: ws}
	if f := c.request(map[string]any{"type": "connect", "user": user}); f.Type != "connected" {
		t.Fatalf("connect: %+v", f)
	}
	return c
}

func (c *wsClient) send(v map[string]any) int64 {
	c.t.Helper()
	c.id++
	v["id"] = c.id
	b, _ := json.Marshal(v)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.id
}

// request sends v and returns the frame answering it.
func (c *wsClient) request(v map[string]any) frame {
	c.t.Helper()
	id := c.send(v)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = c.ws.SetReadDeadline(deadline)
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("waiting for the answer to %v: %v", v["type"], err)
		}
		for _, line := range splitLines(data) {
			var f frame
			if json.Unmarshal(line, &f) == nil && f.ID != nil && *f.ID == id {
				return f
			}
		}
	}
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			out = append(out, data[start:i])
			start = i + 1
		}
	}
	return append(out, data[start:])
}

// TestExactlyOnceAcrossNodes: a client sends an op to one node and its
// connection drops right after (the op written, its ack never read); it
// reconnects to another node, reopens the document from the version it
// had and, unless the op is among the ops it missed, resends it with the
// same uid and base. Meanwhile editors on every node keep editing the same
// document. Every uid is in the log exactly once, and each client's answer
// names the version its op has in the log.
func TestExactlyOnceAcrossNodes(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	url := ns.ClientURL()
	nodes := startNodes(t, []string{url, url, url}, prefix, 1)
	st := openStore(t, url, prefix, 1)
	const id = "once"

	// Background editors, one per node, typing all along.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	for i, n := range nodes {
		c := dial(t, n.ws, fmt.Sprintf("typist%d", i))
		d, err := c.OpenDoc(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			e := editor{d: d, rng: rand.New(rand.NewPCG(uint64(i), 99))}
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(3+e.rng.IntN(10)) * time.Millisecond):
				}
				if err := e.step(); err != nil {
					t.Errorf("typist %d: %v", i, err)
					return
				}
			}
		}()
	}

	const clients, rounds = 6, 8
	type answer struct {
		uid     string
		version int
		how     string
	}
	answers := make(chan answer, clients*rounds)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				uid := fmt.Sprintf("once-%d-%d", i, r)
				a := nodes[(i+r)%3]
				b := nodes[(i+r+1)%3]
				c := wsConnect(t, a.ws, fmt.Sprintf("r%d", i))
				f := c.request(map[string]any{"type": "open", "doc": id})
				if f.Type != "snapshot" {
					t.Errorf("open on %s: %+v", a.name, f)
					return
				}
				base := f.Version
				op := []any{"«" + uid + "»"} // an insert at 0
				c.send(map[string]any{"type": "op", "doc": id, "version": base, "op": op, "uid": uid})
				_ = c.ws.Close() // dropped right after the op, before any answer
				// Sometimes at once, sometimes a moment later: before and
				// after the first node stored it.
				time.Sleep(time.Duration(rand.IntN(3)) * 2 * time.Millisecond)
				c2 := wsConnect(t, b.ws, fmt.Sprintf("r%d", i))
				f = c2.request(map[string]any{"type": "open", "doc": id, "version": base})
				if f.Type != "opened" {
					t.Errorf("reopen on %s from v%d: %+v", b.name, base, f)
					return
				}
				found := -1
				for _, o := range f.Ops {
					if o.UID == uid {
						found = o.Version
					}
				}
				if found >= 0 {
					answers <- answer{uid, found, "among the ops missed"}
				} else {
					ack := c2.request(map[string]any{"type": "op", "doc": id, "version": base, "op": op, "uid": uid})
					if ack.Type != "ack" || ack.UID != uid {
						t.Errorf("resend of %s on %s: %+v", uid, b.name, ack)
						return
					}
					answers <- answer{uid, ack.Version, "acked on resend"}
				}
				_ = c2.ws.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	close(answers)
	if t.Failed() {
		return
	}
	// Let the last ops land, then read the log.
	time.Sleep(500 * time.Millisecond)
	_, ops := replay(t, st, id)
	where := map[string][]int{}
	for _, o := range ops {
		where[o.UID] = append(where[o.UID], o.Version)
	}
	hows := map[string]int{}
	for a := range answers {
		hows[a.how]++
		vs := where[a.uid]
		if len(vs) != 1 {
			t.Fatalf("uid %s is in the log at versions %v, want exactly once", a.uid, vs)
		}
		if vs[0] != a.version {
			t.Fatalf("uid %s: the client was told v%d, the log has it at v%d", a.uid, a.version, vs[0])
		}
	}
	for uid, vs := range where {
		if len(vs) > 1 {
			t.Fatalf("uid %s applied %d times: %v", uid, len(vs), vs)
		}
	}
	t.Logf("%d resent ops, each once in a log of %d ops: %v", clients*rounds, len(ops), hows)
}
