package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tandemhq/tandem/proto"
)

// RPC calls method of the application's backend (the server's rpc hook,
// docs/hooks.md) with data, encoded with encoding/json (a json.RawMessage
// goes as is; nil sends none), and returns the backend's answer: its JSON,
// "null" when it gave none. The backend's refusal is an *Error with its
// code and message; a backend that failed is an *Error of code
// unavailable, a method nobody answers one of code not_found. If the
// connection is lost before the answer it fails with ErrDisconnected, and
// the method may or may not have run.
func (c *Client) RPC(ctx context.Context, method string, data any) (json.RawMessage, error) {
	req := &proto.Request{Type: proto.TypeRPC, Method: method}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("client: rpc data: %w", err)
		}
		req.Data = raw
	}
	f, err := c.request(ctx, req)
	if err != nil {
		return nil, err
	}
	res, ok := f.body.(*proto.RPCResult)
	if !ok {
		return nil, fmt.Errorf("client: rpc %s: the server answered %s", method, f.Type)
	}
	if res.Data == nil {
		return json.RawMessage("null"), nil
	}
	return res.Data, nil
}

// ConnectData returns what the application's connect hook attached to the
// live (or last) connection's connected frame, or nil.
func (c *Client) ConnectData() json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connData
}

// Data returns what the application's subscribe hook attached to the
// latest subscribed frame of the subscription, or nil.
func (s *Subscription) Data() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}
