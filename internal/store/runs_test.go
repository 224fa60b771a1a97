package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"mailmigrate/internal/engine"
)

// report is a slice's report that copied n messages.
func report(n int) *engine.Report {
	return &engine.Report{Totals: engine.Totals{Copied: n}, Folders: []engine.FolderReport{{Source: "INBOX", Copied: n}}}
}

// Every run of a task keeps its own report: the slices of one copy are one
// run (whose report counts what each slice copied), and each time a finished task is queued again a new run starts,
// whose kind says why. The task's report is the latest run's.
func TestTaskRuns(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		task, err := submit(s, d, "jana@firma.cz")
		if err != nil {
			t.Fatal(err)
		}
		job := task.JobID
		claim := func() Task {
			t.Helper()
			got, ok, err := s.ClaimTask(ctx, task.ID, job)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			return got
		}
		end := func(e TaskEnd) {
			t.Helper()
			if ok, err := s.FinishTask(ctx, task.ID, e); err != nil || !ok {
				t.Fatalf("finish %s: %v %v", e.State, ok, err)
			}
		}
		requeue := func() {
			t.Helper()
			job++
			ok, err := s.QueueTask(ctx, task.ID, []string{StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled},
				func(*sql.Tx, Task) (int64, error) { return job, nil })
			if err != nil || !ok {
				t.Fatalf("queue: %v %v", ok, err)
			}
			if got, _ := s.Task(ctx, task.ID); !got.Started.IsZero() {
				t.Errorf("a task queued for a new run shows the start %v of the last", got.Started)
			}
		}

		// The first copy, in two slices, pauses for lack of space.
		if got := claim(); got.Started.IsZero() {
			t.Error("a claimed task has no start time")
		}
		end(TaskEnd{State: StateQueued, Report: report(100)})
		claim()
		end(TaskEnd{State: StatePaused, Report: report(50), Failure: &engine.Failure{Kind: "over_quota", Message: "full"}})
		// Resumed: done. Restarted later: a re-sync, cancelled. Then failed, restarted.
		requeue()
		claim()
		end(TaskEnd{State: StateDone, Report: report(150)})
		requeue()
		claim()
		if ok, err := s.TransitionTask(ctx, task.ID, []string{StateQueued, StateRunning}, StateCancelled, nil); err != nil || !ok {
			t.Fatalf("cancel: %v %v", ok, err)
		}
		requeue()
		claim()
		end(TaskEnd{State: StateDone, Report: report(0)})

		runs, err := s.Runs(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			number      int
			kind, state string
			copied      int // -1: no report
		}{
			{4, RunRestart, StateDone, 0},
			{3, RunResync, StateCancelled, -1},
			{2, RunResume, StateDone, 150},
			{1, RunFirst, StatePaused, 150}, // both slices
		}
		if len(runs) != len(want) {
			t.Fatalf("%d runs, want %d: %+v", len(runs), len(want), runs)
		}
		for i, w := range want {
			r := runs[i]
			copied := -1
			if r.Report != nil {
				copied = r.Report.Totals.Copied
			}
			if r.Number != w.number || r.Kind != w.kind || r.State != w.state || copied != w.copied {
				t.Errorf("run %d: number %d, %s, %s, copied %d; want %+v", i, r.Number, r.Kind, r.State, copied, w)
			}
			if r.Started.IsZero() || r.Finished.IsZero() || r.Finished.Before(r.Started) {
				t.Errorf("run %d: started %v, finished %v", r.Number, r.Started, r.Finished)
			}
		}
		if runs[3].Failure == nil || runs[3].Failure.Message != "full" || runs[2].Failure != nil {
			t.Errorf("failures: first run %+v, second %+v", runs[3].Failure, runs[2].Failure)
		}
		got, _ := s.Task(ctx, task.ID)
		if got.Report == nil || got.Report.Totals.Copied != 0 || !got.Started.Equal(runs[0].Started) || !got.Finished.Equal(runs[0].Finished) {
			t.Errorf("the task shows report %+v, %v – %v; the latest run is %v – %v", got.Report, got.Started, got.Finished,
				runs[0].Started, runs[0].Finished)
		}
	})
}

// A database of a version that kept no runs gets one run per task that was
// copied, from what the task kept.
func TestRunsUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
	d, _ := s.CreateDomain(ctx, Domain{TenantID: c.ID, Name: "firma.cz"})
	copied, _ := submit(s, d, "jana@firma.cz")
	waiting, _ := submit(s, d, "petr@firma.cz")
	s.ClaimTask(ctx, copied.ID, copied.JobID)
	s.FinishTask(ctx, copied.ID, TaskEnd{State: StateWarnings, Report: report(7)})
	makeLegacy(t, s.DB(), `DROP TABLE task_run`)
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.Runs(ctx, copied.ID)
	if err != nil || len(runs) != 1 || runs[0].Kind != RunFirst || runs[0].State != StateWarnings ||
		runs[0].Report == nil || runs[0].Report.Totals.Copied != 7 || runs[0].Finished.IsZero() {
		t.Fatalf("runs after the upgrade: %+v, %v", runs, err)
	}
	if runs, err := s.Runs(ctx, waiting.ID); err != nil || len(runs) != 0 {
		t.Errorf("a task never copied has runs %+v, %v", runs, err)
	}
}
