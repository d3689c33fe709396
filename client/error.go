package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// StatusError is a non-2xx answer of the server. Err holds the code and
// message (and, for a 400, the offending field) the server sent as RFC 9457
// problem details; it is never nil. errors.As finds both StatusError and the
// *agenttrail.Error it wraps, so agenttrail.ErrorCode works on any error the
// Client returns.
type StatusError struct {
	StatusCode int
	// RetryAfter is the server's Retry-After header as a duration, 0 when it
	// sent none.
	RetryAfter time.Duration
	Err        *agenttrail.Error
}

// Error implements error.
func (e *StatusError) Error() string {
	return "server answered " + strconv.Itoa(e.StatusCode) + ": " + e.Err.Error()
}

// Unwrap returns the *agenttrail.Error.
func (e *StatusError) Unwrap() error { return e.Err }

// IsRetryable reports whether the request that failed with err may succeed
// when sent again later: the server could not be reached or broke the
// connection, timed out, answered 408 or 429, or answered 5xx (other than 501
// and 505, which will not change). A canceled context, a request the server
// refused (other 4xx) and a malformed answer are not retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch s := se.StatusCode; {
		case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
			return true
		case s == http.StatusNotImplemented, s == http.StatusHTTPVersionNotSupported:
			return false
		default:
			return s >= 500 && s <= 599
		}
	}
	// *url.Error is itself a net.Error; what it wraps tells a broken
	// network from a malformed request (an unsupported scheme).
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return true
		}
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	switch agenttrail.ErrorCode(err) {
	case agenttrail.ERATELIMIT, agenttrail.EUNAVAILABLE:
		return true
	}
	return false
}

// RetryAfter returns how long the server asked the caller to wait before
// retrying (its Retry-After header, sent with 429 and 503), or 0.
func RetryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// problem is an RFC 9457 problem details object. Code and Field are the
// agenttrail extension members; they are used when the server sends them.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Field  string `json:"field"`
}

// responseError turns a non-2xx answer into a *StatusError.
func responseError(resp *http.Response) error {
	se := &StatusError{
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	code := statusCode(resp.StatusCode)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var p problem
	msg := ""
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && json.Unmarshal(body, &p) == nil {
		msg = p.Detail
		if msg == "" {
			msg = p.Title
		}
	} else if s := strings.TrimSpace(string(body)); s != "" {
		// A proxy's plain or HTML page: keep its first line, briefly.
		s, _, _ = strings.Cut(s, "\n")
		if len(s) > 200 {
			s = s[:200]
		}
		msg = http.StatusText(resp.StatusCode) + ": " + s
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
		if msg == "" {
			msg = fmt.Sprintf("status %d", resp.StatusCode)
		}
	}
	if knownCode(p.Code) {
		code = p.Code
	}
	// The detail is agenttrail.ErrorMessage: "field: message" when the
	// error names a field. Without the field member, only an invalid
	// request's detail is read that way.
	field := p.Field
	if f, rest, ok := strings.Cut(msg, ": "); ok && isFieldName(f) &&
		(field == f || field == "" && code == agenttrail.EINVALID) {
		field, msg = f, rest
	}
	se.Err = &agenttrail.Error{Code: code, Field: field, Message: msg}
	return se
}

// statusCode maps an HTTP status to an agenttrail error code.
func statusCode(status int) string {
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

func knownCode(c string) bool {
	switch c {
	case agenttrail.EINVALID, agenttrail.ENOTFOUND, agenttrail.ECONFLICT, agenttrail.ETOOLARGE,
		agenttrail.EUNAUTHORIZED, agenttrail.EFORBIDDEN, agenttrail.ERATELIMIT,
		agenttrail.EUNAVAILABLE, agenttrail.EINTERNAL:
		return true
	}
	return false
}

// isFieldName reports whether s looks like a parameter or event field name
// ("limit", "metadata.llm.input_tokens"), so that a detail that merely holds
// a colon is not split.
func isFieldName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(s string, now time.Time) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 86400 {
			n = 86400
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
