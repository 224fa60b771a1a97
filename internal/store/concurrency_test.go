package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// race runs f n times at once and waits for all.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// claimAndFinish runs a task to a final state.
func claimAndFinish(t *testing.T, s *DB, task Task, state string) {
	t.Helper()
	ctx := context.Background()
	cur, err := s.Task(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimTask(ctx, task.ID, cur.JobID); !ok || err != nil {
		t.Fatalf("claim task %d: %v %v", task.ID, ok, err)
	}
	if ok, err := s.FinishTask(ctx, task.ID, TaskEnd{State: state}); !ok || err != nil {
		t.Fatalf("finish task %d: %v %v", task.ID, ok, err)
	}
}

// The state changes that decide something stay right when several
// servers make them at the same moment (on PostgreSQL, each in its own
// transaction on its own connection).
func TestConcurrentStateChanges(t *testing.T) {
	const n = 12
	forEachStore(t, func(t *testing.T, s *DB) {
		d := seedDomain(t, s)
		ctx := context.Background()
		jobs := atomic.Int64{}
		jobs.Store(10000)
		newJob := func(*sql.Tx, Task) (int64, error) { return jobs.Add(1), nil }

		t.Run("submissions of the same mailboxes in other orders", func(t *testing.T) {
			for round := range 5 {
				a, b := fmt.Sprintf("a%d@firma.cz", round), fmt.Sprintf("b%d@firma.cz", round)
				errs := make([]error, n)
				race(n, func(i int) {
					mailboxes := []string{a, b}
					if i%2 == 1 {
						mailboxes = []string{b, a}
					}
					var tasks []Task
					for _, mb := range mailboxes {
						tasks = append(tasks, Task{Kind: TaskSync, SourceUser: "x@old.cz", DestUser: mb})
					}
					_, _, errs[i] = s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "h", SourcePort: 993}, tasks,
						func(*sql.Tx, []Task) error { return nil })
				})
				stored := 0
				for _, err := range errs {
					switch {
					case err == nil:
						stored++
					case !errors.As(err, new(*BusyError)):
						t.Errorf("round %d: %v", round, err)
					}
				}
				if stored != 1 {
					t.Errorf("round %d: %d of %d submissions stored", round, stored, n)
				}
			}
		})

		t.Run("restart pressed at once", func(t *testing.T) {
			task, err := submit(s, d, "restart@firma.cz")
			if err != nil {
				t.Fatal(err)
			}
			claimAndFinish(t, s, task, StateFailed)
			var won atomic.Int32
			race(n, func(int) {
				ok, err := s.QueueTask(ctx, task.ID, []string{StateFailed}, newJob)
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
				}
			})
			if won.Load() != 1 {
				t.Errorf("%d of %d restarts of one task queued it", won.Load(), n)
			}
		})

		t.Run("restarts into one mailbox", func(t *testing.T) {
			var tasks []Task
			for range n {
				task, err := submit(s, d, "shared@firma.cz")
				if err != nil {
					t.Fatal(err)
				}
				claimAndFinish(t, s, task, StateDone)
				tasks = append(tasks, task)
			}
			errs := make([]error, n)
			oks := make([]bool, n)
			race(n, func(i int) {
				oks[i], errs[i] = s.QueueTask(ctx, tasks[i].ID, []string{StateDone}, newJob)
			})
			var winner int64
			for i, ok := range oks {
				if ok {
					if winner != 0 {
						t.Fatalf("tasks %d and %d both queued into one mailbox", winner, tasks[i].ID)
					}
					winner = tasks[i].ID
				}
			}
			if winner == 0 {
				t.Fatal("no restart was queued")
			}
			for i, err := range errs {
				var be *BusyError
				if !oks[i] && (!errors.As(err, &be) || be.TaskID != winner) {
					t.Errorf("refused restart of task %d: %v, want busy with task %d", tasks[i].ID, err, winner)
				}
			}
		})

		t.Run("last mailboxes end at once", func(t *testing.T) {
			var queued atomic.Int32
			s.SetNotificationQueue(func(_ context.Context, _ *sql.Tx, n Notification) error {
				if n.Kind == NotifyFinished {
					queued.Add(1)
				}
				return nil
			})
			defer s.SetNotificationQueue(nil)
			in := make([]Task, n)
			for i := range in {
				in[i] = Task{Kind: TaskSync, SourceUser: "x@old.cz", DestUser: fmt.Sprintf("end%d@firma.cz", i)}
			}
			m, tasks, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "h", SourcePort: 993}, in,
				func(_ *sql.Tx, tasks []Task) error {
					for i := range tasks {
						tasks[i].JobID = jobs.Add(1)
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range tasks {
				if _, ok, err := s.ClaimTask(ctx, task.ID, task.JobID); !ok || err != nil {
					t.Fatalf("claim: %v %v", ok, err)
				}
			}
			race(n, func(i int) {
				if ok, err := s.FinishTask(ctx, tasks[i].ID, TaskEnd{State: StateDone}); !ok || err != nil {
					t.Errorf("finish: %v %v", ok, err)
				}
			})
			var recorded int
			if err := s.queryRow(ctx, `SELECT count(*) FROM notification WHERE migration_id = ? AND kind = ?`,
				m.ID, NotifyFinished).Scan(&recorded); err != nil {
				t.Fatal(err)
			}
			if recorded != 1 || queued.Load() != 1 {
				t.Errorf("the end of a migration was recorded %d times, queued %d times", recorded, queued.Load())
			}
		})

		t.Run("cancel while a run ends", func(t *testing.T) {
			for round := range n {
				task, err := submit(s, d, fmt.Sprintf("cancel%d@firma.cz", round))
				if err != nil {
					t.Fatal(err)
				}
				if _, ok, err := s.ClaimTask(ctx, task.ID, task.JobID); !ok || err != nil {
					t.Fatalf("claim: %v %v", ok, err)
				}
				var finished, cancelled bool
				race(2, func(i int) {
					var err error
					if i == 0 {
						finished, err = s.FinishTask(ctx, task.ID, TaskEnd{State: StateDone})
					} else {
						cancelled, err = s.TransitionTask(ctx, task.ID, []string{StateQueued, StateRunning}, StateCancelled, nil)
					}
					if err != nil {
						t.Error(err)
					}
				})
				got, _ := s.Task(ctx, task.ID)
				runs, _ := s.Runs(ctx, task.ID)
				if finished == cancelled || len(runs) != 1 || runs[0].State != got.State ||
					(finished && got.State != StateDone) || (cancelled && got.State != StateCancelled) {
					t.Fatalf("finished %v, cancelled %v: task %s, runs %+v", finished, cancelled, got.State, runs)
				}
			}
		})

		t.Run("correction while a restart is queued", func(t *testing.T) {
			for round := range n {
				task, err := submit(s, d, fmt.Sprintf("correct%d@firma.cz", round))
				if err != nil {
					t.Fatal(err)
				}
				claimAndFinish(t, s, task, StateFailed)
				fixed := []byte(fmt.Sprintf("fixed %d", round))
				var corrected, restarted bool
				var seen []byte
				race(2, func(i int) {
					if i == 0 {
						err := s.CorrectMigration(ctx, task.MigrationID, Correction{SourceHost: "h2",
							Secrets: []TaskSecrets{{TaskID: task.ID, SourceSecret: fixed}}})
						corrected = err == nil
						if err != nil && !errors.As(err, new(*RunningError)) {
							t.Error(err)
						}
						return
					}
					var err error
					restarted, err = s.QueueTask(ctx, task.ID, []string{StateFailed}, func(_ *sql.Tx, t Task) (int64, error) {
						seen = t.SourceSecret
						return jobs.Add(1), nil
					})
					if err != nil {
						t.Error(err)
					}
				})
				// A correction never lands under a queued run: if both
				// happened, the run was queued with the corrected password.
				if !restarted || (corrected && string(seen) != string(fixed)) {
					t.Fatalf("round %d: corrected %v, restarted %v with secret %q", round, corrected, restarted, seen)
				}
			}
		})
	})
}
