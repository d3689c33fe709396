package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// destination is where a request goes, once the policy has let it: the
// host as asked for and the addresses it resolved to, which are the only
// ones dialled.
type destination struct {
	host  string // normalized, without brackets
	port  int
	addrs []netip.Addr
}

// errRefused reports a destination the policy refused; rule names why.
type errRefused struct{ rule string }

func (e *errRefused) Error() string { return "refused by egress policy (" + e.rule + ")" }

// splitHostPort splits a CONNECT authority or URL host, defaulting the port.
func splitHostPort(hostport string, defPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) || ae.Err != "missing port in address" {
			return "", 0, fmt.Errorf("bad destination %q: %w", hostport, err)
		}
		host, portStr = hostport, strconv.Itoa(defPort)
	}
	host = normalizeHost(host)
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad destination %q: bad port", hostport)
	}
	if host == "" {
		return "", 0, fmt.Errorf("bad destination %q: no host", hostport)
	}
	return host, port, nil
}

// resolve looks host up once and applies the policy. It returns an
// *errRefused when the policy refuses the destination, and another error
// when the name does not resolve.
func (p *Proxy) resolve(ctx context.Context, host string, port int) (*destination, error) {
	if rule := p.rules.denyName(host); rule != "" {
		return nil, &errRefused{rule}
	}
	d := &destination{host: host, port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		d.addrs = []netip.Addr{dialled(a)}
	} else {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		seen := map[netip.Addr]bool{}
		for _, a := range addrs {
			a = dialled(a)
			if a.IsValid() && !seen[a] {
				seen[a] = true
				d.addrs = append(d.addrs, a)
			}
		}
		if len(d.addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	if rule := p.rules.decide(host, d.addrs); rule != "" {
		return nil, &errRefused{rule}
	}
	return d, nil
}

// dialled is the address the proxy dials for a: IPv4-mapped addresses in
// IPv4 form, and an unspecified address (0.0.0.0, ::, ::ffff:0.0.0.0) as the
// loopback address of its family, which is what the kernel connects to.
// The policy is decided on this address and this address is dialled, so a
// deny rule naming 127.0.0.1 or ::1 cannot be passed by asking for 0.0.0.0
// or [::], nor by a name that resolves to them.
func dialled(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.IsUnspecified() {
		if a.Is4() {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return netip.IPv6Loopback()
	}
	return a
}

// dial connects to the first of d's addresses that answers. It dials the
// addresses themselves, never the name, so nothing is resolved again.
func (p *Proxy) dial(ctx context.Context, d *destination) (net.Conn, error) {
	var errs []error
	for _, a := range d.addrs {
		// A zone is kept: a link-local destination allowed by policy needs it.
		c, err := p.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(d.port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connect %s: %w", net.JoinHostPort(d.host, strconv.Itoa(d.port)), errors.Join(errs...))
}
