package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestAPIBroadcast: a broadcast reaches WebSocket subscribers as a client
// publish would (offset, event, data, sender), and so does each message of
// a batch, in order, with a bad message failing alone; history and
// presence show the same.
func TestAPIBroadcast(t *testing.T) {
	t.Parallel()
	a := apiStart(t, nil)
	ann, bob := a.dial("ann"), a.dial("bob")
	ann.subscribe("customer_7")
	bob.subscribe("customer_7")
	bob.subscribe("dashboard:sales")

	var one struct {
		Channel string `json:"channel"`
		Offset  uint64 `json:"offset"`
	}
	a.call("POST", "/api/broadcast", map[string]any{"channel": "customer_7", "event": "order_update", "data": map[string]string{"status": "shipped"}}, 200, &one)
	if one.Channel != "customer_7" || one.Offset != 1 {
		t.Fatalf("broadcast answered %+v, want offset 1 on customer_7", one)
	}
	for _, c := range []*apiConn{ann, bob} {
		m := c.message("customer_7")
		if m.Offset != 1 || m.Event != "order_update" || string(m.Data) != `{"status":"shipped"}` || m.From == nil || m.From.User != "api:env1" {
			t.Fatalf("subscriber got %s", m.Raw)
		}
	}

	var batch struct {
		Results []struct {
			Channel string `json:"channel"`
			Offset  uint64 `json:"offset"`
			Error   *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	a.call("POST", "/api/broadcast", map[string]any{"broadcasts": []map[string]any{
		{"channel": "customer_7", "event": "a", "data": 1},
		{"channel": "dashboard:sales", "event": "tick", "data": map[string]int{"total": 42}},
		{"channel": "doc:x", "event": "nope"}, // documents are edited through /api/docs
		{"channel": "customer_7", "event": "b", "data": 2},
		{"channel": "bad channel", "event": "nope"},
		{"channel": "customer_7", "event": "typing", "ephemeral": true},
		{"channel": "system:stats", "event": "stats", "data": 1}, // the server's own
	}}, 200, &batch)
	want := []struct {
		offset uint64
		code   string
	}{{2, ""}, {1, ""}, {0, "bad_request"}, {3, ""}, {0, "bad_request"}, {0, ""}, {0, "forbidden"}}
	if len(batch.Results) != len(want) {
		t.Fatalf("batch: %d results, want %d", len(batch.Results), len(want))
	}
	for i, w := range want {
		r := batch.Results[i]
		code := ""
		if r.Error != nil {
			code = r.Error.Code
		}
		if r.Offset != w.offset || code != w.code {
			t.Errorf("batch result %d: %+v, want offset %d error %q", i, r, w.offset, w.code)
		}
	}
	// The stored messages arrive in offset order; the ephemeral one is not
	// stored, so it need not wait for them and may come first.
	for _, c := range []*apiConn{ann, bob} {
		var stored []string
		ephemeral := 0
		for len(stored) < 2 || ephemeral < 1 {
			m := c.message("customer_7")
			if m.Offset == 0 {
				ephemeral++
				if m.Event != "typing" {
					t.Fatalf("batch on customer_7: unexpected %s", m.Raw)
				}
				continue
			}
			stored = append(stored, fmt.Sprint(m.Offset, m.Event))
		}
		if fmt.Sprint(stored) != "[2a 3b]" || ephemeral != 1 {
			t.Fatalf("batch on customer_7: stored %v, %d ephemeral; want [2a 3b] and 1", stored, ephemeral)
		}
	}
	if m := bob.message("dashboard:sales"); m.Offset != 1 || string(m.Data) != `{"total":42}` {
		t.Fatalf("batch on dashboard:sales: %s", m.Raw)
	}

	// History holds the three stored messages (not the ephemeral one), paged.
	var hist struct {
		Messages []struct {
			Offset uint64          `json:"offset"`
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
		} `json:"messages"`
		Next *uint64 `json:"next"`
	}
	a.call("GET", "/api/channels/customer_7/history?limit=2", nil, 200, &hist)
	if len(hist.Messages) != 2 || hist.Messages[0].Offset != 1 || hist.Messages[1].Event != "a" || hist.Next == nil || *hist.Next != 2 {
		t.Fatalf("history page 1: %+v", hist)
	}
	hist.Next = nil
	a.call("GET", "/api/channels/customer_7/history?since=2&limit=2", nil, 200, &hist)
	if len(hist.Messages) != 1 || hist.Messages[0].Offset != 3 || string(hist.Messages[0].Data) != "2" || hist.Next != nil {
		t.Fatalf("history page 2: %+v", hist)
	}
	var pres struct {
		Count   int `json:"count"`
		Members []struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"members"`
	}
	a.call("GET", "/api/channels/customer_7/presence", nil, 200, &pres)
	if pres.Count != 2 || len(pres.Members) != 2 {
		t.Fatalf("presence: %+v", pres)
	}
}
