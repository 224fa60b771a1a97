package store

import (
	"context"
	"fmt"
	"time"
)

// Schedule is a migration's scheduled re-sync: while it exists, the
// migration's finished mailboxes are copied again daily (only what is new),
// and their passwords are kept past the retention time. It ends when the
// customer stops it, or by itself some days after the domain's MX has
// pointed to the hosting (MXSince).
type Schedule struct {
	MigrationID int64     `json:"migration_id"`
	Started     time.Time `json:"started"`
	// MXSince is when the re-sync first saw the domain's MX at the
	// hosting; zero while it points elsewhere.
	MXSince time.Time `json:"mx_since,omitzero"`
	// LastRun is the last time the re-sync queued the mailboxes.
	LastRun time.Time `json:"last_run,omitzero"`
}

// RunningError refuses a change to a migration while one of its tasks is
// queued or copying: the change would reach a copy half-way.
type RunningError struct {
	TaskID  int64
	Mailbox string
	// MigrationID is the task's migration, where the refusal concerns
	// more than one migration (a domain's or a customer's deletion).
	MigrationID int64
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("the mailbox %s (task %d) is being copied now", e.Mailbox, e.TaskID)
}

// Correction is a change of a finished migration's source server and
// passwords.
type Correction struct {
	SourceHost        string
	SourcePort        int
	SourceSecurity    string
	SourceFingerprint string
	// Secrets replace the sealed passwords of the tasks named; a nil
	// secret keeps the stored one.
	Secrets []TaskSecrets
}

// TaskSecrets are new sealed passwords of one task.
type TaskSecrets struct {
	TaskID       int64
	SourceSecret []byte
	DestSecret   []byte
}

func scanSchedule(row interface{ Scan(...any) error }) (Schedule, error) {
	var s Schedule
	var started, mx, last int64
	err := row.Scan(&s.MigrationID, &started, &mx, &last)
	s.Started, s.MXSince, s.LastRun = fromUnix(started), fromUnix(mx), fromUnix(last)
	return s, notFound(err)
}

// StartSchedule implements Store.
func (l *DB) StartSchedule(ctx context.Context, migrationID int64) (Schedule, error) {
	if _, err := l.exec(ctx, `INSERT INTO resync_schedule (migration_id, started) VALUES (?, ?)
		ON CONFLICT (migration_id) DO NOTHING`, migrationID, unix(time.Now())); err != nil {
		return Schedule{}, fmt.Errorf("start the re-sync of migration %d: %w", migrationID, err)
	}
	return l.Schedule(ctx, migrationID)
}

// StopSchedule implements Store.
func (l *DB) StopSchedule(ctx context.Context, migrationID int64) (bool, error) {
	ok, err := changed(l.exec(ctx, `DELETE FROM resync_schedule WHERE migration_id = ?`, migrationID))
	if err != nil {
		return false, fmt.Errorf("stop the re-sync of migration %d: %w", migrationID, err)
	}
	return ok, nil
}

// Schedule implements Store.
func (l *DB) Schedule(ctx context.Context, migrationID int64) (Schedule, error) {
	return scanSchedule(l.queryRow(ctx, `SELECT migration_id, started, mx_since, last_run
		FROM resync_schedule WHERE migration_id = ?`, migrationID))
}

// Schedules implements Store.
func (l *DB) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := l.query(ctx, `SELECT migration_id, started, mx_since, last_run FROM resync_schedule ORDER BY migration_id`)
	if err != nil {
		return nil, fmt.Errorf("list re-sync schedules: %w", err)
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ScheduleRan implements Store.
func (l *DB) ScheduleRan(ctx context.Context, migrationID int64, at, mxSince time.Time) error {
	_, err := l.exec(ctx, `UPDATE resync_schedule SET last_run = ?,
		mx_since = CASE WHEN mx_since = 0 THEN ? ELSE mx_since END WHERE migration_id = ?`,
		unix(at), unix(mxSince), migrationID)
	if err != nil {
		return fmt.Errorf("record the re-sync of migration %d: %w", migrationID, err)
	}
	return nil
}

// CorrectMigration implements Store.
func (l *DB) CorrectMigration(ctx context.Context, migrationID int64, c Correction) error {
	tx, err := l.begin(ctx)
	if err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	defer tx.rollback()
	// No task of the migration may be queued between this look and the
	// updates below: SQLite's transaction holds the write lock
	// (immediate); on PostgreSQL the tasks' rows are locked, so a
	// QueueTask waits until the correction is done. Tasks before the
	// migration, the order in which a task's change locks them.
	rows, err := tx.query(ctx, `SELECT id, dest_user, state FROM task WHERE migration_id = ? ORDER BY id`+tx.dialect.forUpdate(),
		migrationID)
	if err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	var running *RunningError
	for rows.Next() {
		var e RunningError
		var state string
		if err := rows.Scan(&e.TaskID, &e.Mailbox, &state); err != nil {
			rows.Close()
			return fmt.Errorf("correct migration %d: %w", migrationID, err)
		}
		if running == nil && !Finished(state) {
			running = &e
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	if running != nil {
		return running
	}
	ok, err := changed(tx.exec(ctx, `UPDATE migration SET source_host = ?, source_port = ?, source_security = ?,
		source_fingerprint = ? WHERE id = ?`, c.SourceHost, c.SourcePort, c.SourceSecurity, c.SourceFingerprint, migrationID))
	if err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	if !ok {
		return ErrNotFound
	}
	cond, states := inStates([]string{StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled})
	for _, s := range c.Secrets {
		ok, err := changed(tx.exec(ctx, `UPDATE task SET source_secret = COALESCE(?, source_secret),
			dest_secret = COALESCE(?, dest_secret) WHERE id = ? AND migration_id = ? AND `+cond,
			append([]any{blob(s.SourceSecret), blob(s.DestSecret), s.TaskID, migrationID}, states...)...))
		if err != nil {
			return fmt.Errorf("correct task %d: %w", s.TaskID, err)
		}
		if !ok {
			return fmt.Errorf("correct task %d: %w", s.TaskID, ErrNotFound)
		}
	}
	if err := tx.commit(); err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	return nil
}

// blob binds a nil secret as NULL ("keep the stored one").
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
