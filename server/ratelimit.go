package server

import (
	"math"
	"net/http"
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

// rateLimiter keeps one bucket per principal name. The names come from the
// token file, so the map is as large as the number of tokens.
type rateLimiter struct {
	cfg     RateLimit
	limited prometheus.Counter
	mu      sync.Mutex
	by      map[string]*rate.Limiter
}

func newRateLimiter(cfg RateLimit, reg prometheus.Registerer) *rateLimiter {
	if cfg.Burst < 1 {
		cfg.Burst = int(math.Ceil(cfg.Rate))
	}
	l := &rateLimiter{cfg: cfg, by: map[string]*rate.Limiter{}, limited: newCounter("agenttrail_http_rate_limited_total", "Requests answered 429 because their token was over its rate limit.")}
	reg.MustRegister(l.limited)
	return l
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

// writeRateLimited answers 429 with a Retry-After of wait, rounded up to
// whole seconds as RFC 9110 §10.2.3 requires.
func (s *Server) writeRateLimited(w http.ResponseWriter, r *http.Request, p Principal, wait time.Duration) {
	prob := wire.ProblemOf(agenttrail.Errorf(agenttrail.ERATELIMIT, "token %q is over its rate limit; retry after the Retry-After delay", p.Name))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	sendProblem(w, s.log, prob)
}
