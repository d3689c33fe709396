package llm

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors.
type metrics struct {
	// unknownModel counts metered calls whose model has no price, so an
	// operator sees which models to add to the price table.
	unknownModel *prometheus.CounterVec
}

// newMetrics builds the collectors and registers them with reg, when set.
// A second proxy on the same registry shares the first one's collectors.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		unknownModel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agenttrail_llm_unknown_model_total",
			Help: "LLM calls recorded without a cost because their model has no price.",
		}, []string{"model"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.unknownModel); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("llm proxy: register metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("llm proxy: register metrics: %w", err)
		}
		m.unknownModel = existing
	}
	return m, nil
}
