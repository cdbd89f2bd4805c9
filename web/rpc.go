package web

import (
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/proto"
)

// handleRPC serves an rpc frame: the application's rpc hook answers it
// (docs/hooks.md). The call runs off the read goroutine, so that a slow
// method holds up none of the connection's other requests, and its
// answer (rpc_result, or an error frame) carries the frame's id: answers
// to several rpc frames may come in any order. A connection has at most
// maxRPCInFlight calls waiting at once; the frame rate limit counts rpc
// frames like any other, and the frame size limit bounds their data.
func (c *conn) handleRPC(req *proto.Request) error {
	if req.ID == nil {
		return badRequest("rpc needs an id: its answer carries it")
	}
	if err := hooks.ValidMethod(req.Method); err != nil {
		return badRequest(err.Error())
	}
	caller := c.srv.cfg.Hooks.Caller
	if !caller.Enabled(hooks.HookRPC) {
		return &requestError{proto.CodeNotFound, fmt.Sprintf("no method %q: the server has no rpc hook", req.Method)}
	}
	h := c.hooked
	if h.rpcs.Add(1) > maxRPCInFlight {
		h.rpcs.Add(-1)
		return &requestError{proto.CodeRateLimited, fmt.Sprintf("at most %d rpc calls in flight per connection", maxRPCInFlight)}
	}
	c.idMu.Lock()
	user := c.user
	c.idMu.Unlock()
	id := *req.ID
	call := hooks.RPCRequest{User: hookUser(user), ClientID: c.id, Method: req.Method, Data: req.Data}
	h.wg.Add(1) // on the read goroutine, which waits for wg only once it ends
	go func() {
		defer h.wg.Done()
		defer h.rpcs.Add(-1)
		res, err := caller.RPC(h.ctx, call)
		var f *hooks.Failure
		switch {
		case errors.As(err, &f) && f.Kind == hooks.FailCanceled:
			return // the connection is closing: nobody to answer
		case err != nil:
			c.sendError(&id, err)
			return
		}
		frame := proto.Encode(proto.RPCResult{ID: &id, Type: proto.TypeRPCResult, Method: call.Method, Data: res.Data})
		if limit := c.srv.maxRPCResult(); len(frame) > limit {
			c.sendError(&id, &requestError{proto.CodeTooLarge, fmt.Sprintf("the application's answer to %s is %d bytes, at most %d", call.Method, len(frame), limit)})
			return
		}
		c.Send(frame)
	}()
	return nil
}

// maxRPCResult bounds an rpc_result frame, in bytes: a quarter of a
// connection's send queue, so that one answer never makes a connection a
// slow reader.
func (s *Server) maxRPCResult() int { return s.cfg.MaxQueueBytes / 4 }
