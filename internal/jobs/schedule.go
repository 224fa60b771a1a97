package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/store"
)

// resyncEvery is how often a scheduled re-sync copies what is new. The
// periodic job looks every hour and at every start; a migration re-synced
// less than resyncGap ago waits, so that restarts do not add runs.
const (
	resyncEvery = 24 * time.Hour
	resyncGap   = resyncEvery - time.Hour
)

// resyncStates are the states a scheduled re-sync queues again: mailboxes
// that were copied. A failed, paused or cancelled one waits for the
// customer (a login the old server refuses would fail, and notify, daily).
var resyncStates = map[string]bool{store.StateDone: true, store.StateWarnings: true}

// resyncArgs is the periodic job that runs the scheduled re-syncs.
type resyncArgs struct{}

func (resyncArgs) Kind() string { return "scheduled_resync" }

type resyncWorker struct {
	river.WorkerDefaults[resyncArgs]
	r *Runner
}

func (w *resyncWorker) Work(ctx context.Context, _ *river.Job[resyncArgs]) error {
	return w.r.Resync(ctx, time.Now())
}

// resyncJob is the periodic job's entry for the River client.
func resyncJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return resyncArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// mxHere is the default MXHere: the DNS check's verdict on the domain's MX
// records. Without a resolver the MX is never seen at the hosting, and a
// schedule runs until the customer stops it.
func (r *Runner) mxHere(ctx context.Context, domain string) (bool, error) {
	if r.cfg.Diagnose.Resolver == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := diagnose.CheckDNS(ctx, r.cfg.Diagnose.Resolver, domain, r.cfg.Diagnose.Hosting)
	if err != nil {
		return false, err
	}
	for _, row := range rows {
		if row.Record == "MX" {
			return row.Verdict == diagnose.VerdictOK, nil
		}
	}
	return false, nil
}

// Resync runs every re-sync schedule that is due at now: it records when
// the domain's MX was first seen at the hosting, stops the schedule
// ResyncStopDays after that, and otherwise queues the migration's copied
// mailboxes again (only what is new is copied). A mailbox that another
// task copies into now is skipped until the next day: one writer per
// mailbox.
func (r *Runner) Resync(ctx context.Context, now time.Time) error {
	schedules, err := r.cfg.Store.Schedules(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range schedules {
		if err := r.resyncOne(ctx, s, now); err != nil {
			errs = append(errs, fmt.Errorf("re-sync of migration %d: %w", s.MigrationID, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) resyncOne(ctx context.Context, s store.Schedule, now time.Time) error {
	st := r.cfg.Store
	m, err := st.Migration(ctx, s.MigrationID)
	if err != nil {
		return err
	}
	d, err := st.Domain(ctx, m.DomainID)
	if err != nil {
		return err
	}
	mxSince := s.MXSince
	if mxSince.IsZero() {
		here, err := r.cfg.MXHere(ctx, d.Name)
		if err != nil {
			// A DNS hiccup only postpones the stop.
			r.cfg.Log.Warn("re-sync: MX check", "migration", m.ID, "domain", d.Name, "error", err)
		}
		if here {
			mxSince = now
		}
	}
	if !mxSince.IsZero() && now.Sub(mxSince) >= time.Duration(r.cfg.ResyncStopDays)*24*time.Hour {
		if _, err := st.StopSchedule(ctx, m.ID); err != nil {
			return err
		}
		r.cfg.Log.Info("re-sync stopped: the domain's MX points here", "migration", m.ID, "domain", d.Name, "since", mxSince.Format(time.DateOnly))
		return nil
	}
	if !s.LastRun.IsZero() && now.Sub(s.LastRun) < resyncGap {
		return st.ScheduleRan(ctx, m.ID, s.LastRun, mxSince)
	}
	tasks, err := st.Tasks(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if !resyncStates[t.State] {
			continue
		}
		err := r.Requeue(ctx, t.ID)
		var be *store.BusyError
		switch {
		case errors.As(err, &be):
			r.cfg.Log.Info("re-sync: mailbox busy, skipped until the next day", "migration", m.ID, "task", t.ID, "mailbox", t.DestUser, "busy_with", be.TaskID)
		case errors.Is(err, ErrNoSecrets):
			r.cfg.Log.Warn("re-sync: the passwords are missing; skipped", "migration", m.ID, "task", t.ID, "mailbox", t.DestUser)
		case err != nil:
			return err
		}
	}
	return st.ScheduleRan(ctx, m.ID, now, mxSince)
}
