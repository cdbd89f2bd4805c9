package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// The document routes of the HTTP API. Live edits (create, replace the
// content, delete) go through the document's session, so that editors see
// them as ordinary ops; reads, history, exports, imports, renames and
// compactions go to the store. The routes under /api/docs/{id} are wrapped
// by forDoc (api.go), which authorizes them.

func (s *Server) apiListDocs(w http.ResponseWriter, r *http.Request, p principal) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	infos, err := store.ListDocs()
	if err != nil {
		return err
	}
	out := make([]doc.Info, 0, len(infos))
	for _, info := range infos {
		if _, err := s.authorize(p, accessDocRead, info.ID); err == nil {
			out = append(out, info)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"docs": out})
	return nil
}

func (s *Server) apiCreateDoc(w http.ResponseWriter, r *http.Request, p principal) error {
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
	if _, err := s.authorize(p, accessDocWrite, body.ID); err != nil {
		return err
	}
	res := s.cfg.Docs.Create(r.Context(), body.ID, body.Content, "", p.UserID)
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

func (s *Server) apiGetDoc(w http.ResponseWriter, r *http.Request, d docRoute) error {
	info, err := d.store.GetDoc(d.id)
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
	content, err := d.store.ContentAt(d.id, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": d.id, "version": v, "head": info.Version, "content": content, "created": info.Created, "epoch": info.Epoch})
	return nil
}

func (s *Server) apiPutContent(w http.ResponseWriter, r *http.Request, d docRoute) error {
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
	res := s.cfg.Docs.Replace(r.Context(), d.id, body.Version, *body.Content, "", d.p.UserID, true) // write, authorized: may create
	if res.Err != nil {
		return res.Err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": d.id, "version": versionAfter(res), "op": res.Op})
	return nil
}

// versionRange reads what /ops and /diff share: the document's info, and
// the from and to query parameters, to defaulting to the head.
func versionRange(r *http.Request, d docRoute) (info doc.Info, from, to int, err error) {
	if info, err = d.store.GetDoc(d.id); err != nil {
		return
	}
	if from, err = queryInt(r, "from", 0); err != nil {
		return
	}
	to, err = queryInt(r, "to", info.Version)
	return
}

func (s *Server) apiOps(w http.ResponseWriter, r *http.Request, d docRoute) error {
	info, from, to, err := versionRange(r, d)
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
	recs, err := d.store.Ops(d.id, from, to)
	if err != nil {
		return err
	}
	ops := make([]proto.DocOp, len(recs))
	for i, rec := range recs {
		ops[i] = session.DocOpOf("", rec) // no doc: the page names it
	}
	resp := map[string]any{"id": d.id, "head": info.Version, "ops": ops}
	if next != nil {
		resp["next"] = *next
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request, d docRoute) error {
	info, from, to, err := versionRange(r, d)
	if err != nil {
		return err
	}
	if from > info.Version || to > info.Version {
		return badRequest(fmt.Sprintf("versions must be at most the head %d", info.Version))
	}
	a, err := d.store.ContentAt(d.id, from)
	if err != nil {
		return err
	}
	b, err := d.store.ContentAt(d.id, to)
	if err != nil {
		return err
	}
	changes, patch := doc.Diff(a, b)
	writeJSON(w, http.StatusOK, map[string]any{"id": d.id, "from": from, "to": to, "changes": changes, "patch": patch})
	return nil
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, d docRoute) error {
	if _, err := d.store.GetDoc(d.id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.tandem.json"`, d.id))
	if err := d.store.Export(d.id, w); err != nil {
		s.log.Error().Err(err).Str("doc", d.id).Msg("export failed mid-stream")
	}
	return nil
}

func (s *Server) apiImport(w http.ResponseWriter, r *http.Request, p principal) error {
	store, err := s.docStore()
	if err != nil {
		return err
	}
	if _, err := s.authorize(p, accessDocImport, ""); err != nil {
		return err
	}
	if err := requireJSON(r, "application/json"); err != nil {
		return err
	}
	info, err := store.Import(http.MaxBytesReader(w, s.progressBody(w, r), maxImportBody))
	if err != nil {
		// What the reader or the decoder met is the client's body: say where
		// it breaks. The rest (a bad export, a taken id, a storage fault) is
		// describe's to map.
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var ne net.Error
		if errors.As(err, &te) || errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
			return badRequest("not a readable export: " + describeJSON("the export", err))
		}
		return err
	}
	s.cfg.Docs.Announce("created", info.ID, nil)
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) apiDeleteDoc(w http.ResponseWriter, r *http.Request, d docRoute) error {
	if err := s.cfg.Docs.Delete(r.Context(), d.id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiRenameDoc(w http.ResponseWriter, r *http.Request, d docRoute) error {
	var body struct {
		Title *string `json:"title"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Title == nil {
		return badRequest("title is required")
	}
	if err := d.store.SetTitle(r.Context(), d.id, *body.Title); err != nil {
		return err
	}
	s.cfg.Docs.Announce("renamed", d.id, map[string]string{"title": *body.Title})
	writeJSON(w, http.StatusOK, map[string]any{"id": d.id, "title": *body.Title})
	return nil
}

func (s *Server) apiCompact(w http.ResponseWriter, r *http.Request, d docRoute) error {
	var body struct {
		Before *int `json:"before"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Before == nil || *body.Before < 0 {
		return badRequest("before must be a version")
	}
	if err := d.store.Compact(r.Context(), d.id, *body.Before); err != nil {
		return err
	}
	s.cfg.Docs.Announce("compacted", d.id, nil)
	writeJSON(w, http.StatusOK, map[string]any{"id": d.id, "before": *body.Before})
	return nil
}
