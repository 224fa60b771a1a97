package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mailmigrate/internal/engine"
)

// Kinds of run: why a task was copied (again).
const (
	RunFirst   = "first"   // the task's first copy
	RunResume  = "resume"  // after its mailbox ran out of space
	RunRestart = "restart" // after it failed or was cancelled
	RunResync  = "resync"  // after it was done: copies what arrived since
)

// Run is one copy of a task, from the claim of its job until the task
// reaches a final state: the slices of a long copy are one run, and a new
// run starts when a finished task is queued again. Its report covers all
// its slices (engine.Report.Continue); a task's own report is its latest
// run's.
type Run struct {
	TaskID int64 `json:"task_id"`
	// Number counts the task's runs from 1.
	Number   int             `json:"number"`
	Kind     string          `json:"kind"`
	State    string          `json:"state"` // copying, or the final state it ended in
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"` // zero while it lasts
	Report   *engine.Report  `json:"-"`
	Failure  *engine.Failure `json:"failure,omitempty"`
}

// runKind is the kind of a task's next run, from the state its previous
// run ended in ("" when there was none).
func runKind(previous string) string {
	switch previous {
	case "":
		return RunFirst
	case StatePaused:
		return RunResume
	case StateDone, StateWarnings:
		return RunResync
	}
	return RunRestart
}

// openRun starts a run of a task that has none open, or marks the open
// one copying again (a further slice). It reports whether a run started.
func openRun(ctx context.Context, tx txn, taskID int64, now time.Time) (bool, error) {
	var open int
	if err := tx.queryRow(ctx, `SELECT count(*) FROM task_run WHERE task_id = ? AND finished = 0`, taskID).
		Scan(&open); err != nil {
		return false, fmt.Errorf("read the runs of task %d: %w", taskID, err)
	}
	if open > 0 {
		_, err := tx.exec(ctx, `UPDATE task_run SET state = ? WHERE task_id = ? AND finished = 0`, StateRunning, taskID)
		return false, err
	}
	var number int
	var previous string
	err := tx.queryRow(ctx, `SELECT number, state FROM task_run WHERE task_id = ? ORDER BY number DESC LIMIT 1`, taskID).
		Scan(&number, &previous)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("read the runs of task %d: %w", taskID, err)
	}
	if _, err := tx.exec(ctx, `INSERT INTO task_run (task_id, number, kind, state, started) VALUES (?, ?, ?, ?, ?)`,
		taskID, number+1, runKind(previous), StateRunning, unix(now)); err != nil {
		return false, fmt.Errorf("start a run of task %d: %w", taskID, err)
	}
	return true, nil
}

// openRunReport is the report of a task's open run so far: nil when no
// run is open or no slice of it has ended yet.
func (l *DB) openRunReport(ctx context.Context, taskID int64) (*engine.Report, error) {
	var report string
	err := l.queryRow(ctx, `SELECT report FROM task_run WHERE task_id = ? AND finished = 0`, taskID).Scan(&report)
	if errors.Is(err, sql.ErrNoRows) || report == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the open run of task %d: %w", taskID, err)
	}
	var r engine.Report
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		return nil, fmt.Errorf("read the open run of task %d: %w", taskID, err)
	}
	return &r, nil
}

// endRun writes the end of a slice into the task's open run: its report
// (unless ""), and, when the task reached a final state, that state, its
// failure and its finish time, which closes the run.
func endRun(ctx context.Context, tx txn, taskID int64, report string) error {
	_, err := tx.exec(ctx, `UPDATE task_run SET
		report = CASE WHEN ? = '' THEN report ELSE ? END,
		state = (SELECT state FROM task WHERE id = ?),
		failure = (SELECT failure FROM task WHERE id = ?),
		finished = (SELECT finished FROM task WHERE id = ?)
		WHERE task_id = ? AND finished = 0`, report, report, taskID, taskID, taskID, taskID)
	if err != nil {
		return fmt.Errorf("end the run of task %d: %w", taskID, err)
	}
	return nil
}

// Runs implements Store.
func (l *DB) Runs(ctx context.Context, taskID int64) ([]Run, error) {
	rows, err := l.query(ctx, `SELECT number, kind, state, started, finished, report, failure
		FROM task_run WHERE task_id = ? ORDER BY number DESC`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read the runs of task %d: %w", taskID, err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r := Run{TaskID: taskID}
		var started, finished int64
		var report, failure string
		if err := rows.Scan(&r.Number, &r.Kind, &r.State, &started, &finished, &report, &failure); err != nil {
			return nil, fmt.Errorf("read the runs of task %d: %w", taskID, err)
		}
		r.Started, r.Finished = fromUnix(started), fromUnix(finished)
		if report != "" {
			r.Report = new(engine.Report)
			if err := json.Unmarshal([]byte(report), r.Report); err != nil {
				return nil, fmt.Errorf("task %d run %d report: %w", taskID, r.Number, err)
			}
		}
		if failure != "" {
			r.Failure = new(engine.Failure)
			if err := json.Unmarshal([]byte(failure), r.Failure); err != nil {
				return nil, fmt.Errorf("task %d run %d failure: %w", taskID, r.Number, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the runs of task %d: %w", taskID, err)
	}
	return out, nil
}
