package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/agenttrail/agenttrail/postgres"
)

// TestShared: two nodes (a store's Shared and one opened alone) see each
// other's documents; concurrent updates are serialized, none lost; the
// version grows with each change; a failed change changes nothing; the
// first GetOrCreate wins for everyone.
func TestShared(t *testing.T) {
	ctx := context.Background()
	st, dsn := openStore(t)
	a := st.Shared()
	b, err := postgres.OpenShared(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if v, ver, err := a.Get(ctx, "doc"); err != nil || v != nil || ver != 0 {
		t.Fatalf("Get of a missing document = %q, %d, %v; want nil, 0", v, ver, err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, "doc", func(old []byte) ([]byte, error) {
				return append(old, fmt.Sprintf("[%d]", i)...), nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, ver, err := b.Get(ctx, "doc")
	if err != nil || ver != 20 {
		t.Fatalf("after 20 updates: version %d, %v; want 20", ver, err)
	}
	for i := range 20 {
		if !bytes.Contains(v, fmt.Appendf(nil, "[%d]", i)) {
			t.Errorf("update %d was lost: %s", i, v)
		}
	}
	boom := errors.New("boom")
	if err := a.Update(ctx, "doc", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Update whose change fails = %v, want its error", err)
	}
	if n, err := b.Version(ctx, "doc"); err != nil || n != 20 {
		t.Fatalf("Version after a failed change = %d, %v; want 20", n, err)
	}

	k1, err := a.GetOrCreate(ctx, "key", func() ([]byte, error) { return []byte("first"), nil })
	if err != nil {
		t.Fatal(err)
	}
	k2, err := b.GetOrCreate(ctx, "key", func() ([]byte, error) { return []byte("second"), nil })
	if err != nil || string(k1) != "first" || string(k2) != "first" {
		t.Fatalf("GetOrCreate twice = %q, %q, %v; want the first for both", k1, k2, err)
	}
}
