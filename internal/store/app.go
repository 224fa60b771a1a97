package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
)

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnix(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func conflict(err error, what string) error {
	if isUnique(err) {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return err
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// CreateTenant implements Store.
func (l *DB) CreateTenant(ctx context.Context, name, kind string) (Tenant, error) {
	t := Tenant{Name: name, Kind: kind, Created: time.Now().UTC().Truncate(time.Millisecond)}
	err := l.queryRow(ctx, `INSERT INTO tenant (name, kind, created) VALUES (?, ?, ?) RETURNING id`,
		name, kind, unix(t.Created)).Scan(&t.ID)
	if err != nil {
		return t, conflict(err, fmt.Sprintf("tenant %q", name))
	}
	return t, nil
}

const tenantCols = `id, name, kind, created, disabled`

func scanTenant(row interface{ Scan(...any) error }, extra ...any) (Tenant, error) {
	var t Tenant
	var created, disabled int64
	err := row.Scan(append([]any{&t.ID, &t.Name, &t.Kind, &created, &disabled}, extra...)...)
	t.Created, t.Disabled = fromUnix(created), fromUnix(disabled)
	return t, notFound(err)
}

// Tenant implements Store.
func (l *DB) Tenant(ctx context.Context, id int64) (Tenant, error) {
	return scanTenant(l.queryRow(ctx, `SELECT `+tenantCols+` FROM tenant WHERE id = ?`, id))
}

// Tenants implements Store.
func (l *DB) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := l.query(ctx, `SELECT `+tenantCols+` FROM tenant ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CreateToken implements Store.
func (l *DB) CreateToken(ctx context.Context, tenantID int64, name string, hash []byte) error {
	_, err := l.exec(ctx, `INSERT INTO api_token (tenant_id, name, hash, created) VALUES (?, ?, ?, ?)`,
		tenantID, name, hash, unix(time.Now()))
	return conflict(err, "token")
}

// tokenUseStep is how precisely a token's last use is kept: a write per
// minute and token, not one per request.
const tokenUseStep = time.Minute

// TokenTenant implements Store.
func (l *DB) TokenTenant(ctx context.Context, hash []byte) (Tenant, error) {
	var id, lastUsed int64
	t, err := scanTenant(l.queryRow(ctx, `SELECT t.id, t.name, t.kind, t.created, t.disabled, k.id, k.last_used
		FROM api_token k JOIN tenant t ON t.id = k.tenant_id WHERE k.hash = ?`, hash), &id, &lastUsed)
	if err != nil {
		return t, err
	}
	if !t.Disabled.IsZero() {
		return t, ErrDisabled
	}
	if now := time.Now(); now.Sub(fromUnix(lastUsed)) >= tokenUseStep {
		// Bookkeeping only: a request is not refused because its use could
		// not be written, and the next request writes it.
		_, _ = l.exec(ctx, `UPDATE api_token SET last_used = ? WHERE id = ?`, unix(now), id)
	}
	return t, nil
}

const domainCols = `id, tenant_id, name, mailbox_limit, created`

func scanDomain(row interface{ Scan(...any) error }) (Domain, error) {
	var d Domain
	var created int64
	err := row.Scan(&d.ID, &d.TenantID, &d.Name, &d.MailboxLimit, &created)
	d.Created = fromUnix(created)
	return d, notFound(err)
}

// CreateDomain implements Store.
func (l *DB) CreateDomain(ctx context.Context, d Domain) (Domain, error) {
	d.Name = strings.ToLower(d.Name)
	d.Created = time.Now().UTC().Truncate(time.Millisecond)
	err := l.queryRow(ctx, `INSERT INTO domain (tenant_id, name, mailbox_limit, created) VALUES (?, ?, ?, ?) RETURNING id`,
		d.TenantID, d.Name, d.MailboxLimit, unix(d.Created)).Scan(&d.ID)
	if err != nil {
		return d, conflict(err, fmt.Sprintf("domain %q", d.Name))
	}
	return d, nil
}

// Domain implements Store.
func (l *DB) Domain(ctx context.Context, id int64) (Domain, error) {
	return scanDomain(l.queryRow(ctx, `SELECT `+domainCols+` FROM domain WHERE id = ?`, id))
}

// DomainByName implements Store.
func (l *DB) DomainByName(ctx context.Context, name string) (Domain, error) {
	return scanDomain(l.queryRow(ctx, `SELECT `+domainCols+` FROM domain WHERE name = ?`, strings.ToLower(name)))
}

// Domains implements Store.
func (l *DB) Domains(ctx context.Context, tenantID int64) ([]Domain, error) {
	where, args := "", []any(nil)
	if tenantID != 0 {
		where, args = ` WHERE tenant_id = ?`, []any{tenantID}
	}
	rows, err := l.query(ctx, `SELECT `+domainCols+` FROM domain`+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const migrationCols = `id, domain_id, source_host, source_port, source_security, source_fingerprint, gmail_once, created`

func scanMigration(row interface{ Scan(...any) error }) (Migration, error) {
	var m Migration
	var created, gmailOnce int64
	err := row.Scan(&m.ID, &m.DomainID, &m.SourceHost, &m.SourcePort, &m.SourceSecurity, &m.SourceFingerprint, &gmailOnce, &created)
	m.Created, m.GmailOnce = fromUnix(created), gmailOnce != 0
	return m, notFound(err)
}

// CreateMigration implements Store.
func (l *DB) CreateMigration(ctx context.Context, m Migration, tasks []Task, queue func(tx *sql.Tx, tasks []Task) error) (Migration, []Task, error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return m, nil, fmt.Errorf("store migration: %w", err)
	}
	defer tx.rollback()
	if err := tx.lock(ctx, lockSubmit); err != nil {
		return m, nil, fmt.Errorf("store migration: %w", err)
	}
	// The operator may have disabled the customer since the request was
	// let in; deleting the domain waits for the lock above.
	var disabled int64
	if err := tx.queryRow(ctx, `SELECT t.disabled FROM domain d JOIN tenant t ON t.id = d.tenant_id WHERE d.id = ?`,
		m.DomainID).Scan(&disabled); err != nil {
		return m, nil, fmt.Errorf("store migration: domain %d: %w", m.DomainID, notFound(err))
	}
	if disabled != 0 {
		return m, nil, ErrDisabled
	}
	m.Created = time.Now().UTC().Truncate(time.Millisecond)
	gmailOnce := 0
	if m.GmailOnce {
		gmailOnce = 1
	}
	err = tx.queryRow(ctx, `INSERT INTO migration (domain_id, source_host, source_port, source_security,
		source_fingerprint, gmail_once, created) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, m.DomainID, m.SourceHost, m.SourcePort,
		m.SourceSecurity, m.SourceFingerprint, gmailOnce, unix(m.Created)).Scan(&m.ID)
	if err != nil {
		return m, nil, fmt.Errorf("store migration: %w", err)
	}
	out := make([]Task, len(tasks))
	for i, t := range tasks {
		t.MigrationID, t.Created, t.State = m.ID, m.Created, StateQueued
		err := tx.queryRow(ctx, `INSERT INTO task (migration_id, kind, source_user, dest_user, dest_key, state,
			source_sign_in, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			t.MigrationID, t.Kind, t.SourceUser, t.DestUser, MailboxKey(t.DestUser), t.State, t.SourceSignIn,
			unix(t.Created)).Scan(&t.ID)
		if isUnique(err) {
			tx.rollback()
			return m, nil, l.busy(ctx, t.DestUser)
		}
		if err != nil {
			return m, nil, fmt.Errorf("store task for %s: %w", t.DestUser, err)
		}
		out[i] = t
	}
	if err := queue(tx.tx, out); err != nil {
		return m, nil, err
	}
	for _, t := range out {
		if _, err := tx.exec(ctx, `UPDATE task SET source_secret = ?, dest_secret = ?, job_id = ? WHERE id = ?`,
			t.SourceSecret, t.DestSecret, t.JobID, t.ID); err != nil {
			return m, nil, fmt.Errorf("store task for %s: %w", t.DestUser, err)
		}
	}
	if err := tx.commit(); err != nil {
		return m, nil, fmt.Errorf("store migration: %w", err)
	}
	return m, out, nil
}

// busy explains a refused task into a mailbox: which task holds it. It
// looks after the refused transaction ended (PostgreSQL ends it with the
// violation, SQLite's one connection is free only then); the task that
// held the mailbox may have finished since, and is then not named.
func (l *DB) busy(ctx context.Context, mailbox string) error {
	e := &BusyError{Mailbox: mailbox}
	err := l.queryRow(ctx, `SELECT id, migration_id FROM task WHERE dest_key = ? AND state IN (?, ?)`,
		MailboxKey(mailbox), StateQueued, StateRunning).Scan(&e.TaskID, &e.MigrationID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("find the task of mailbox %s: %w", mailbox, err)
	}
	return e
}

// Migration implements Store.
func (l *DB) Migration(ctx context.Context, id int64) (Migration, error) {
	return scanMigration(l.queryRow(ctx, `SELECT `+migrationCols+` FROM migration WHERE id = ?`, id))
}

// Migrations implements Store.
func (l *DB) Migrations(ctx context.Context, domainID int64) ([]Migration, error) {
	rows, err := l.query(ctx, `SELECT `+migrationCols+` FROM migration WHERE domain_id = ? ORDER BY id DESC`, domainID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Migration
	for rows.Next() {
		m, err := scanMigration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

const taskCols = `id, migration_id, kind, source_user, dest_user, state, job_id, folders_total, folders_done,
	messages_total, messages_done, bytes_total, bytes_done, report, failure, source_sign_in, source_secret, dest_secret,
	created, started, finished`

func scanTask(row interface{ Scan(...any) error }, extra ...any) (Task, error) {
	var t Task
	var report, failure string
	var created, started, finished int64
	err := row.Scan(append([]any{&t.ID, &t.MigrationID, &t.Kind, &t.SourceUser, &t.DestUser, &t.State, &t.JobID,
		&t.FoldersTotal, &t.FoldersDone, &t.MessagesTotal, &t.MessagesDone, &t.BytesTotal, &t.BytesDone,
		&report, &failure, &t.SourceSignIn, &t.SourceSecret, &t.DestSecret, &created, &started, &finished}, extra...)...)
	if err != nil {
		return t, notFound(err)
	}
	t.Created, t.Started, t.Finished = fromUnix(created), fromUnix(started), fromUnix(finished)
	if report != "" {
		t.Report = new(engine.Report)
		if err := json.Unmarshal([]byte(report), t.Report); err != nil {
			return t, fmt.Errorf("task %d report: %w", t.ID, err)
		}
	}
	if failure != "" {
		t.Failure = new(engine.Failure)
		if err := json.Unmarshal([]byte(failure), t.Failure); err != nil {
			return t, fmt.Errorf("task %d failure: %w", t.ID, err)
		}
	}
	return t, nil
}

func (l *DB) tasks(ctx context.Context, where string, args ...any) ([]Task, error) {
	rows, err := l.query(ctx, `SELECT `+taskCols+` FROM task WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Task implements Store.
func (l *DB) Task(ctx context.Context, id int64) (Task, error) {
	return scanTask(l.queryRow(ctx, `SELECT `+taskCols+` FROM task WHERE id = ?`, id))
}

// Tasks implements Store.
func (l *DB) Tasks(ctx context.Context, migrationID int64) ([]Task, error) {
	return l.tasks(ctx, `migration_id = ?`, migrationID)
}

// UnfinishedTasks implements Store.
func (l *DB) UnfinishedTasks(ctx context.Context) ([]Task, error) {
	return l.tasks(ctx, `state IN (?, ?)`, StateQueued, StateRunning)
}

// inStates is "state IN (?, ...)" with its arguments.
func inStates(states []string) (string, []any) {
	if len(states) == 0 {
		return "1 = 0", nil // no state given: nothing matches
	}
	args := make([]any, len(states))
	for i, st := range states {
		args[i] = st
	}
	return "state IN (?" + strings.Repeat(", ?", len(states)-1) + ")", args
}

// changed reports whether an UPDATE touched a row.
func changed(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func marshalOrEmpty(v any, isNil bool) (string, error) {
	if isNil {
		return "", nil
	}
	data, err := json.Marshal(v)
	return string(data), err
}

// QueueTask implements Store.
func (l *DB) QueueTask(ctx context.Context, id int64, from []string, queue func(tx *sql.Tx, t Task) (int64, error)) (bool, error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("queue task %d: %w", id, err)
	}
	defer tx.rollback()
	cond, args := inStates(from)
	// A task queued from a final state waits for a new run: the start
	// time shown is that of the run, set when it starts.
	t, err := scanTask(tx.queryRow(ctx, `UPDATE task SET state = ?, failure = '', finished = 0,
		started = CASE WHEN state IN (?, ?) THEN started ELSE 0 END
		WHERE id = ? AND `+cond+` RETURNING `+taskCols, append([]any{StateQueued, StateQueued, StateRunning, id}, args...)...))
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case isUnique(err):
		tx.rollback()
		var dest string
		if err := l.queryRow(ctx, `SELECT dest_user FROM task WHERE id = ?`, id).Scan(&dest); err != nil {
			return false, fmt.Errorf("queue task %d: %w", id, err)
		}
		return false, l.busy(ctx, dest)
	case err != nil:
		return false, fmt.Errorf("queue task %d: %w", id, err)
	}
	jobID, err := queue(tx.tx, t)
	if err != nil {
		return false, err
	}
	if _, err := tx.exec(ctx, `UPDATE task SET job_id = ? WHERE id = ?`, jobID, id); err != nil {
		return false, fmt.Errorf("queue task %d: %w", id, err)
	}
	if err := tx.commit(); err != nil {
		return false, fmt.Errorf("queue task %d: %w", id, err)
	}
	return true, nil
}

// ClaimTask implements Store. The first claim after the task was queued
// from a final state (or created) starts a run, and the task's start time
// is that run's; a claim that continues a run (a further slice) keeps both.
func (l *DB) ClaimTask(ctx context.Context, id, jobID int64) (Task, bool, error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return Task{}, false, fmt.Errorf("start task %d: %w", id, err)
	}
	defer tx.rollback()
	t, err := scanTask(tx.queryRow(ctx, `UPDATE task SET state = ?, failure = ''
		WHERE id = ? AND job_id = ? AND state IN (?, ?) RETURNING `+taskCols,
		StateRunning, id, jobID, StateQueued, StateRunning))
	if errors.Is(err, ErrNotFound) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("start task %d: %w", id, err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	started, err := openRun(ctx, tx, id, now)
	if err != nil {
		return t, false, err
	}
	if started {
		if _, err := tx.exec(ctx, `UPDATE task SET started = ? WHERE id = ?`, unix(now), id); err != nil {
			return t, false, fmt.Errorf("start task %d: %w", id, err)
		}
		t.Started = now
	}
	if err := tx.commit(); err != nil {
		return t, false, fmt.Errorf("start task %d: %w", id, err)
	}
	return t, true, nil
}

// SetSourceSecret implements Store.
func (l *DB) SetSourceSecret(ctx context.Context, taskID int64, sealed []byte) (bool, error) {
	ok, err := changed(l.exec(ctx, `UPDATE task SET source_secret = ? WHERE id = ? AND source_secret IS NOT NULL`,
		sealed, taskID))
	if err != nil {
		return false, fmt.Errorf("store the source secret of task %d: %w", taskID, err)
	}
	return ok, nil
}

// RenewSignIn implements Store.
func (l *DB) RenewSignIn(ctx context.Context, taskID int64, provider string, sealed []byte) (bool, error) {
	cond, states := inStates([]string{StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled})
	ok, err := changed(l.exec(ctx, `UPDATE task SET source_secret = ? WHERE id = ? AND source_sign_in = ? AND `+cond,
		append([]any{sealed, taskID, provider}, states...)...))
	if err != nil {
		return false, fmt.Errorf("renew the sign-in of task %d: %w", taskID, err)
	}
	return ok, nil
}

// SetTaskProgress implements Store.
func (l *DB) SetTaskProgress(ctx context.Context, id int64, p Progress) (bool, error) {
	ok, err := changed(l.exec(ctx, `UPDATE task SET folders_total = ?, folders_done = ?,
		messages_total = ?, messages_done = ?, bytes_total = ?, bytes_done = ? WHERE id = ? AND state = ?`,
		p.FoldersTotal, p.FoldersDone, p.MessagesTotal, p.MessagesDone, p.BytesTotal, p.BytesDone, id, StateRunning))
	if err != nil {
		return false, fmt.Errorf("write progress of task %d: %w", id, err)
	}
	return ok, nil
}

// FinishTask implements Store.
func (l *DB) FinishTask(ctx context.Context, id int64, end TaskEnd) (bool, error) {
	if end.State != StateQueued && !Finished(end.State) {
		return false, fmt.Errorf("finish task %d: %q is not a state to end a run in", id, end.State)
	}
	if end.Report != nil {
		// A further slice of the run: its report continues the earlier
		// slices'. Only this task's worker writes its open run.
		earlier, err := l.openRunReport(ctx, id)
		if err != nil {
			return false, fmt.Errorf("finish task %d: %w", id, err)
		}
		if earlier != nil {
			merged := *end.Report
			merged.Folders = slices.Clone(end.Report.Folders)
			merged.Continue(earlier)
			end.Report = &merged
		}
	}
	report, err := marshalOrEmpty(end.Report, end.Report == nil)
	if err != nil {
		return false, fmt.Errorf("finish task %d: %w", id, err)
	}
	failure, err := marshalOrEmpty(end.Failure, end.Failure == nil)
	if err != nil {
		return false, fmt.Errorf("finish task %d: %w", id, err)
	}
	var finished int64
	if Finished(end.State) {
		finished = unix(time.Now())
	}
	p := end.Progress
	ok, err := l.changeTask(ctx, id, report, `UPDATE task SET state = ?, folders_total = ?, folders_done = ?,
		messages_total = ?, messages_done = ?, bytes_total = ?, bytes_done = ?,
		report = CASE WHEN ? = '' THEN report ELSE ? END, failure = ?, finished = ? WHERE id = ? AND state = ?`,
		end.State, p.FoldersTotal, p.FoldersDone, p.MessagesTotal, p.MessagesDone, p.BytesTotal, p.BytesDone,
		report, report, failure, finished, id, StateRunning)
	if err != nil {
		return false, fmt.Errorf("finish task %d: %w", id, err)
	}
	return ok, nil
}

// changeTask runs a conditional UPDATE of a task and, if it happened, writes
// it into the task's open run (with the slice's report, unless "") and
// records the notification it causes, in one transaction: the run and the
// event are recorded exactly when the state changes.
func (l *DB) changeTask(ctx context.Context, id int64, report, update string, args ...any) (bool, error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.rollback()
	ok, err := changed(tx.exec(ctx, update, args...))
	if err != nil || !ok {
		return false, err
	}
	if err := endRun(ctx, tx, id, report); err != nil {
		return false, err
	}
	if err := l.recordEvent(ctx, tx, id); err != nil {
		return false, err
	}
	return true, tx.commit()
}

// recordEvent records the notification a task's new state causes, if any,
// and queues its mail (see Notification).
func (l *DB) recordEvent(ctx context.Context, tx txn, taskID int64) error {
	n := Notification{TaskID: taskID, Created: time.Now().UTC().Truncate(time.Millisecond)}
	var state, failure string
	if err := tx.queryRow(ctx, `SELECT migration_id, job_id, state, failure FROM task WHERE id = ?`, taskID).
		Scan(&n.MigrationID, &n.JobID, &state, &failure); err != nil {
		return fmt.Errorf("read task %d: %w", taskID, err)
	}
	if !Finished(state) {
		return nil
	}
	// On PostgreSQL the last tasks of a migration may end at the same
	// time, each in a transaction that still sees the others open, and
	// none would tell that the migration finished: its row's lock makes
	// them count one after another.
	if err := tx.queryRow(ctx, `SELECT id FROM migration WHERE id = ?`+tx.dialect.forUpdate(), n.MigrationID).
		Scan(&n.MigrationID); err != nil {
		return fmt.Errorf("lock migration %d: %w", n.MigrationID, err)
	}
	var open, cancelled, total, newestJob int64
	if err := tx.queryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN state IN (?, ?) THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), 0), count(*), COALESCE(MAX(job_id), 0)
		FROM task WHERE migration_id = ?`, StateQueued, StateRunning, StateCancelled, n.MigrationID).
		Scan(&open, &cancelled, &total, &newestJob); err != nil {
		return fmt.Errorf("read the tasks of migration %d: %w", n.MigrationID, err)
	}
	switch {
	case open == 0 && cancelled < total:
		n.Kind, n.TaskID, n.JobID = NotifyFinished, 0, newestJob
	case state == StatePaused:
		n.Kind = NotifyPaused
	case state == StateFailed && failure != "":
		var f engine.Failure
		if err := json.Unmarshal([]byte(failure), &f); err != nil {
			return fmt.Errorf("task %d failure: %w", taskID, err)
		}
		switch {
		case LoginFailed(&f):
			n.Kind = NotifyLoginFailed
		case f.Kind == imapconn.ErrAuth.Code() && f.Side == engine.SideDest:
			n.Kind = NotifyHostingLoginFailed
		case f.Kind == engine.KindSignInAgain:
			n.Kind = NotifySignInAgain
		default:
			return nil
		}
	default:
		return nil
	}
	err := tx.queryRow(ctx, `INSERT INTO notification (migration_id, task_id, job_id, kind, created)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (migration_id, task_id, job_id, kind) DO NOTHING RETURNING id`,
		n.MigrationID, n.TaskID, n.JobID, n.Kind, unix(n.Created)).Scan(&n.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // recorded before: the same event again
	}
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	if q := l.queue.Load(); q != nil {
		return (*q)(ctx, tx.tx, n)
	}
	return nil
}

// LoginFailed tells a failure the customer fixes with the old server's
// password or name: the old server refused the login.
func LoginFailed(f *engine.Failure) bool {
	return f != nil && f.Kind == imapconn.ErrAuth.Code() && f.Side == engine.SideSource
}

// SetNotificationQueue implements Store.
func (l *DB) SetNotificationQueue(q NotificationQueue) {
	if q == nil {
		l.queue.Store(nil)
		return
	}
	l.queue.Store(&q)
}

const notificationCols = `n.id, n.migration_id, n.task_id, n.job_id, n.kind, n.created, n.sent, n.attempts, n.error`

func scanNotification(row interface{ Scan(...any) error }, extra ...any) (Notification, error) {
	var n Notification
	var created, sent int64
	err := row.Scan(append([]any{&n.ID, &n.MigrationID, &n.TaskID, &n.JobID, &n.Kind, &created, &sent,
		&n.Attempts, &n.Error}, extra...)...)
	n.Created, n.Sent = fromUnix(created), fromUnix(sent)
	return n, notFound(err)
}

// Notification implements Store.
func (l *DB) Notification(ctx context.Context, id int64) (Notification, error) {
	return scanNotification(l.queryRow(ctx, `SELECT `+notificationCols+` FROM notification n WHERE n.id = ?`, id))
}

// Notifications implements Store.
func (l *DB) Notifications(ctx context.Context, tenantID int64, limit int) ([]Notification, error) {
	rows, err := l.query(ctx, `SELECT `+notificationCols+`, d.name, m.source_host, COALESCE(t.dest_user, ''),
		CASE WHEN n.task_id <> 0 THEN
			CASE WHEN t.job_id = n.job_id AND t.state IN (?, ?) THEN 1 ELSE 0 END
		WHEN NOT EXISTS (SELECT 1 FROM task x WHERE x.migration_id = n.migration_id AND x.job_id > n.job_id)
			AND EXISTS (SELECT 1 FROM task x WHERE x.migration_id = n.migration_id AND x.state IN (?, ?)) THEN 1
		ELSE 0 END AS pending
		FROM notification n JOIN migration m ON m.id = n.migration_id JOIN domain d ON d.id = m.domain_id
		LEFT JOIN task t ON t.id = n.task_id
		WHERE ? = 0 OR d.tenant_id = ? ORDER BY pending DESC, n.id DESC LIMIT ?`,
		StatePaused, StateFailed, StatePaused, StateFailed, tenantID, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var d, host, mailbox string
		var pending int
		n, err := scanNotification(rows, &d, &host, &mailbox, &pending)
		if err != nil {
			return nil, fmt.Errorf("read notifications: %w", err)
		}
		n.Domain, n.SourceHost, n.Mailbox, n.Pending = d, host, mailbox, pending == 1
		out = append(out, n)
	}
	return out, rows.Err()
}

// NotificationAttempt implements Store.
func (l *DB) NotificationAttempt(ctx context.Context, id int64, sent time.Time, errText string) error {
	_, err := l.exec(ctx, `UPDATE notification SET attempts = attempts + 1, sent = ?, error = ? WHERE id = ?`,
		unix(sent), errText, id)
	if err != nil {
		return fmt.Errorf("record the mail of notification %d: %w", id, err)
	}
	return nil
}

// TransitionTask implements Store.
func (l *DB) TransitionTask(ctx context.Context, id int64, from []string, to string, failure *engine.Failure) (bool, error) {
	if !Finished(to) {
		return false, fmt.Errorf("change task %d: %q is not a final state; tasks are queued with QueueTask", id, to)
	}
	f, err := marshalOrEmpty(failure, failure == nil)
	if err != nil {
		return false, fmt.Errorf("change task %d: %w", id, err)
	}
	cond, args := inStates(from)
	ok, err := l.changeTask(ctx, id, "", `UPDATE task SET state = ?, finished = ?,
		failure = CASE WHEN ? = '' THEN failure ELSE ? END WHERE id = ? AND `+cond,
		append([]any{to, unix(time.Now()), f, f, id}, args...)...)
	if err != nil {
		return false, fmt.Errorf("change task %d to %s: %w", id, to, err)
	}
	return ok, nil
}

// ExpireSecrets implements Store.
func (l *DB) ExpireSecrets(ctx context.Context, finishedBefore time.Time) (int, error) {
	res, err := l.exec(ctx, `UPDATE task SET source_secret = NULL, dest_secret = NULL
		WHERE finished > 0 AND finished < ? AND state NOT IN (?, ?) AND (source_secret IS NOT NULL OR dest_secret IS NOT NULL)
		AND migration_id NOT IN (SELECT migration_id FROM resync_schedule)`,
		unix(finishedBefore), StateQueued, StateRunning)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// CreateUser implements Store.
func (l *DB) CreateUser(ctx context.Context, tenantID int64, email, passwordHash string) (User, error) {
	u := User{TenantID: tenantID, Email: strings.ToLower(strings.TrimSpace(email)), PasswordHash: passwordHash,
		Created: time.Now().UTC().Truncate(time.Millisecond)}
	err := l.queryRow(ctx, `INSERT INTO app_user (tenant_id, email, password_hash, created) VALUES (?, ?, ?, ?) RETURNING id`,
		u.TenantID, u.Email, u.PasswordHash, unix(u.Created)).Scan(&u.ID)
	if err != nil {
		return u, conflict(err, fmt.Sprintf("user %q", u.Email))
	}
	return u, nil
}

const userCols = `u.id, u.tenant_id, u.email, u.password_hash, u.created, u.lang, u.disabled`

func scanUser(row interface{ Scan(...any) error }, extra ...any) (User, error) {
	var u User
	var created, disabled int64
	err := row.Scan(append([]any{&u.ID, &u.TenantID, &u.Email, &u.PasswordHash, &created, &u.Lang, &disabled}, extra...)...)
	u.Created, u.Disabled = fromUnix(created), fromUnix(disabled)
	return u, notFound(err)
}

// UserByEmail implements Store.
func (l *DB) UserByEmail(ctx context.Context, email string) (User, error) {
	return scanUser(l.queryRow(ctx, `SELECT `+userCols+` FROM app_user u WHERE u.email = ?`,
		strings.ToLower(strings.TrimSpace(email))))
}

// Users implements Store.
func (l *DB) Users(ctx context.Context, tenantID int64) ([]User, error) {
	rows, err := l.query(ctx, `SELECT `+userCols+` FROM app_user u WHERE ? = 0 OR u.tenant_id = ? ORDER BY u.id`,
		tenantID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read the users of tenant %d: %w", tenantID, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("read the users of tenant %d: %w", tenantID, err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserLang implements Store.
func (l *DB) SetUserLang(ctx context.Context, userID int64, lang string) error {
	if _, err := l.exec(ctx, `UPDATE app_user SET lang = ? WHERE id = ?`, lang, userID); err != nil {
		return fmt.Errorf("record the language of user %d: %w", userID, err)
	}
	return nil
}

// CreateSession implements Store.
func (l *DB) CreateSession(ctx context.Context, tokenHash []byte, userID int64, expires time.Time) error {
	// Expired sessions of anyone go on the way.
	if _, err := l.exec(ctx, `DELETE FROM session WHERE expires < ?`, unix(time.Now())); err != nil {
		return err
	}
	_, err := l.exec(ctx, `INSERT INTO session (token_hash, user_id, expires) VALUES (?, ?, ?)`,
		tokenHash, userID, unix(expires))
	return err
}

// SessionUser implements Store.
func (l *DB) SessionUser(ctx context.Context, tokenHash []byte) (User, Tenant, error) {
	var t Tenant
	var tc, td int64
	u, err := scanUser(l.queryRow(ctx, `SELECT `+userCols+`, t.id, t.name, t.kind, t.created, t.disabled
		FROM session s JOIN app_user u ON u.id = s.user_id
		JOIN tenant t ON t.id = u.tenant_id WHERE s.token_hash = ? AND s.expires > ?`, tokenHash, unix(time.Now())),
		&t.ID, &t.Name, &t.Kind, &tc, &td)
	t.Created, t.Disabled = fromUnix(tc), fromUnix(td)
	if err == nil && (!u.Disabled.IsZero() || !t.Disabled.IsZero()) {
		err = ErrDisabled
	}
	return u, t, err
}

// DeleteSession implements Store.
func (l *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := l.exec(ctx, `DELETE FROM session WHERE token_hash = ?`, tokenHash)
	return err
}

// KeepLogins implements Store.
func (l *DB) KeepLogins(ctx context.Context, handleHash, sessionHash, sealed []byte, expires time.Time) error {
	// Expired ones of anyone go on the way.
	if _, err := l.exec(ctx, `DELETE FROM kept_logins WHERE expires < ?`, unix(time.Now())); err != nil {
		return fmt.Errorf("keep checked logins: %w", err)
	}
	_, err := l.exec(ctx, `INSERT INTO kept_logins (handle_hash, session_hash, sealed, expires) VALUES (?, ?, ?, ?)`,
		handleHash, sessionHash, sealed, unix(expires))
	if err != nil {
		return fmt.Errorf("keep checked logins: %w", err)
	}
	return nil
}

// KeptLogins implements Store.
func (l *DB) KeptLogins(ctx context.Context, handleHash, sessionHash []byte) ([]byte, error) {
	var sealed []byte
	err := l.queryRow(ctx, `SELECT sealed FROM kept_logins WHERE handle_hash = ? AND session_hash = ? AND expires > ?`,
		handleHash, sessionHash, unix(time.Now())).Scan(&sealed)
	return sealed, notFound(err)
}

// DropKeptLogins implements Store.
func (l *DB) DropKeptLogins(ctx context.Context, handleHash []byte) error {
	_, err := l.exec(ctx, `DELETE FROM kept_logins WHERE handle_hash = ?`, handleHash)
	return err
}

// KeyFingerprint implements Store.
func (l *DB) KeyFingerprint(ctx context.Context, fingerprint string) (string, bool, error) {
	if fingerprint != "" {
		if _, err := l.exec(ctx, `INSERT INTO setting (name, value) VALUES ('key_fingerprint', ?) ON CONFLICT (name) DO NOTHING`,
			fingerprint); err != nil {
			return "", false, fmt.Errorf("record the key fingerprint: %w", err)
		}
	}
	var recorded sql.NullString
	var held int
	err := l.queryRow(ctx, `SELECT (SELECT value FROM setting WHERE name = 'key_fingerprint'),
		(SELECT count(*) FROM task WHERE source_secret IS NOT NULL OR dest_secret IS NOT NULL) +
		(SELECT count(*) FROM kept_logins) + (SELECT count(*) FROM api_sign_in WHERE sealed IS NOT NULL)`).Scan(&recorded, &held)
	if err != nil {
		return "", false, fmt.Errorf("read the key fingerprint: %w", err)
	}
	return recorded.String, held > 0, nil
}

// ForgetSecrets implements Store.
func (l *DB) ForgetSecrets(ctx context.Context) (int, error) {
	t, err := l.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer t.rollback()
	res, err := t.exec(ctx, `UPDATE task SET source_secret = NULL, dest_secret = NULL WHERE source_secret IS NOT NULL OR dest_secret IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("forget the stored passwords: %w", err)
	}
	n, _ := res.RowsAffected()
	for _, q := range []string{`DELETE FROM kept_logins`, `DELETE FROM api_sign_in`, `DELETE FROM setting WHERE name = 'key_fingerprint'`} {
		if _, err := t.exec(ctx, q); err != nil {
			return 0, fmt.Errorf("forget the stored passwords: %w", err)
		}
	}
	return int(n), t.commit()
}
