package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/notify"
	"mailmigrate/internal/store"
)

// NotifyArgs is the job of mailing one notification. The store records the
// notification and this job in the transaction of the state change that
// causes it (see store.Notification), so an event gets exactly one job,
// whatever retries and restarts happen around it.
type NotifyArgs struct {
	NotificationID int64 `json:"notification_id"`
}

// Kind implements river.JobArgs.
func (NotifyArgs) Kind() string { return "notify" }

// notifyAttempts bounds the tries of one mail: with the backoff doubling
// from a minute up to an hour, the last one is about six hours after
// the first.
const notifyAttempts = 12

// InsertOpts implements river.JobArgsWithInsertOpts.
func (NotifyArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: notifyAttempts} }

// queueNotification is the store's NotificationQueue: the mail's job, in
// the state change's transaction.
func (r *Runner) queueNotification(ctx context.Context, tx *sql.Tx, n store.Notification) error {
	if _, err := r.client.InsertTx(ctx, tx, NotifyArgs{NotificationID: n.ID}, nil); err != nil {
		return fmt.Errorf("queue the mail of notification %d: %w", n.ID, err)
	}
	return nil
}

type notifyWorker struct {
	river.WorkerDefaults[NotifyArgs]
	r *Runner
}

// NextRetry doubles the wait after each failed attempt, from NotifyRetry up
// to an hour: a relay that is down for maintenance gets time, and the mail
// still arrives the same day.
func (w *notifyWorker) NextRetry(job *river.Job[NotifyArgs]) time.Time {
	wait := w.r.cfg.NotifyRetry << min(job.Attempt-1, 16)
	return time.Now().Add(min(wait, time.Hour))
}

// Work mails a notification unless an earlier run did. A run that fails
// leaves the migration alone: the error is recorded with the notification
// and River tries again later. (The relay may take a mail and the process
// die before it is recorded as sent; that mail is sent again, with the same
// Message-ID.)
func (w *notifyWorker) Work(ctx context.Context, job *river.Job[NotifyArgs]) error {
	st := w.r.cfg.Store
	n, err := st.Notification(ctx, job.Args.NotificationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the migration was deleted
	}
	if err != nil {
		return err
	}
	if !n.Sent.IsZero() {
		return nil
	}
	ev, to, err := w.r.notificationEvent(ctx, n)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		w.r.cfg.Log.Warn("notification: the customer has no panel user to write to", "notification", n.ID, "kind", n.Kind, "migration", n.MigrationID)
		return st.NotificationAttempt(ctx, n.ID, time.Time{}, "no panel user to write to")
	}
	// Each reader gets the mail in the language they read the panel in.
	byLang := map[i18n.Lang][]string{}
	for _, rc := range to {
		byLang[rc.lang] = append(byLang[rc.lang], rc.addr)
	}
	err = nil
	for _, l := range i18n.All {
		if len(byLang[l]) > 0 && err == nil {
			err = w.r.cfg.Notify.Send(ctx, byLang[l], w.r.cfg.Notify.Compose(ev, i18n.New(l)))
		}
	}
	if err != nil {
		w.r.cfg.Log.Warn("notification: mail not sent", "notification", n.ID, "kind", n.Kind, "migration", n.MigrationID, "attempt", job.Attempt, "of", job.MaxAttempts, "error", err)
		if rerr := st.NotificationAttempt(context.WithoutCancel(ctx), n.ID, time.Time{}, err.Error()); rerr != nil {
			w.r.cfg.Log.Error("notification: recording the attempt", "notification", n.ID, "error", rerr)
		}
		return err
	}
	w.r.cfg.Log.Info("notification mailed", "notification", n.ID, "kind", n.Kind, "migration", n.MigrationID, "recipients", len(to))
	return st.NotificationAttempt(context.WithoutCancel(ctx), n.ID, time.Now(), "")
}

// recipient is a panel user a notification is mailed to.
type recipient struct {
	addr string
	lang i18n.Lang
}

// notificationEvent gathers what a notification's mail tells, and its
// recipients: the people who sign in for the customer that owns the domain.
func (r *Runner) notificationEvent(ctx context.Context, n store.Notification) (notify.Event, []recipient, error) {
	st := r.cfg.Store
	ev := notify.Event{ID: n.ID, MigrationID: n.MigrationID, Summary: notify.Summary{Kind: n.Kind}}
	m, err := st.Migration(ctx, n.MigrationID)
	if err != nil {
		return ev, nil, fmt.Errorf("notification %d: %w", n.ID, err)
	}
	d, err := st.Domain(ctx, m.DomainID)
	if err != nil {
		return ev, nil, fmt.Errorf("notification %d: %w", n.ID, err)
	}
	ev.Domain, ev.SourceHost = d.Name, m.SourceHost
	tasks, err := st.Tasks(ctx, m.ID)
	if err != nil {
		return ev, nil, fmt.Errorf("notification %d: %w", n.ID, err)
	}
	for _, t := range tasks {
		ev.Mailboxes = append(ev.Mailboxes, notify.Mailbox{Address: t.DestUser, SourceUser: t.SourceUser, State: t.State, Failure: t.Failure})
		if t.ID == n.TaskID {
			ev.Mailbox, ev.SourceUser = t.DestUser, t.SourceUser
		}
	}
	users, err := st.Users(ctx, d.TenantID)
	if err != nil {
		return ev, nil, fmt.Errorf("notification %d: %w", n.ID, err)
	}
	to := make([]recipient, len(users))
	for i, u := range users {
		l, _ := i18n.Parse(u.Lang) // English for a user who never signed in
		to[i] = recipient{u.Email, l}
	}
	return ev, to, nil
}
