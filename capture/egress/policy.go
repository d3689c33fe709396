package egress

import (
	"fmt"
	"net/netip"
	"strings"
)

// Policy decides which destinations the proxy may reach.
//
// Allow and Deny hold patterns: an exact host name ("api.github.com"), a
// wildcard matching every subdomain ("*.github.com", which does not match
// "github.com" itself), "*" matching everything, an IP address
// ("169.254.169.254", "::1") or a CIDR prefix ("10.1.0.0/16"). Name patterns
// match the host the client asked for; address patterns match the addresses
// that host resolves to (every one of them), or the host itself when it is
// an IP literal. Matching ignores case and a trailing dot. Addresses are
// matched as they are dialled: an IPv4-mapped address in IPv4 form, and an
// unspecified address (0.0.0.0, ::), which the kernel connects to loopback,
// as the loopback address of its family — so "127.0.0.1" and "::1" also
// refuse 0.0.0.0 and [::].
//
// Deny wins over Allow. When Allow is not empty, only destinations it
// matches pass.
//
// Private, loopback, link-local, unspecified, multicast and otherwise
// non-public addresses (IPv4 and IPv6, IPv4-mapped and NAT64 forms included)
// are refused unless AllowPrivate is set or an explicit Allow pattern — any
// pattern but "*" — matches the destination: allowing "db.internal" or
// "10.1.0.0/16" says the operator means to reach it.
type Policy struct {
	Allow        []string
	Deny         []string
	AllowPrivate bool
}

// The rules named in metadata.http.rule when a request is refused, besides
// "deny:PATTERN" for a Deny pattern.
const (
	RuleNotAllowed        = "not-allowed"        // Allow is set and no pattern matched
	RulePrivate           = "private"            // a non-public address without AllowPrivate
	RuleUnknownCredential = "unknown-credential" // no mapped proxy credential (see Identities)
)

// pattern is one compiled Allow or Deny entry.
type pattern struct {
	text   string
	any    bool         // "*"
	name   string       // exact host name
	suffix string       // ".github.com" for "*.github.com"
	prefix netip.Prefix // an address (as a /32 or /128) or CIDR
}

// explicit reports whether p names destinations rather than allowing all.
func (p pattern) explicit() bool { return !p.any }

func compilePattern(s string) (pattern, error) {
	t := normalizeHost(s)
	p := pattern{text: s}
	switch {
	case t == "":
		return p, fmt.Errorf("pattern %q: empty", s)
	case t == "*" && strings.TrimSpace(s) != "*":
		return p, fmt.Errorf("pattern %q: empty name after the wildcard", s)
	case t == "*":
		p.any = true
	case strings.Contains(t, "/"):
		pr, err := netip.ParsePrefix(t)
		if err != nil {
			return p, fmt.Errorf("pattern %q: bad CIDR prefix: %w", s, err)
		}
		p.prefix = pr.Masked()
		if p.prefix.Addr().Is4In6() {
			return p, fmt.Errorf("pattern %q: write an IPv4 prefix in IPv4 form", s)
		}
	case strings.HasPrefix(t, "*."):
		p.suffix = t[1:]
		if err := checkName(p.suffix[1:]); err != nil {
			return p, fmt.Errorf("pattern %q: %w", s, err)
		}
	default:
		if a, err := netip.ParseAddr(strings.Trim(t, "[]")); err == nil {
			a = a.Unmap()
			p.prefix = netip.PrefixFrom(a, a.BitLen())
			break
		}
		if err := checkName(t); err != nil {
			return p, fmt.Errorf("pattern %q: %w", s, err)
		}
		p.name = t
	}
	return p, nil
}

// checkName refuses names a wildcard or typo would make match nothing or
// the wrong thing, such as "api.*.com" or "*github.com".
func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return fmt.Errorf("%q is not allowed in a host name (a wildcard must be a leading \"*.\")", c)
		}
	}
	if strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return fmt.Errorf("empty label")
	}
	return nil
}

// matchName reports whether p matches the normalized host name.
func (p pattern) matchName(host string) bool {
	switch {
	case p.any:
		return true
	case p.name != "":
		return host == p.name
	case p.suffix != "":
		return strings.HasSuffix(host, p.suffix)
	}
	return false
}

// matchAddr reports whether p is an address pattern containing a.
func (p pattern) matchAddr(a netip.Addr) bool {
	return p.prefix.IsValid() && p.prefix.Contains(a.Unmap())
}

// rules is a compiled Policy.
type rules struct {
	allow, deny  []pattern
	allowPrivate bool
}

func compilePolicy(pol Policy) (*rules, error) {
	r := &rules{allowPrivate: pol.AllowPrivate}
	for _, s := range pol.Allow {
		p, err := compilePattern(s)
		if err != nil {
			return nil, fmt.Errorf("allow %w", err)
		}
		r.allow = append(r.allow, p)
	}
	for _, s := range pol.Deny {
		p, err := compilePattern(s)
		if err != nil {
			return nil, fmt.Errorf("deny %w", err)
		}
		r.deny = append(r.deny, p)
	}
	return r, nil
}

// denyName returns the rule refusing host before it is resolved, or "".
// Name rules are applied first so a denied name is never even looked up.
func (r *rules) denyName(host string) string {
	for _, p := range r.deny {
		if !p.prefix.IsValid() && p.matchName(host) {
			return "deny:" + p.text
		}
	}
	return ""
}

// decide returns the rule refusing host resolved to addrs, or "" when the
// destination may be reached. addrs must not be empty.
func (r *rules) decide(host string, addrs []netip.Addr) string {
	if rule := r.denyName(host); rule != "" {
		return rule
	}
	for _, p := range r.deny {
		for _, a := range addrs {
			if p.matchAddr(a) {
				return "deny:" + p.text
			}
		}
	}
	allowed := len(r.allow) == 0
	explicitName := false
	for _, p := range r.allow {
		if p.matchName(host) && !p.prefix.IsValid() {
			allowed = true
			explicitName = explicitName || p.explicit()
		}
	}
	for _, a := range addrs {
		explicitAddr := false
		for _, p := range r.allow {
			if p.matchAddr(a) {
				explicitAddr = true
			}
		}
		if len(r.allow) > 0 && !allowed && !explicitAddr {
			return RuleNotAllowed
		}
		if !r.allowPrivate && !explicitName && !explicitAddr && !isPublic(a) {
			return RulePrivate
		}
	}
	return ""
}

// normalizeHost lowercases h and drops a trailing dot.
func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
