package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/agenttrail/agenttrail"
)

// statusOfCode maps every agenttrail error code to its HTTP status: the one
// table of the HTTP layer. Unknown codes are internal errors.
func statusOfCode(code string) int {
	switch code {
	case agenttrail.EINVALID:
		return http.StatusBadRequest
	case agenttrail.ENOTFOUND:
		return http.StatusNotFound
	case agenttrail.ECONFLICT:
		return http.StatusConflict
	case agenttrail.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case agenttrail.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case agenttrail.EFORBIDDEN:
		return http.StatusForbidden
	case agenttrail.ERATELIMIT:
		return http.StatusTooManyRequests
	case agenttrail.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// retryAfterSeconds is the Retry-After of 429 and 503 answers: short,
// because the conditions behind them (a full queue, a busy store) pass
// quickly, and clients back off on their own.
const retryAfterSeconds = 1

// problemTypePrefix makes each error code a problem type URI (RFC 9457
// §3.1.1). It is a URN on purpose: it identifies, it does not dereference.
const problemTypePrefix = "urn:agenttrail:problem:"

// Problem is the RFC 9457 problem details body of every error answer. Code
// and Field are extension members: the agenttrail error code and, when there
// is one, the parameter or event field at fault (also named in Detail).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

// problemOf builds the problem for err. Internal errors show a generic
// detail; their text is logged by the caller, not shown.
func problemOf(err error) Problem {
	code := agenttrail.ErrorCode(err)
	status := statusOfCode(code)
	if status == http.StatusInternalServerError {
		code = agenttrail.EINTERNAL
	}
	p := Problem{
		Type:   problemTypePrefix + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: agenttrail.ErrorMessage(err),
		Code:   code,
	}
	if code != agenttrail.EINTERNAL {
		p.Field = agenttrail.ErrorField(err)
	} else {
		p.Detail = "internal error"
	}
	return p
}

// writeProblem answers r with err as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := problemOf(err)
	switch {
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
	w.Header().Set("Content-Type", "application/problem+json")
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
			writeProblem(w, r, s.log, err)
			return
		}
		writeJSON(w, s.log, v)
	})
}
