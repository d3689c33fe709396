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
	"github.com/agenttrail/agenttrail/wire"
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

// responseError turns a non-2xx answer into a *StatusError: from its
// problem document when it has one (code, field and message as the server
// sent them), from its status and the first line of its body when it has
// not (a proxy's error page).
func responseError(resp *http.Response) error {
	se := &StatusError{
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var p wire.Problem
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") || json.Unmarshal(body, &p) != nil {
		p = wire.Problem{}
		if s := strings.TrimSpace(string(body)); s != "" {
			// A proxy's plain or HTML page: keep its first line, briefly.
			s, _, _ = strings.Cut(s, "\n")
			if len(s) > 200 {
				s = s[:200]
			}
			p.Detail = http.StatusText(resp.StatusCode) + ": " + s
		}
	}
	if p.Detail == "" && p.Title == "" {
		p.Detail = http.StatusText(resp.StatusCode)
		if p.Detail == "" {
			p.Detail = fmt.Sprintf("status %d", resp.StatusCode)
		}
	}
	se.Err = p.Err(resp.StatusCode)
	return se
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
