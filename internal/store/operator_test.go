package store

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"
)

// migrateFrom stores a migration from host into the mailboxes, its tasks
// queued with jobs numbered like them and passwords stored.
func migrateFrom(t *testing.T, s *DB, d Domain, host string, mailboxes ...string) []Task {
	t.Helper()
	var tasks []Task
	for _, mb := range mailboxes {
		tasks = append(tasks, Task{Kind: TaskSync, SourceUser: "old-" + mb, DestUser: mb})
	}
	_, tasks, err := s.CreateMigration(context.Background(), Migration{DomainID: d.ID, SourceHost: host, SourcePort: 993},
		tasks, func(_ *sql.Tx, tasks []Task) error {
			for i := range tasks {
				tasks[i].JobID = 1000 + tasks[i].ID
				tasks[i].SourceSecret, tasks[i].DestSecret = []byte("sealed"), []byte("sealed")
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

// mailboxesOf lists the mailboxes of the tasks the filter selects.
func mailboxesOf(t *testing.T, s *DB, f TaskFilter) []string {
	t.Helper()
	rows, err := s.ListTasks(context.Background(), f)
	if err != nil {
		t.Fatalf("%+v: %v", f, err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.DestUser)
	}
	return out
}

// The operator's list holds every customer's tasks, newest first, with
// the names of their customer, domain and old server, and no password;
// each filter narrows it, and pages continue where the last one ended.
func TestListTasksAcrossCustomers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		firma, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		jina, _ := s.CreateTenant(ctx, "Jiná", KindCustomer)
		fd, _ := s.CreateDomain(ctx, Domain{TenantID: firma.ID, Name: "firma.cz"})
		jd, _ := s.CreateDomain(ctx, Domain{TenantID: jina.ID, Name: "jina.cz"})
		jd2, _ := s.CreateDomain(ctx, Domain{TenantID: jina.ID, Name: "jina2.cz"})
		// Oldest first: queued, failed, paused, done, copying, cancelled.
		f := migrateFrom(t, s, fd, "imap.old.cz", "a@firma.cz", "b@firma.cz")
		j := migrateFrom(t, s, jd, "IMAP.Seznam.cz", "c@jina.cz", "d@jina.cz")
		u := migrateFrom(t, s, jd2, "mail_box.example", "e@jina2.cz")
		x := migrateFrom(t, s, jd2, "mailxbox.example", "f@jina2.cz")
		claimAndFinish(t, s, f[1], StateFailed)
		claimAndFinish(t, s, j[0], StatePaused)
		claimAndFinish(t, s, j[1], StateDone)
		if _, ok, err := s.ClaimTask(ctx, u[0].ID, u[0].JobID); !ok || err != nil {
			t.Fatal(ok, err)
		}
		cancel(t, s, x[0])

		all, err := s.ListTasks(ctx, TaskFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"f@jina2.cz", "e@jina2.cz", "d@jina.cz", "c@jina.cz", "b@firma.cz", "a@firma.cz"}
		if got := mailboxesOf(t, s, TaskFilter{}); !slices.Equal(got, want) {
			t.Fatalf("every task: %v, want %v", got, want)
		}
		c := all[3]
		if c.Customer != "Jiná" || c.CustomerID != jina.ID || c.Domain != "jina.cz" || c.DomainID != jd.ID ||
			c.SourceHost != "IMAP.Seznam.cz" || c.State != StatePaused || c.SourceUser != "old-c@jina.cz" || c.MigrationID != j[0].MigrationID {
			t.Errorf("a row: %+v", c)
		}
		for _, r := range all {
			if r.SourceSecret != nil || r.DestSecret != nil {
				t.Errorf("task %d is listed with its passwords", r.ID)
			}
		}

		states := func(filter string) []string {
			st, ok := FilterStates(filter)
			if !ok {
				t.Fatalf("filter %q refused", filter)
			}
			return st
		}
		for _, c := range []struct {
			name string
			f    TaskFilter
			want []string
		}{
			{"running", TaskFilter{States: states(FilterRunning)}, []string{"e@jina2.cz", "a@firma.cz"}},
			{"failed", TaskFilter{States: states(StateFailed)}, []string{"b@firma.cz"}},
			{"paused", TaskFilter{States: states(FilterPaused)}, []string{"c@jina.cz"}},
			{"cancelled", TaskFilter{States: states(StateCancelled)}, []string{"f@jina2.cz"}},
			{"a customer", TaskFilter{TenantID: jina.ID}, []string{"f@jina2.cz", "e@jina2.cz", "d@jina.cz", "c@jina.cz"}},
			{"a domain, in any case", TaskFilter{Domain: " Jina.CZ "}, []string{"d@jina.cz", "c@jina.cz"}},
			{"a part of the old server", TaskFilter{SourceHost: "seznam"}, []string{"d@jina.cz", "c@jina.cz"}},
			{"an underscore is itself", TaskFilter{SourceHost: "l_b"}, []string{"e@jina2.cz"}},
			{"a percent sign is itself", TaskFilter{SourceHost: "%"}, nil},
			{"all together", TaskFilter{States: states(FilterRunning), TenantID: firma.ID, Domain: "firma.cz", SourceHost: "OLD"},
				[]string{"a@firma.cz"}},
			{"another customer's domain", TaskFilter{TenantID: firma.ID, Domain: "jina.cz"}, nil},
			{"a page", TaskFilter{Limit: 2, Offset: 2}, []string{"d@jina.cz", "c@jina.cz"}},
			{"the last page", TaskFilter{Limit: 4, Offset: 4}, []string{"b@firma.cz", "a@firma.cz"}},
			{"past the end", TaskFilter{Limit: 4, Offset: 6}, nil},
		} {
			if got := mailboxesOf(t, s, c.f); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	})
}

func TestFilterStates(t *testing.T) {
	for _, c := range []struct {
		filter string
		want   []string
		ok     bool
	}{
		{"", nil, true},
		{"running", []string{StateQueued, StateRunning}, true},
		{"paused", []string{StatePaused}, true},
		{"failed", []string{StateFailed}, true},
		{"done_with_warnings", []string{StateWarnings}, true},
		{"Failed", nil, false},
		{"everything", nil, false},
	} {
		got, ok := FilterStates(c.filter)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("%q: %v %v, want %v %v", c.filter, got, ok, c.want, c.ok)
		}
	}
}

// An action of the operator speaks for its task while the task keeps the
// job the action gave it: a later run of the task's own ends it. The
// history keeps every action, and goes with the task.
func TestTaskActions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		d := seedDomain(t, s)
		op, _ := s.CreateTenant(ctx, "Hosting", KindOperator)
		tasks := migrateFrom(t, s, d, "imap.old.cz", "a@firma.cz", "b@firma.cz")
		other := migrateFrom(t, s, d, "imap.old.cz", "c@firma.cz")[0]
		task := tasks[0]
		current := func() map[int64]TaskAction {
			t.Helper()
			m, err := s.CurrentTaskActions(ctx, task.MigrationID)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		record := func(task Task, action string, userID int64, email string) TaskAction {
			t.Helper()
			cur, _ := s.Task(ctx, task.ID)
			a, err := s.RecordTaskAction(ctx, TaskAction{TaskID: task.ID, JobID: cur.JobID, Action: action, TenantID: op.ID,
				UserID: userID, UserEmail: email})
			if err != nil || a.ID == 0 || time.Since(a.Created) > time.Minute {
				t.Fatalf("record %s: %+v %v", action, a, err)
			}
			return a
		}
		requeue := func(jobID int64) {
			t.Helper()
			if ok, err := s.QueueTask(ctx, task.ID, []string{StateCancelled, StateFailed, StateDone},
				func(*sql.Tx, Task) (int64, error) { return jobID, nil }); !ok || err != nil {
				t.Fatalf("queue again: %v %v", ok, err)
			}
		}

		if len(current()) != 0 {
			t.Fatal("actions before any")
		}
		cancel(t, s, task)
		cancel(t, s, other)
		record(task, ActionCancel, 7, "petr@hosting.cz")
		record(other, ActionCancel, 0, "")
		if got := current(); len(got) != 1 || got[task.ID].Action != ActionCancel || got[task.ID].UserEmail != "petr@hosting.cz" {
			t.Errorf("after the operator's cancel: %+v", got)
		}
		// The customer restarts it: the cancel no longer explains it.
		requeue(3000)
		if got := current(); len(got) != 0 {
			t.Errorf("after the customer's restart: %+v", got)
		}
		claimAndFinish(t, s, task, StateFailed)
		requeue(4000)
		restart := record(task, ActionRestart, 0, "")
		claimAndFinish(t, s, task, StateDone)
		if got := current(); got[task.ID] != restart {
			t.Errorf("after the operator's restart ran: %+v, want %+v", got, restart)
		}
		history, err := s.TaskActions(ctx, task.ID)
		if err != nil || len(history) != 2 || history[0].Action != ActionCancel || history[0].UserID != 7 ||
			history[1] != restart || restart.JobID != 4000 || restart.TenantID != op.ID {
			t.Errorf("history: %+v %v", history, err)
		}
		cancel(t, s, tasks[1])
		if err := s.DeleteDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, `SELECT count(*) FROM task_action`); n != 0 {
			t.Errorf("%d actions outlive their tasks", n)
		}
	})
}
