package sandbox

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// Endpoint is where a Docker Engine API is served: a unix socket or a TCP
// address. The zero value is not valid; use ParseEndpoint.
type Endpoint struct {
	Network string // "unix" or "tcp"
	Address string // a socket path, or host:port
}

// ParseEndpoint parses an endpoint in DOCKER_HOST form: unix:///path/to.sock,
// tcp://host:port (or http://host:port; the port defaults to 2375), or a
// bare absolute socket path. TLS endpoints are not supported: the proxy must
// read the API calls to record them.
func ParseEndpoint(s string) (Endpoint, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.HasPrefix(s, "/") {
			return Endpoint{Network: "unix", Address: s}, nil
		}
		return Endpoint{}, fmt.Errorf("endpoint %q: want unix:///path or tcp://host:port", s)
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: no socket path", s)
		}
		return Endpoint{Network: "unix", Address: rest}, nil
	case "tcp", "http":
		host := strings.TrimSuffix(rest, "/")
		if host == "" || strings.Contains(host, "/") {
			return Endpoint{}, fmt.Errorf("endpoint %q: want tcp://host:port", s)
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), "2375")
		}
		return Endpoint{Network: "tcp", Address: host}, nil
	case "https", "ssh", "npipe", "fd":
		return Endpoint{}, fmt.Errorf("endpoint %q: %s endpoints are not supported", s, scheme)
	}
	return Endpoint{}, fmt.Errorf("endpoint %q: unknown scheme %q", s, scheme)
}

// String returns e in DOCKER_HOST form.
func (e Endpoint) String() string {
	if e.Network == "unix" {
		return "unix://" + e.Address
	}
	return e.Network + "://" + e.Address
}

// dial connects to e.
func (e Endpoint) dial(ctx context.Context, d *net.Dialer) (net.Conn, error) {
	return d.DialContext(ctx, e.Network, e.Address)
}
