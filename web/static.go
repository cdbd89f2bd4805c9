package web

import (
	"embed"
	"io/fs"
	"net/http"
	"unicode/utf8"
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

// pages maps the app's page routes to the embedded file each serves:
// /dashboard is the live dashboard (dashboard.html).
var pages = map[string]string{
	"/dashboard":  "dashboard.html",
	"/dashboard/": "dashboard.html",
}

// serveStatic serves the embedded files, with no-cache so that a browser
// picks up a new server's client at once, and the app's pages by route.
func (s *Server) serveStatic() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !utf8.ValidString(r.URL.Path) {
			// A valid escape of bytes that are not UTF-8 (/%ff) names no
			// file: a client error, where the file server would answer 500.
			http.Error(w, "bad request: the path is not valid UTF-8", http.StatusBadRequest)
			return
		}
		if name, ok := pages[r.URL.Path]; ok {
			http.ServeFileFS(w, r, staticFS, name)
			return
		}
		files.ServeHTTP(w, r)
	})
}
