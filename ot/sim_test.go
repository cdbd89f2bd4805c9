package ot_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tandemhq/tandem/ot"
)

// This file simulates the protocol's OT model with one server and several
// clients over FIFO links with random delays, as PROTOCOL.md describes it:
// the server transforms an incoming op over its history one op at a time;
// each client keeps at most one op in flight and composes later local edits
// into a buffer, and transforms incoming ops over both.

type simMsg struct {
	version int // base version (client→server) or applied version (server→client)
	op      ot.Op
	ack     bool // server→client: this is the ack of the client's own op
}

type simClient struct {
	text     string
	version  int // server versions this client has seen
	inflight ot.Op
	sending  bool // an op is in flight
	buffer   ot.Op
	buffered bool
	toServer []simMsg
	inbox    []simMsg
}

type simServer struct {
	text    string
	history []ot.Op
}

func (c *simClient) edit(t *testing.T, r *rand.Rand) {
	op := randomOp(r, c.text)
	if op.IsNoop() {
		return
	}
	c.text = apply(t, c.text, op)
	switch {
	case !c.sending:
		c.inflight, c.sending = op, true
		c.toServer = append(c.toServer, simMsg{version: c.version, op: op})
	case !c.buffered:
		c.buffer, c.buffered = op, true
	default:
		var err error
		if c.buffer, err = ot.Compose(c.buffer, op); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *simClient) receive(t *testing.T) {
	m := c.inbox[0]
	c.inbox = c.inbox[1:]
	if m.version != c.version {
		t.Fatalf("client at v%d got a message for v%d", c.version, m.version)
	}
	c.version++
	if m.ack {
		c.sending = false
		if c.buffered {
			c.inflight, c.sending, c.buffered = c.buffer, true, false
			c.toServer = append(c.toServer, simMsg{version: c.version, op: c.inflight})
		}
		return
	}
	op := m.op
	var err error
	if c.sending { // the server's op wins ties: it was applied first
		if op, c.inflight, err = ot.Transform(op, c.inflight); err != nil {
			t.Fatal(err)
		}
	}
	if c.buffered {
		if op, c.buffer, err = ot.Transform(op, c.buffer); err != nil {
			t.Fatal(err)
		}
	}
	c.text = apply(t, c.text, op)
}

func (s *simServer) receive(t *testing.T, from int, clients []*simClient) {
	c := clients[from]
	m := c.toServer[0]
	c.toServer = c.toServer[1:]
	op := m.op
	for _, h := range s.history[m.version:] { // one at a time, history first
		var err error
		if _, op, err = ot.Transform(h, op); err != nil {
			t.Fatal(err)
		}
	}
	mustCanonical(t, "server op", op)
	s.text = apply(t, s.text, op)
	v := len(s.history)
	s.history = append(s.history, op)
	for i, other := range clients {
		other.inbox = append(other.inbox, simMsg{version: v, op: op, ack: i == from})
	}
}

// simulate runs one random schedule and fails the test if the clients and
// the server do not converge.
func simulate(t *testing.T, seed uint64, nClients, steps int) {
	r := rand.New(rand.NewPCG(seed, 99))
	start := randomText(r, 8)
	s := &simServer{text: start}
	clients := make([]*simClient, nClients)
	for i := range clients {
		clients[i] = &simClient{text: start}
	}
	for range steps {
		c := r.IntN(nClients)
		switch k := r.IntN(10); {
		case k < 4:
			clients[c].edit(t, r)
		case k < 7 && len(clients[c].toServer) > 0:
			s.receive(t, c, clients)
		case len(clients[c].inbox) > 0:
			clients[c].receive(t)
		}
	}
	// Quiesce: deliver everything, in random interleavings.
	for {
		busy := false
		for _, i := range r.Perm(nClients) {
			c := clients[i]
			if len(c.toServer) > 0 {
				s.receive(t, i, clients)
				busy = true
			}
			if len(c.inbox) > 0 {
				c.receive(t)
				busy = true
			}
		}
		if !busy {
			break
		}
	}
	for i, c := range clients {
		if c.text != s.text || c.sending || c.buffered {
			t.Fatalf("seed %d: client %d has %q (pending %v), server %q", seed, i, c.text, c.sending, s.text)
		}
	}
}

func TestSimulationConverges(t *testing.T) {
	runs := 400
	if testing.Short() {
		runs = 50
	}
	for seed := range uint64(runs) {
		simulate(t, seed, 2+int(seed%4), 300)
	}
}
