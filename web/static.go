package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// static holds the files the server ships: the JavaScript client
// (tandem.js with its TypeScript declarations) and the bundled demo. They
// are embedded, so the binary needs nothing beside it.
//
//go:embed static
var static embed.FS

// staticFS is static with the "static/" prefix stripped.
var staticFS = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: embedded static files: " + err.Error())
	}
	return sub
}()

// serveStatic serves the embedded files, with no-cache so that a browser
// picks up a new server's client at once.
func (s *Server) serveStatic() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
