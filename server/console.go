package server

import (
	"net/http"

	"github.com/agenttrail/agenttrail/web"
)

// mountConsole serves the web console (package web) at its pages and
// assets. They are not API routes: they need no token (the console signs in
// through the API), are not in the OpenAPI document, and are not audited.
func (s *Server) mountConsole() {
	h := web.Handler()
	for _, p := range append(web.Pages, web.Assets) {
		rt := route{method: http.MethodGet, path: p, handler: h}
		s.mux.Handle("GET "+p, s.instrument(rt, h))
	}
}
