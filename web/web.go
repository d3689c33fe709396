// Package web is the console: the HTML, CSS and ES modules of the web UI
// that `agenttrail serve` serves at /, embedded in the binary. It has no
// build step and no third-party code. The console is a pure client of the
// public JSON API under /v1; this package only serves its files, with the
// headers that keep event data, which is attacker-controlled, inert.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var files embed.FS

// Pages are the paths of the console's pages. Each serves the same
// index.html; the page's module reads the path and the query string, which
// hold all of a page's state.
var Pages = []string{"/{$}", "/events", "/overview", "/cost", "/gaps", "/tokens"}

// Assets is the path prefix of the console's static files.
const Assets = "/ui/"

// ContentSecurityPolicy allows only the console's own files: no inline
// script or style, no other origin, no framing. Charts are SVG built with
// DOM calls, so they need no inline style either.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the console: index.html at every path of Pages and the
// files under Assets, all with the security headers.
func Handler() http.Handler {
	ui, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(ui, "index.html")
	if err != nil {
		panic(err)
	}
	static := http.StripPrefix(Assets, http.FileServerFS(ui))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		// Files change with the binary; revalidating is cheap on loopback
		// and means an upgraded server never runs an old module.
		h.Set("Cache-Control", "no-cache")
		if len(r.URL.Path) >= len(Assets) && r.URL.Path[:len(Assets)] == Assets {
			if r.URL.Path == Assets {
				http.NotFound(w, r)
				return
			}
			static.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})
}
