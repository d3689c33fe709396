package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// retryAfterSeconds is the Retry-After of 429 and 503 answers: short,
// because the conditions behind them (a full queue, a busy store) pass
// quickly, and clients back off on their own.
const retryAfterSeconds = 1

// writeProblem answers r with err as a problem document. Internal errors
// are logged as errors and refusals (503) as warnings, unless the request
// had ended already: a client that went away is not the server's failure.
func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := wire.ProblemOf(err)
	switch {
	case r.Context().Err() != nil:
		log.Debug("request ended before its answer", "method", r.Method, "path", r.URL.Path, "err", err)
	case p.Status >= 500 && p.Code == agenttrail.EINTERNAL:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case p.Status == http.StatusServiceUnavailable:
		log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	switch p.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="agenttrail"`) // RFC 9110 §11.6.1
	}
	sendProblem(w, log, p)
}

// sendProblem writes p with its status. Headers particular to p (Allow,
// Retry-After) are set by the caller first.
func sendProblem(w http.ResponseWriter, log *slog.Logger, p wire.Problem) {
	w.Header().Set("Content-Type", wire.ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	writeBody(w, log, p)
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, log *slog.Logger, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	writeBody(w, log, v)
}

// writeBody encodes v after the header was written; by then an error can
// only be the client going away, so it is not an error of the request.
func writeBody(w http.ResponseWriter, log *slog.Logger, v any) {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Debug("writing response", "err", err)
	}
}

// apiFunc is a handler that returns its result instead of writing it.
type apiFunc func(r *http.Request) (any, error)

// wrap turns f into an http.Handler that writes every response: the result
// as JSON, or the error as problem+json. No handler writes on its own.
func (s *Server) wrap(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			if errors.As(err, new(bodyLeft)) {
				w.Header().Set("Connection", "close")
			}
			writeProblem(w, r, s.log, err)
			return
		}
		writeJSON(w, s.log, v)
	})
}
