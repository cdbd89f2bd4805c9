package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiFail answers a failed request with the error object and status that
// describe gives, as a WebSocket request would get it in an error frame.
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	f := describe(err)
	if f.Internal {
		s.log.Error().Err(err).Str("path", r.URL.Path).Msg("api request failed")
	}
	if f.Code == proto.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	}
	writeJSON(w, f.Status, f.frame())
}

// apiHandler serves one route for an authenticated principal; an error it
// returns is answered by apiFail.
type apiHandler func(w http.ResponseWriter, r *http.Request, p principal) error

// docRoute is what every route under /api/docs/{id} starts from: the
// store, and the document id from the path, authorized for the route's
// access.
type docRoute struct {
	store DocStore
	id    string
	p     principal
}

// forDoc wraps a document route: it checks that the server serves
// documents, reads {id} and authorizes access a to it, then calls fn.
func (s *Server) forDoc(a access, fn func(w http.ResponseWriter, r *http.Request, d docRoute) error) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		store, err := s.docStore()
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		if _, err := s.authorize(p, a, id); err != nil {
			return err
		}
		if a == accessDocRead || a == accessDocWrite {
			u, isUser := principalUser(p)
			if err := s.docHooks(r.Context(), id, u, isUser, ""); err != nil {
				return err
			}
		}
		return fn(w, r, docRoute{store: store, id: id, p: p})
	}
}

// docStore returns the store, or unavailable.
func (s *Server) docStore() (DocStore, error) {
	if s.cfg.Store == nil || s.cfg.Docs == nil {
		return nil, &requestError{proto.CodeUnavailable, "this server serves no documents"}
	}
	return s.cfg.Store, nil
}

// routeAPI mounts the HTTP API. Every route authenticates first
// (api_auth.go) and then asks authorize (authz.go) for what it does.
// Channel routes are in api_channels.go, document routes in api_docs.go,
// administration in api_admin.go.
func (s *Server) routeAPI() {
	h := func(pattern string, fn apiHandler) {
		s.handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := s.authenticate(r)
			if err == nil {
				err = fn(w, r, p)
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
	h("GET /api/docs/{id}", s.forDoc(accessDocRead, s.apiGetDoc))
	h("DELETE /api/docs/{id}", s.forDoc(accessDocAdmin, s.apiDeleteDoc))
	h("PATCH /api/docs/{id}", s.forDoc(accessDocWrite, s.apiRenameDoc))
	h("PUT /api/docs/{id}/content", s.forDoc(accessDocWrite, s.apiPutContent))
	h("GET /api/docs/{id}/ops", s.forDoc(accessDocRead, s.apiOps))
	h("GET /api/docs/{id}/diff", s.forDoc(accessDocRead, s.apiDiff))
	h("GET /api/docs/{id}/export", s.forDoc(accessDocRead, s.apiExport))
	h("POST /api/docs/{id}/compact", s.forDoc(accessDocAdmin, s.apiCompact))
	h("POST /api/users/{id}/disconnect", s.apiDisconnect)
	h("GET /api/webhooks/deliveries", s.apiWebhookDeliveries)
	h("GET /api/backup", s.apiBackup)
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
