package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxBodyBytes is the default of Config.MaxBodyBytes: four requests
// at the default size limit may be read at once.
const DefaultMaxBodyBytes = 64 << 20

// bodyChunk is the step in which a request body is read and accounted: a
// client that declares 16 MiB and sends one byte holds one chunk, not 16
// MiB.
const bodyChunk = 32 << 10

// bodyBudget bounds the bytes that the bodies of all requests in flight
// hold, server-wide. A body reserves a chunk before it reads one; when the
// budget is spent the request is refused with 503 and Retry-After instead
// of the process growing until it is killed.
type bodyBudget struct {
	mu   sync.Mutex
	held int64
	max  int64

	heldGauge prometheus.Gauge
	refused   prometheus.Counter
}

func newBodyBudget(max int64, reg prometheus.Registerer) *bodyBudget {
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	b := &bodyBudget{
		max: max,
		heldGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agenttrail_ingest_body_bytes_held",
			Help: "Bytes reserved by the request bodies being read or decoded, server-wide (bounded by --max-body-bytes).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agenttrail_ingest_body_refused_total",
			Help: "Ingest requests answered 503 because the request bodies in flight held the server-wide maximum.",
		}),
	}
	reg.MustRegister(b.heldGauge, b.refused)
	return b
}

// acquire reserves n bytes, or reports false when that would go over the
// budget.
func (b *bodyBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.max {
		b.refused.Inc()
		return false
	}
	b.held += n
	b.heldGauge.Set(float64(b.held))
	return true
}

// release returns n reserved bytes.
func (b *bodyBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
	b.heldGauge.Set(float64(b.held))
}

// Held returns the bytes reserved now.
func (b *bodyBudget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}
