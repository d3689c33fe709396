package egress

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/capture"
)

func TestIsPublic(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700::1111", true},
		{"64:ff9b::808:808", true},    // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},     // 6to4 of 8.8.8.8
		{"::ffff:8.8.8.8", true},      // IPv4-mapped public
		{"127.0.0.1", false},          // loopback
		{"127.255.255.254", false},    // loopback
		{"10.1.2.3", false},           // private
		{"172.16.0.1", false},         // private
		{"172.31.255.255", false},     // private
		{"192.168.1.1", false},        // private
		{"169.254.169.254", false},    // link-local: cloud metadata
		{"100.64.0.1", false},         // carrier-grade NAT
		{"0.0.0.0", false},            // unspecified
		{"0.1.2.3", false},            // this network
		{"224.0.0.1", false},          // multicast
		{"239.255.255.250", false},    // multicast
		{"255.255.255.255", false},    // broadcast
		{"240.0.0.1", false},          // reserved
		{"198.18.0.1", false},         // benchmarking
		{"192.0.2.1", false},          // documentation
		{"::1", false},                // loopback
		{"::", false},                 // unspecified
		{"fe80::1", false},            // link-local
		{"fe80::1%eth0", false},       // link-local with zone
		{"fc00::1", false},            // unique local
		{"fd12:3456::1", false},       // unique local
		{"fec0::1", false},            // site-local
		{"ff02::1", false},            // multicast
		{"ff05::2", false},            // multicast
		{"::ffff:127.0.0.1", false},   // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},    // IPv4-mapped private
		{"::ffff:169.254.1.1", false}, // IPv4-mapped link-local
		{"::127.0.0.1", false},        // IPv4-compatible loopback
		{"64:ff9b::a00:1", false},     // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b:1::1", false},       // local-use NAT64
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", false},   // 6to4 of 192.168.1.1
		{"2001:db8::1", false},        // documentation
	}
	for _, tt := range tests {
		if got := isPublic(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("isPublic(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	pub := []string{"8.8.8.8"}
	loop := []string{"127.0.0.1"}
	tests := []struct {
		name   string
		policy Policy
		host   string
		addrs  []string
		want   string
	}{
		{"open policy, public", Policy{}, "api.github.com", pub, ""},
		{"open policy, loopback", Policy{}, "localhost", loop, RulePrivate},
		{"open policy, mapped loopback literal", Policy{}, "::ffff:127.0.0.1", []string{"::ffff:127.0.0.1"}, RulePrivate},
		{"one private address among public ones", Policy{}, "mixed.test", []string{"8.8.8.8", "10.0.0.1"}, RulePrivate},
		{"allow private", Policy{AllowPrivate: true}, "localhost", loop, ""},
		{"exact allow", Policy{Allow: []string{"api.github.com"}}, "api.github.com", pub, ""},
		{"exact allow is case-insensitive", Policy{Allow: []string{"API.GitHub.com."}}, "api.github.com", pub, ""},
		{"exact allow, other host", Policy{Allow: []string{"api.github.com"}}, "github.com", pub, RuleNotAllowed},
		{"wildcard allows subdomain", Policy{Allow: []string{"*.github.com"}}, "api.github.com", pub, ""},
		{"wildcard allows deep subdomain", Policy{Allow: []string{"*.github.com"}}, "a.b.github.com", pub, ""},
		{"wildcard does not allow apex", Policy{Allow: []string{"*.github.com"}}, "github.com", pub, RuleNotAllowed},
		{"wildcard is on label boundary", Policy{Allow: []string{"*.github.com"}}, "evilgithub.com", pub, RuleNotAllowed},
		{"star allows all", Policy{Allow: []string{"*"}}, "example.org", pub, ""},
		{"star does not allow private", Policy{Allow: []string{"*"}}, "localhost", loop, RulePrivate},
		{"explicit name allows private", Policy{Allow: []string{"localhost"}}, "localhost", loop, ""},
		{"explicit wildcard allows private", Policy{Allow: []string{"*.internal"}}, "db.internal", []string{"10.1.2.3"}, ""},
		{"CIDR allow admits private", Policy{Allow: []string{"10.1.0.0/16"}}, "db.internal", []string{"10.1.2.3"}, ""},
		{"CIDR allow, address outside", Policy{Allow: []string{"10.1.0.0/16"}}, "db.internal", []string{"10.2.0.1"}, RuleNotAllowed},
		{"CIDR allow needs every address", Policy{Allow: []string{"10.1.0.0/16"}}, "db.internal", []string{"10.1.0.1", "10.2.0.1"}, RuleNotAllowed},
		{"IP allow", Policy{Allow: []string{"127.0.0.1"}}, "127.0.0.1", loop, ""},
		{"IP allow matches mapped form", Policy{Allow: []string{"127.0.0.1"}}, "::ffff:127.0.0.1", []string{"::ffff:127.0.0.1"}, ""},
		{"deny wins over allow", Policy{Allow: []string{"*.github.com"}, Deny: []string{"gist.github.com"}}, "gist.github.com", pub, "deny:gist.github.com"},
		{"deny wildcard", Policy{Deny: []string{"*.evil.test"}}, "x.evil.test", pub, "deny:*.evil.test"},
		{"deny wins over allow private", Policy{AllowPrivate: true, Deny: []string{"169.254.169.254"}}, "metadata.test", []string{"169.254.169.254"}, "deny:169.254.169.254"},
		{"deny CIDR by resolved address", Policy{Deny: []string{"8.8.0.0/16"}}, "dns.test", pub, "deny:8.8.0.0/16"},
		{"deny star", Policy{Deny: []string{"*"}}, "api.github.com", pub, "deny:*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compilePolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			var addrs []netip.Addr
			for _, a := range tt.addrs {
				addrs = append(addrs, netip.MustParseAddr(a).Unmap())
			}
			if got := r.decide(normalizeHost(tt.host), addrs); got != tt.want {
				t.Errorf("decide(%q, %v) = %q, want %q", tt.host, tt.addrs, got, tt.want)
			}
		})
	}
}

func TestCompilePolicyRefusesBadPatterns(t *testing.T) {
	for _, s := range []string{"", "api.*.com", "*github.com", "git hub.com", "10.0.0.0/33", "a..b", "*.", "::ffff:10.0.0.0/104"} {
		if _, err := compilePolicy(Policy{Allow: []string{s}}); err == nil {
			t.Errorf("compilePolicy(allow %q) = nil error, want one", s)
		} else if !strings.Contains(err.Error(), "allow pattern") {
			t.Errorf("compilePolicy(allow %q) = %v, want it to name the allow pattern", s, err)
		}
	}
	if _, err := New(Config{Recorder: &memRecorder{}, Policy: Policy{Deny: []string{"*evil"}}}); err == nil {
		t.Error("New with a bad deny pattern = nil error")
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		bad  bool
	}{
		{"api.github.com:443", "api.github.com", 443, false},
		{"API.GitHub.com.:8443", "api.github.com", 8443, false},
		{"example.com", "example.com", 80, false},
		{"[::1]:443", "::1", 443, false},
		{"[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80, false},
		{"example.com:0", "", 0, true},
		{"example.com:99999", "", 0, true},
		{":443", "", 0, true},
	}
	for _, tt := range tests {
		h, p, err := splitHostPort(tt.in, 80)
		if (err != nil) != tt.bad || h != tt.host || p != tt.port {
			t.Errorf("splitHostPort(%q) = %q, %d, %v; want %q, %d, bad=%v", tt.in, h, p, err, tt.host, tt.port, tt.bad)
		}
	}
}

func TestProxyCredentials(t *testing.T) {
	tests := map[string][]string{
		"Basic Y2k6c2stcHJveHktMQ==": {"sk-proxy-1", "ci:sk-proxy-1"}, // ci:sk-proxy-1
		"Basic c2stcHJveHktMQ==":     {"sk-proxy-1", "sk-proxy-1"},    // a bare token
		"Basic c2stcHJveHktMTo=":     {"sk-proxy-1", "sk-proxy-1:"},   // sk-proxy-1: with an empty password
		"Bearer sk-proxy-1":          {"sk-proxy-1"},
		"bearer  sk-proxy-1 ":        {"sk-proxy-1"},
		"Basic !!!":                  nil,
		"Digest x":                   nil,
		"":                           nil,
	}
	for in, want := range tests {
		if got := proxyCredentials(in); !slices.Equal(got, want) {
			t.Errorf("proxyCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestActorFromWholeBasicCredential checks a mapping keyed by user:password
// is found too.
func TestActorFromWholeBasicCredential(t *testing.T) {
	ids := identities()
	ids.Add("bot:pw-1", capture.Actor{ID: "agent-bot"})
	p, err := New(Config{Recorder: &memRecorder{}, Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodConnect, "http://example.com:443", nil)
	r.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:pw-1")))
	r.Header.Set(capture.HeaderActorID, "someone-else")
	if a, ok := p.actor(r); a.ID != "agent-bot" || !ok {
		t.Errorf("actor = %q, want agent-bot", a.ID)
	}
	if r.Header.Get(capture.HeaderActorID) != "" {
		t.Error("the actor header was not removed")
	}
}
