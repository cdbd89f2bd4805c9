package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// broadcastReq is one message of POST /api/broadcast.
type broadcastReq struct {
	Channel   string          `json:"channel"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Ephemeral bool            `json:"ephemeral"`
}

type broadcastResult struct {
	Channel string       `json:"channel"`
	Offset  uint64       `json:"offset,omitempty"`
	Error   *proto.Error `json:"error,omitempty"`
}

func (s *Server) apiBroadcast(w http.ResponseWriter, r *http.Request, p principal) error {
	// One broadcast's fields, or broadcasts; not an embedded broadcastReq,
	// whose Go name a decoding error would name.
	var body struct {
		Channel    string          `json:"channel"`
		Event      string          `json:"event"`
		Data       json.RawMessage `json:"data"`
		Ephemeral  bool            `json:"ephemeral"`
		Broadcasts []broadcastReq  `json:"broadcasts"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	batch := body.Broadcasts != nil
	reqs := body.Broadcasts
	if !batch {
		reqs = []broadcastReq{{Channel: body.Channel, Event: body.Event, Data: body.Data, Ephemeral: body.Ephemeral}}
	} else if body.Channel != "" {
		return badRequest("send either one broadcast or broadcasts, not both")
	}
	if len(reqs) == 0 || len(reqs) > 1000 {
		return badRequest("broadcasts must hold 1 to 1000 messages")
	}
	// Check each message before publishing it: a bad message fails a
	// single broadcast whole, and only itself in a batch. A user's messages
	// draw on its publish rate one by one. Then the publish hook, where a
	// namespace asks for it, may refuse messages or replace their data.
	results := make([]broadcastResult, len(reqs))
	errs := make([]error, len(reqs))
	for i, b := range reqs {
		results[i].Channel = b.Channel
		errs[i] = s.checkBroadcast(p, b)
	}
	s.broadcastHooks(r.Context(), p, reqs, errs)
	var wg sync.WaitGroup
	for i, b := range reqs {
		if err := errs[i]; err != nil {
			if !batch {
				return err
			}
			f := describe(err).frame()
			results[i].Error = &f
			continue
		}
		wg.Add(1)
		s.cfg.Hub.Publish(session.Publication{
			Channel: b.Channel, Event: b.Event, Data: b.Data, Ephemeral: b.Ephemeral,
			From: proto.From{User: p.UserID}, FromName: p.Name,
		}, func(offset uint64, err error) {
			defer wg.Done()
			results[i].Offset = offset
			if err != nil {
				f := describe(err)
				if f.Internal {
					s.log.Error().Err(err).Msg("broadcast")
				}
				e := f.frame()
				results[i].Error = &e
			}
		})
	}
	wg.Wait()
	if !batch {
		if e := results[0].Error; e != nil {
			writeJSON(w, statusOf[e.Code], e)
			return nil
		}
		writeJSON(w, http.StatusOK, results[0])
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
	return nil
}

// broadcastConcurrency bounds the publish hook calls of one broadcast
// batch under way at once, so that a batch of 1,000 messages ends well
// within the HTTP write timeout while the backend's own bound
// (max_concurrent) still holds across every request.
const broadcastConcurrency = 16

// broadcastHooks asks the publish hook about each message of a broadcast
// that passed its checks (errs[i] nil) in a namespace that asks for it, up
// to broadcastConcurrency at once: a refusal or failure becomes the
// message's error, a replacement its data. The messages are then
// published in their order, whatever order the answers came in.
func (s *Server) broadcastHooks(ctx context.Context, p principal, reqs []broadcastReq, errs []error) {
	if s.cfg.Hooks.Caller == nil {
		return
	}
	u, isUser := principalUser(p)
	apiKey := ""
	if !isUser {
		apiKey = p.Name
	}
	sem := make(chan struct{}, broadcastConcurrency)
	var wg sync.WaitGroup
	for i := range reqs {
		b := &reqs[i]
		if errs[i] != nil {
			continue
		}
		nh := s.nsHooks(b.Channel)
		if isUser && !nh.Publish || !isUser && !nh.Broadcast {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.Data, errs[i] = s.publishHook(ctx, hooks.PublishRequest{
				User: u, APIKey: apiKey, Channel: b.Channel, Event: b.Event, Data: b.Data,
				Ephemeral: b.Ephemeral, Transport: hooks.TransportHTTP,
			}, !isUser)
		}()
	}
	wg.Wait()
}

func (s *Server) checkBroadcast(p principal, b broadcastReq) error {
	if len(b.Data) > 0 && !json.Valid(b.Data) {
		return badRequest("data is not valid JSON")
	}
	_, err := s.authorize(p, accessPublish, b.Channel)
	return err
}

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request, p principal) error {
	ch := r.PathValue("channel")
	if _, err := s.authorize(p, accessSubscribe, ch); err != nil {
		return err
	}
	if err := s.httpSubscribeHook(r.Context(), p, ch); err != nil {
		return err
	}
	since, err := queryInt(r, "since", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		return err
	}
	limit = min(max(limit, 1), maxHistory)
	msgs, err := s.cfg.Hub.History(ch, uint64(since), limit)
	if err != nil {
		return err
	}
	resp := map[string]any{"channel": ch, "messages": msgs}
	if len(msgs) == limit {
		resp["next"] = msgs[len(msgs)-1].Offset
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// apiPresence serves GET /api/channels/{channel}/presence: what a
// subscribe would show of the channel's presence (authorize): the members
// and their count, a count alone in a count-only namespace, or neither.
func (s *Server) apiPresence(w http.ResponseWriter, r *http.Request, p principal) error {
	ch := r.PathValue("channel")
	v, err := s.authorize(p, accessSubscribe, ch)
	if err != nil {
		return err
	}
	if err := s.httpSubscribeHook(r.Context(), p, ch); err != nil {
		return err
	}
	resp := map[string]any{"channel": ch, "presence": v.presence.String()}
	switch {
	case v.presence == session.PresenceCount:
		resp["count"] = len(s.cfg.Hub.Members(ch))
	case v.presence == session.PresenceFull && v.seesPresence:
		members := s.cfg.Hub.Members(ch)
		resp["members"], resp["count"] = members, len(members)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
