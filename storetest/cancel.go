package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// testContextEnded calls every method with a context that was cancelled
// and with one whose deadline passed. Every store answers both the same
// way: an EUNAVAILABLE error whose chain holds the context's error, so the
// HTTP layer answers a request that went away, or ran out of time, alike
// on every backend, and callers can tell it from a broken store. Nothing
// may be stored.
func testContextEnded(t *testing.T, s agenttrail.Store) {
	base := Base()
	stored := AppendAll(t, s, Events(60, 300, base, 6*time.Hour), 300)
	f := agenttrail.Filter{Since: base, Until: base.Add(7 * time.Hour)}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			_, err := s.Append(ctx, Events(61, 10, base, time.Hour))
			return err
		}},
		{"Get", func(ctx context.Context) error {
			_, err := s.Get(ctx, stored[0].ID, agenttrail.Filter{})
			return err
		}},
		{"Query", func(ctx context.Context) error {
			_, err := s.Query(ctx, agenttrail.Query{Filter: f, Sort: agenttrail.SortTimeDesc, Limit: 10})
			return err
		}},
		{"Aggregate", func(ctx context.Context) error {
			_, err := s.Aggregate(ctx, f, agenttrail.DimSource)
			return err
		}},
		{"Series", func(ctx context.Context) error {
			_, err := s.Series(ctx, f, agenttrail.Hour, agenttrail.DimResult)
			return err
		}},
		{"HeartbeatGaps", func(ctx context.Context) error {
			_, err := s.HeartbeatGaps(ctx, f, time.Minute)
			return err
		}},
		{"SequenceGaps", func(ctx context.Context) error {
			_, err := s.SequenceGaps(ctx, f)
			return err
		}},
		{"DeleteBefore", func(ctx context.Context) error {
			_, err := s.DeleteBefore(ctx, base.Add(time.Hour))
			return err
		}},
	}
	for _, ended := range []struct {
		name  string
		ctx   context.Context
		cause error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"past its deadline", expired, context.DeadlineExceeded},
	} {
		for _, c := range calls {
			err := c.call(ended.ctx)
			if agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE || !errors.Is(err, ended.cause) {
				t.Errorf("%s(context %s) = %v (code %q), want code %q wrapping %v",
					c.name, ended.name, err, agenttrail.ErrorCode(err), agenttrail.EUNAVAILABLE, ended.cause)
			}
		}
	}
	checkSeqs(t, "Query(all) after calls with ended contexts", all(t, s, agenttrail.Filter{}), Select(stored, agenttrail.Query{Sort: agenttrail.SortSeq}))
}
