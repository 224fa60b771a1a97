package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// A correction changes the source and only the secrets given, and is
// refused while a task of the migration copies; a schedule keeps the
// secrets past the retention time until it stops.
func TestCorrectionAndSchedule(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		_, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "imap.old.cz", SourcePort: 993},
			[]Task{{Kind: TaskSync, SourceUser: "x@old.cz", DestUser: "x@firma.cz"}}, func(_ *sql.Tx, tasks []Task) error {
				tasks[0].JobID, tasks[0].SourceSecret, tasks[0].DestSecret = 7, []byte("src"), []byte("dst")
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		task := tasks[0]
		c := Correction{SourceHost: "imap.other.cz", SourcePort: 143, SourceSecurity: "starttls",
			Secrets: []TaskSecrets{{TaskID: task.ID, SourceSecret: []byte("new")}}}
		var re *RunningError
		if err := s.CorrectMigration(ctx, task.MigrationID, c); !errors.As(err, &re) || re.TaskID != task.ID {
			t.Fatalf("correction of a queued migration: %v", err)
		}
		if _, ok, _ := s.ClaimTask(ctx, task.ID, 7); !ok {
			t.Fatal("claim")
		}
		if ok, _ := s.FinishTask(ctx, task.ID, TaskEnd{State: StateFailed}); !ok {
			t.Fatal("finish")
		}
		if err := s.CorrectMigration(ctx, task.MigrationID, c); err != nil {
			t.Fatal(err)
		}
		m, _ := s.Migration(ctx, task.MigrationID)
		got, _ := s.Task(ctx, task.ID)
		if m.SourceHost != "imap.other.cz" || m.SourcePort != 143 || m.SourceSecurity != "starttls" ||
			string(got.SourceSecret) != "new" || string(got.DestSecret) != "dst" {
			t.Errorf("after the correction: %+v, secrets %q %q", m, got.SourceSecret, got.DestSecret)
		}

		if _, err := s.StartSchedule(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.ExpireSecrets(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("expired %d under a schedule: %v", n, err)
		}
		mx := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		s.ScheduleRan(ctx, m.ID, time.Now(), mx)
		s.ScheduleRan(ctx, m.ID, time.Now(), time.Now())
		if sch, err := s.Schedule(ctx, m.ID); err != nil || !sch.MXSince.Equal(mx) {
			t.Errorf("schedule %+v, %v: the first MX time is kept", sch, err)
		}
		if ok, _ := s.StopSchedule(ctx, m.ID); !ok {
			t.Fatal("stop")
		}
		if n, _ := s.ExpireSecrets(ctx, time.Now().Add(time.Hour)); n != 1 {
			t.Errorf("expired %d after the schedule stopped", n)
		}
		if _, err := s.Schedule(ctx, m.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("stopped schedule: %v", err)
		}
	})
}
