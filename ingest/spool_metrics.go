package ingest

import (
	"github.com/agenttrail/agenttrail/internal/spoollog"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of agenttrail_ingest_spool_discarded_total: spooled events, already
// acknowledged to their senders, that could not be replayed. Both mean a bug
// or a damaged disk, never an outage; they are logged one by one.
const (
	discardRefused     = "store_refused" // the store refused the event itself
	discardUndecodable = "undecodable"   // a batch that passed its CRC but does not decode
)

type spoolMetrics struct {
	spooled            prometheus.Counter
	replayed           prometheus.Counter
	replayedDuplicates prometheus.Counter
	discarded          *prometheus.CounterVec
}

// newSpoolMetrics builds the spool's collectors and registers them, with
// gauges reading log's size, on reg unless it is nil.
func newSpoolMetrics(reg prometheus.Registerer, log *spoollog.Log) *spoolMetrics {
	m := &spoolMetrics{
		spooled:            newCounter("agenttrail_ingest_spooled_total", "Events written to the server's spool because the store was unavailable or older batches were spooled."),
		replayed:           newCounter("agenttrail_ingest_replayed_total", "Spooled events stored in the store by the replay."),
		replayedDuplicates: newCounter("agenttrail_ingest_replayed_duplicates_total", "Spooled events the replay found already stored (same org and id)."),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agenttrail_ingest_spool_discarded_total",
			Help: "Spooled events that could not be replayed, by reason (events; batches for corrupt).",
		}, []string{"reason"}),
	}
	for _, r := range []string{discardRefused, discardUndecodable} {
		m.discarded.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.spooled, m.replayed, m.replayedDuplicates, m.discarded,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "agenttrail_ingest_spool_bytes",
				Help: "Size of the server's spool files.",
			}, func() float64 { return float64(log.Stats().Bytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "agenttrail_ingest_spool_batches",
				Help: "Batches in the server's spool waiting to be replayed.",
			}, func() float64 { return float64(log.Stats().Records) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "agenttrail_ingest_spool_corrupt_total",
				Help: "Spooled batches skipped because their checksum did not match.",
			}, func() float64 { return float64(log.Stats().Corrupt) }),
		)
	}
	return m
}
