package sink

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/agenttrail/agenttrail"
)

// collector runs the OpenTelemetry Collector's own OTLP receiver
// (otlpreceiver) in this process, HTTP only, and keeps the log records it
// takes. While down, its consumer refuses with an error, which the
// receiver answers as 503 (retryable); a request holding the poison event
// it refuses with a permanent error, which the receiver answers as 400.
type collector struct {
	url string

	mu      sync.Mutex
	down    bool
	poison  string // an event id (agenttrail.id) refused for good
	records []plog.LogRecord
}

type nopHost struct{}

func (nopHost) GetExtensions() map[component.ID]component.Component { return nil }

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	port := freePort(t)
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
	c.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.down {
			return fmt.Errorf("pipeline down")
		}
		if c.poison != "" {
			for i := range ld.ResourceLogs().Len() {
				sls := ld.ResourceLogs().At(i).ScopeLogs()
				for j := range sls.Len() {
					lrs := sls.At(j).LogRecords()
					for k := range lrs.Len() {
						if id, _ := lrs.At(k).Attributes().Get("agenttrail.id"); id.Str() == c.poison {
							// As a pipeline refusing bad data does: the
							// receiver answers 400 (a permanent error
							// without a status is a 500, which OTLP
							// clients retry).
							return grpcstatus.Error(codes.InvalidArgument, "log record "+c.poison+": unparseable")
						}
					}
				}
			}
		}
		for i := range ld.ResourceLogs().Len() {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					r := plog.NewLogRecord()
					lrs.At(k).CopyTo(r)
					c.records = append(c.records, r)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	set := receiver.Settings{ID: component.NewID(f.Type()), BuildInfo: component.NewDefaultBuildInfo()}
	set.TelemetrySettings = component.TelemetrySettings{Logger: zap.NewNop(), TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	r, err := f.CreateLogs(t.Context(), set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), nopHost{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return c
}

func (c *collector) seqs(t *testing.T, events map[string]agenttrail.Event) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for _, r := range c.records {
		id, _ := r.Attributes().Get("agenttrail.id")
		seq, _ := r.Attributes().Get("agenttrail.seq")
		e, ok := events[id.Str()]
		if !ok || e.Seq != seq.Int() {
			t.Fatalf("log record id %q seq %d matches no stored event", id.Str(), seq.Int())
		}
		if !r.Timestamp().AsTime().Equal(e.Time) || r.Body().Str() == "" {
			t.Fatalf("log record of seq %d: time %v body %q, want time %v and the payload", e.Seq, r.Timestamp().AsTime(), r.Body().Str(), e.Time)
		}
		actor, _ := r.Attributes().Get("agenttrail.actor_id")
		if actor.Str() != e.ActorID {
			t.Fatalf("agenttrail.actor_id = %q, want %q", actor.Str(), e.ActorID)
		}
		out = append(out, e.Seq)
	}
	return out
}

// TestOTLPCollector: the collector's OTLP receiver takes every event as a
// log record, through a spell where its pipeline refuses (503).
func TestOTLPCollector(t *testing.T) {
	store, _ := openStore(t, 0)
	col := startCollector(t)
	set := start(t, store, testConfig(t, Config{Type: TypeOTLP, URL: col.url, Format: "ocsf", Batch: BatchLimits{MaxEvents: 100}}))
	all := ingestThroughOutage(t, store, 6, 30, 3*time.Millisecond, func(batch int) bool { return batch >= 8 && batch < 18 }, func(down bool) {
		col.mu.Lock()
		col.down = down
		col.mu.Unlock()
	})
	waitCaughtUp(t, set, "test")
	checkSeqs(t, col.seqs(t, byID(all)), all, false)
	st, _ := set.Status(t.Context())
	if st[0].Retried == 0 {
		t.Errorf("status = %+v, want retries during the refusal", st[0])
	}
}
