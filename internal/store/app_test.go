package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"mailmigrate/internal/engine"
)

func TestAppData(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
		[]Task{{Kind: TaskSync, SourceUser: "a@old.cz", DestUser: "a@firma.cz", SourceSecret: []byte{1}, DestSecret: []byte{2}},
			{Kind: TaskCreate, SourceUser: "b@firma.cz", DestUser: "b@firma.cz"}})
	if err != nil || len(tasks) != 2 || tasks[0].State != StateQueued {
		t.Fatalf("migration %+v %+v %v", m, tasks, err)
	}
	task := tasks[0]
	task.State, task.MessagesDone, task.Started = StateRunning, 5, time.Now()
	task.Report = &engine.Report{Status: engine.StatusDone, Totals: engine.Totals{Copied: 5}}
	task.Failure = &engine.Failure{Kind: "auth", Message: "x"}
	if err := s.UpdateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	got, err := s.Task(ctx, task.ID)
	if err != nil || got.State != StateRunning || got.MessagesDone != 5 || got.Report.Totals.Copied != 5 ||
		got.Failure.Kind != "auth" || string(got.SourceSecret) != "\x01" || got.Started.IsZero() {
		t.Fatalf("task read back %+v %v", got, err)
	}
	if un, _ := s.UnfinishedTasks(ctx); len(un) != 2 {
		t.Errorf("unfinished %d", len(un))
	}
	got.State, got.Finished = StateDone, time.Now().Add(-48*time.Hour)
	s.UpdateTask(ctx, got)
	if n, err := s.ExpireSecrets(ctx, time.Now().Add(-24*time.Hour)); n != 1 || err != nil {
		t.Errorf("expired %d %v", n, err)
	}
	if got, _ := s.Task(ctx, task.ID); got.SourceSecret != nil || got.DestSecret != nil {
		t.Error("secrets survive expiry")
	}
	if _, err := s.Task(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing task: %v", err)
	}
}

func TestUsersAndSessions(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
}
