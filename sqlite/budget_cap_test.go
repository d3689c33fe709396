package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestHeldReservationsBoundedPerOrg: one org's tokens cannot fill the
// in-memory ledger, which every org's budget checks share: past the bound
// its reservations are refused (ERATELIMIT), another org's still pass, and
// the org may reserve again once its reservations end.
func TestHeldReservationsBoundedPerOrg(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), Config{MaxHeldReservations: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, org := range []string{"acme", "globex"} {
		if _, err := s.PutBudget(ctx, agenttrail.Budget{Name: "cap", Org: org, LimitNUSD: 1000 * agenttrail.NanoUSD, Period: agenttrail.PeriodTotal, Timezone: "UTC", UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	reserve := func(org, id string, at time.Time) error {
		res, err := s.Reserve(ctx, agenttrail.Reservation{ID: id, Org: org, TTL: time.Minute}, at)
		if err == nil && !res.Allowed {
			err = fmt.Errorf("refused by %+v", res.States[res.Denied].Budget)
		}
		return err
	}
	for i := range 20 {
		if err := reserve("acme", fmt.Sprint("a", i), now); err != nil {
			t.Fatalf("reservation %d of acme: %v", i, err)
		}
	}
	if err := reserve("acme", "a-over", now); agenttrail.ErrorCode(err) != agenttrail.ERATELIMIT {
		t.Errorf("acme's 21st held reservation: %v, want ERATELIMIT", err)
	}
	if err := reserve("globex", "g0", now); err != nil {
		t.Errorf("globex's first reservation while acme is full: %v, want it allowed", err)
	}
	// Settled to $0 (calls that cost nothing), they end at once and free
	// their places.
	for i := range 20 {
		if err := s.Settle(ctx, "acme", fmt.Sprint("a", i), 0, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := reserve("acme", "a-freed", now); err != nil {
		t.Errorf("acme after its reservations were settled to $0: %v, want it allowed", err)
	}
	if err := reserve("acme", "a-later", now.Add(2*time.Minute)); err != nil {
		t.Errorf("acme after its reservations expired: %v, want it allowed", err)
	}
}
