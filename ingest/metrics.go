package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of agenttrail_ingest_dropped_total: why events were refused
// after they had been accepted as valid. The caller is told every time.
const (
	reasonQueueFull  = "queue_full"
	reasonShutdown   = "shutdown"
	reasonTooLarge   = "too_large"
	reasonStoreError = "store_error"
	reasonSpoolFull  = "spool_full" // the store was unavailable and the spool full
)

type metrics struct {
	accepted      prometheus.Counter
	duplicates    prometheus.Counter
	dropped       *prometheus.CounterVec
	commitSeconds prometheus.Histogram
	batchEvents   prometheus.Histogram
}

// newMetrics builds the pipeline's collectors and registers them, with a
// queue depth gauge reading depth, on reg unless it is nil.
func newMetrics(reg prometheus.Registerer, depth func() int) *metrics {
	m := &metrics{
		accepted:   newCounter("agenttrail_ingest_accepted_total", "Events committed to the store; events a spool took are counted by agenttrail_ingest_spooled_total instead."),
		duplicates: newCounter("agenttrail_ingest_duplicates_total", "Events skipped because an event with the same org and id was already stored."),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agenttrail_ingest_dropped_total",
			Help: "Valid events refused with an error to their sender, by reason.",
		}, []string{"reason"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agenttrail_ingest_commit_seconds",
			Help:    "Time one Append (one transaction) took.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agenttrail_ingest_batch_events",
			Help:    "Events committed per Append.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
	}
	for _, r := range []string{reasonQueueFull, reasonShutdown, reasonTooLarge, reasonStoreError, reasonSpoolFull} {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.duplicates, m.dropped, m.commitSeconds, m.batchEvents,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "agenttrail_ingest_queue_depth",
				Help: "Events queued and not yet taken by the writer.",
			}, func() float64 { return float64(depth()) }))
	}
	return m
}

// newCounter returns an unregistered counter.
func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}
