package web

import (
	"encoding/json"
	"net/http"
	"sync"

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
	// draw on its publish rate one by one.
	results := make([]broadcastResult, len(reqs))
	var wg sync.WaitGroup
	for i, b := range reqs {
		results[i].Channel = b.Channel
		if err := s.checkBroadcast(p, b); err != nil {
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
