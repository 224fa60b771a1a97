package store

import (
	"context"
	"database/sql"
	"testing"

	"mailmigrate/internal/engine"
)

// A task signed in to with its provider keeps the provider; its sealed
// refresh token is replaced when the provider rotates it, but not brought
// back once the secrets were deleted.
func TestSourceSignIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		cust, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		d, err := s.CreateDomain(ctx, Domain{TenantID: cust.ID, Name: "firma.cz"})
		if err != nil {
			t.Fatal(err)
		}
		_, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "outlook.office365.com", SourcePort: 993, SourceSecurity: "tls"},
			[]Task{{Kind: TaskSync, SourceUser: "a@firma.cz", DestUser: "a@firma.cz", SourceSignIn: "microsoft"},
				{Kind: TaskSync, SourceUser: "b@firma.cz", DestUser: "b@firma.cz"}},
			func(_ *sql.Tx, tasks []Task) error {
				for i := range tasks {
					tasks[i].SourceSecret, tasks[i].DestSecret = []byte("sealed-1"), []byte("d")
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SetSourceSecret(ctx, tasks[0].ID, []byte("sealed-2")); !ok || err != nil {
			t.Fatalf("set: %v %v", ok, err)
		}
		got, err := s.Task(ctx, tasks[0].ID)
		if err != nil || got.SourceSignIn != "microsoft" || string(got.SourceSecret) != "sealed-2" {
			t.Errorf("task %q %q %v", got.SourceSignIn, got.SourceSecret, err)
		}
		if other, _ := s.Task(ctx, tasks[1].ID); other.SourceSignIn != "" || string(other.SourceSecret) != "sealed-1" {
			t.Errorf("the other task: %q %q", other.SourceSignIn, other.SourceSecret)
		}
		if _, err := s.ForgetSecrets(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SetSourceSecret(ctx, tasks[0].ID, []byte("sealed-3")); ok || err != nil {
			t.Errorf("a deleted secret came back: %v %v", ok, err)
		}
		// A new sign-in renews it, for a finished task of that provider.
		if ok, err := s.RenewSignIn(ctx, tasks[0].ID, "microsoft", []byte("sealed-4")); ok || err != nil {
			t.Errorf("renewed a queued task: %v %v", ok, err)
		}
		if ok, err := s.TransitionTask(ctx, tasks[0].ID, []string{StateQueued}, StateFailed, nil); !ok || err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			id       int64
			provider string
			want     bool
		}{{tasks[0].ID, "google", false}, {tasks[1].ID, "microsoft", false}, {tasks[0].ID, "microsoft", true}} {
			if ok, err := s.RenewSignIn(ctx, tc.id, tc.provider, []byte("sealed-4")); ok != tc.want || err != nil {
				t.Errorf("renew task %d with %s: %v %v", tc.id, tc.provider, ok, err)
			}
		}
		if got, _ := s.Task(ctx, tasks[0].ID); string(got.SourceSecret) != "sealed-4" {
			t.Errorf("after renewal: %q", got.SourceSecret)
		}
	})
}

// A mailbox whose sign-in was withdrawn tells the customer to sign in
// again, while the migration's other mailboxes still run.
func TestSignInAgainNotification(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		cust, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		d, _ := s.CreateDomain(ctx, Domain{TenantID: cust.ID, Name: "firma.cz"})
		var kinds []string
		s.SetNotificationQueue(func(_ context.Context, _ *sql.Tx, n Notification) error {
			kinds = append(kinds, n.Kind)
			return nil
		})
		_, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "imap.gmail.com", SourcePort: 993},
			[]Task{{Kind: TaskSync, SourceUser: "a@gmail.com", DestUser: "a@firma.cz", SourceSignIn: "google"},
				{Kind: TaskSync, SourceUser: "b@gmail.com", DestUser: "b@firma.cz", SourceSignIn: "google"}},
			func(_ *sql.Tx, tasks []Task) error {
				for i := range tasks {
					tasks[i].JobID = int64(900 + i)
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.ClaimTask(ctx, tasks[0].ID, tasks[0].JobID); !ok || err != nil {
			t.Fatal(ok, err)
		}
		f := &engine.Failure{Kind: engine.KindSignInAgain, Side: engine.SideSource}
		if ok, err := s.FinishTask(ctx, tasks[0].ID, TaskEnd{State: StateFailed, Failure: f}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if len(kinds) != 1 || kinds[0] != NotifySignInAgain {
			t.Errorf("notifications %v, want %s", kinds, NotifySignInAgain)
		}
	})
}
