package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"mailmigrate/internal/engine"
)

// seedDomain gives a new store a customer with a domain.
func seedDomain(t *testing.T, s *DB) Domain {
	t.Helper()
	ctx := context.Background()
	c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
	d, err := s.CreateDomain(ctx, Domain{TenantID: c.ID, Name: "firma.cz"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// submit stores a one-task migration into mailbox, its job numbered like
// the task.
func submit(s *DB, d Domain, mailbox string) (Task, error) {
	_, tasks, err := s.CreateMigration(context.Background(), Migration{DomainID: d.ID, SourceHost: "imap.old.cz", SourcePort: 993},
		[]Task{{Kind: TaskSync, SourceUser: "x@old.cz", DestUser: mailbox}}, func(_ *sql.Tx, tasks []Task) error {
			for i := range tasks {
				tasks[i].JobID = 1000 + tasks[i].ID
			}
			return nil
		})
	if err != nil {
		return Task{}, err
	}
	return tasks[0], nil
}

// At most one task writes into a mailbox: concurrent submissions of one
// mailbox (in any letter case) store exactly one; the others learn which
// task holds it and leave nothing behind.
func TestOneActiveTaskPerMailbox(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		var wg sync.WaitGroup
		results := make([]error, 16)
		var won Task
		var mu sync.Mutex
		for i := range results {
			mailbox := "jana@firma.cz"
			if i%2 == 1 {
				mailbox = "Jana@FIRMA.cz"
			}
			wg.Go(func() {
				task, err := submit(s, d, mailbox)
				results[i] = err
				if err == nil {
					mu.Lock()
					won = task
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		accepted := 0
		for _, err := range results {
			var be *BusyError
			switch {
			case err == nil:
				accepted++
			case errors.As(err, &be):
				if be.TaskID != won.ID || be.MigrationID != won.MigrationID {
					t.Errorf("busy names task %d of migration %d, want %d of %d", be.TaskID, be.MigrationID, won.ID, won.MigrationID)
				}
			default:
				t.Errorf("submission: %v", err)
			}
		}
		if accepted != 1 {
			t.Fatalf("%d of %d concurrent submissions into one mailbox were stored", accepted, len(results))
		}
		if ms, _ := s.Migrations(ctx, d.ID); len(ms) != 1 {
			t.Errorf("refused submissions left %d migrations", len(ms))
		}

		// A queued task of a migration whose other task is refused does not
		// stay either.
		_, _, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "h"},
			[]Task{{Kind: TaskSync, DestUser: "petr@firma.cz"}, {Kind: TaskSync, DestUser: "jana@firma.cz"}},
			func(*sql.Tx, []Task) error { return nil })
		if !errors.As(err, new(*BusyError)) {
			t.Fatalf("second mailbox busy: %v", err)
		}
		if _, err := submit(s, d, "petr@firma.cz"); err != nil {
			t.Errorf("a refused migration's other mailbox stayed busy: %v", err)
		}

		// Once the task has finished, the mailbox takes a new one; restarting
		// the finished one is then refused.
		if _, ok, _ := s.ClaimTask(ctx, won.ID, won.JobID); !ok {
			t.Fatal("claim")
		}
		if ok, err := s.FinishTask(ctx, won.ID, TaskEnd{State: StateDone}); !ok || err != nil {
			t.Fatalf("finish: %v %v", ok, err)
		}
		resync, err := submit(s, d, "JANA@firma.cz")
		if err != nil {
			t.Fatalf("re-sync after the first finished: %v", err)
		}
		queued := false
		ok, err := s.QueueTask(ctx, won.ID, []string{StateDone}, func(*sql.Tx, Task) (int64, error) { queued = true; return 5, nil })
		var be *BusyError
		if ok || !errors.As(err, &be) || be.TaskID != resync.ID || queued {
			t.Fatalf("restart while another task runs: %v %v (job queued: %v)", ok, err, queued)
		}
		if got, _ := s.Task(ctx, won.ID); got.State != StateDone {
			t.Errorf("a refused restart left the task %s", got.State)
		}
		s.TransitionTask(ctx, resync.ID, []string{StateQueued, StateRunning}, StateCancelled, nil)
		ok, err = s.QueueTask(ctx, won.ID, []string{StateDone}, func(_ *sql.Tx, task Task) (int64, error) { return 5, nil })
		if got, _ := s.Task(ctx, won.ID); !ok || err != nil || got.State != StateQueued || got.JobID != 5 {
			t.Errorf("restart after the other was cancelled: %v %v %+v", ok, err, got)
		}
		// A job that cannot be queued leaves the task as it was.
		s.TransitionTask(ctx, won.ID, []string{StateQueued}, StateFailed, nil)
		ok, err = s.QueueTask(ctx, won.ID, []string{StateFailed}, func(*sql.Tx, Task) (int64, error) { return 0, errors.New("queue down") })
		if got, _ := s.Task(ctx, won.ID); ok || err == nil || got.State != StateFailed || got.JobID != 5 {
			t.Errorf("a failed job insert changed the task: %v %v %+v", ok, err, got)
		}
	})
}

// State changes are conditional: a cancelled task takes no more progress,
// no end of run, and no claim by its old job.
func TestTaskTransitionsAreConditional(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		task, err := submit(s, d, "eva@firma.cz")
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.SetTaskProgress(ctx, task.ID, Progress{MessagesDone: 1}); ok {
			t.Error("progress written into a queued task")
		}
		if _, ok, _ := s.ClaimTask(ctx, task.ID, task.JobID); !ok {
			t.Fatal("claim")
		}
		if ok, _ := s.TransitionTask(ctx, task.ID, []string{StateQueued, StateRunning}, StateCancelled, nil); !ok {
			t.Fatal("cancel")
		}
		if ok, _ := s.TransitionTask(ctx, task.ID, []string{StateQueued, StateRunning}, StateCancelled, nil); ok {
			t.Error("a cancelled task was cancelled again")
		}
		if ok, _ := s.SetTaskProgress(ctx, task.ID, Progress{MessagesDone: 3}); ok {
			t.Error("progress written into a cancelled task")
		}
		for _, state := range []string{StateDone, StateQueued} {
			if ok, _ := s.FinishTask(ctx, task.ID, TaskEnd{State: state}); ok {
				t.Errorf("a run of a cancelled task ended it %s", state)
			}
		}
		if _, ok, _ := s.ClaimTask(ctx, task.ID, task.JobID); ok {
			t.Error("a cancelled task was claimed")
		}
		if un, _ := s.UnfinishedTasks(ctx); len(un) != 0 {
			t.Errorf("a cancelled task is unfinished: %+v", un)
		}
		if _, err := s.TransitionTask(ctx, task.ID, []string{StateCancelled}, StateQueued, nil); err == nil {
			t.Error("a task was queued without a job")
		}
		if _, err := s.FinishTask(ctx, task.ID, TaskEnd{State: StateRunning}); err == nil {
			t.Error("a run ended in copying")
		}
		f := &engine.Failure{Kind: "internal", Message: "m"}
		task2, _ := submit(s, d, "eva2@firma.cz")
		if ok, _ := s.TransitionTask(ctx, task2.ID, []string{StateQueued}, StateFailed, f); !ok {
			t.Fatal("fail")
		}
		if got, _ := s.Task(ctx, task2.ID); got.Failure == nil || got.Failure.Kind != "internal" || got.Finished.IsZero() {
			t.Errorf("failed task %+v", got)
		}
	})
}

// A database of an older version, where two tasks copy into one mailbox,
// opens: the newer task is cancelled.
func TestUpgradeCancelsDoubleTasks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	makeLegacy(t, db, `DROP INDEX task_active_mailbox`, `ALTER TABLE task DROP COLUMN dest_key`)
	for _, q := range []string{`INSERT INTO tenant (id, name, kind, created) VALUES (1, 'F', 'customer', 0)`,
		`INSERT INTO domain (id, tenant_id, name, created) VALUES (1, 1, 'firma.cz', 0)`,
		`INSERT INTO migration (id, domain_id, source_host, source_port, source_security, created) VALUES (1, 1, 'h', 993, 'tls', 0)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	for i, dest := range []string{"jana@firma.cz", "Jana@firma.cz", "petr@firma.cz"} {
		if _, err := db.Exec(`INSERT INTO task (migration_id, kind, source_user, dest_user, state, created) VALUES (1, 'sync', 'x', ?, ?, 0)`,
			dest, []string{StateRunning, StateQueued, StateQueued}[i]); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var states []string
	tasks, _ := s.Tasks(context.Background(), 1)
	for _, task := range tasks {
		states = append(states, task.State)
	}
	if fmt.Sprint(states) != "[copying cancelled queued]" {
		t.Errorf("after the upgrade: %v", states)
	}
}
