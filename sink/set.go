package sink

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Set is every configured sink of a server. Its methods are safe for
// concurrent use.
type Set struct {
	runners []*Runner
	store   Store
	now     func() time.Time
}

// New builds the Deliverer and Runner of each sink in cfgs (checked by
// Check) and registers the sinks' metrics on reg (nil: none). It opens no
// connection: receivers are reached when Run delivers.
func New(cfgs []Config, store Store, log *slog.Logger, reg prometheus.Registerer) (*Set, error) {
	s := &Set{store: store, now: time.Now}
	m := newMetrics(reg)
	for _, c := range cfgs {
		d, err := newDeliverer(c, log)
		if err != nil {
			for _, r := range s.runners {
				r.d.Close()
			}
			return nil, fmt.Errorf("sink %q: %w", c.Name, err)
		}
		r, err := NewRunner(c, d, store, log)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("sink %q: %w", c.Name, err)
		}
		r.metrics = m
		s.runners = append(s.runners, r)
	}
	return s, nil
}

// newDeliverer returns the Deliverer of c's type.
func newDeliverer(c Config, log *slog.Logger) (Deliverer, error) {
	switch c.Type {
	case TypeFile:
		return newFile(c)
	case TypeWebhook:
		w, err := newWebhook(c)
		if err == nil && len(w.secret) == 0 && log != nil {
			log.Warn("webhook sink has no secret_file or secret_env: its batches are sent unsigned, and the receiver cannot tell them from forgeries", "sink", c.Name)
		}
		return w, err
	case TypeSyslog:
		return newSyslog(c)
	case TypeSplunkHEC:
		return newHEC(c)
	case TypeElasticsearch:
		return newElasticsearch(c)
	case TypeOTLP:
		return newOTLP(c)
	case TypeS3:
		return newS3(c)
	}
	return nil, fmt.Errorf("type %q: not in this build", c.Type)
}

// Runners returns the sinks' runners, in configuration order, for the
// caller to run (each Run is an actor of the server's run.Group).
func (s *Set) Runners() []*Runner { return s.runners }

// runner returns the runner named name, or an ENOTFOUND error.
func (s *Set) runner(name string) (*Runner, error) {
	for _, r := range s.runners {
		if r.cfg.Name == name {
			return r, nil
		}
	}
	return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", name)
}

// Status returns the state of every sink, in configuration order.
func (s *Set) Status(ctx context.Context) ([]wire.SinkStatus, error) {
	head, err := s.store.HeadSeq(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]wire.SinkStatus, 0, len(s.runners))
	for _, r := range s.runners {
		r.mu.Lock()
		st := r.st
		r.mu.Unlock()
		if !st.started {
			if st.checkpoint, err = s.store.Checkpoint(ctx, r.cfg.Name); err != nil {
				return nil, err
			}
		}
		x := wire.SinkStatus{Name: r.cfg.Name, Type: r.cfg.Type, Format: r.cfg.Format, Required: r.cfg.Required,
			Checkpoint: st.checkpoint, Head: head, LagEvents: max(0, head-st.checkpoint),
			Delivered: st.delivered, Retried: st.retried, DeadLetters: st.deadLetters, LastError: st.lastErr}
		if !st.lastErrAt.IsZero() {
			t := st.lastErrAt.UTC()
			x.LastErrorAt = &t
		}
		if !st.lastOKAt.IsZero() {
			t := st.lastOKAt.UTC()
			x.LastSuccess = &t
		}
		if x.LagEvents > 0 {
			p, err := s.store.Query(ctx, agenttrail.Query{Filter: r.filter, Sort: agenttrail.SortSeq, Limit: 1, After: &agenttrail.Position{Seq: st.checkpoint}})
			if err != nil {
				return nil, err
			}
			if len(p.Events) > 0 {
				x.LagSeconds = max(0, s.now().Sub(p.Events[0].ReceivedAt).Seconds())
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// Replay moves the checkpoint of the sink named name back so that its
// events after seq fromSeq are delivered again; with since set instead,
// from the first event received at or after since. It returns the
// checkpoint the sink moves to.
func (s *Set) Replay(ctx context.Context, name string, fromSeq int64, since time.Time) (int64, error) {
	r, err := s.runner(name)
	if err != nil {
		return 0, err
	}
	to := fromSeq - 1
	if !since.IsZero() {
		// Events are in seq order, and their times are close to it but
		// not monotonic: the first event at or after since in time order
		// bounds where to start, and starting early only resends more.
		p, err := s.store.Query(ctx, agenttrail.Query{Filter: agenttrail.Filter{Since: since}, Sort: agenttrail.SortTimeAsc, Limit: 1})
		if err != nil {
			return 0, err
		}
		if len(p.Events) == 0 {
			if to, err = s.store.HeadSeq(ctx); err != nil {
				return 0, err
			}
		} else {
			to = p.Events[0].Seq - 1
		}
	}
	to = max(0, to)
	r.Replay(to)
	return to, nil
}

// DeadLetters returns up to limit dead letters of the sink named name
// after the one with ID afterID.
func (s *Set) DeadLetters(ctx context.Context, name string, afterID int64, limit int) ([]agenttrail.DeadLetter, error) {
	if _, err := s.runner(name); err != nil {
		return nil, err
	}
	return s.store.DeadLetters(ctx, name, afterID, limit)
}

// RetryDeadLetters asks the sink named name to resend its dead letters.
func (s *Set) RetryDeadLetters(name string) error {
	r, err := s.runner(name)
	if err != nil {
		return err
	}
	r.RetryDeadLetters()
	return nil
}

// LowestRequired returns the lowest checkpoint among the required sinks,
// and whether there is any: retention deletes no event after it.
func (s *Set) LowestRequired(ctx context.Context) (int64, bool, error) {
	var low int64
	any := false
	for _, r := range s.runners {
		if !r.cfg.Required {
			continue
		}
		r.mu.Lock()
		cp, started := r.st.checkpoint, r.st.started
		r.mu.Unlock()
		if !started {
			var err error
			if cp, err = s.store.Checkpoint(ctx, r.cfg.Name); err != nil {
				return 0, false, err
			}
		}
		if !any || cp < low {
			low, any = cp, true
		}
	}
	return low, any, nil
}

// metrics are the per-sink series on /metrics; a nil *metrics records
// nothing.
type metrics struct {
	deliveredN, retries, dead *prometheus.CounterVec
	checkpointSeq, lagEvents  *prometheus.GaugeVec
	lastSuccess               *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		deliveredN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agenttrail_sink_delivered_total",
			Help: "Events each sink's receiver took."}, []string{"sink"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agenttrail_sink_retries_total",
			Help: "Events each sink sent again after a failure."}, []string{"sink"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agenttrail_sink_dead_letters_total",
			Help: "Events each sink's receiver refused for good, recorded as dead letters."}, []string{"sink"}),
		checkpointSeq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agenttrail_sink_checkpoint_seq",
			Help: "The seq each sink has delivered up to."}, []string{"sink"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agenttrail_sink_lag_events",
			Help: "Events committed after each sink's checkpoint."}, []string{"sink"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agenttrail_sink_last_success_timestamp_seconds",
			Help: "When each sink last delivered a batch (Unix time)."}, []string{"sink"}),
	}
	reg.MustRegister(m.deliveredN, m.retries, m.dead, m.checkpointSeq, m.lagEvents, m.lastSuccess)
	return m
}

func (m *metrics) delivered(sink string, n int, cp int64) {
	if m == nil {
		return
	}
	m.checkpointSeq.WithLabelValues(sink).Set(float64(cp))
	if n > 0 {
		m.deliveredN.WithLabelValues(sink).Add(float64(n))
		m.lastSuccess.WithLabelValues(sink).SetToCurrentTime()
	}
}

func (m *metrics) checkpoint(sink string, cp int64) {
	if m != nil {
		m.checkpointSeq.WithLabelValues(sink).Set(float64(cp))
		m.deliveredN.WithLabelValues(sink).Add(0)
		m.retries.WithLabelValues(sink).Add(0)
		m.dead.WithLabelValues(sink).Add(0)
	}
}

func (m *metrics) lag(sink string, n int64) {
	if m != nil {
		m.lagEvents.WithLabelValues(sink).Set(float64(max(0, n)))
	}
}

func (m *metrics) retried(sink string, n int) {
	if m != nil {
		m.retries.WithLabelValues(sink).Add(float64(n))
	}
}

func (m *metrics) deadLettered(sink string, n int) {
	if m != nil {
		m.dead.WithLabelValues(sink).Add(float64(n))
	}
}
