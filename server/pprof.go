package server

import (
	"net/http"
	"net/http/pprof"
)

// serveProfile is GET /debug/pprof/{profile}: the Go runtime's profiles of
// the running server, for finding where its time and memory go under real
// load (go tool pprof -http=: 'http://HOST/debug/pprof/profile?seconds=10'
// with an admin token of every org in the Authorization header).
// pprof.Index serves the named profiles (heap, allocs, goroutine, block,
// mutex, threadcreate) and, for a name it does not know, a 404.
func serveProfile(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("profile") {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		http.Error(w, "not served: the command line may hold secrets", http.StatusNotFound)
	default:
		pprof.Index(w, r)
	}
}
