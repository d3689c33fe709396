package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// httpTimeout bounds one request to a receiver: a stuck receiver costs its
// sink a retry, never a goroutine forever.
const httpTimeout = 30 * time.Second

// tlsConfig returns the client TLS settings of c: the system's roots, or
// those of ca_file.
func tlsConfig(c Config) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile)
		}
	}
	return t, nil
}

// httpClient returns the client a sink's HTTP receiver is reached with.
func httpClient(c Config) (*http.Client, error) {
	t, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = t
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: httpTimeout}, nil
}

// post sends body and returns the answer's status, header and (bounded)
// body, or an *Unavailable error when no answer came.
func post(ctx context.Context, hc *http.Client, url string, body []byte, header http.Header) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, &Halted{Err: err}
	}
	req.Header = header
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, &Unavailable{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, nil, &Unavailable{Err: fmt.Errorf("read answer: %w", err)}
	}
	return resp.StatusCode, resp.Header, b, nil
}

// statusError maps an HTTP status that is not a success to the Runner's
// kinds of failure: 408, 425, 429 and 5xx are tried again (after
// Retry-After); 401, 403, 404, 405 and 410 halt (a token or URL to fix);
// every other 4xx refuses the batch (the Runner halves it down to the
// event at fault).
func statusError(status int, h http.Header, body []byte) error {
	err := fmt.Errorf("receiver answered %d: %s", status, snippet(body))
	switch {
	case status == 408 || status == 425 || status == 429 || status >= 500:
		return &Unavailable{Err: err, After: retryAfter(h)}
	case status == 401 || status == 403 || status == 404 || status == 405 || status == 410:
		return &Halted{Err: err}
	}
	return &Refused{Reason: err.Error()}
}

// retryAfter reads Retry-After in seconds or as an HTTP date; 0 when
// absent or unreadable.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

var errClosed = errors.New("sink closed")
