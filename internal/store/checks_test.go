package store

import (
	"context"
	"testing"
	"time"
)

// A customer's checks are counted over the window: one that would go
// over the allowance counts nothing, older checks fall out of the window
// and are swept, and customers are counted apart.
func TestUseChecks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		a, _ := s.CreateTenant(ctx, "A", KindCustomer)
		b, _ := s.CreateTenant(ctx, "B", KindCustomer)
		now := time.Now()
		use := func(tenant int64, n int, at time.Time) bool {
			t.Helper()
			ok, err := s.UseChecks(ctx, tenant, n, 10, time.Hour, at)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		for _, c := range []struct {
			name   string
			tenant int64
			n      int
			at     time.Time
			want   bool
		}{
			{"a first check", a.ID, 6, now.Add(-50 * time.Minute), true},
			{"the rest of the allowance", a.ID, 4, now.Add(-10 * time.Minute), true},
			{"one over", a.ID, 1, now, false},
			{"another customer", b.ID, 10, now, true},
			{"the first check has left the window", a.ID, 6, now.Add(11 * time.Minute), true},
			{"but not the second", a.ID, 1, now.Add(11 * time.Minute), false},
		} {
			if got := use(c.tenant, c.n, c.at); got != c.want {
				t.Errorf("%s: allowed %v, want %v", c.name, got, c.want)
			}
		}
		if err := s.SweepChecks(ctx, now.Add(-30*time.Minute)); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := s.queryRow(ctx, `SELECT COUNT(*) FROM check_use`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 3 {
			t.Errorf("%d checks left after the sweep, want 3", left)
		}
	})
}
