package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// isUpgrade reports whether a request asks to take over its connection, as
// the docker CLI's attach and exec start do (Connection: Upgrade,
// Upgrade: tcp).
func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// isRawStream reports whether a response hands the connection over to a
// raw stream: 101 Switching Protocols, or the 200 with a raw-stream content
// type that the Engine answers clients that did not ask to upgrade.
func isRawStream(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	return resp.StatusCode == http.StatusOK &&
		(ct == "application/vnd.docker.raw-stream" || ct == "application/vnd.docker.multiplexed-stream")
}

// lingerTimeout bounds how long a finished stream waits for the client to
// close its side, so the client reads all output before the connection
// closes under it.
const lingerTimeout = 5 * time.Second

// relayUpgrade forwards a request that takes over its connection over a
// connection of its own, and when the Engine hands the connection over,
// splices the client's and the Engine's connections until the Engine ends
// the stream. c, when not nil, is recorded as soon as the Engine answers:
// a stream may last for hours.
func (p *DockerProxy) relayUpgrade(w http.ResponseWriter, r *http.Request, c *call) {
	ctx := r.Context()
	up, err := p.upstream.dial(ctx, p.dialer)
	if err != nil {
		p.upgradeFailed(ctx, w, c, err)
		return
	}
	out := &http.Request{
		Method: r.Method, URL: r.URL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header, Body: r.Body, ContentLength: r.ContentLength,
		TransferEncoding: r.TransferEncoding, Host: r.Host,
	}
	if out.Host == "" {
		out.Host = p.upstreamHost()
	}
	stop := context.AfterFunc(ctx, func() { up.Close() })
	br := bufio.NewReader(up)
	resp, err := func() (*http.Response, error) {
		if err := out.Write(up); err != nil {
			return nil, err
		}
		return http.ReadResponse(br, out)
	}()
	if !stop() || err != nil {
		up.Close()
		if err == nil {
			err = ctx.Err()
		}
		p.upgradeFailed(ctx, w, c, err)
		return
	}
	if c != nil {
		c.status = resp.StatusCode
		if !isRawStream(resp) {
			c.readResponse(resp)
		}
		p.finish(ctx, c)
	}
	if !isRawStream(resp) {
		defer up.Close()
		defer resp.Body.Close()
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return
	}
	client, cbuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		p.log.Error("docker proxy: take over the client connection", "err", err)
		return
	}
	s := &session{capture.Relay{Client: client, Upstream: up}}
	if !p.sessions.Track(s) {
		s.Abort()
		return
	}
	defer p.sessions.Untrack(s)
	fmt.Fprintf(cbuf, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Write(cbuf)
	cbuf.WriteString("\r\n")
	if err := cbuf.Flush(); err != nil {
		s.Abort()
		return
	}
	s.splice(cbuf.Reader, br)
}

// upgradeFailed answers and records a takeover request the Engine did not
// answer.
func (p *DockerProxy) upgradeFailed(ctx context.Context, w http.ResponseWriter, c *call, err error) {
	if c != nil {
		c.fail(ctx, err)
		p.finish(ctx, c)
	}
	if ctx.Err() != nil {
		return
	}
	p.log.Warn("docker proxy: engine unreachable", "upstream", p.upstream.String(), "err", err)
	engineError(w, http.StatusBadGateway, "agenttrail docker proxy: engine unreachable: "+err.Error())
}

// copyHeader copies the end-to-end headers of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
			continue
		}
		dst[k] = append(dst[k], vv...)
	}
}

// session is a hijacked stream between a client and the Engine.
type session struct{ capture.Relay }

// splice copies both ways until the Engine ends the stream. The client's
// end of input (docker exec -i with stdin closed) is passed on as a
// half-close, so the command in the container sees EOF while its output
// still flows back.
func (s *session) splice(fromClient, fromEngine io.Reader) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(s.Upstream, fromClient)
		closeWrite(s.Upstream)
	}()
	io.Copy(s.Client, fromEngine)
	// The Engine is done: let the client read the rest and close its side.
	closeWrite(s.Client)
	s.Client.SetReadDeadline(time.Now().Add(lingerTimeout))
	<-done
	s.Abort()
}

// closeWrite half-closes c where it can (TCP, unix sockets, TLS).
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
