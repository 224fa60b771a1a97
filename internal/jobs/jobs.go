// Package jobs runs mailbox tasks in the background with River: one job per
// task, unique per task, bounded in time and resumable, because all progress
// lives in the ledger. The workers are thin: they load the task, open its
// secrets and call the engine.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
)

// Config is what the workers need besides the store.
type Config struct {
	Store   store.Store
	Box     *secret.Box
	Hosting Hosting
	// Engine holds the engine options (connection timeouts, workers).
	Engine engine.Options
	// SourceHostLimit is how many tasks may copy from one source host at
	// once, so that a bulk migration does not trip the provider's
	// connection caps or abuse detection. Default 3.
	SourceHostLimit int
	// Workers is how many tasks run at once in this process. Default 6.
	Workers int
	// Slice bounds one job run; a longer task continues in the next slice.
	// Default 10 minutes.
	Slice time.Duration
	// SecretRetention is how long passwords are kept after a task
	// finishes, for a final re-sync. Default 7 days.
	SecretRetention time.Duration
	// Diagnose explains failed logins to the old server (its Resolver and
	// Hosting tell whether the name leads to this hosting already).
	Diagnose diagnose.LoginAttempt
	// AllowPrivate lets source addresses lead into internal networks;
	// without it a customer cannot make the service connect there.
	AllowPrivate bool
	// Logf receives one line per notable event (no secrets).
	Logf func(format string, args ...any)
}

// Hosting is the destination side: the hosting's IMAP server and the
// driver that creates mailboxes.
type Hosting struct {
	IMAP   imapconn.Endpoint
	Driver hosting.Driver
	// MasterUser, when set, is a Dovecot master user: the copy logs in as
	// "mailbox*MasterUser" with MasterPassword instead of the mailbox's
	// own password.
	MasterUser     string
	MasterPassword string
}

// TaskArgs is the job of copying one task.
type TaskArgs struct {
	TaskID int64 `json:"task_id"`
}

// Kind implements river.JobArgs.
func (TaskArgs) Kind() string { return "migrate_task" }

// InsertOpts makes the job unique per task while it is waiting or running;
// a finished task can be queued again (restart, resume).
func (TaskArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 4, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

// Runner owns the River client.
type Runner struct {
	cfg    Config
	client *river.Client[*sql.Tx]
	limit  *hostLimiter
}

// Open prepares River's tables in db (the store's SQLite file) and the
// client. With SQLite only one process uses the file, so jobs left
// "running" by a process that died are orphans and are made available at
// once: a killed server resumes every unfinished task when it starts.
func Open(ctx context.Context, db *sql.DB, cfg Config) (*Runner, error) {
	if cfg.SourceHostLimit <= 0 {
		cfg.SourceHostLimit = 3
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 6
	}
	if cfg.Slice <= 0 {
		cfg.Slice = 10 * time.Minute
	}
	if cfg.SecretRetention <= 0 {
		cfg.SecretRetention = 7 * 24 * time.Hour
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("job queue tables: %w", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`); err != nil {
		return nil, fmt.Errorf("job queue: requeue jobs of a stopped server: %w", err)
	}
	r := &Runner{cfg: cfg, limit: &hostLimiter{max: cfg.SourceHostLimit, busy: map[string]int{}}}
	workers := river.NewWorkers()
	river.AddWorker(workers, &taskWorker{r: r})
	river.AddWorker(workers, &expireWorker{r: r})
	r.client, err = river.NewClient(driver, &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers: workers,
		// A run is bounded by the slice; River's one-minute default would
		// cancel nearly every copy, and its one-hour rescue would start a
		// second copy of a task still running. Rescue only what exceeds
		// the slice by far: a job of a process that hung.
		JobTimeout:           cfg.Slice + time.Minute,
		RescueStuckJobsAfter: cfg.Slice + 5*time.Minute,
		FetchPollInterval:    200 * time.Millisecond,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return expireArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})},
		Logger: quietLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return r, nil
}

// Start works jobs until Stop, after queueing every task that has work
// left (a task whose job was lost with a crash between storing it and
// queueing it).
func (r *Runner) Start(ctx context.Context) error {
	if err := r.client.Start(ctx); err != nil {
		return err
	}
	tasks, err := r.cfg.Store.UnfinishedTasks(ctx)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := r.Enqueue(ctx, t.ID); err != nil {
			return err
		}
	}
	return nil
}

// Stop lets running copies stop at their next step (what they copied is
// recorded) and waits for them.
func (r *Runner) Stop(ctx context.Context) error { return r.client.StopAndCancel(ctx) }

// Enqueue queues a task's job (again); a task already queued or running
// is left as it is.
func (r *Runner) Enqueue(ctx context.Context, taskID int64) error {
	res, err := r.client.Insert(ctx, TaskArgs{TaskID: taskID}, nil)
	if err != nil {
		return fmt.Errorf("queue task %d: %w", taskID, err)
	}
	t, err := r.cfg.Store.Task(ctx, taskID)
	if err != nil {
		return err
	}
	if t.JobID != res.Job.ID {
		t.JobID = res.Job.ID
		return r.cfg.Store.UpdateTask(ctx, t)
	}
	return nil
}

// Cancel stops a task: it is marked cancelled first, so that the worker,
// when its run ends, leaves it so.
func (r *Runner) Cancel(ctx context.Context, taskID int64) error {
	t, err := r.cfg.Store.Task(ctx, taskID)
	if err != nil {
		return err
	}
	if store.Finished(t.State) {
		return nil
	}
	t.State, t.Finished = store.StateCancelled, time.Now()
	if err := r.cfg.Store.UpdateTask(ctx, t); err != nil {
		return err
	}
	if t.JobID != 0 {
		if _, err := r.client.JobCancel(ctx, t.JobID); err != nil && !errors.Is(err, river.ErrNotFound) {
			return fmt.Errorf("cancel task %d: %w", taskID, err)
		}
	}
	return nil
}

// Requeue makes a finished task run again (restart after done, resume
// after out of space, retry after a failure): it copies only what is new.
func (r *Runner) Requeue(ctx context.Context, taskID int64) error {
	t, err := r.cfg.Store.Task(ctx, taskID)
	if err != nil {
		return err
	}
	if !store.Finished(t.State) {
		return nil
	}
	if t.SourceSecret == nil || (t.DestSecret == nil && r.cfg.Hosting.MasterUser == "") {
		return ErrNoSecrets
	}
	t.State, t.Failure, t.Finished = store.StateQueued, nil, time.Time{}
	if err := r.cfg.Store.UpdateTask(ctx, t); err != nil {
		return err
	}
	return r.Enqueue(ctx, taskID)
}

// ErrNoSecrets means the passwords of a finished task were deleted after
// the retention time; the customer must enter them again.
var ErrNoSecrets = errors.New("the passwords of this migration are no longer stored; start it again with the passwords")

// SecretContext binds a sealed password to its task and role.
func SecretContext(taskID int64, role string) string {
	return fmt.Sprintf("task %d %s password", taskID, role)
}

type taskWorker struct {
	river.WorkerDefaults[TaskArgs]
	r *Runner
}

// Timeout leaves the bound to the slice inside Work.
func (w *taskWorker) Timeout(*river.Job[TaskArgs]) time.Duration { return w.r.cfg.Slice + time.Minute }

func (w *taskWorker) Work(ctx context.Context, job *river.Job[TaskArgs]) error {
	r := w.r
	st := r.cfg.Store
	t, err := st.Task(ctx, job.Args.TaskID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the migration was deleted
	}
	if err != nil {
		return err
	}
	if store.Finished(t.State) {
		return nil
	}
	m, err := st.Migration(ctx, t.MigrationID)
	if err != nil {
		return err
	}
	host := strings.ToLower(m.SourceHost)
	if !r.limit.acquire(host) {
		return river.JobSnooze(2 * time.Second)
	}
	defer r.limit.release(host)

	acct, err := r.account(t, m)
	if err != nil {
		return w.fail(ctx, t, &engine.Failure{Kind: "secrets", Message: err.Error(), Detail: err.Error()})
	}
	if t.Kind == store.TaskCreate {
		// Created here, not at submission, so that a retry finds it made.
		if err := r.cfg.Hosting.Driver.Create(ctx, t.DestUser, acct.DestPassword, 0); err != nil && !errors.Is(err, hosting.ErrExists) {
			return w.fail(ctx, t, &engine.Failure{Kind: "hosting", Side: engine.SideDest,
				Message: "The new mailbox could not be created on the hosting. Contact support.", Detail: err.Error()})
		}
		if r.cfg.Hosting.MasterUser != "" {
			acct.DestUser, acct.DestPassword = t.DestUser+"*"+r.cfg.Hosting.MasterUser, r.cfg.Hosting.MasterPassword
		}
	}
	t.State, t.Failure = store.StateRunning, nil
	if t.Started.IsZero() {
		t.Started = time.Now()
	}
	if err := st.UpdateTask(ctx, t); err != nil {
		return err
	}

	slice, cancel := context.WithTimeout(ctx, r.cfg.Slice)
	defer cancel()
	progress := new(engine.Progress)
	opt := r.cfg.Engine
	opt.Progress = progress
	opt.Logf = func(format string, args ...any) {
		r.cfg.Logf("task %d (%s): "+format, append([]any{t.ID, t.SourceUser}, args...)...)
	}
	stopProgress := w.watch(t, progress)
	rep, runErr := engine.Run(slice, acct, st, opt)
	stopProgress()

	// Re-read: the task may have been cancelled meanwhile.
	cur, err := st.Task(context.WithoutCancel(ctx), t.ID)
	if err != nil {
		return err
	}
	if cur.State == store.StateCancelled {
		return nil
	}
	cur.Report = rep
	copyProgress(&cur, progress.Snapshot())
	ctxDone := ctx.Err() != nil
	switch {
	case ctxDone:
		// The server is stopping: continue in the next process.
		cur.State = store.StateQueued
		if err := st.UpdateTask(context.WithoutCancel(ctx), cur); err != nil {
			return err
		}
		return river.JobSnooze(0)
	case slice.Err() != nil:
		// The slice is over; go on in a fresh job run.
		if err := st.UpdateTask(ctx, cur); err != nil {
			return err
		}
		return river.JobSnooze(0)
	}
	cur.Finished = time.Now()
	cur.Failure = rep.Failure
	var se *engine.SideError
	if cur.Failure != nil && errors.As(runErr, &se) && se.Side == engine.SideSource {
		// A failed login or connection to the old server gets the ranked
		// causes the check would show.
		at := r.cfg.Diagnose
		at.Server, at.User, at.Err = acct.Source, acct.SourceUser, se.Err
		if d := diagnose.Login(ctx, at); len(d.Reasons) > 0 {
			for _, reason := range d.Reasons {
				cur.Failure.Reasons = append(cur.Failure.Reasons, reason.Advice)
			}
		}
	}
	switch rep.Status {
	case engine.StatusDone:
		cur.State = store.StateDone
	case engine.StatusWarnings:
		cur.State = store.StateWarnings
	case engine.StatusOverQuota:
		cur.State = store.StatePaused
	default:
		cur.State = store.StateFailed
		switch imapconn.KindOf(runErr) {
		case imapconn.ErrConnect, imapconn.ErrTimeout, imapconn.ErrConnLost:
			if job.Attempt < job.MaxAttempts {
				// Worth another try later; the customer sees why it waits.
				cur.State, cur.Finished = store.StateQueued, time.Time{}
				if err := st.UpdateTask(ctx, cur); err != nil {
					return err
				}
				return runErr
			}
		}
	}
	r.cfg.Logf("task %d (%s -> %s): %s", t.ID, t.SourceUser, t.DestUser, cur.State)
	return st.UpdateTask(ctx, cur)
}

// fail ends a task with a failure that no retry can fix.
func (w *taskWorker) fail(ctx context.Context, t store.Task, f *engine.Failure) error {
	t.State, t.Failure, t.Finished = store.StateFailed, f, time.Now()
	w.r.cfg.Logf("task %d (%s): failed: %s", t.ID, t.SourceUser, f.Detail)
	return w.r.cfg.Store.UpdateTask(ctx, t)
}

// watch copies the engine's progress into the task twice a second.
func (w *taskWorker) watch(t store.Task, p *engine.Progress) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				cur, err := w.r.cfg.Store.Task(context.Background(), t.ID)
				if err != nil || cur.State != store.StateRunning {
					continue
				}
				copyProgress(&cur, p.Snapshot())
				_ = w.r.cfg.Store.UpdateTask(context.Background(), cur)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func copyProgress(t *store.Task, s engine.ProgressSnapshot) {
	t.FoldersTotal, t.FoldersDone = s.FoldersTotal, s.FoldersDone
	t.MessagesTotal, t.MessagesDone = s.MessagesTotal, s.MessagesDone
	t.BytesTotal, t.BytesDone = s.BytesTotal, s.BytesDone
}

// account opens a task's secrets into an engine account.
func (r *Runner) account(t store.Task, m store.Migration) (engine.Account, error) {
	a := engine.Account{SourceUser: t.SourceUser, Dest: r.cfg.Hosting.IMAP, DestUser: t.DestUser}
	a.Source = imapconn.Endpoint{Host: m.SourceHost, Port: m.SourcePort, Security: SecurityOf(m.SourceSecurity),
		Untrusted: !r.cfg.AllowPrivate, TrustFingerprint: m.SourceFingerprint}
	if t.SourceSecret == nil {
		return a, ErrNoSecrets
	}
	var err error
	if a.SourcePassword, err = r.cfg.Box.Open(t.SourceSecret, SecretContext(t.ID, "source")); err != nil {
		return a, err
	}
	if r.cfg.Hosting.MasterUser != "" && t.Kind == store.TaskSync {
		a.DestUser, a.DestPassword = t.DestUser+"*"+r.cfg.Hosting.MasterUser, r.cfg.Hosting.MasterPassword
		return a, nil
	}
	if t.DestSecret == nil {
		return a, ErrNoSecrets
	}
	a.DestPassword, err = r.cfg.Box.Open(t.DestSecret, SecretContext(t.ID, "destination"))
	return a, err
}

// SecurityOf maps the stored security name to the connection mode.
func SecurityOf(s string) imapconn.Security {
	switch s {
	case "starttls":
		return imapconn.StartTLS
	case "plain":
		return imapconn.Plain
	}
	return imapconn.TLS
}

// SecurityName is how SecurityOf's input is stored.
func SecurityName(s imapconn.Security) string {
	switch s {
	case imapconn.StartTLS:
		return "starttls"
	case imapconn.Plain:
		return "plain"
	}
	return "tls"
}

// hostLimiter counts running tasks per source host.
type hostLimiter struct {
	mu   sync.Mutex
	max  int
	busy map[string]int
}

func (l *hostLimiter) acquire(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[host] >= l.max {
		return false
	}
	l.busy[host]++
	return true
}

func (l *hostLimiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy[host]--
}

// expireArgs is the periodic job that deletes passwords of long-finished
// tasks.
type expireArgs struct{}

func (expireArgs) Kind() string { return "expire_secrets" }

type expireWorker struct {
	river.WorkerDefaults[expireArgs]
	r *Runner
}

func (w *expireWorker) Work(ctx context.Context, _ *river.Job[expireArgs]) error {
	n, err := w.r.cfg.Store.ExpireSecrets(ctx, time.Now().Add(-w.r.cfg.SecretRetention))
	if n > 0 {
		w.r.cfg.Logf("deleted the stored passwords of %d finished task(s)", n)
	}
	return err
}

// quietLogger passes on River's warnings and errors only.
func quietLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("MAILMIGRATE_DEBUG_JOBS") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
