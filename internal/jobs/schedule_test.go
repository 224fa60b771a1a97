package jobs

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"mailmigrate/internal/store"
)

// A scheduled re-sync queues the copied mailboxes once a day, skips a
// mailbox another task copies into (no error), and stops by itself the
// configured days after the domain's MX points to the hosting.
func TestScheduledResync(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		var mx atomic.Bool
		b := newBench(t, st, Config{ResyncStopDays: 3, MXHere: func(_ context.Context, domain string) (bool, error) {
			if domain != "firma.test" {
				t.Errorf("MX asked for %s", domain)
			}
			return mx.Load(), nil
		}})
		ctx := context.Background()
		task := b.submit()
		done := func(id int64) {
			t.Helper()
			cur := b.task(id)
			if _, ok, err := b.st.ClaimTask(ctx, id, cur.JobID); !ok || err != nil {
				t.Fatalf("claim %d: %v", id, err)
			}
			if ok, err := b.st.FinishTask(ctx, id, store.TaskEnd{State: store.StateDone}); !ok || err != nil {
				t.Fatalf("finish %d: %v", id, err)
			}
		}
		done(task.ID)
		if _, err := b.st.StartSchedule(ctx, task.MigrationID); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := b.r.Resync(ctx, now); err != nil {
			t.Fatal(err)
		}
		if got := b.task(task.ID); got.State != store.StateQueued || got.JobID == task.JobID {
			t.Fatalf("after the re-sync: %s, job %d", got.State, got.JobID)
		}
		done(task.ID)
		// The same day again: nothing is queued.
		if err := b.r.Resync(ctx, now.Add(time.Hour)); err != nil || b.task(task.ID).State != store.StateDone {
			t.Fatalf("a second re-sync on one day: %v, %s", err, b.task(task.ID).State)
		}

		// Another migration copies into the mailbox: skipped, not an error.
		_, other, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "imap.x.test", SourcePort: 993, SourceSecurity: "tls"},
			[]store.Task{{Kind: store.TaskSync, SourceUser: "b@x.test", DestUser: task.DestUser}},
			func(tx *sql.Tx, tasks []store.Task) error { return b.r.QueueTx(ctx, tx, tasks) })
		if err != nil {
			t.Fatal(err)
		}
		day := 24 * time.Hour
		if err := b.r.Resync(ctx, now.Add(day)); err != nil || b.task(task.ID).State != store.StateDone {
			t.Fatalf("re-sync of a busy mailbox: %v, %s", err, b.task(task.ID).State)
		}
		done(other[0].ID)

		// The MX moves here on day 2; the schedule stops three days later.
		mx.Store(true)
		if err := b.r.Resync(ctx, now.Add(2*day)); err != nil || b.task(task.ID).State != store.StateQueued {
			t.Fatalf("re-sync on day 2: %v, %s", err, b.task(task.ID).State)
		}
		done(task.ID)
		sch, err := b.st.Schedule(ctx, task.MigrationID)
		if err != nil || sch.MXSince.IsZero() {
			t.Fatalf("schedule %+v: %v", sch, err)
		}
		if err := b.r.Resync(ctx, now.Add(5*day)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.st.Schedule(ctx, task.MigrationID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the schedule still runs three days after the MX moved: %v", err)
		}
		if b.task(task.ID).State != store.StateDone {
			t.Error("a stopped schedule queued the mailbox")
		}
	})
}
