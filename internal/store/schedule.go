package store

import (
	"context"
	"database/sql"
	"errors"
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

// upgradeSchedule adds the schedule table to databases of older versions.
func upgradeSchedule(db *sql.DB) error {
	_, err := db.Exec(`CREATE TABLE IF NOT EXISTS resync_schedule (
		migration_id INTEGER PRIMARY KEY REFERENCES migration(id) ON DELETE CASCADE,
		started INTEGER NOT NULL,
		mx_since INTEGER NOT NULL DEFAULT 0,
		last_run INTEGER NOT NULL DEFAULT 0
	)`)
	return err
}

func scanSchedule(row interface{ Scan(...any) error }) (Schedule, error) {
	var s Schedule
	var started, mx, last int64
	err := row.Scan(&s.MigrationID, &started, &mx, &last)
	s.Started, s.MXSince, s.LastRun = fromUnix(started), fromUnix(mx), fromUnix(last)
	return s, notFound(err)
}

// StartSchedule implements Store.
func (l *SQLite) StartSchedule(ctx context.Context, migrationID int64) (Schedule, error) {
	if _, err := l.db.ExecContext(ctx, `INSERT INTO resync_schedule (migration_id, started) VALUES (?, ?)
		ON CONFLICT (migration_id) DO NOTHING`, migrationID, unix(time.Now())); err != nil {
		return Schedule{}, fmt.Errorf("start the re-sync of migration %d: %w", migrationID, err)
	}
	return l.Schedule(ctx, migrationID)
}

// StopSchedule implements Store.
func (l *SQLite) StopSchedule(ctx context.Context, migrationID int64) (bool, error) {
	ok, err := changed(l.db.ExecContext(ctx, `DELETE FROM resync_schedule WHERE migration_id = ?`, migrationID))
	if err != nil {
		return false, fmt.Errorf("stop the re-sync of migration %d: %w", migrationID, err)
	}
	return ok, nil
}

// Schedule implements Store.
func (l *SQLite) Schedule(ctx context.Context, migrationID int64) (Schedule, error) {
	return scanSchedule(l.db.QueryRowContext(ctx, `SELECT migration_id, started, mx_since, last_run
		FROM resync_schedule WHERE migration_id = ?`, migrationID))
}

// Schedules implements Store.
func (l *SQLite) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT migration_id, started, mx_since, last_run FROM resync_schedule ORDER BY migration_id`)
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
func (l *SQLite) ScheduleRan(ctx context.Context, migrationID int64, at, mxSince time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE resync_schedule SET last_run = ?,
		mx_since = CASE WHEN mx_since = 0 THEN ? ELSE mx_since END WHERE migration_id = ?`,
		unix(at), unix(mxSince), migrationID)
	if err != nil {
		return fmt.Errorf("record the re-sync of migration %d: %w", migrationID, err)
	}
	return nil
}

// CorrectMigration implements Store.
func (l *SQLite) CorrectMigration(ctx context.Context, migrationID int64, c Correction) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	defer tx.Rollback()
	// The transaction holds SQLite's write lock (immediate), so no task of
	// the migration is queued between this look and the updates below.
	e := &RunningError{}
	err = tx.QueryRowContext(ctx, `SELECT id, dest_user FROM task WHERE migration_id = ? AND state IN (?, ?) ORDER BY id LIMIT 1`,
		migrationID, StateQueued, StateRunning).Scan(&e.TaskID, &e.Mailbox)
	switch {
	case err == nil:
		return e
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	ok, err := changed(tx.ExecContext(ctx, `UPDATE migration SET source_host = ?, source_port = ?, source_security = ?,
		source_fingerprint = ? WHERE id = ?`, c.SourceHost, c.SourcePort, c.SourceSecurity, c.SourceFingerprint, migrationID))
	if err != nil {
		return fmt.Errorf("correct migration %d: %w", migrationID, err)
	}
	if !ok {
		return ErrNotFound
	}
	cond, states := inStates([]string{StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled})
	for _, s := range c.Secrets {
		ok, err := changed(tx.ExecContext(ctx, `UPDATE task SET
			source_secret = CASE WHEN ? IS NULL THEN source_secret ELSE ? END,
			dest_secret = CASE WHEN ? IS NULL THEN dest_secret ELSE ? END
			WHERE id = ? AND migration_id = ? AND `+cond,
			append([]any{blob(s.SourceSecret), blob(s.SourceSecret), blob(s.DestSecret), blob(s.DestSecret), s.TaskID, migrationID}, states...)...))
		if err != nil {
			return fmt.Errorf("correct task %d: %w", s.TaskID, err)
		}
		if !ok {
			return fmt.Errorf("correct task %d: %w", s.TaskID, ErrNotFound)
		}
	}
	if err := tx.Commit(); err != nil {
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
