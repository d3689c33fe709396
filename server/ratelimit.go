package server

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// RateLimit bounds the requests of each principal (by token name) with a
// token bucket: Rate requests a second on average, bursts of up to Burst.
// A zero Rate means no limit. It protects the server from one runaway or
// stolen token; the SDK batches events, so a well-behaved producer sends a
// few requests a second.
type RateLimit struct {
	Rate  float64
	Burst int
}

// rateLimiter keeps one bucket per key: a principal name (the names come
// from the token file, so there are as many as tokens) or a client address
// (see maxBuckets).
type rateLimiter struct {
	cfg     RateLimit
	limited prometheus.Counter
	mu      sync.Mutex
	by      map[string]*rate.Limiter
}

// maxBuckets bounds the buckets of a rateLimiter keyed by client address:
// past it, the full buckets (of addresses that were quiet for a while) are
// dropped, which forgets nothing a bucket would still refuse.
const maxBuckets = 8192

// newRateLimiter returns a limiter of cfg whose refusals count on the
// "by" label of limited.
func newRateLimiter(cfg RateLimit, limited *prometheus.CounterVec, by string) *rateLimiter {
	if cfg.Burst < 1 {
		cfg.Burst = int(math.Ceil(cfg.Rate))
	}
	return &rateLimiter{cfg: cfg, by: map[string]*rate.Limiter{}, limited: limited.WithLabelValues(by)}
}

// newRateLimited returns the counter of 429 answers, registered on reg.
func newRateLimited(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenttrail_http_rate_limited_total",
		Help: "Requests answered 429 because they were over a rate limit: by token, or by client address for requests without a valid credential.",
	}, []string{"by"})
	reg.MustRegister(c)
	return c
}

// allow takes one request from name's bucket. When the bucket is empty it
// returns false and how long until a request would be allowed.
func (l *rateLimiter) allow(name string, now time.Time) (bool, time.Duration) {
	if l.cfg.Rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	lim := l.by[name]
	if lim == nil {
		if len(l.by) >= maxBuckets {
			for k, b := range l.by {
				if b.TokensAt(now) >= float64(l.cfg.Burst) {
					delete(l.by, k)
				}
			}
		}
		lim = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		l.by[name] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	if d == 0 {
		return true, 0
	}
	res.CancelAt(now)
	l.limited.Inc()
	return false, d
}

// clientKey is the rate-limit key of the client address of r: the IP, or
// for IPv6 its /64, which one host usually holds whole.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// allowAnonymous takes one request of r's client address from the budget
// of requests without a valid credential, and answers 429 when it is
// spent. It reports whether r may go on.
func (s *Server) allowAnonymous(w http.ResponseWriter, r *http.Request) bool {
	key := clientKey(r)
	ok, wait := s.anonLimiter.allow(key, time.Now())
	if !ok {
		prob := wire.ProblemOf(agenttrail.Errorf(agenttrail.ERATELIMIT, "too many requests without a valid token from %s; retry after the Retry-After delay", key))
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		sendProblem(w, s.log, prob)
	}
	return ok
}

// writeRateLimited answers 429 with a Retry-After of wait, rounded up to
// whole seconds as RFC 9110 §10.2.3 requires.
func (s *Server) writeRateLimited(w http.ResponseWriter, r *http.Request, p Principal, wait time.Duration) {
	prob := wire.ProblemOf(agenttrail.Errorf(agenttrail.ERATELIMIT, "token %q is over its rate limit; retry after the Retry-After delay", p.Name))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	sendProblem(w, s.log, prob)
}
