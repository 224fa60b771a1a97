// Package jobs runs mailbox tasks in the background with River: a task's
// job is queued in the transaction that queues the task, its runs are
// bounded in time and resumable, because all progress lives in the ledger.
// The workers are thin: they claim the task, open its secrets and call the
// engine. Every change of a task's state is conditional (see store.Store),
// so a cancel is never undone by a run that ends at the same moment.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/oauth2"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/metrics"
	"mailmigrate/internal/notify"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/slots"
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
	// Metrics, if set, hears what this process copies and how.
	Metrics *metrics.Metrics
	// FailedLogins counts failed logins to old servers, shared with the
	// panel's checks; nil: the runner's own, counted in the database.
	FailedLogins *diagnose.FailedLogins
	// LeaseTTL is how long a copy's slot of its source host lasts unless
	// renewed (a third of it): a killed server's slots come back after
	// that long. Default 30 seconds.
	LeaseTTL time.Duration
	// RescueAfter is how long a job may run before River's rescuer takes
	// it for a server that died: longer than a slice plus the time a run
	// takes to stop. Default the slice and 5 minutes.
	RescueAfter time.Duration
	// QueueOnly makes a runner that queues and cancels tasks but runs
	// none: that of a process serving only the panel and the API.
	QueueOnly bool
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
	// SingleProcess says that no other process uses the database (SQLite,
	// whose data directory serve locks): jobs found running at start were
	// left by a process that died. On PostgreSQL, where other servers may
	// be running them, River's rescuer retries the jobs of a server that
	// died once they have run longer than a slice allows.
	SingleProcess bool
	// Log receives one line per notable event (no secrets), with the
	// migration's and the task's IDs as attributes; nil: nothing is logged.
	Log *slog.Logger
	// OAuth are the providers old mailboxes may be signed in to with, by
	// ID (package oauth), as the hosting is registered with them; a task
	// signed in with another one fails, asking for a password.
	OAuth map[string]*oauth.Provider
	// Notify mails the customer's notifications; nil: they are recorded
	// and shown on the panel only.
	Notify *notify.Mailer
	// NotifyRetry is the wait after a mail's first failed attempt; it
	// doubles with each further one, up to an hour. Default 1 minute.
	NotifyRetry time.Duration
	// ResyncStopDays is how many days after the domain's MX points to the
	// hosting a scheduled re-sync stops (see Resync).
	ResyncStopDays int
	// MXHere tells whether a domain's MX records lead to the hosting;
	// nil: the DNS check with Diagnose's resolver and hosting.
	MXHere func(ctx context.Context, domain string) (bool, error)
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

// DisabledWait is how often a disabled customer's queued mailbox looks
// whether the customer was enabled again.
const DisabledWait = time.Minute

// TaskArgs is the job of copying one task.
type TaskArgs struct {
	TaskID int64 `json:"task_id"`
}

// Kind implements river.JobArgs.
func (TaskArgs) Kind() string { return "migrate_task" }

// InsertOpts bounds the retries of a run that fails unexpectedly. A task
// has one job at a time without River's unique jobs: the task's own
// conditional states decide (a task is queued, with a new job, only from a
// final state), and a run of any job but the task's current one does
// nothing.
func (TaskArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 4} }

// transientWait is how long a run waits for a database that is away.
const transientWait = 3 * time.Second

// throttleInline is the longest wait for a throttling old server that a
// run takes itself (Engine.MaxThrottleWait, unless set): a longer one
// gives the worker back, and the task waits queued.
const throttleInline = 5 * time.Second

// Runner owns the River client.
type Runner struct {
	cfg    Config
	client *river.Client[*sql.Tx]
	db     *store.DB
	slots  slots.Slots
	failed *diagnose.FailedLogins
	// holder names this process in the slots it takes.
	holder string
	// run is engine.Run; tests put a stand-in there.
	run func(context.Context, engine.Account, engine.Ledger, engine.Options) (*engine.Report, error)
	// every is how often a run writes its progress into the task.
	every time.Duration
}

// Open prepares River's tables in the store's database and the client:
// jobs are inserted in the store's transactions (one *sql.Tx type for
// both databases).
func Open(ctx context.Context, db *store.DB, cfg Config) (*Runner, error) {
	if cfg.SourceHostLimit <= 0 {
		cfg.SourceHostLimit = 3
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 6
	}
	if cfg.Slice <= 0 {
		cfg.Slice = 10 * time.Minute
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = cfg.Slice + 5*time.Minute
	}
	if cfg.RescueAfter < cfg.Slice+10*time.Second {
		return nil, fmt.Errorf("jobs.rescue_after (%s) must exceed jobs.slice (%s) by 10 seconds at least: a run needs the time to stop", cfg.RescueAfter, cfg.Slice)
	}
	if cfg.SecretRetention <= 0 {
		cfg.SecretRetention = 7 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.NotifyRetry <= 0 {
		cfg.NotifyRetry = time.Minute
	}
	driver, err := queueDriver(ctx, db)
	if err != nil {
		return nil, err
	}
	failed := cfg.FailedLogins
	if failed == nil {
		failed = diagnose.NewFailedLogins(db.Slots())
	}
	host, _ := os.Hostname()
	r := &Runner{cfg: cfg, db: db, slots: db.Slots(), failed: failed, holder: fmt.Sprintf("%s/%d", host, os.Getpid()),
		run: engine.Run, every: 500 * time.Millisecond}
	if cfg.SingleProcess && !cfg.QueueOnly {
		// Slots of copies that a killed run of this server held.
		if err := db.FreeSlots(ctx, sourceSlot("")); err != nil {
			return nil, err
		}
	}
	if r.cfg.MXHere == nil {
		r.cfg.MXHere = r.mxHere
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &taskWorker{r: r})
	river.AddWorker(workers, &expireWorker{r: r})
	river.AddWorker(workers, &resyncWorker{r: r})
	if cfg.Notify != nil {
		river.AddWorker(workers, &notifyWorker{r: r})
	}
	rc := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers: workers,
		// A run is bounded by the slice; River's one-minute default would
		// cancel nearly every copy, and its one-hour rescue would start a
		// second copy of a task still running. Rescue only what exceeds
		// the slice by far: a job of a process that died or hung.
		JobTimeout:           r.jobTimeout(),
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    200 * time.Millisecond,
		// A worker that finished a copy takes the next at once: River's
		// 100 ms default between fetches left a freed slot idle 50-65 ms
		// (median) per task, 10 % of a small mailbox's copy. Fetches
		// still come no more often than a copy ends.
		FetchCooldown: 5 * time.Millisecond,
		// On PostgreSQL River would LISTEN for new jobs, cancels and
		// leadership changes on a connection of its own, which
		// database/sql does not give out: each server polls for them
		// instead (new jobs every FetchPollInterval).
		PollOnly: db.Dialect() == store.Postgres,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return expireArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}), resyncJob()},
		Logger: quietLogger(),
	}
	if cfg.QueueOnly {
		// A client that only inserts: it takes no jobs, runs no periodic
		// ones and stands for no leadership.
		rc.Queues, rc.PeriodicJobs = nil, nil
	}
	r.client, err = river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if cfg.Notify != nil {
		cfg.Store.SetNotificationQueue(r.queueNotification)
	}
	return r, nil
}

// queueDriver is River's driver for the store's database, whose tables it
// brings up to date.
func queueDriver(ctx context.Context, db *store.DB) (riverdriver.Driver[*sql.Tx], error) {
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(db.DB())
	if db.Dialect() == store.Postgres {
		// Over pgx's database/sql driver, so that River inserts jobs in
		// the store's transactions as it does on SQLite.
		driver = riverdatabasesql.New(db.DB())
	}
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if db.Dialect() != store.Postgres {
		if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return nil, fmt.Errorf("job queue tables: %w", err)
		}
		return driver, nil
	}
	// Under the store's schema lock: rivermigrate takes none, and servers
	// starting together would create the tables twice. A version at a
	// time, as Migrate does: a later version uses an enum value an
	// earlier one adds, which PostgreSQL allows only once that is
	// committed.
	for done := false; !done; {
		err := db.SchemaTx(ctx, func(tx *sql.Tx) error {
			res, err := migrator.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1})
			done = err == nil && len(res.Versions) == 0
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("job queue tables: %w", err)
		}
	}
	return driver, nil
}

// Start checks the job of every unfinished task (see reconcile), then
// works jobs until Stop. A runner that does not work does nothing.
func (r *Runner) Start(ctx context.Context) error {
	if r.cfg.QueueOnly {
		return nil
	}
	if err := r.reconcile(ctx, true); err != nil {
		return err
	}
	return r.client.Start(ctx)
}

// Stop lets running copies stop at their next step (what they copied is
// recorded) and waits for them.
func (r *Runner) Stop(ctx context.Context) error {
	if r.cfg.QueueOnly {
		return nil
	}
	return r.client.StopAndCancel(ctx)
}

// jobTimeout bounds a run: its slice and the time to stop after it, which
// leaves River's rescuer a margin to tell a dead run from a slow one.
func (r *Runner) jobTimeout() time.Duration {
	return r.cfg.Slice + min(time.Minute, (r.cfg.RescueAfter-r.cfg.Slice)/2)
}

// QueueTx queues the jobs of new tasks in the transaction that stores them
// and sets their JobID.
func (r *Runner) QueueTx(ctx context.Context, tx *sql.Tx, tasks []store.Task) error {
	params := make([]river.InsertManyParams, len(tasks))
	for i, t := range tasks {
		params[i] = river.InsertManyParams{Args: TaskArgs{TaskID: t.ID}}
	}
	res, err := r.client.InsertManyTx(ctx, tx, params)
	if err != nil {
		return fmt.Errorf("queue %d task(s): %w", len(tasks), err)
	}
	for i := range tasks {
		tasks[i].JobID = res[i].Job.ID
	}
	return nil
}

// queueTx is QueueTx for one task, as store.QueueTask wants it.
func (r *Runner) queueTx(ctx context.Context) func(tx *sql.Tx, t store.Task) (int64, error) {
	return func(tx *sql.Tx, t store.Task) (int64, error) {
		res, err := r.client.InsertTx(ctx, tx, TaskArgs{TaskID: t.ID}, nil)
		if err != nil {
			return 0, fmt.Errorf("queue task %d: %w", t.ID, err)
		}
		return res.Job.ID, nil
	}
}

var (
	unfinished = []string{store.StateQueued, store.StateRunning}
	finished   = []string{store.StateDone, store.StateWarnings, store.StateFailed, store.StatePaused, store.StateCancelled}
)

// Cancel stops a task: it is marked cancelled, which no run undoes, and
// its job is cancelled (a running copy stops at its next step).
func (r *Runner) Cancel(ctx context.Context, taskID int64) error {
	ok, err := r.cfg.Store.TransitionTask(ctx, taskID, unfinished, store.StateCancelled, nil)
	if err != nil || !ok {
		return err
	}
	if r.cfg.QueueOnly {
		// The state is what counts: a copy running elsewhere stops when
		// it next writes its progress, a queued job finds nothing to do.
		// River's cancel also tells the working servers at once, but a
		// client that never started stops taking cancels after 100.
		return nil
	}
	t, err := r.cfg.Store.Task(ctx, taskID)
	if err != nil {
		return err
	}
	if _, err := r.client.JobCancel(ctx, t.JobID); err != nil && !errors.Is(err, river.ErrNotFound) {
		return fmt.Errorf("cancel task %d: %w", taskID, err)
	}
	return nil
}

// Requeue makes a finished task run again (restart after done, resume
// after out of space, retry after a failure): it copies only what is new.
// A task that is queued or copying is left as it is; if another task
// copies into its mailbox, the error is a *store.BusyError.
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
	_, err = r.cfg.Store.QueueTask(ctx, taskID, finished, r.queueTx(ctx))
	return err
}

// reconcile makes sure that every unfinished task has a job that will run
// it. A task whose job was lost is queued again, and one whose job River
// gave up on (a run that hung until it was discarded) fails, so that no
// task shows "copying" forever. At start in a single process, a job still
// running was left by a process that died: its task is queued again with
// a new job.
//
// River offers no way to make a running job available again: JobRetry and
// JobDelete leave running jobs alone, and its rescuer retries a job only
// after RescueStuckJobsAfter (longer than a slice), which is right when
// other processes may be working the job, but would resume a killed
// server's copies only many minutes later. So the orphan is replaced: the
// task gets a new job in the transaction that queues it again, and the
// orphan is cancelled, which River's rescuer completes when it gets to it
// (a run of it would do nothing anyway: it is no longer the task's job).
// With several processes (PostgreSQL), SingleProcess is off and a running
// job is left to the rescuer.
func (r *Runner) reconcile(ctx context.Context, atStart bool) error {
	tasks, err := r.cfg.Store.UnfinishedTasks(ctx)
	if err != nil {
		return fmt.Errorf("check the jobs of unfinished tasks: %w", err)
	}
	for _, t := range tasks {
		job, err := r.client.JobGet(ctx, t.JobID)
		switch {
		case errors.Is(err, river.ErrNotFound):
			taskLog(r.cfg.Log, t).Warn("its job was lost; queued again")
			_, err = r.cfg.Store.QueueTask(ctx, t.ID, unfinished, r.queueTx(ctx))
		case err != nil:
		case job.State == rivertype.JobStateRunning && atStart && r.cfg.SingleProcess:
			taskLog(r.cfg.Log, t).Info("continues after the server stopped")
			if _, err = r.cfg.Store.QueueTask(ctx, t.ID, unfinished, r.queueTx(ctx)); err == nil {
				_, err = r.client.JobCancel(ctx, job.ID)
			}
		case job.FinalizedAt != nil:
			taskLog(r.cfg.Log, t).Warn("its job ended without finishing it", "job_state", job.State)
			_, err = r.cfg.Store.TransitionTask(ctx, t.ID, unfinished, store.StateFailed, stopped(fmt.Errorf("job %d ended %s", job.ID, job.State)))
		}
		if err != nil {
			return fmt.Errorf("check the job of task %d: %w", t.ID, err)
		}
	}
	return nil
}

// stopped is the failure of a task whose runs ended without an outcome.
func stopped(err error) *engine.Failure {
	return &engine.Failure{Kind: "internal", Detail: err.Error(), Text: catalog.M("failure.stopped")}
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
func (w *taskWorker) Timeout(*river.Job[TaskArgs]) time.Duration { return w.r.jobTimeout() }

// Work runs a task's copy for one slice. Whatever happens, the task ends in
// a final state unless River will run the job again: a panic fails it (and
// is not retried: a retry would panic again, each time leaving what it had
// opened), and so does an error on the job's last attempt.
func (w *taskWorker) Work(ctx context.Context, job *river.Job[TaskArgs]) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task %d: panic: %v", job.Args.TaskID, p)
			w.r.cfg.Log.Error("job panicked", "task", job.Args.TaskID, "error", err, "stack", string(debug.Stack()))
			w.giveUp(ctx, job.Args.TaskID, err)
			err = river.JobCancel(err)
		}
	}()
	err = w.work(ctx, job)
	var snooze *river.JobSnoozeError
	if store.Transient(err) && ctx.Err() == nil {
		// The database is away (restarting, a lost connection): the run
		// tries again shortly without using up one of its attempts, which
		// River's growing waits would otherwise spend in a minute and then
		// give up on the task.
		w.r.cfg.Log.Warn("the database is not reachable; the task waits", "task", job.Args.TaskID, "error", err)
		return river.JobSnooze(transientWait)
	}
	if err != nil && !errors.As(err, &snooze) {
		w.r.cfg.Log.Warn("run failed", "task", job.Args.TaskID, "attempt", job.Attempt, "error", err)
	}
	if err != nil && job.Attempt >= job.MaxAttempts && !errors.As(err, &snooze) {
		w.r.cfg.Log.Error("giving up", "task", job.Args.TaskID, "attempts", job.Attempt, "error", err)
		w.giveUp(ctx, job.Args.TaskID, err)
	}
	return err
}

// giveUp fails a task that no run will finish.
func (w *taskWorker) giveUp(ctx context.Context, taskID int64, err error) {
	if _, ferr := w.r.cfg.Store.TransitionTask(context.WithoutCancel(ctx), taskID, unfinished, store.StateFailed, stopped(err)); ferr != nil {
		w.r.cfg.Log.Error("ending the task", "task", taskID, "error", ferr)
	}
}

func (w *taskWorker) work(ctx context.Context, job *river.Job[TaskArgs]) error {
	r := w.r
	st := r.cfg.Store
	t, err := st.Task(ctx, job.Args.TaskID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the migration was deleted
	}
	if err != nil {
		return err
	}
	if t.JobID != job.ID || store.Finished(t.State) {
		return nil // another job runs the task now, or nothing is left to do
	}
	m, err := st.Migration(ctx, t.MigrationID)
	if err != nil {
		return err
	}
	d, err := st.Domain(ctx, m.DomainID)
	if err != nil {
		return err
	}
	// A disabled customer's mailboxes wait as they are until the operator
	// enables it again (or cancels them); a copy under way stops at the
	// end of its slice.
	tenant, err := st.Tenant(ctx, d.TenantID)
	if err != nil {
		return err
	}
	if !tenant.Disabled.IsZero() {
		return river.JobSnooze(DisabledWait)
	}
	host := strings.ToLower(m.SourceHost)
	server := r.failed.Server(ctx, m.SourceHost, m.SourcePort)
	// The host's limit holds across every server on the database; the
	// slot is renewed while the copy runs (see watch).
	lease, wait, err := r.slots.Take(ctx, []slots.Limit{{Key: sourceSlot(server), Max: r.cfg.SourceHostLimit}},
		fmt.Sprintf("%s task %d", r.holder, t.ID), time.Now().Add(r.cfg.LeaseTTL))
	if err != nil {
		return err
	}
	if lease == nil {
		return river.JobSnooze(min(wait, 2*time.Second))
	}
	defer r.slots.Free(context.WithoutCancel(ctx), lease)
	r.cfg.Metrics.Session(host, 1)
	defer r.cfg.Metrics.Session(host, -1)
	// The job path counts logins like the panel's checks do: a password
	// that fails is not tried again and again from the hosting's address.
	loginDone, wait, err := r.failed.Begin(ctx, d.TenantID, server, t.SourceUser)
	if err != nil {
		return err
	}
	if loginDone == nil {
		// Held back by failures, the wait is the window's; by logins of
		// other copies still in progress, seconds. Looking again every
		// minute costs nothing and is refused again while failures last.
		return river.JobSnooze(min(wait, time.Minute))
	}
	// The attempt ends when the login is answered, not when the copy
	// does: a copy that runs for hours (or whose server is killed) must
	// not count as an attempt all that time. A run that ends before it
	// logs in (a claim lost, a secret that does not open) was no attempt.
	authFailed := false
	defer func() { loginDone(authFailed) }()
	t, ok, err := st.ClaimTask(ctx, t.ID, job.ID)
	if err != nil || !ok {
		return err // cancelled meanwhile, if not ok
	}

	acct, err := r.account(t, m)
	if err != nil {
		text := catalog.M("failure.unsealed")
		if errors.Is(err, ErrNoSecrets) {
			text = catalog.M("failure.secrets")
		}
		return w.finish(ctx, t, store.TaskEnd{State: store.StateFailed, Failure: &engine.Failure{Kind: "secrets", Text: text, Detail: err.Error()}})
	}
	if t.Kind == store.TaskCreate {
		// Created here, not at submission, so that a retry finds it made.
		if err := r.cfg.Hosting.Driver.Create(ctx, t.DestUser, acct.DestPassword, 0); err != nil && !errors.Is(err, hosting.ErrExists) {
			return w.finish(ctx, t, store.TaskEnd{State: store.StateFailed, Failure: &engine.Failure{Kind: "hosting", Side: engine.SideDest,
				Text: catalog.M("failure.create"), Detail: err.Error()}})
		}
		if r.cfg.Hosting.MasterUser != "" {
			acct.DestUser, acct.DestPassword = t.DestUser+"*"+r.cfg.Hosting.MasterUser, r.cfg.Hosting.MasterPassword
		}
	}

	slice, cancel := context.WithTimeout(ctx, r.cfg.Slice)
	defer cancel()
	progress := new(engine.Progress)
	opt := r.cfg.Engine
	opt.Progress = progress
	opt.Appended = r.cfg.Metrics.Appended
	opt.SourceLogin = func(err error) { loginDone(imapconn.KindOf(err) == imapconn.ErrAuth) }
	opt.GmailOnce = m.GmailOnce
	if opt.MaxThrottleWait <= 0 {
		opt.MaxThrottleWait = throttleInline
	}
	opt.Throttled = func(until time.Time) {
		r.cfg.Metrics.Throttled(host, "wait")
		r.slowDown(ctx, server, until)
	}
	opt.Conn.Paused = func(time.Duration) { r.cfg.Metrics.Throttled(host, "slow_down") }
	log := taskLog(r.cfg.Log, t)
	opt.Logf = func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	stopProgress := w.watch(t.ID, lease, progress, cancel)
	rep, runErr := w.runEngine(slice, acct, opt)
	stopProgress()

	end := store.TaskEnd{Progress: progressOf(progress.Snapshot()), Report: rep}
	if rep != nil {
		r.cfg.Metrics.Copied(rep.Totals.Copied, rep.Totals.BytesCopied)
	}
	if ctx.Err() != nil || slice.Err() != nil {
		// The slice is over, or the server is stopping, or the task was
		// cancelled: a later run goes on, unless the task is no longer
		// copying.
		end.State = store.StateQueued
		if err := w.finish(context.WithoutCancel(ctx), t, end); err != nil {
			return err
		}
		return river.JobSnooze(0)
	}
	end.Failure = rep.Failure
	var throttled *engine.ThrottledError
	if errors.As(runErr, &throttled) {
		// Not a failure: the old provider asked us to come back later.
		// The worker is given back, and the task waits queued with the
		// time it goes on, which the customer sees.
		log.Info("the old server asks to slow down; the task waits", "until", throttled.Until, "error", runErr)
		end.State = store.StateQueued
		if err := w.finish(ctx, t, end); err != nil {
			return err
		}
		return river.JobSnooze(max(time.Until(throttled.Until), time.Second))
	}
	authFailed = imapconn.KindOf(runErr) == imapconn.ErrAuth && rep.Failure != nil && rep.Failure.Side == engine.SideSource
	var se *engine.SideError
	var sie *engine.SignInError
	if end.Failure != nil && errors.As(runErr, &se) && se.Side == engine.SideSource && !errors.As(runErr, &sie) {
		// A failed login or connection to the old server gets the ranked
		// causes the check would show.
		at := r.cfg.Diagnose
		at.Server, at.User, at.Err = acct.Source, acct.SourceUser, se.Err
		if d := diagnose.Login(ctx, at); len(d.Reasons) > 0 {
			for _, reason := range d.Reasons {
				end.Failure.Causes = append(end.Failure.Causes, reason.Advice)
			}
		}
	}
	switch rep.Status {
	case engine.StatusDone:
		end.State = store.StateDone
	case engine.StatusWarnings:
		end.State = store.StateWarnings
	case engine.StatusOverQuota:
		end.State = store.StatePaused
	default:
		end.State = store.StateFailed
		kind := imapconn.KindOf(runErr)
		if rep.Failure != nil && rep.Failure.Kind == engine.KindSignIn {
			// The provider's sign-in service did not answer: as a
			// server that did not.
			kind = imapconn.ErrConnLost
		}
		switch kind {
		case imapconn.ErrConnect, imapconn.ErrTimeout, imapconn.ErrConnLost:
			// An address this service must not connect to stays one.
			if job.Attempt < job.MaxAttempts && !errors.Is(runErr, imapconn.ErrForbiddenAddress) {
				// Worth another try later; the customer sees why it waits.
				end.State = store.StateQueued
				if err := w.finish(ctx, t, end); err != nil {
					return err
				}
				return runErr
			}
		}
	}
	if end.Failure != nil {
		r.cfg.Metrics.Failed(end.Failure.Kind)
	}
	return w.finish(ctx, t, end)
}

// taskLog is the log of one task: every line names the migration, the
// task, and where it copies from and to.
func taskLog(l *slog.Logger, t store.Task) *slog.Logger {
	return l.With("migration", t.MigrationID, "task", t.ID, "source_user", t.SourceUser, "mailbox", t.DestUser)
}

// runEngine is the engine's run of one account, with a panic turned into
// the account's failure.
func (w *taskWorker) runEngine(ctx context.Context, acct engine.Account, opt engine.Options) (rep *engine.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			w.r.cfg.Log.Error("the engine panicked", "destination", acct.DestUser, "error", err, "stack", string(debug.Stack()))
			f := stopped(err)
			rep = &engine.Report{SourceUser: acct.SourceUser, Dest: acct.DestUser, Status: engine.StatusFailed, Failure: f}
		}
	}()
	return w.r.run(ctx, acct, w.r.cfg.Store, opt)
}

// finish ends a run of a task; a task cancelled meanwhile stays so.
func (w *taskWorker) finish(ctx context.Context, t store.Task, end store.TaskEnd) error {
	ok, err := w.r.cfg.Store.FinishTask(ctx, t.ID, end)
	switch {
	case err != nil:
		return err
	case !ok:
		taskLog(w.r.cfg.Log, t).Info("cancelled")
	case end.State == store.StateQueued:
	case end.Failure != nil:
		taskLog(w.r.cfg.Log, t).Warn(end.State, "failure", end.Failure.Kind, "detail", end.Failure.Detail)
	default:
		taskLog(w.r.cfg.Log, t).Info(end.State)
	}
	return nil
}

// watch writes the engine's progress into the task while the run lasts
// and renews the run's slot of its source host. It stops the run (cancel)
// once the task is no longer copying (it was cancelled), or when the slot
// was lost (this server could not reach the database for longer than the
// slot lasts, and another may have taken it).
func (w *taskWorker) watch(taskID int64, lease []int64, p *engine.Progress, cancel context.CancelFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(w.r.every)
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				ctx := context.Background()
				ok, err := w.r.cfg.Store.SetTaskProgress(ctx, taskID, progressOf(p.Snapshot()))
				if err == nil && !ok {
					cancel()
					return
				}
				if time.Since(renewed) < w.r.cfg.LeaseTTL/3 {
					continue
				}
				held, err := w.r.slots.Hold(ctx, lease, time.Now().Add(w.r.cfg.LeaseTTL))
				switch {
				case err != nil:
					w.r.cfg.Log.Warn("renewing the slot of a copy", "task", taskID, "error", err)
				case !held:
					w.r.cfg.Log.Warn("the copy's slot of its source server lapsed; it continues in its next run", "task", taskID)
					cancel()
					return
				default:
					renewed = time.Now()
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func progressOf(s engine.ProgressSnapshot) store.Progress {
	return store.Progress{FoldersTotal: s.FoldersTotal, FoldersDone: s.FoldersDone,
		MessagesTotal: s.MessagesTotal, MessagesDone: s.MessagesDone, BytesTotal: s.BytesTotal, BytesDone: s.BytesDone}
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
	if t.SourceSignIn != "" {
		if a.SourceToken, err = r.tokenSource(t); err != nil {
			return a, err
		}
	} else if a.SourcePassword, err = r.cfg.Box.Open(t.SourceSecret, SecretContext(t.ID, "source")); err != nil {
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

// ErrNoProvider means a task signs in with a provider the hosting is not
// (or no longer) registered with.
var ErrNoProvider = errors.New("the task signs in with a provider that is not configured")

// tokenSource gives the access tokens of a task whose old mailbox is
// signed in to with its provider: refreshed from the sealed refresh
// token, a rotated one sealed and stored in its place at once, so that the
// next run (on any server) has the one that works.
func (r *Runner) tokenSource(t store.Task) (func(context.Context, string) (string, error), error) {
	p := r.cfg.OAuth[t.SourceSignIn]
	if p == nil {
		return nil, fmt.Errorf("%w: %q (oauth.%s.client_id)", ErrNoProvider, t.SourceSignIn, t.SourceSignIn)
	}
	refresh, err := r.cfg.Box.Open(t.SourceSecret, SecretContext(t.ID, "source-oauth"))
	if err != nil {
		return nil, err
	}
	src := p.NewSource(&oauth2.Token{RefreshToken: refresh}, func(ctx context.Context, rotated string) error {
		// A secret deleted meanwhile stays deleted: the task ended.
		_, err := r.cfg.Store.SetSourceSecret(context.WithoutCancel(ctx), t.ID,
			r.cfg.Box.Seal(rotated, SecretContext(t.ID, "source-oauth")))
		return err
	})
	return src.Token, nil
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

// slowDown lowers the number of copies from a server that throttles: a
// slot of the server's key that no copy holds, lapsing when the wait it
// asked for has passed twice over, so that the other copies from the same
// provider back off too. At most SourceHostLimit-1 such slots stand at
// once (counted under throttledSlot), so that one copy always may go on.
func (r *Runner) slowDown(ctx context.Context, server string, until time.Time) {
	limit := r.cfg.SourceHostLimit
	if limit <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	lapse := until.Add(max(0, time.Until(until)))
	// The server's own key always has room for it: copies hold at most
	// limit slots, and these at most limit-1.
	_, _, err := r.slots.Take(ctx, []slots.Limit{{Key: throttledSlot(server), Max: limit - 1},
		{Key: sourceSlot(server), Max: 2 * limit}}, r.holder+" throttled", lapse)
	if err != nil {
		r.cfg.Log.Warn("lowering the copies from a throttling server", "server", server, "error", err)
	}
}

// throttledSlot counts the slots slowDown took from a server's copies.
func throttledSlot(server string) string { return "throttled " + server }

// sourceSlot is the key of the slots of copies from an old server (see
// diagnose.FailedLogins.Server: several names of one server are one).
func sourceSlot(server string) string { return "source " + server }

// expireArgs is the periodic job that deletes passwords of long-finished
// tasks and the API's expired sign-ins, and checks the jobs of unfinished
// ones.
type expireArgs struct{}

func (expireArgs) Kind() string { return "expire_secrets" }

type expireWorker struct {
	river.WorkerDefaults[expireArgs]
	r *Runner
}

func (w *expireWorker) Work(ctx context.Context, _ *river.Job[expireArgs]) error {
	if err := w.r.db.SweepSlots(ctx); err != nil {
		return err
	}
	if err := w.r.db.Backoffs().Sweep(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		return err
	}
	if err := w.r.db.SweepChecks(ctx, time.Now().Add(-2*time.Hour)); err != nil {
		return err
	}
	if _, err := w.r.cfg.Store.ExpireSignIns(ctx, time.Now()); err != nil {
		return err
	}
	n, err := w.r.cfg.Store.ExpireSecrets(ctx, time.Now().Add(-w.r.cfg.SecretRetention))
	if n > 0 {
		w.r.cfg.Log.Info("deleted the stored passwords of finished tasks", "tasks", n)
	}
	if err != nil {
		return err
	}
	return w.r.reconcile(ctx, false)
}

// quietLogger passes on River's warnings and errors only.
func quietLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("MAILMIGRATE_DEBUG_JOBS") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
