package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"mailmigrate/internal/engine"
)

func TestAppData(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		op, err := s.CreateTenant(ctx, "hosting", KindOperator)
		if err != nil {
			t.Fatal(err)
		}
		cust, _ := s.CreateTenant(ctx, "Firma s.r.o.", KindCustomer)
		if _, err := s.CreateTenant(ctx, "Firma s.r.o.", KindCustomer); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate tenant: %v", err)
		}
		if err := s.CreateToken(ctx, cust.ID, "panel", []byte("hash1")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TokenTenant(ctx, []byte("hash1")); err != nil || got.ID != cust.ID {
			t.Errorf("token tenant %+v %v", got, err)
		}
		if _, err := s.TokenTenant(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}
		d, err := s.CreateDomain(ctx, Domain{TenantID: cust.ID, Name: "Firma.CZ", MailboxLimit: 10})
		if err != nil || d.Name != "firma.cz" {
			t.Fatalf("domain %+v %v", d, err)
		}
		if got, _ := s.DomainByName(ctx, "FIRMA.cz"); got.ID != d.ID {
			t.Error("domain lookup is not case-insensitive")
		}
		if ds, _ := s.Domains(ctx, op.ID); len(ds) != 0 {
			t.Errorf("operator owns %d domains", len(ds))
		}
		if ds, _ := s.Domains(ctx, 0); len(ds) != 1 {
			t.Errorf("all domains: %d", len(ds))
		}
		m, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "imap.old.cz", SourcePort: 993, SourceSecurity: "tls"},
			[]Task{{Kind: TaskSync, SourceUser: "a@old.cz", DestUser: "a@firma.cz"},
				{Kind: TaskCreate, SourceUser: "b@firma.cz", DestUser: "b@firma.cz"}},
			func(_ *sql.Tx, tasks []Task) error {
				tasks[0].SourceSecret, tasks[0].DestSecret, tasks[0].JobID = []byte{1}, []byte{2}, 77
				return nil
			})
		if err != nil || len(tasks) != 2 || tasks[0].State != StateQueued || tasks[0].JobID != 77 {
			t.Fatalf("migration %+v %+v %v", m, tasks, err)
		}
		task := tasks[0]
		if _, ok, err := s.ClaimTask(ctx, task.ID, 78); ok || err != nil {
			t.Fatalf("a run of another job claimed the task: %v", err)
		}
		if _, ok, err := s.ClaimTask(ctx, task.ID, 77); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if ok, err := s.SetTaskProgress(ctx, task.ID, Progress{MessagesTotal: 9, MessagesDone: 5}); !ok || err != nil {
			t.Fatalf("progress: %v %v", ok, err)
		}
		got, err := s.Task(ctx, task.ID)
		if err != nil || got.State != StateRunning || got.MessagesDone != 5 || string(got.SourceSecret) != "\x01" || got.Started.IsZero() {
			t.Fatalf("task read back %+v %v", got, err)
		}
		if un, _ := s.UnfinishedTasks(ctx); len(un) != 2 {
			t.Errorf("unfinished %d", len(un))
		}
		ok, err := s.FinishTask(ctx, task.ID, TaskEnd{State: StateDone, Progress: Progress{MessagesTotal: 9, MessagesDone: 9},
			Report: &engine.Report{Status: engine.StatusDone, Totals: engine.Totals{Copied: 5}}})
		if !ok || err != nil {
			t.Fatalf("finish: %v %v", ok, err)
		}
		got, _ = s.Task(ctx, task.ID)
		if got.State != StateDone || got.MessagesDone != 9 || got.Report.Totals.Copied != 5 || got.Finished.IsZero() {
			t.Fatalf("finished task %+v", got)
		}
		if n, err := s.ExpireSecrets(ctx, time.Now().Add(-time.Hour)); n != 0 || err != nil {
			t.Errorf("expired %d of the tasks finished just now: %v", n, err)
		}
		if n, err := s.ExpireSecrets(ctx, time.Now().Add(time.Second)); n != 1 || err != nil {
			t.Errorf("expired %d %v", n, err)
		}
		if got, _ := s.Task(ctx, task.ID); got.SourceSecret != nil || got.DestSecret != nil {
			t.Error("secrets survive expiry")
		}
		if _, err := s.Task(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing task: %v", err)
		}
	})
}

func TestUsersAndSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		u, err := s.CreateUser(ctx, c.ID, " Jana@Firma.CZ ", "hash")
		if err != nil || u.Email != "jana@firma.cz" {
			t.Fatalf("user %+v %v", u, err)
		}
		if _, err := s.CreateUser(ctx, c.ID, "jana@firma.cz", "x"); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate user: %v", err)
		}
		if got, err := s.UserByEmail(ctx, "JANA@firma.cz"); err != nil || got.ID != u.ID {
			t.Errorf("by email: %+v %v", got, err)
		}
		s.CreateSession(ctx, []byte("live"), u.ID, time.Now().Add(time.Hour))
		s.CreateSession(ctx, []byte("old"), u.ID, time.Now().Add(-time.Second))
		if gu, gt, err := s.SessionUser(ctx, []byte("live")); err != nil || gu.ID != u.ID || gt.ID != c.ID {
			t.Errorf("session: %+v %+v %v", gu, gt, err)
		}
		if _, _, err := s.SessionUser(ctx, []byte("old")); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session accepted: %v", err)
		}
		s.DeleteSession(ctx, []byte("live"))
		if _, _, err := s.SessionUser(ctx, []byte("live")); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted session accepted: %v", err)
		}
	})
}

// Kept logins are the session's alone, end with their time, and go with
// the session when the customer signs out.
func TestKeptLogins(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		u, _ := s.CreateUser(ctx, c.ID, "jana@firma.cz", "hash")
		for _, sess := range []string{"mine", "other"} {
			if err := s.CreateSession(ctx, []byte(sess), u.ID, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.KeepLogins(ctx, []byte("h1"), []byte("mine"), []byte("sealed-1"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.KeepLogins(ctx, []byte("h2"), []byte("mine"), []byte("sealed-2"), time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.KeptLogins(ctx, []byte("h1"), []byte("mine")); err != nil || string(got) != "sealed-1" {
			t.Errorf("kept: %q %v", got, err)
		}
		for _, c := range []struct{ handle, session string }{{"h1", "other"}, {"h2", "mine"}, {"h3", "mine"}} {
			if got, err := s.KeptLogins(ctx, []byte(c.handle), []byte(c.session)); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s for session %s: %q %v, want not found", c.handle, c.session, got, err)
			}
		}
		if err := s.KeepLogins(ctx, []byte("h4"), []byte("gone"), []byte("x"), time.Now().Add(time.Minute)); err == nil {
			t.Error("logins kept for a session that does not exist")
		}
		s.DeleteSession(ctx, []byte("mine"))
		var n int
		s.db.QueryRow(`SELECT count(*) FROM kept_logins`).Scan(&n)
		if n != 0 {
			t.Errorf("%d kept logins left after signing out", n)
		}
	})
}
