package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/session"
)

// DocStore is what the HTTP API reads and writes of documents directly in
// storage (live edits go through session.Docs instead).
type DocStore interface {
	ListDocs() ([]doc.Info, error)
	GetDoc(id string) (doc.Info, error)
	ContentAt(docID string, v int) (string, error)
	Ops(docID string, from, to int) ([]doc.OpRecord, error)
	Export(docID string, w io.Writer) error
	Import(r io.Reader) (doc.Info, error)
	Compact(ctx context.Context, docID string, before int) error
	SetTitle(ctx context.Context, docID, title string) error
}

// APIKey is a server-side key for the HTTP API. Grants nil means every
// grant.
type APIKey struct {
	Key    string
	Name   string
	Grants auth.Grants
}

// Limits of the HTTP API.
const (
	maxAPIBody    = 1 << 20  // a JSON request body
	maxImportBody = 64 << 20 // an export being imported
	maxOpsPage    = 1000     // ops per page of /ops
	maxHistory    = 1000     // messages per page of /history
)

// apiError is an HTTP API failure: a wire code and a message.
type apiError struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
}

var statusOf = map[string]int{
	proto.CodeBadRequest:   http.StatusBadRequest,
	proto.CodeUnauthorized: http.StatusUnauthorized,
	proto.CodeForbidden:    http.StatusForbidden,
	proto.CodeNotFound:     http.StatusNotFound,
	proto.CodeRateLimited:  http.StatusTooManyRequests,
	proto.CodeTooLarge:     http.StatusRequestEntityTooLarge,
	proto.CodeConflict:     http.StatusConflict,
	proto.CodeUnavailable:  http.StatusServiceUnavailable,
	proto.CodeInternal:     http.StatusInternalServerError,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiFail answers with the error's code, mapped as on the wire.
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg, internal := errorCode(err)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code, msg, internal = proto.CodeTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit), false
	case errors.Is(err, doc.ErrNotFound):
		code, msg, internal = proto.CodeNotFound, err.Error(), false
	case errors.Is(err, doc.ErrExists):
		code, msg, internal = proto.CodeConflict, err.Error(), false
	case errors.Is(err, doc.ErrCompacted):
		code, msg, internal = proto.CodeNotFound, err.Error()+" (the document was compacted; ask for a later version)", false
	case errors.Is(err, doc.ErrInvalid):
		code, msg, internal = proto.CodeBadRequest, err.Error(), false
	case errors.Is(err, context.DeadlineExceeded):
		code, msg, internal = proto.CodeUnavailable, "timed out", false
	}
	if internal {
		s.log.Error().Err(err).Str("path", r.URL.Path).Msg("api request failed")
	}
	msg = publicMessage(msg)
	if code == proto.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	}
	status := statusOf[code]
	var mte *mediaTypeError
	if errors.As(err, &mte) {
		status = http.StatusUnsupportedMediaType
	}
	writeJSON(w, status, apiError{Type: proto.TypeError, Code: code, Message: msg})
}

// routeAPI mounts the HTTP API.
func (s *Server) routeAPI() {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, auth.Identity) error) {
		s.handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ident, err := s.authenticate(r)
			if err == nil {
				err = fn(w, r, ident)
			}
			if err != nil {
				s.apiFail(w, r, err)
			}
		}))
	}
	h("POST /api/broadcast", s.apiBroadcast)
	h("GET /api/channels/{channel}/history", s.apiHistory)
	h("GET /api/channels/{channel}/presence", s.apiPresence)
	h("GET /api/docs", s.apiListDocs)
	h("POST /api/docs", s.apiCreateDoc)
	h("POST /api/docs/import", s.apiImport)
	h("GET /api/docs/{id}", s.apiGetDoc)
	h("DELETE /api/docs/{id}", s.apiDeleteDoc)
	h("PATCH /api/docs/{id}", s.apiRenameDoc)
	h("PUT /api/docs/{id}/content", s.apiPutContent)
	h("GET /api/docs/{id}/ops", s.apiOps)
	h("GET /api/docs/{id}/diff", s.apiDiff)
	h("GET /api/docs/{id}/export", s.apiExport)
	h("POST /api/docs/{id}/compact", s.apiCompact)
	h("POST /api/users/{id}/disconnect", s.apiDisconnect)
	h("GET /api/webhooks/deliveries", s.apiWebhookDeliveries)
	h("GET /api/backup", s.apiBackup)
}

// backupName is the name an admin grant must match to take a backup.
const backupName = "system:backup"

// apiBackup serves GET /api/backup: a consistent copy of the whole data
// file, taken in one read transaction while the server keeps serving
// (admin only). Content-Length is the copy's size, so a client can tell a
// complete copy from one cut short by a failure midway (which is logged:
// the status is out by then).
func (s *Server) apiBackup(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	if _, err := s.authorize(s.principalOf(r, ident), accessAdmin, backupName); err != nil {
		return err
	}
	if s.cfg.Backup == nil {
		return &requestError{proto.CodeUnavailable, "this server takes no backups"}
	}
	started := false
	n, err := s.cfg.Backup(func(size int64) io.Writer {
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="tandem-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
		w.WriteHeader(http.StatusOK)
		return w
	})
	if err != nil && started {
		s.log.Error().Err(err).Int64("written", n).Msg("backup cut short")
		return nil
	}
	if err == nil {
		s.log.Info().Int64("bytes", n).Str("by", ident.UserID).Msg("backup taken")
	}
	return err
}

// errUnauthorized answers a request without valid credentials.
var errUnauthorized = &requestError{proto.CodeUnauthorized, "send Authorization: Bearer <API key or admin JWT>"}

// authenticate finds who a request acts as: an API key (compared in
// constant time), or a JWT. In development mode with no API keys
// configured, the API is open.
func (s *Server) authenticate(r *http.Request) (auth.Identity, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		if s.DevMode() && len(s.cfg.APIKeys) == 0 {
			return auth.Identity{UserID: "api", Name: "API", Grants: auth.All, Guest: true}, nil
		}
		return auth.Identity{}, errUnauthorized
	}
	var found *APIKey
	for i := range s.cfg.APIKeys {
		k := &s.cfg.APIKeys[i]
		if subtle.ConstantTimeCompare([]byte(k.Key), []byte(token)) == 1 {
			found = k
		}
	}
	if found != nil {
		grants := found.Grants
		if grants == nil {
			grants = auth.All
		}
		name := found.Name
		if name == "" {
			name = "api"
		}
		return auth.Identity{UserID: "api:" + name, Name: name, Grants: grants}, nil
	}
	if s.cfg.Verifier == nil {
		return auth.Identity{}, &requestError{proto.CodeUnauthorized, "unknown API key"}
	}
	ident, err := s.cfg.Verifier.Verify(token) // revoked tokens included
	if err != nil {
		return auth.Identity{}, &requestError{proto.CodeUnauthorized, err.Error()}
	}
	return ident, nil
}

// decodeBody decodes a JSON request body of at most maxAPIBody bytes,
// sent as application/json, rejecting unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r, "application/json"); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return badRequest("the body holds more than one JSON value")
		}
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest(describeJSON("the body", err))
}

// requireJSON checks that a request has a body, sent as application/json
// (with any parameters, such as a charset); what it says in the error is
// what the route takes. Every route with a JSON body requires it, so that
// a web page cannot send one as a "simple" cross-site request (text/plain
// or a form) that a browser sends without asking the server first.
func requireJSON(r *http.Request, takes string) error {
	if r.ContentLength == 0 {
		return badRequest("the request has no body: send a JSON object")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &mediaTypeError{fmt.Sprintf("send the body with Content-Type: %s", takes)}
	}
	return nil
}

// queryInt reads an optional integer query parameter.
func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest(fmt.Sprintf("%s must be a non-negative integer", name))
	}
	return n, nil
}

// broadcastReq is one message of POST /api/broadcast.
type broadcastReq struct {
	Channel   string          `json:"channel"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Ephemeral bool            `json:"ephemeral"`
}

type broadcastResult struct {
	Channel string    `json:"channel"`
	Offset  uint64    `json:"offset,omitempty"`
	Error   *apiError `json:"error,omitempty"`
}

func (s *Server) apiBroadcast(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
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
	p := s.principalOf(r, ident)
	results := make([]broadcastResult, len(reqs))
	var wg sync.WaitGroup
	for i, b := range reqs {
		results[i].Channel = b.Channel
		if err := s.checkBroadcast(p, b); err != nil {
			if !batch {
				return err
			}
			code, msg, _ := errorCode(err)
			results[i].Error = &apiError{Type: proto.TypeError, Code: code, Message: msg}
			continue
		}
		wg.Add(1)
		s.cfg.Hub.Publish(session.Publication{
			Channel: b.Channel, Event: b.Event, Data: b.Data, Ephemeral: b.Ephemeral,
			From: proto.From{User: ident.UserID}, FromName: ident.Name,
		}, func(offset uint64, err error) {
			defer wg.Done()
			results[i].Offset = offset
			if err != nil {
				code, msg, internal := errorCode(err)
				if internal {
					s.log.Error().Err(err).Msg("broadcast")
				}
				results[i].Error = &apiError{Type: proto.TypeError, Code: code, Message: msg}
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

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	ch := r.PathValue("channel")
	if _, err := s.authorize(s.principalOf(r, ident), accessSubscribe, ch); err != nil {
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
func (s *Server) apiPresence(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	ch := r.PathValue("channel")
	v, err := s.authorize(s.principalOf(r, ident), accessSubscribe, ch)
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

// docStore returns the store, or unavailable.
func (s *Server) docStore() (DocStore, error) {
	if s.cfg.Store == nil || s.cfg.Docs == nil {
		return nil, &requestError{proto.CodeUnavailable, "this server serves no documents"}
	}
	return s.cfg.Store, nil
}

// docID reads the {id} path value and authorizes access a to it.
func (s *Server) docID(r *http.Request, ident auth.Identity, a access) (string, error) {
	id := r.PathValue("id")
	_, err := s.authorize(s.principalOf(r, ident), a, id)
	return id, err
}

func (s *Server) apiListDocs(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	infos, err := store.ListDocs()
	if err != nil {
		return err
	}
	p := s.principalOf(r, ident)
	out := make([]doc.Info, 0, len(infos))
	for _, info := range infos {
		if _, err := s.authorize(p, accessDocRead, info.ID); err == nil {
			out = append(out, info)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"docs": out})
	return nil
}

func (s *Server) apiCreateDoc(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	if _, err := s.docStore(); err != nil {
		return err
	}
	var body struct {
		ID      string `json:"id"`
		Content string `json:"content"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.ID == "" {
		body.ID = "doc-" + newClientID()[2:]
	}
	if _, err := s.authorize(s.principalOf(r, ident), accessDocWrite, body.ID); err != nil {
		return err
	}
	res := s.cfg.Docs.Create(r.Context(), body.ID, body.Content, "", ident.UserID)
	if res.Err != nil {
		return res.Err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": body.ID, "version": versionAfter(res)})
	return nil
}

// versionAfter is the document's version after an edit.
func versionAfter(res session.EditResult) int {
	if len(res.Op) == 0 {
		return res.Version
	}
	return res.Version + 1
}

func (s *Server) apiGetDoc(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocRead)
	if err != nil {
		return err
	}
	info, err := store.GetDoc(id)
	if err != nil {
		return err
	}
	v, err := queryInt(r, "version", info.Version)
	if err != nil {
		return err
	}
	if v > info.Version {
		return badRequest(fmt.Sprintf("version %d is past the head %d", v, info.Version))
	}
	content, err := store.ContentAt(id, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "version": v, "head": info.Version, "content": content, "created": info.Created, "epoch": info.Epoch})
	return nil
}

func (s *Server) apiPutContent(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	if _, err := s.docStore(); err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocWrite)
	if err != nil {
		return err
	}
	var body struct {
		Content *string `json:"content"`
		Version *int    `json:"version"`
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype != "text/plain" && ctype != "application/json" && r.ContentLength != 0 {
		return &mediaTypeError{"send the body with Content-Type: application/json or text/plain"}
	}
	if ctype == "text/plain" {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return badRequest(describeJSON("the body", err))
		}
		text := string(b)
		body.Content = &text
		if r.URL.Query().Has("version") {
			v, err := queryInt(r, "version", 0)
			if err != nil {
				return err
			}
			body.Version = &v
		}
	} else if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Content == nil {
		return badRequest("content is required")
	}
	if !utf8Valid(*body.Content) {
		return badRequest("content is not valid UTF-8")
	}
	res := s.cfg.Docs.Replace(r.Context(), id, body.Version, *body.Content, "", ident.UserID, true) // write, authorized: may create
	if res.Err != nil {
		return res.Err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "version": versionAfter(res), "op": res.Op})
	return nil
}

// opEntry is one op of GET /ops.
type opEntry struct {
	Version  int    `json:"version"`
	Op       ot.Op  `json:"op"`
	UID      string `json:"uid"`
	User     string `json:"user,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	TS       string `json:"ts"`
}

// versionRange reads what /ops and /diff share: the store, the document
// (with the read grant), and the from and to query parameters, to
// defaulting to the head.
func (s *Server) versionRange(r *http.Request, ident auth.Identity) (store DocStore, id string, info doc.Info, from, to int, err error) {
	if store, err = s.docStore(); err != nil {
		return
	}
	if id, err = s.docID(r, ident, accessDocRead); err != nil {
		return
	}
	if info, err = store.GetDoc(id); err != nil {
		return
	}
	if from, err = queryInt(r, "from", 0); err != nil {
		return
	}
	to, err = queryInt(r, "to", info.Version)
	return
}

func (s *Server) apiOps(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, id, info, from, to, err := s.versionRange(r, ident)
	if err != nil {
		return err
	}
	to = min(to, info.Version)
	if from > to {
		return badRequest(fmt.Sprintf("from %d is past to %d", from, to))
	}
	var next *int
	if to-from > maxOpsPage {
		n := from + maxOpsPage
		to, next = n, &n
	}
	recs, err := store.Ops(id, from, to)
	if err != nil {
		return err
	}
	ops := make([]opEntry, len(recs))
	for i, rec := range recs {
		ops[i] = opEntry{Version: rec.Version, Op: rec.Op, UID: rec.UID, User: rec.User, ClientID: rec.ClientID,
			TS: rec.Time.UTC().Format(proto.TimeLayout)}
	}
	resp := map[string]any{"id": id, "head": info.Version, "ops": ops}
	if next != nil {
		resp["next"] = *next
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, id, info, from, to, err := s.versionRange(r, ident)
	if err != nil {
		return err
	}
	if from > info.Version || to > info.Version {
		return badRequest(fmt.Sprintf("versions must be at most the head %d", info.Version))
	}
	a, err := store.ContentAt(id, from)
	if err != nil {
		return err
	}
	b, err := store.ContentAt(id, to)
	if err != nil {
		return err
	}
	changes, patch := doc.Diff(a, b)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "from": from, "to": to, "changes": changes, "patch": patch})
	return nil
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocRead)
	if err != nil {
		return err
	}
	if _, err := store.GetDoc(id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.tandem.json"`, id))
	if err := store.Export(id, w); err != nil {
		s.log.Error().Err(err).Str("doc", id).Msg("export failed mid-stream")
	}
	return nil
}

func (s *Server) apiImport(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	if _, err := s.authorize(s.principalOf(r, ident), accessDocImport, ""); err != nil {
		return err
	}
	if err := requireJSON(r, "application/json"); err != nil {
		return err
	}
	info, err := store.Import(http.MaxBytesReader(w, s.progressBody(w, r), maxImportBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, doc.ErrExists) {
			return &requestError{proto.CodeConflict, err.Error()}
		}
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var ne net.Error
		if errors.As(err, &te) || errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
			return badRequest("not a readable export: " + describeJSON("the export", err))
		}
		return badRequest(err.Error())
	}
	s.systemEvent("created", info.ID)
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) apiDeleteDoc(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	if _, err := s.docStore(); err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocAdmin)
	if err != nil {
		return err
	}
	if err := s.cfg.Docs.Delete(r.Context(), id); err != nil {
		return err
	}
	s.systemEvent("deleted", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiRenameDoc(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocWrite)
	if err != nil {
		return err
	}
	var body struct {
		Title *string `json:"title"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Title == nil {
		return badRequest("title is required")
	}
	if err := store.SetTitle(r.Context(), id, *body.Title); err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]string{"id": id, "title": *body.Title})
	s.publishSystem("renamed", data)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "title": *body.Title})
	return nil
}

func (s *Server) apiCompact(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	id, err := s.docID(r, ident, accessDocAdmin)
	if err != nil {
		return err
	}
	var body struct {
		Before *int `json:"before"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Before == nil || *body.Before < 0 {
		return badRequest("before must be a version")
	}
	if err := store.Compact(r.Context(), id, *body.Before); err != nil {
		return err
	}
	s.systemEvent("compacted", id)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "before": *body.Before})
	return nil
}

// disconnectReq is the optional body of POST /api/users/{id}/disconnect.
type disconnectReq struct {
	// RevokeBefore, "now" or an RFC 3339 time not in the future, revokes
	// every token of the user issued at or before it (by `iat`).
	RevokeBefore string `json:"revoke_before"`
}

// apiDisconnect closes every connection of a user with 4001 and revokes the
// tokens they connected with (by jti) until those expire; with
// revoke_before it also revokes every token of the user issued by then.
// Revocations are persisted and hold across restarts.
func (s *Server) apiDisconnect(w http.ResponseWriter, r *http.Request, ident auth.Identity) error {
	user := r.PathValue("id")
	if user == "" || len(user) > 255 {
		return badRequest("bad user id")
	}
	if err := need(ident, auth.ActionAdmin, "user:"+user); err != nil {
		return err
	}
	var body disconnectReq
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return badRequest(`body: want {"revoke_before":"now"} or no body`)
		}
	}
	var before time.Time
	if body.RevokeBefore != "" {
		if s.cfg.Verifier == nil {
			return badRequest("this server runs in development mode and verifies no tokens: nothing to revoke")
		}
		now := s.cfg.Now()
		if body.RevokeBefore == "now" {
			before = now
		} else if before, err = time.Parse(time.RFC3339, body.RevokeBefore); err != nil || before.After(now) {
			return badRequest(`revoke_before must be "now" or an RFC 3339 time not in the future`)
		}
	}
	n, tokens, in, err := s.disconnectAndRevoke(r.Context(), user, before)
	out := map[string]any{"user": user, "disconnected": n, "revoked_tokens": tokens}
	if !in.IsZero() {
		out["revoked_before"] = in.UTC().Format(time.RFC3339)
	}
	if err != nil {
		return err // in force in memory; the write to storage failed
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// systemEvent announces a data change on system:docs, so document lists
// and dashboards update without polling.
func (s *Server) systemEvent(event, docID string) {
	data, _ := json.Marshal(map[string]string{"id": docID})
	s.publishSystem(event, data)
}

// publishSystem publishes a data-change event on system:docs.
func (s *Server) publishSystem(event string, data json.RawMessage) {
	s.cfg.Hub.Publish(session.Publication{Channel: "system:docs", Event: event, Data: data, From: proto.From{User: "system"}},
		func(_ uint64, err error) {
			if err != nil && !errors.Is(err, session.ErrClosed) {
				s.log.Error().Err(err).Msg("system event")
			}
		})
}

// disconnectAndRevoke revokes the tokens userID's connections use (by
// TokenID, until they expire) and, when before is not zero, every token of
// the user issued at or before it; then it closes those connections with
// 4001. It returns the connections closed, the tokens revoked, and the
// user's revocation time in force (zero when none was asked). In
// development mode (no verifier) it only closes. A failure to persist is
// returned after everything else was done: the revocation holds in memory.
func (s *Server) disconnectAndRevoke(ctx context.Context, userID string, before time.Time) (n, tokens int, in time.Time, err error) {
	victims := s.connsOf(userID)
	var rev *auth.Revocations
	if s.cfg.Verifier != nil {
		rev = s.cfg.Verifier.Revocations()
	}
	var errs []error
	if rev != nil {
		revoked := map[string]bool{}
		for _, c := range victims {
			id := c.identity()
			if id.TokenID == "" || revoked[id.TokenID] {
				continue
			}
			revoked[id.TokenID] = true
			errs = append(errs, rev.RevokeToken(ctx, id.TokenID, id.Expires))
		}
		tokens = len(revoked)
		if !before.IsZero() {
			var err error
			in, err = rev.RevokeUser(ctx, userID, before)
			errs = append(errs, err)
		}
	}
	// Look again: a connection that got in while the tokens were being
	// revoked goes too.
	victims = s.connsOf(userID)
	for _, c := range victims {
		c.close(closeUnauthorized, "disconnected by an administrator")
	}
	return len(victims), tokens, in, errors.Join(errs...)
}

// connsOf returns the open connections of a user.
func (s *Server) connsOf(userID string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for c := range s.conns {
		if c.userID() == userID {
			out = append(out, c)
		}
	}
	return out
}
