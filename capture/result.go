package capture

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
)

// ResultOf maps the HTTP status a target answered to a Result: 401 and 403
// are denied (an authorization check refused the action), other 4xx and
// 5xx statuses failure, anything else success. A surface that broke itself
// (the target unreachable) records ResultError on its own.
func ResultOf(status int) agenttrail.Result {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return agenttrail.ResultDenied
	case status >= 400:
		return agenttrail.ResultFailure
	}
	return agenttrail.ResultSuccess
}

// ProxiedResult is the Result of a call a proxy forwarded: error when the
// proxy broke (the target unreachable, the client gone), denied when the
// proxy's own policy refused it, failure when no status came back, and
// otherwise what ResultOf makes of status.
func ProxiedResult(broken, refused bool, status int) agenttrail.Result {
	switch {
	case broken:
		return agenttrail.ResultError
	case refused:
		return agenttrail.ResultDenied
	case status == 0:
		return agenttrail.ResultFailure
	}
	return ResultOf(status)
}

// Bytes formats n as a short human size: 512 B, 4.2 KB, 1.3 MB (decimal
// units, as people read transfer sizes).
func Bytes(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f KB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}

// Took formats how long an action took for a description: 85 ms, 1.2 s,
// 3m20s.
func Took(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// PeekBody returns up to n bytes from the start of resp's body and puts
// them back, so the client still receives the whole body. Surfaces use it
// to read the reason a target gave for a refusal.
func PeekBody(resp *http.Response, n int64) ([]byte, error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil, nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, n))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	return head, err
}

// Shorten returns s cut to at most n bytes on a rune boundary, with "…"
// in place of what was cut, for descriptions that quote long values.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}
