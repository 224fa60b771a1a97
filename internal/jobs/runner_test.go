package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

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
}

func newBench(t *testing.T, cfg Config) *bench {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bench{t: t, st: st}
	b.box, _ = secret.New(bytes.Repeat([]byte{7}, 32))
	cfg.Store, cfg.Box = st, b.box
	cfg.Hosting = Hosting{MasterUser: "master", MasterPassword: "x"}
	if b.r, err = Open(ctx, st.DB(), cfg); err != nil {
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
	_, tasks, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "imap.old.test", SourcePort: 993, SourceSecurity: "tls"},
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
	ctx := context.Background()
	b := newBench(t, Config{})
	b.r.every = 20 * time.Microsecond
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
}

// A panic in the engine fails the task with an internal failure, once: the
// job is not retried.
func TestEnginePanicFailsTask(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, Config{})
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
}

// A panic outside the engine (here in the mailbox driver) fails the task
// too, and River is told not to retry.
func TestWorkerPanicFailsTask(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, Config{})
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
}

// On the job's last attempt an unexpected error fails the task: River
// discards the job and nothing would run the task again.
func TestLastAttemptFailsTask(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, Config{})
	task := b.submit()
	if _, err := b.st.DB().Exec(`UPDATE migration SET created = 'garbled' WHERE id = ?`, task.MigrationID); err != nil {
		t.Fatal(err) // the migration cannot be read: an error Work returns
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
}

// At start, a job left running by a process that died is replaced, so that
// its task continues at once; a task whose job River gave up on fails.
func TestStartReplacesOrphans(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, Config{SingleProcess: true})
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
