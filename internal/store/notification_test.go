package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"mailmigrate/internal/engine"
)

// Each event is recorded once, in the state change's transaction, and its
// mail queued there; a change that does not happen records nothing; the
// end of a migration is one notification, not one per mailbox besides.
func TestNotificationEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		var queued []Notification
		s.SetNotificationQueue(func(_ context.Context, tx *sql.Tx, n Notification) error {
			if tx == nil {
				t.Error("no transaction")
			}
			queued = append(queued, n)
			return nil
		})
		job := int64(5000)
		m, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "imap.old.cz", SourcePort: 993},
			[]Task{{Kind: TaskSync, SourceUser: "a@old.cz", DestUser: "a@firma.cz"}, {Kind: TaskSync, SourceUser: "b@old.cz", DestUser: "b@firma.cz"},
				{Kind: TaskSync, SourceUser: "c@old.cz", DestUser: "c@firma.cz"}},
			func(_ *sql.Tx, tasks []Task) error {
				for i := range tasks {
					job++
					tasks[i].JobID = job
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		run := func(task Task, end TaskEnd) {
			t.Helper()
			cur, _ := s.Task(ctx, task.ID)
			if _, ok, err := s.ClaimTask(ctx, task.ID, cur.JobID); !ok || err != nil {
				t.Fatalf("claim: %v %v", ok, err)
			}
			if ok, err := s.FinishTask(ctx, task.ID, end); !ok || err != nil {
				t.Fatalf("finish: %v %v", ok, err)
			}
		}
		kinds := func() (out []string) {
			for _, n := range queued {
				out = append(out, n.Kind)
			}
			return out
		}
		run(tasks[0], TaskEnd{State: StatePaused})
		// Not copying any more: the same end again changes nothing.
		if ok, _ := s.FinishTask(ctx, tasks[0].ID, TaskEnd{State: StatePaused}); ok {
			t.Fatal("a paused task was finished again")
		}
		login := &engine.Failure{Kind: "auth", Side: engine.SideSource, Message: "rejected"}
		run(tasks[1], TaskEnd{State: StateFailed, Failure: login})
		if got := kinds(); len(got) != 2 || got[0] != NotifyPaused || got[1] != NotifyLoginFailed {
			t.Fatalf("notifications %v", got)
		}
		// Resumed with a new job and paused again: a new event.
		if ok, err := s.QueueTask(ctx, tasks[0].ID, []string{StatePaused}, func(*sql.Tx, Task) (int64, error) { job++; return job, nil }); !ok || err != nil {
			t.Fatal(ok, err)
		}
		run(tasks[0], TaskEnd{State: StatePaused})
		// The last mailbox ends the migration: one "finished", though it failed
		// to log in too.
		run(tasks[2], TaskEnd{State: StateFailed, Failure: login})
		if got := kinds(); len(got) != 4 || got[2] != NotifyPaused || got[3] != NotifyFinished || queued[3].TaskID != 0 || queued[3].MigrationID != m.ID {
			t.Fatalf("notifications %v %+v", got, queued)
		}
		// The customer cancels every mailbox of a migration: nothing to tell.
		only, err := submit(s, d, "d@firma.cz")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TransitionTask(ctx, only.ID, []string{StateQueued}, StateCancelled, nil); err != nil {
			t.Fatal(err)
		}
		if len(queued) != 4 {
			t.Errorf("a migration whose every mailbox was cancelled was notified: %v", kinds())
		}

		ns, err := s.Notifications(ctx, d.TenantID, 10)
		if err != nil || len(ns) != 4 {
			t.Fatalf("%d notifications, %v", len(ns), err)
		}
		// Pending first: the finished migration (mailboxes still paused or
		// failed), the second pause, the login failure; the first pause was
		// followed by a new run.
		for i, want := range []struct {
			kind    string
			pending bool
		}{{NotifyFinished, true}, {NotifyPaused, true}, {NotifyLoginFailed, true}, {NotifyPaused, false}} {
			if ns[i].Kind != want.kind || ns[i].Pending != want.pending || ns[i].Domain != "firma.cz" || ns[i].SourceHost != "imap.old.cz" {
				t.Errorf("notification %d: %+v", i, ns[i])
			}
		}
		if ns[1].Mailbox != "a@firma.cz" || ns[0].Mailbox != "" {
			t.Errorf("mailboxes %q %q", ns[1].Mailbox, ns[0].Mailbox)
		}
		other, _ := s.CreateTenant(ctx, "Jiná", KindCustomer)
		if ns, _ := s.Notifications(ctx, other.ID, 10); len(ns) != 0 {
			t.Errorf("another customer sees %d notifications", len(ns))
		}

		if err := s.NotificationAttempt(ctx, ns[0].ID, time.Time{}, "451 later"); err != nil {
			t.Fatal(err)
		}
		n, err := s.Notification(ctx, ns[0].ID)
		if err != nil || n.Attempts != 1 || n.Error != "451 later" || !n.Sent.IsZero() {
			t.Errorf("after a failed attempt: %+v %v", n, err)
		}
	})
}
