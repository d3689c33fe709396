package wire

import (
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// StatusOf maps an agenttrail error code to its HTTP status: the one table
// of the HTTP layer. Unknown codes are internal errors.
func StatusOf(code string) int {
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

// CodeOf maps an HTTP status back to an error code, for answers that carry
// no problem document (a proxy's error page, an older server): the inverse
// of StatusOf where it has one, EUNAVAILABLE for other 5xx statuses and
// EINVALID for other 4xx ones.
func CodeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return agenttrail.EINVALID
	case http.StatusUnauthorized:
		return agenttrail.EUNAUTHORIZED
	case http.StatusForbidden:
		return agenttrail.EFORBIDDEN
	case http.StatusNotFound:
		return agenttrail.ENOTFOUND
	case http.StatusConflict:
		return agenttrail.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return agenttrail.ETOOLARGE
	case http.StatusTooManyRequests:
		return agenttrail.ERATELIMIT
	case http.StatusInternalServerError:
		return agenttrail.EINTERNAL
	}
	if status >= 500 {
		return agenttrail.EUNAVAILABLE
	}
	return agenttrail.EINVALID
}

// ProblemTypePrefix makes each error code a problem type URI (RFC 9457
// §3.1.1). It is a URN on purpose: it identifies, it does not dereference.
const ProblemTypePrefix = "urn:agenttrail:problem:"

// ProblemContentType is the media type of a Problem.
const ProblemContentType = "application/problem+json"

// Problem is the RFC 9457 problem details body of every error answer. Code
// and Field are extension members: the agenttrail error code and, when
// there is one, the parameter or event field at fault. Detail reads
// "field: message" when Field is set, as agenttrail.Error does.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

// ProblemOf builds the problem for err. Internal errors get a generic
// detail: their text is for the server's log, never for callers.
func ProblemOf(err error) Problem {
	code := agenttrail.ErrorCode(err)
	status := StatusOf(code)
	if status == http.StatusInternalServerError {
		code = agenttrail.EINTERNAL
	}
	p := Problem{
		Type:   ProblemTypePrefix + code,
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

// Err returns the *agenttrail.Error p describes: its code (or, when p has
// none this client knows, the code of status), its field, and its detail
// as the message, without the "field: " the detail starts with.
func (p Problem) Err(status int) *agenttrail.Error {
	code := p.Code
	if !knownCode(code) {
		code = CodeOf(status)
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if p.Field != "" {
		msg = strings.TrimPrefix(msg, p.Field+": ")
	}
	return &agenttrail.Error{Code: code, Field: p.Field, Message: msg}
}

func knownCode(c string) bool {
	switch c {
	case agenttrail.EINVALID, agenttrail.ENOTFOUND, agenttrail.ECONFLICT, agenttrail.ETOOLARGE,
		agenttrail.EUNAUTHORIZED, agenttrail.EFORBIDDEN, agenttrail.ERATELIMIT,
		agenttrail.EUNAVAILABLE, agenttrail.EINTERNAL:
		return true
	}
	return false
}
