package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// count is the number of rows a query counts.
func count(t *testing.T, s *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.queryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(query, err)
	}
	return n
}

// cancel ends a task that is queued, as the customer's cancel does.
func cancel(t *testing.T, s *DB, task Task) {
	t.Helper()
	if ok, err := s.TransitionTask(context.Background(), task.ID, []string{StateQueued, StateRunning}, StateCancelled, nil); !ok || err != nil {
		t.Fatalf("cancel task %d: %v %v", task.ID, ok, err)
	}
}

// Tokens are listed per tenant without the token, record their last use,
// and once revoked let nobody in.
func TestTokensListAndRevoke(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		op, _ := s.CreateTenant(ctx, "hosting", KindOperator)
		c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		for _, k := range []struct {
			tenant int64
			label  string
		}{{op.ID, "operator"}, {c.ID, "api"}, {c.ID, "panel"}} {
			if err := s.CreateToken(ctx, k.tenant, k.label, []byte(k.label)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			tenant int64
			want   []string
		}{{c.ID, []string{"api", "panel"}}, {op.ID, []string{"operator"}}, {0, []string{"operator", "api", "panel"}}, {999, nil}} {
			ks, err := s.Tokens(ctx, tc.tenant)
			var got []string
			for _, k := range ks {
				got = append(got, k.Label)
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("tokens of %d: %v %v, want %v", tc.tenant, got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("tokens of %d: %v, want %v", tc.tenant, got, tc.want)
				}
			}
		}
		ks, _ := s.Tokens(ctx, c.ID)
		if !ks[0].LastUsed.IsZero() || ks[0].Created.IsZero() {
			t.Errorf("a new token: %+v", ks[0])
		}
		if _, err := s.TokenTenant(ctx, []byte("api")); err != nil {
			t.Fatal(err)
		}
		ks, _ = s.Tokens(ctx, c.ID)
		if time.Since(ks[0].LastUsed) > time.Minute || !ks[1].LastUsed.IsZero() {
			t.Errorf("last use not recorded for the token used only: %+v", ks)
		}
		gone, err := s.DeleteToken(ctx, ks[0].ID)
		if err != nil || gone.Label != "api" || gone.TenantID != c.ID {
			t.Fatalf("revoke: %+v %v", gone, err)
		}
		if _, err := s.TokenTenant(ctx, []byte("api")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a revoked token: %v", err)
		}
		if _, err := s.TokenTenant(ctx, []byte("panel")); err != nil {
			t.Errorf("the other token of the tenant: %v", err)
		}
		if _, err := s.DeleteToken(ctx, ks[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked twice: %v", err)
		}
	})
}

// A disabled customer's tokens and sessions are refused and no migration
// into its domains is stored; enabled again, it works as before.
func TestDisableTenant(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		d := seedDomain(t, s)
		c, _ := s.Tenant(ctx, d.TenantID)
		s.CreateToken(ctx, c.ID, "api", []byte("tok"))
		u, _ := s.CreateUser(ctx, c.ID, "jana@firma.cz", "hash")
		s.CreateSession(ctx, []byte("before"), u.ID, time.Now().Add(time.Hour))

		if err := s.SetTenantDisabled(ctx, c.ID, true); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Tenant(ctx, c.ID)
		since := got.Disabled
		if since.IsZero() {
			t.Fatal("the tenant does not say it is disabled")
		}
		if _, _, err := s.SessionUser(ctx, []byte("before")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a session from before disabling: %v", err)
		}
		if tn, err := s.TokenTenant(ctx, []byte("tok")); !errors.Is(err, ErrDisabled) || tn.Name != "Firma" {
			t.Errorf("a token of a disabled customer: %+v %v", tn, err)
		}
		if _, err := submit(s, d, "jana@firma.cz"); !errors.Is(err, ErrDisabled) {
			t.Errorf("a migration for a disabled customer: %v", err)
		}
		if n := count(t, s, `SELECT count(*) FROM migration`); n != 0 {
			t.Errorf("%d migrations stored for a disabled customer", n)
		}
		// Disabling again keeps the time it was disabled at.
		time.Sleep(2 * time.Millisecond)
		if err := s.SetTenantDisabled(ctx, c.ID, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Tenant(ctx, c.ID); !got.Disabled.Equal(since) {
			t.Errorf("disabled since %v, then %v", since, got.Disabled)
		}
		// A session made meanwhile (a sign-in refused later) is refused too.
		s.CreateSession(ctx, []byte("after"), u.ID, time.Now().Add(time.Hour))
		if _, tn, err := s.SessionUser(ctx, []byte("after")); !errors.Is(err, ErrDisabled) || tn.Name != "Firma" {
			t.Errorf("a session of a disabled customer: %+v %v", tn, err)
		}

		if err := s.SetTenantDisabled(ctx, c.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Tenant(ctx, c.ID); !got.Disabled.IsZero() {
			t.Errorf("enabled, still disabled since %v", got.Disabled)
		}
		if _, err := s.TokenTenant(ctx, []byte("tok")); err != nil {
			t.Errorf("the token once enabled: %v", err)
		}
		if _, _, err := s.SessionUser(ctx, []byte("after")); err != nil {
			t.Errorf("the session once enabled: %v", err)
		}
		if _, err := submit(s, d, "jana@firma.cz"); err != nil {
			t.Errorf("a migration once enabled: %v", err)
		}
		if err := s.SetTenantDisabled(ctx, 999, true); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown tenant: %v", err)
		}
	})
}

// The last enabled operator is neither disabled nor deleted.
func TestLastOperatorKept(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		first, _ := s.CreateTenant(ctx, "hosting", KindOperator)
		if err := s.SetTenantDisabled(ctx, first.ID, true); !errors.Is(err, ErrLastOperator) {
			t.Errorf("disable the only operator: %v", err)
		}
		if err := s.DeleteTenant(ctx, first.ID); !errors.Is(err, ErrLastOperator) {
			t.Errorf("delete the only operator: %v", err)
		}
		second, _ := s.CreateTenant(ctx, "support", KindOperator)
		if err := s.SetTenantDisabled(ctx, first.ID, true); err != nil {
			t.Fatalf("disable one of two operators: %v", err)
		}
		if err := s.DeleteTenant(ctx, second.ID); !errors.Is(err, ErrLastOperator) {
			t.Errorf("delete the only enabled operator: %v", err)
		}
		if err := s.SetTenantDisabled(ctx, first.ID, false); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTenant(ctx, second.ID); err != nil {
			t.Errorf("delete one of two operators: %v", err)
		}
		if ts, _ := s.Tenants(ctx); len(ts) != 1 || ts[0].ID != first.ID {
			t.Errorf("tenants left: %+v", ts)
		}
	})
}

// A customer is deleted with everything it owns, never while a mailbox of
// it is being copied; other customers keep theirs.
func TestDeleteTenant(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		d := seedDomain(t, s)
		other, _ := s.CreateTenant(ctx, "Jina", KindCustomer)
		od, _ := s.CreateDomain(ctx, Domain{TenantID: other.ID, Name: "jina.cz"})
		for _, tn := range []int64{d.TenantID, other.ID} {
			s.CreateToken(ctx, tn, "api", []byte{byte(tn)})
			u, _ := s.CreateUser(ctx, tn, "user"+string(rune('0'+tn))+"@firma.cz", "hash")
			s.CreateSession(ctx, []byte{byte(tn)}, u.ID, time.Now().Add(time.Hour))
		}
		task, err := submit(s, d, "jana@firma.cz")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := submit(s, od, "eva@jina.cz"); err != nil {
			t.Fatal(err)
		}
		var re *RunningError
		if err := s.DeleteTenant(ctx, d.TenantID); !errors.As(err, &re) || re.Mailbox != "jana@firma.cz" || re.MigrationID != task.MigrationID {
			t.Fatalf("delete a customer with a queued mailbox: %v", err)
		}
		if _, err := s.Domain(ctx, d.ID); err != nil {
			t.Errorf("the refused deletion deleted the domain: %v", err)
		}
		cancel(t, s, task)
		if err := s.DeleteTenant(ctx, d.TenantID); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what, query string
			want        int
		}{
			{"tenants", `SELECT count(*) FROM tenant`, 1},
			{"domains", `SELECT count(*) FROM domain`, 1},
			{"migrations", `SELECT count(*) FROM migration`, 1},
			{"tasks", `SELECT count(*) FROM task`, 1},
			{"tokens", `SELECT count(*) FROM api_token`, 1},
			{"users", `SELECT count(*) FROM app_user`, 1},
			{"sessions", `SELECT count(*) FROM session`, 1},
			{"the other customer's tasks", `SELECT count(*) FROM task WHERE dest_user = 'eva@jina.cz'`, 1},
		} {
			if n := count(t, s, c.query); n != c.want {
				t.Errorf("%s left: %d, want %d", c.what, n, c.want)
			}
		}
		if err := s.DeleteTenant(ctx, d.TenantID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted twice: %v", err)
		}
	})
}

// A domain is deleted with its migrations once none is running; its limit
// changes.
func TestDeleteDomainAndLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		d := seedDomain(t, s)
		kept, _ := s.CreateDomain(ctx, Domain{TenantID: d.TenantID, Name: "firma.eu"})
		if err := s.SetMailboxLimit(ctx, d.ID, 25); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Domain(ctx, d.ID); got.MailboxLimit != 25 {
			t.Errorf("mailbox limit %d, want 25", got.MailboxLimit)
		}
		if err := s.SetMailboxLimit(ctx, 999, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("limit of an unknown domain: %v", err)
		}
		task, _ := submit(s, d, "jana@firma.cz")
		var re *RunningError
		if err := s.DeleteDomain(ctx, d.ID); !errors.As(err, &re) || re.TaskID != task.ID {
			t.Fatalf("delete a domain with a queued mailbox: %v", err)
		}
		cancel(t, s, task)
		if err := s.DeleteDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Domain(ctx, d.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the deleted domain: %v", err)
		}
		if n := count(t, s, `SELECT count(*) FROM migration`); n != 0 {
			t.Errorf("%d migrations of the deleted domain left", n)
		}
		if _, err := s.Domain(ctx, kept.ID); err != nil {
			t.Errorf("the customer's other domain: %v", err)
		}
		if err := s.DeleteDomain(ctx, d.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted twice: %v", err)
		}
	})
}

// A domain's activity counts its migrations, the running ones, and the
// mailboxes by state.
func TestDomainActivity(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		d := seedDomain(t, s)
		if a, err := s.DomainActivity(ctx, d.ID); err != nil || a.Migrations != 0 || len(a.Mailboxes) != 0 {
			t.Fatalf("no migration yet: %+v %v", a, err)
		}
		first, _ := submit(s, d, "a@firma.cz")
		submit(s, d, "b@firma.cz")
		cancel(t, s, first)
		a, err := s.DomainActivity(ctx, d.ID)
		if err != nil || a.Migrations != 2 || a.Running != 1 || a.Mailboxes[StateQueued] != 1 || a.Mailboxes[StateCancelled] != 1 {
			t.Errorf("activity %+v %v", a, err)
		}
	})
}

// The operator lists, disables, deletes people and resets their
// passwords; each ends the person's sessions where it must.
func TestUserAdministration(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		op, _ := s.CreateTenant(ctx, "hosting", KindOperator)
		jana, _ := s.CreateUser(ctx, c.ID, "jana@firma.cz", "old")
		eva, _ := s.CreateUser(ctx, op.ID, "eva@hosting.cz", "hash")
		for tenant, want := range map[int64]int{0: 2, c.ID: 1, op.ID: 1, 999: 0} {
			if us, err := s.Users(ctx, tenant); err != nil || len(us) != want {
				t.Errorf("users of %d: %d %v, want %d", tenant, len(us), err, want)
			}
		}
		session := func(name string, u User) {
			t.Helper()
			if err := s.CreateSession(ctx, []byte(name), u.ID, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}

		session("jana1", jana)
		session("jana2", jana)
		session("eva", eva)
		n, err := s.SetUserPassword(ctx, jana.ID, "new")
		if err != nil || n != 2 {
			t.Fatalf("password reset ended %d sessions: %v", n, err)
		}
		if got, _ := s.UserByEmail(ctx, "jana@firma.cz"); got.PasswordHash != "new" {
			t.Errorf("hash after the reset: %q", got.PasswordHash)
		}
		if _, _, err := s.SessionUser(ctx, []byte("jana1")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a session from before the reset: %v", err)
		}
		if _, _, err := s.SessionUser(ctx, []byte("eva")); err != nil {
			t.Errorf("another person's session after the reset: %v", err)
		}

		session("jana3", jana)
		if err := s.SetUserDisabled(ctx, jana.ID, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByEmail(ctx, "jana@firma.cz"); got.Disabled.IsZero() {
			t.Error("the user does not say it is disabled")
		}
		if _, _, err := s.SessionUser(ctx, []byte("jana3")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a session from before disabling: %v", err)
		}
		session("jana4", jana)
		if u, _, err := s.SessionUser(ctx, []byte("jana4")); !errors.Is(err, ErrDisabled) || u.Email != "jana@firma.cz" {
			t.Errorf("a session of a disabled user: %+v %v", u, err)
		}
		if err := s.SetUserDisabled(ctx, jana.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SessionUser(ctx, []byte("jana4")); err != nil {
			t.Errorf("the session once enabled: %v", err)
		}

		if err := s.DeleteUser(ctx, jana.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByEmail(ctx, "jana@firma.cz"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the deleted user: %v", err)
		}
		if _, _, err := s.SessionUser(ctx, []byte("jana4")); !errors.Is(err, ErrNotFound) {
			t.Errorf("the session of the deleted user: %v", err)
		}
		for name, err := range map[string]error{
			"delete":   s.DeleteUser(ctx, jana.ID),
			"disable":  s.SetUserDisabled(ctx, jana.ID, true),
			"password": func() error { _, err := s.SetUserPassword(ctx, jana.ID, "x"); return err }(),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s an unknown user: %v", name, err)
			}
		}
	})
}
