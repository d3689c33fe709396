package egress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// halfCloseGrace is how long a tunnel waits for one side to finish once the
// other has closed its half: long enough for a response to a request the
// client sent before closing, short enough that a peer that never closes
// does not hold the tunnel forever.
const halfCloseGrace = 30 * time.Second

// established is the answer to a CONNECT the proxy has connected.
const established = "HTTP/1.1 200 Connection established\r\n\r\n"

// connect serves a CONNECT request: it resolves and checks the destination,
// dials it, takes over the client connection and splices the two until
// both sides are done. The event is recorded when the tunnel closes.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request, x *exchange) {
	host, port, err := splitHostPort(r.Host, 443)
	if err != nil {
		http.Error(w, "agenttrail egress proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	x.host, x.port = host, port
	var t *tunnel
	defer func() {
		p.record(context.WithoutCancel(r.Context()), x)
		if t != nil {
			p.tunnels.Untrack(t)
		}
	}()

	d, ok := p.destination(w, r, x)
	if !ok {
		return
	}
	up, err := p.dial(r.Context(), d)
	if err != nil {
		p.unreachable(w, x, err)
		return
	}
	x.addr = up.RemoteAddr().String()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		x.status, x.broken, x.errMsg = http.StatusInternalServerError, true, "cannot take over the client connection: "+err.Error()
		http.Error(w, "agenttrail egress proxy: CONNECT needs HTTP/1.1", http.StatusInternalServerError)
		return
	}
	t = &tunnel{capture.Relay{Client: client, Upstream: up}}
	if !p.tunnels.Track(t) {
		t = nil
		x.status, x.broken, x.errMsg = http.StatusServiceUnavailable, true, "the proxy is shutting down"
		_, _ = io.WriteString(client, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		client.Close()
		up.Close()
		return
	}
	// Bytes the client sent after the CONNECT without waiting for the answer
	// (a TLS ClientHello, say) sit in the server's read buffer.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
		early = bytes.Clone(early)
	}
	if _, err := io.WriteString(client, established); err != nil {
		x.status, x.broken, x.errMsg = http.StatusOK, true, "the client went away: "+err.Error()
		t.Abort()
		return
	}
	x.status, x.tunnel = http.StatusOK, true
	x.bytesOut, x.bytesIn, x.tls = t.splice(early)
}

// destination resolves and checks the destination of x, answering the
// client itself when it is refused or does not resolve.
func (p *Proxy) destination(w http.ResponseWriter, r *http.Request, x *exchange) (*destination, bool) {
	d, err := p.resolve(r.Context(), x.host, x.port)
	var refused *errRefused
	switch {
	case errors.As(err, &refused):
		x.status, x.rule = http.StatusForbidden, refused.rule
		p.log.Info("egress proxy: refused", "actor", x.actor.ID, "action", x.action(), "rule", refused.rule)
		http.Error(w, "agenttrail egress proxy: destination refused by policy ("+refused.rule+")", http.StatusForbidden)
		return nil, false
	case err != nil:
		p.unreachable(w, x, err)
		return nil, false
	}
	return d, true
}

// unreachable answers 502 for a destination that cannot be reached.
func (p *Proxy) unreachable(w http.ResponseWriter, x *exchange, err error) {
	x.status, x.broken, x.errMsg = http.StatusBadGateway, true, "destination unreachable: "+err.Error()
	p.log.Warn("egress proxy: unreachable", "actor", x.actor.ID, "host", x.host, "err", err)
	http.Error(w, "agenttrail egress proxy: destination unreachable", http.StatusBadGateway)
}

// tunnel is an open CONNECT tunnel; Abort ends its splice.
type tunnel struct{ capture.Relay }

// splice copies both ways until both sides are done, and returns the bytes
// sent upstream (early included), the bytes sent back, and whether the
// client's first bytes were a TLS ClientHello. Past those first bytes,
// io.Copy between the two TCP connections lets the kernel splice without
// copying to user space.
func (t *tunnel) splice(early []byte) (out, in int64, hello bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		hello, out, err = sniffHello(t.Upstream, t.Client, early)
		switch err {
		case nil:
			var n int64
			n, err = io.Copy(t.Upstream, t.Client)
			out += n
		case io.EOF: // the client closed its side before saying enough
			err = nil
		}
		t.finish(t.Upstream, err)
	}()
	var err error
	in, err = io.Copy(t.Client, t.Upstream)
	t.finish(t.Client, err)
	wg.Wait()
	t.Abort()
	return out, in, hello
}

// helloPrefix is how many bytes tell a TLS ClientHello: a handshake record
// header (type 22, version 3.x, length) and the handshake type 1.
const helloPrefix = 6

// sniffHello copies the client's first bytes to dst — early, then one read
// at a time, each passed on at once so a client waiting for an answer is
// never held — until it has seen enough to tell whether they begin a TLS
// ClientHello. It returns what it found, the bytes it copied, and a read or
// write error, or io.EOF when the client closed its side first.
func sniffHello(dst io.Writer, src io.Reader, early []byte) (hello bool, n int64, err error) {
	var head [helloPrefix]byte
	seen := 0
	buf := early
	var rbuf []byte
	for {
		if len(buf) > 0 {
			seen += copy(head[seen:], buf)
			w, werr := dst.Write(buf)
			n += int64(w)
			if werr != nil {
				return false, n, werr
			}
		}
		if seen >= helloPrefix || (seen > 0 && head[0] != 22) {
			return isClientHello(head[:seen]), n, nil
		}
		if rbuf == nil {
			rbuf = make([]byte, 4096)
		}
		r, rerr := src.Read(rbuf)
		buf = rbuf[:r]
		if rerr != nil {
			if r > 0 {
				seen += copy(head[seen:], buf)
				w, werr := dst.Write(buf)
				n += int64(w)
				if werr != nil {
					return false, n, werr
				}
			}
			return isClientHello(head[:seen]), n, rerr
		}
	}
}

// isClientHello reports whether b begins a TLS handshake record (SSL 3.0
// to TLS 1.3 all write record version 3.x) holding a ClientHello.
func isClientHello(b []byte) bool {
	return len(b) >= helloPrefix && b[0] == 22 && b[1] == 3 && b[5] == 1
}

// finish ends the direction writing to dst. After a clean end of input it
// passes the close on (a TCP half-close) and leaves the other direction
// halfCloseGrace to finish; after an error it closes the whole tunnel.
func (t *tunnel) finish(dst net.Conn, err error) {
	cw, ok := dst.(interface{ CloseWrite() error })
	if err != nil || !ok || cw.CloseWrite() != nil {
		t.Abort()
		return
	}
	_ = dst.SetReadDeadline(time.Now().Add(halfCloseGrace))
}
