package ingest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue returns the value of counter name (with label value label,
// when it is not "") gathered from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	for _, m := range gather(t, reg, name) {
		if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s{%s} in the registry", name, label)
	return 0
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	ms := gather(t, reg, name)
	if len(ms) != 1 {
		t.Fatalf("%s has %d series, want 1", name, len(ms))
	}
	return ms[0].GetGauge().GetValue()
}

func gather(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	t.Fatalf("no metric %s in the registry", name)
	return nil
}
