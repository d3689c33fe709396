package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of every route, written by hand
// and checked against the route table and the parameter parsers by tests.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /openapi.json.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}
