package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
)

// bench is a runner on a fresh store whose engine is a stand-in.
type bench struct {
	t   *testing.T
	st  *store.DB
	r   *Runner
	box *secret.Box
	d   store.Domain
	n   int
	// gmailOnce is the option of the migrations submit creates.
	gmailOnce bool
}

func newBench(t *testing.T, st *store.DB, cfg Config) *bench {
	ctx := context.Background()
	b := &bench{t: t, st: st}
	b.box, _ = secret.New(bytes.Repeat([]byte{7}, 32))
	cfg.Store, cfg.Box = st, b.box
	cfg.Hosting = Hosting{MasterUser: "master", MasterPassword: "x"}
	var err error
	if b.r, err = Open(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	b.d, _ = st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	return b
}

// submit stores a task into a new mailbox and queues its job, as the API
// does.
func (b *bench) submit() store.Task {
	b.n++
	ctx := context.Background()
	_, tasks, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "imap.old.test", SourcePort: 993,
		SourceSecurity: "tls", GmailOnce: b.gmailOnce},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "a@old.test", DestUser: fmt.Sprintf("a%d@firma.test", b.n)}},
		func(tx *sql.Tx, tasks []store.Task) error {
			tasks[0].SourceSecret = b.box.Seal("x", SecretContext(tasks[0].ID, "source"))
			return b.r.QueueTx(ctx, tx, tasks)
		})
	if err != nil {
		b.t.Fatal(err)
	}
	return tasks[0]
}

// holdQueue starts the runner with its queue paused: River runs none of
// the jobs a test works itself, but its producer takes the cancels that
// River hands it in-process when the driver has no listener (PostgreSQL),
// which a client that never started stops taking after 100.
func (b *bench) holdQueue() {
	ctx := context.Background()
	if err := b.r.Start(ctx); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { b.r.Stop(ctx) })
	// The producer hears of the pause through a channel: until it has,
	// it may still fetch a job submitted after QueuePause returned.
	paused, stop := b.r.client.Subscribe(river.EventKindQueuePaused)
	defer stop()
	if err := b.r.client.QueuePause(ctx, river.QueueDefault, nil); err != nil {
		b.t.Fatal(err)
	}
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		b.t.Fatal("River's producer did not pause the queue in 10 s")
	}
}

func (b *bench) task(id int64) store.Task {
	t, err := b.st.Task(context.Background(), id)
	if err != nil {
		b.t.Fatal(err)
	}
	return t
}

func jobOf(t store.Task, attempt int) *river.Job[TaskArgs] {
	return &river.Job[TaskArgs]{JobRow: &rivertype.JobRow{ID: t.JobID, Attempt: attempt, MaxAttempts: 4}, Args: TaskArgs{TaskID: t.ID}}
}

// A cancel may land while a run writes its progress or ends: the task stays
// cancelled and is not queued again at the next start.
func TestCancelRacesProgressAndFinish(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		b.r.every = 20 * time.Microsecond
		b.holdQueue()
		b.r.run = func(ctx context.Context, a engine.Account, _ engine.Ledger, opt engine.Options) (*engine.Report, error) {
			deadline := time.Now().Add(time.Duration(rand.IntN(3000)) * time.Microsecond)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				opt.Progress.AddAccounts(1)
				time.Sleep(50 * time.Microsecond)
			}
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		const runs = 500
		cancelled := 0
		for i := range runs {
			task := b.submit()
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
					var snooze *river.JobSnoozeError
					if !errors.As(err, &snooze) {
						t.Errorf("work: %v", err)
					}
				}
			})
			time.Sleep(time.Duration(rand.IntN(8000)) * time.Microsecond)
			if err := b.r.Cancel(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
			after := b.task(task.ID)
			wg.Wait()
			final := b.task(task.ID)
			if after.State == store.StateCancelled {
				cancelled++
				if final.State != store.StateCancelled {
					t.Fatalf("run %d: task %d was cancelled, then became %s", i, task.ID, final.State)
				}
			}
			if !store.Finished(final.State) {
				t.Fatalf("run %d: task %d ended %s", i, task.ID, final.State)
			}
		}
		if un, _ := b.st.UnfinishedTasks(ctx); len(un) != 0 {
			t.Errorf("%d task(s) would be queued again at the next start", len(un))
		}
		t.Logf("%d of %d runs were cancelled before they ended", cancelled, runs)
	})
}

// A panic in the engine fails the task with an internal failure, once: the
// job is not retried.
// The copy of a migration that asked for Gmail's messages once each runs
// with the engine's GmailOnce; the others without.
func TestGmailOnceReachesTheEngine(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		for _, once := range []bool{true, false} {
			var got *bool
			b.r.run = func(_ context.Context, _ engine.Account, _ engine.Ledger, opt engine.Options) (*engine.Report, error) {
				got = &opt.GmailOnce
				return &engine.Report{Status: engine.StatusDone}, nil
			}
			b.gmailOnce = once
			task := b.submit()
			if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
				t.Fatal(err)
			}
			if got == nil || *got != once {
				t.Errorf("migration with gmail_once %v: the engine ran with %v", once, got)
			}
		}
	})
}

func TestEnginePanicFailsTask(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		b.r.run = func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error) {
			var m map[string]int
			m["boom"]++
			return nil, nil
		}
		task := b.submit()
		if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
			t.Fatalf("work: %v", err)
		}
		got := b.task(task.ID)
		if got.State != store.StateFailed || got.Failure == nil || got.Failure.Kind != "internal" || got.Report == nil {
			t.Fatalf("after a panic: %s %+v", got.State, got.Failure)
		}
	})
}

// A panic outside the engine (here in the mailbox driver) fails the task
// too, and River is told not to retry.
func TestWorkerPanicFailsTask(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		b.r.cfg.Hosting.Driver = nil // a TaskCreate calls it: nil panics
		b.n++
		_, tasks, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "h"},
			[]store.Task{{Kind: store.TaskCreate, SourceUser: "n@firma.test", DestUser: "n@firma.test"}},
			func(tx *sql.Tx, tasks []store.Task) error {
				tasks[0].SourceSecret = b.box.Seal("x", SecretContext(tasks[0].ID, "source"))
				tasks[0].DestSecret = b.box.Seal("x", SecretContext(tasks[0].ID, "destination"))
				return b.r.QueueTx(ctx, tx, tasks)
			})
		if err != nil {
			t.Fatal(err)
		}
		err = (&taskWorker{r: b.r}).Work(ctx, jobOf(tasks[0], 1))
		var cancel *rivertype.JobCancelError
		if !errors.As(err, &cancel) {
			t.Errorf("a panic was handed to River as %v", err)
		}
		if got := b.task(tasks[0].ID); got.State != store.StateFailed || got.Failure == nil || got.Failure.Kind != "internal" {
			t.Fatalf("after a panic: %s %+v", got.State, got.Failure)
		}
	})
}

// On the job's last attempt an unexpected error fails the task: River
// discards the job and nothing would run the task again.
func TestLastAttemptFailsTask(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		task := b.submit()
		// The migration cannot be read: an error Work returns.
		if _, err := b.st.DB().Exec(`ALTER TABLE migration RENAME COLUMN source_fingerprint TO gone`); err != nil {
			t.Fatal(err)
		}
		w := &taskWorker{r: b.r}
		if err := w.Work(ctx, jobOf(task, 1)); err == nil {
			t.Fatal("no error")
		}
		if got := b.task(task.ID); got.State != store.StateQueued {
			t.Fatalf("before the last attempt: %s", got.State)
		}
		if err := w.Work(ctx, jobOf(task, 4)); err == nil {
			t.Fatal("no error")
		}
		if got := b.task(task.ID); got.State != store.StateFailed || got.Failure == nil || got.Failure.Kind != "internal" {
			t.Fatalf("after the last attempt: %s %+v", got.State, got.Failure)
		}
	})
}

// At start, a job left running by a process that died is replaced, so that
// its task continues at once; a task whose job River gave up on fails.
func TestStartReplacesOrphans(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, sqliteStore(t), Config{SingleProcess: true})
	ran := make(chan int64, 4)
	b.r.run = func(_ context.Context, a engine.Account, _ engine.Ledger, _ engine.Options) (*engine.Report, error) {
		ran <- 1
		return &engine.Report{Status: engine.StatusDone}, nil
	}
	orphan, given := b.submit(), b.submit()
	db := b.st.DB()
	// What a killed server leaves: the job running, the task copying.
	if _, err := db.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ? WHERE id = ?`, time.Now(), orphan.JobID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.st.ClaimTask(ctx, orphan.ID, orphan.JobID); !ok || err != nil {
		t.Fatal("claim", err)
	}
	if _, err := db.Exec(`UPDATE river_job SET state = 'discarded', finalized_at = ? WHERE id = ?`, time.Now(), given.JobID); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.r.Stop(ctx)
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatalf("the orphaned task did not run again: %+v", b.task(orphan.ID))
	}
	for deadline := time.Now().Add(5 * time.Second); b.task(orphan.ID).State != store.StateDone && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := b.task(orphan.ID); got.State != store.StateDone || got.JobID == orphan.JobID {
		t.Errorf("orphaned task: %s, job %d (was %d)", got.State, got.JobID, orphan.JobID)
	}
	if job, err := b.r.client.JobGet(ctx, orphan.JobID); err != nil || job.Metadata == nil || !bytes.Contains(job.Metadata, []byte("cancel_attempted_at")) {
		t.Errorf("the orphan job was not cancelled: %v", err)
	}
	if got := b.task(given.ID); got.State != store.StateFailed || got.Failure == nil || got.Failure.Kind != "internal" {
		t.Errorf("task of a discarded job: %s %+v", got.State, got.Failure)
	}
}

// A task and its job are stored in one transaction: River runs the job,
// which claims the task and finishes it; a submission whose queueing
// fails leaves neither tasks nor jobs.
func TestTaskRunsAsJob(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		b.r.run = func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error) {
			return &engine.Report{Status: engine.StatusDone, Totals: engine.Totals{Copied: 3}}, nil
		}
		_, _, err := st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "imap.old.test", SourcePort: 993},
			[]store.Task{{Kind: store.TaskSync, SourceUser: "a@old.test", DestUser: "lost@firma.test"}},
			func(tx *sql.Tx, tasks []store.Task) error {
				if err := b.r.QueueTx(ctx, tx, tasks); err != nil {
					return err
				}
				return errors.New("sealing failed")
			})
		if err == nil {
			t.Fatal("a failed submission was stored")
		}
		jobs, err := b.r.client.JobList(ctx, river.NewJobListParams().Kinds(TaskArgs{}.Kind()))
		if err != nil || len(jobs.Jobs) != 0 {
			t.Fatalf("a failed submission left %d job(s): %v", len(jobs.Jobs), err)
		}

		if err := b.r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer b.r.Stop(ctx)
		task := b.submit()
		for deadline := time.Now().Add(15 * time.Second); b.task(task.ID).State != store.StateDone; {
			if time.Now().After(deadline) {
				t.Fatalf("the task did not run: %+v", b.task(task.ID))
			}
			time.Sleep(20 * time.Millisecond)
		}
		got := b.task(task.ID)
		runs, err := st.Runs(ctx, task.ID)
		if err != nil || len(runs) != 1 || runs[0].State != store.StateDone || got.Report == nil || got.Report.Totals.Copied != 3 {
			t.Fatalf("task %+v, runs %+v, %v", got, runs, err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			job, err := b.r.client.JobGet(ctx, task.JobID)
			if err == nil && job.State == rivertype.JobStateCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job of the finished task: %+v, %v", job, err)
			}
		}
	})
}

// On PostgreSQL other servers may be running jobs: at start a running job
// is left alone, and River's rescuer retries one whose server died (it has
// run far longer than a slice allows); its task continues with that job.
func TestRescuedAfterServerDied(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, postgresStore(t), Config{Slice: time.Second})
	ran := make(chan string, 4)
	b.r.run = func(_ context.Context, a engine.Account, _ engine.Ledger, _ engine.Options) (*engine.Report, error) {
		ran <- a.DestUser
		return &engine.Report{Status: engine.StatusDone}, nil
	}
	dead, alive := b.submit(), b.submit()
	// What a server that died an hour ago left, and a job another server
	// is running now: the jobs running, their tasks copying.
	for _, c := range []struct {
		task   store.Task
		since  string
		server string
	}{{dead, "1 hour", "dead-server"}, {alive, "1 second", "live-server"}} {
		if _, err := b.st.DB().Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - $1::interval,
			attempted_by = ARRAY[$2] WHERE id = $3`, c.since, c.server, c.task.JobID); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := b.st.ClaimTask(ctx, c.task.ID, c.task.JobID); !ok || err != nil {
			t.Fatal("claim", err)
		}
	}
	if err := b.r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.r.Stop(ctx)
	select {
	case mailbox := <-ran:
		if mailbox != dead.DestUser+"*master" {
			t.Fatalf("ran %s", mailbox)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the task of the dead server did not run again: %+v", b.task(dead.ID))
	}
	for deadline := time.Now().Add(5 * time.Second); b.task(dead.ID).State != store.StateDone && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := b.task(dead.ID); got.State != store.StateDone || got.JobID != dead.JobID {
		t.Errorf("task of the dead server: %s, job %d (was %d)", got.State, got.JobID, dead.JobID)
	}
	job, err := b.r.client.JobGet(ctx, alive.JobID)
	if got := b.task(alive.ID); err != nil || job.State != rivertype.JobStateRunning || got.State != store.StateRunning || got.JobID != alive.JobID {
		t.Errorf("the running job of another server was touched: task %s, job %d; job %+v, %v", got.State, got.JobID, job, err)
	}
}

// sameDatabase is another server on the bench's database: a runner of its
// own (its own River client) sharing the store.
func (b *bench) sameDatabase(cfg Config) *Runner {
	cfg.Store, cfg.Box = b.st, b.box
	cfg.Hosting = Hosting{MasterUser: "master", MasterPassword: "x"}
	r, err := Open(context.Background(), b.st, cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// The limit of copies from one old server holds for all the servers on a
// database together, not for each: three servers with room for four copies
// each run at most two at once from one host.
func TestHostLimitAcrossServers(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		cfg := Config{SourceHostLimit: 2, Workers: 4}
		b := newBench(t, st, cfg)
		runners := []*Runner{b.r, b.sameDatabase(cfg), b.sameDatabase(cfg)}
		var mu sync.Mutex
		running, most := 0, 0
		for _, r := range runners {
			r.run = func(ctx context.Context, _ engine.Account, _ engine.Ledger, _ engine.Options) (*engine.Report, error) {
				mu.Lock()
				running++
				most = max(most, running)
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				running--
				mu.Unlock()
				return &engine.Report{Status: engine.StatusDone}, nil
			}
		}
		var tasks []store.Task
		for range 10 {
			tasks = append(tasks, b.submit())
		}
		for _, r := range runners {
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer r.Stop(ctx)
		}
		for _, task := range tasks {
			for deadline := time.Now().Add(60 * time.Second); b.task(task.ID).State != store.StateDone; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("task %d did not finish: %+v", task.ID, b.task(task.ID))
				}
			}
		}
		if most != 2 {
			t.Errorf("at most %d copies ran at once from one host, want 2 (the limit)", most)
		}
	})
}

// A copy whose slot of its source server lapsed (its server lost the
// database for longer than a slot lasts, and another may have taken the
// slot) stops, and continues in a later run.
func TestCopyStopsWhenItsSlotLapsed(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{LeaseTTL: 300 * time.Millisecond})
		b.r.every = 10 * time.Millisecond
		// Not started: River must not run the job beside this test's run
		// (a paused queue may take it before the pause).
		stopped := make(chan error, 1)
		b.r.run = func(ctx context.Context, _ engine.Account, _ engine.Ledger, _ engine.Options) (*engine.Report, error) {
			// What a server cut off from the database would not see: its
			// slot taken away.
			if _, err := st.DB().Exec(`DELETE FROM slot`); err != nil {
				t.Error(err)
			}
			select {
			case <-ctx.Done():
				stopped <- nil
			case <-time.After(5 * time.Second):
				stopped <- errors.New("the copy went on without its slot")
			}
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		task := b.submit()
		err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1))
		var snooze *river.JobSnoozeError
		if !errors.As(err, &snooze) {
			t.Errorf("work: %v, want a snooze (the task continues later)", err)
		}
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if got := b.task(task.ID); got.State != store.StateQueued {
			t.Errorf("task after its slot lapsed: %s, want queued", got.State)
		}
	})
}

// A server that serves only the panel and the API queues and cancels
// tasks, runs none, and keeps cancelling however many it cancels (River's
// client that never started stops taking cancels after 100).
func TestQueueOnlyRunner(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{QueueOnly: true})
		if err := b.r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		b.r.run = func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error) {
			t.Error("a queue-only server ran a task")
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 120 {
				task := b.submit()
				if err := b.r.Cancel(ctx, task.ID); err != nil {
					t.Error(err)
					return
				}
				if got := b.task(task.ID); got.State != store.StateCancelled {
					t.Errorf("task %d: %s after cancel", task.ID, got.State)
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("cancelling hangs")
		}
		// A worker takes the cancelled tasks' jobs and does nothing.
		w := b.sameDatabase(Config{})
		ran := make(chan struct{}, 1)
		w.run = func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error) {
			ran <- struct{}{}
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		task := b.submit()
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer w.Stop(ctx)
		select {
		case <-ran:
		case <-time.After(20 * time.Second):
			t.Fatal("the worker did not run the task queued by the web server")
		}
		for deadline := time.Now().Add(10 * time.Second); b.task(task.ID).State != store.StateDone; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("task: %+v", b.task(task.ID))
			}
		}
		select {
		case <-ran:
			t.Error("a cancelled task ran")
		default:
		}
	})
}

// A disabled customer's queued mailbox waits, neither copied nor failed,
// on every attempt; enabled again, it is copied.
func TestDisabledCustomerWaits(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{})
		runs := 0
		b.r.run = func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error) {
			runs++
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		task := b.submit()
		if err := st.SetTenantDisabled(ctx, b.d.TenantID, true); err != nil {
			t.Fatal(err)
		}
		w := &taskWorker{r: b.r}
		for _, attempt := range []int{1, 4} {
			err := w.Work(ctx, jobOf(task, attempt))
			var snooze *river.JobSnoozeError
			if !errors.As(err, &snooze) || snooze.Duration != DisabledWait {
				t.Errorf("attempt %d for a disabled customer: %v", attempt, err)
			}
			if got := b.task(task.ID); got.State != store.StateQueued || runs != 0 {
				t.Errorf("attempt %d for a disabled customer: %s, %d copies", attempt, got.State, runs)
			}
		}
		if err := st.SetTenantDisabled(ctx, b.d.TenantID, false); err != nil {
			t.Fatal(err)
		}
		if err := w.Work(ctx, jobOf(task, 1)); err != nil {
			t.Fatal(err)
		}
		if got := b.task(task.ID); got.State != store.StateDone || runs != 1 {
			t.Errorf("once enabled: %s, %d copies", got.State, runs)
		}
	})
}

// awayStore is a store whose database went away.
type awayStore struct{ store.Store }

func (awayStore) Task(context.Context, int64) (store.Task, error) {
	return store.Task{}, fmt.Errorf("read task: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"})
}

// A database that is away (PostgreSQL restarting) makes a run wait and try
// again without spending one of its attempts: River's growing waits would
// spend them all in a minute of errors and give the task up.
func TestDatabaseAwayWaits(t *testing.T) {
	b := newBench(t, sqliteStore(t), Config{})
	task := b.submit()
	b.r.cfg.Store = awayStore{b.st}
	err := (&taskWorker{r: b.r}).Work(context.Background(), jobOf(task, 4))
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) || snooze.Duration != transientWait {
		t.Fatalf("run with the database away: %v, want a snooze of %s", err, transientWait)
	}
	b.r.cfg.Store = b.st
	if got := b.task(task.ID); got.State != store.StateQueued {
		t.Errorf("task after its last attempt met the database away: %s, want still queued", got.State)
	}
}

// A login attempt counts until the old server answers it, not for the
// whole copy: a long copy, or one whose server is killed, must not hold
// the login's and the server's allowance of attempts.
func TestLoginAttemptEndsWithTheLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		failed := diagnose.NewFailedLogins(st.Slots())
		failed.PerAccount = 1
		b := newBench(t, st, Config{FailedLogins: failed})
		// Not started: River must not run the job beside this test's run.
		task := b.submit()
		m, _ := st.Migration(ctx, task.MigrationID)
		server := failed.Server(ctx, m.SourceHost, m.SourcePort)
		during := make(chan bool, 1)
		b.r.run = func(_ context.Context, a engine.Account, _ engine.Ledger, opt engine.Options) (*engine.Report, error) {
			opt.SourceLogin(nil)
			done, _, err := failed.Begin(ctx, b.d.TenantID, server, a.SourceUser)
			if done != nil {
				done(false)
			}
			during <- done != nil && err == nil
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
			t.Fatal(err)
		}
		if !<-during {
			t.Error("a copy that logged in still held its login attempt")
		}
	})
}
