package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// destKey is the context key under which a forwarded request carries its
// checked destination to the transport's dialer.
type destKey struct{}

// newTransport returns the transport for plain-HTTP requests. It dials only
// the destination a request carries in its context, the one the policy
// checked; a connection it keeps idle is reused only for the same host and
// port, which were checked when it was dialled.
func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil, // never chain to the proxy of this process's environment
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d, ok := ctx.Value(destKey{}).(*destination)
			if !ok {
				return nil, errors.New("egress proxy: dial without a checked destination")
			}
			return p.dial(ctx, d)
		},
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client asked for its own encodings; the proxy must not add or
		// undo any.
		DisableCompression: true,
	}
}

// serveForward forwards a plain-HTTP request in absolute form.
func (p *Proxy) serveForward(w http.ResponseWriter, r *http.Request, x *exchange) {
	if r.URL.Scheme != "http" {
		http.Error(w, "agenttrail egress proxy: only http:// URLs are forwarded; use CONNECT for https", http.StatusBadRequest)
		return
	}
	host, port, err := splitHostPort(r.URL.Host, 80)
	if err != nil {
		http.Error(w, "agenttrail egress proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	x.host, x.port = host, port
	x.path = r.URL.RequestURI()
	x.target = "http://" + r.URL.Host + x.path
	defer func() { p.recordAfter(context.WithoutCancel(r.Context()), x) }()

	d, ok := p.destination(w, r, x)
	if !ok {
		return
	}
	body := &countingReader{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	cw := &countingWriter{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), destKey{}, d)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { x.addr = info.Conn.RemoteAddr().String() },
	})
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.User = nil
			pr.Out.Header.Del(capture.HeaderActorID)
			x.span.Forward(pr.Out.Header)
		},
		Transport:     p.forward,
		FlushInterval: -1, // relay as it arrives: long polls and streams must not stall
		ModifyResponse: func(resp *http.Response) error {
			x.status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				x.broken, x.errMsg = true, "the client went away before the destination answered"
				return
			}
			p.unreachable(w, x, err)
		},
		ErrorLog: p.errorLog,
	}
	// The copy of the response body may end the handler with a panic
	// (http.ErrAbortHandler); the deferred record still runs.
	defer func() {
		x.bytesOut, x.bytesIn = body.n.Load(), cw.n
	}()
	rp.ServeHTTP(cw, r.WithContext(ctx))
}

// countingReader counts the bytes read through it.
// The transport may still be sending the body when the response has been
// relayed, so the count is atomic.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// countingWriter counts the body bytes written to the client. Unwrap lets
// http.ResponseController reach the server's Flush.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
