package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// State filters of the operator's list of tasks, besides the states
// themselves.
const (
	// FilterRunning selects the tasks that still have work to do.
	FilterRunning = "running"
	// FilterPaused selects the tasks paused because their mailbox is full.
	FilterPaused = "paused"
)

// FilterStates returns the states a state filter of the operator's list
// selects: a state itself, FilterRunning (queued and copying) or
// FilterPaused; "" selects every state (nil). A filter that is none of
// these is not ok.
func FilterStates(filter string) (states []string, ok bool) {
	switch filter {
	case "":
		return nil, true
	case FilterRunning:
		return []string{StateQueued, StateRunning}, true
	case FilterPaused:
		return []string{StatePaused}, true
	case StateQueued, StateRunning, StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled:
		return []string{filter}, true
	}
	return nil, false
}

// TaskFilter selects the tasks of the operator's list.
type TaskFilter struct {
	States     []string // nil: every state
	TenantID   int64    // the customer; 0: every customer
	Domain     string   // a domain's name; "": every domain
	SourceHost string   // a part of the old server's name, in any letter case
	// Limit is at most how many tasks are listed (0: 100), from Offset on.
	Limit, Offset int
}

// TaskRow is a task of the operator's list with the names the operator
// knows it by. Its passwords are not read.
type TaskRow struct {
	Task
	SourceHost string `json:"source_host"`
	DomainID   int64  `json:"domain_id"`
	Domain     string `json:"domain"`
	CustomerID int64  `json:"customer_id"`
	Customer   string `json:"customer"`
}

// qualified prefixes each of a list of columns with a table's alias, for a
// query that joins tables whose columns share names.
func qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// likeEscaper makes a text match itself in LIKE … ESCAPE '\': an old
// server's name may hold an underscore.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListTasks implements Store.
func (l *DB) ListTasks(ctx context.Context, f TaskFilter) ([]TaskRow, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		cond, stateArgs := inStates(f.States)
		where, args = append(where, "t."+cond), append(args, stateArgs...)
	}
	if f.TenantID != 0 {
		where, args = append(where, "d.tenant_id = ?"), append(args, f.TenantID)
	}
	if f.Domain != "" {
		where, args = append(where, "d.name = ?"), append(args, strings.ToLower(strings.TrimSpace(f.Domain)))
	}
	if host := strings.TrimSpace(f.SourceHost); host != "" {
		where = append(where, `LOWER(m.source_host) LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscaper.Replace(strings.ToLower(host))+"%")
	}
	query := `SELECT ` + qualified("t", taskCols) + `, m.source_host, d.id, d.name, n.id, n.name
		FROM task t JOIN migration m ON m.id = t.migration_id JOIN domain d ON d.id = m.domain_id
		JOIN tenant n ON n.id = d.tenant_id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.query(ctx, query+` ORDER BY t.id DESC LIMIT ? OFFSET ?`, append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, fmt.Errorf("list the tasks: %w", err)
	}
	defer rows.Close()
	var out []TaskRow
	for rows.Next() {
		var r TaskRow
		r.Task, err = scanTask(rows, &r.SourceHost, &r.DomainID, &r.Domain, &r.CustomerID, &r.Customer)
		if err != nil {
			return nil, fmt.Errorf("list the tasks: %w", err)
		}
		r.SourceSecret, r.DestSecret = nil, nil
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tasks: %w", err)
	}
	return out, nil
}

// Actions the operator takes on a customer's task (TaskAction.Action).
const (
	ActionRestart = "restart"
	ActionResume  = "resume"
	ActionCancel  = "cancel"
)

// TaskAction records that the operator restarted, resumed or cancelled a
// customer's task on the customer's behalf.
type TaskAction struct {
	ID     int64 `json:"id"`
	TaskID int64 `json:"task_id"`
	// JobID is the task's job right after the action: the action explains
	// the task's state for as long as the task keeps that job.
	JobID    int64  `json:"-"`
	Action   string `json:"action"`
	TenantID int64  `json:"operator_id"`
	// UserID is the person signed in to the panel; 0 through the API,
	// with the operator's token.
	UserID    int64     `json:"user_id,omitempty"`
	UserEmail string    `json:"user,omitempty"` // the person's address when it acted
	Created   time.Time `json:"created"`
}

const taskActionCols = `a.id, a.task_id, a.job_id, a.action, a.tenant_id, a.user_id, a.user_email, a.created`

func scanTaskAction(row interface{ Scan(...any) error }) (TaskAction, error) {
	var a TaskAction
	var created int64
	err := row.Scan(&a.ID, &a.TaskID, &a.JobID, &a.Action, &a.TenantID, &a.UserID, &a.UserEmail, &created)
	a.Created = fromUnix(created)
	return a, notFound(err)
}

// RecordTaskAction implements Store.
func (l *DB) RecordTaskAction(ctx context.Context, a TaskAction) (TaskAction, error) {
	a.Created = time.Now().UTC().Truncate(time.Millisecond)
	err := l.queryRow(ctx, `INSERT INTO task_action (task_id, job_id, action, tenant_id, user_id, user_email, created)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, a.TaskID, a.JobID, a.Action, a.TenantID, a.UserID, a.UserEmail,
		unix(a.Created)).Scan(&a.ID)
	if err != nil {
		return a, fmt.Errorf("record the operator's %s of task %d: %w", a.Action, a.TaskID, err)
	}
	return a, nil
}

// taskActions lists the actions a query's condition selects, oldest first.
func (l *DB) taskActions(ctx context.Context, join, where string, args ...any) ([]TaskAction, error) {
	rows, err := l.query(ctx, `SELECT `+taskActionCols+` FROM task_action a `+join+` WHERE `+where+` ORDER BY a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the operator's actions: %w", err)
	}
	defer rows.Close()
	var out []TaskAction
	for rows.Next() {
		a, err := scanTaskAction(rows)
		if err != nil {
			return nil, fmt.Errorf("read the operator's actions: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// TaskActions implements Store.
func (l *DB) TaskActions(ctx context.Context, taskID int64) ([]TaskAction, error) {
	return l.taskActions(ctx, "", `a.task_id = ?`, taskID)
}

// CurrentTaskActions implements Store.
func (l *DB) CurrentTaskActions(ctx context.Context, migrationID int64) (map[int64]TaskAction, error) {
	as, err := l.taskActions(ctx, `JOIN task t ON t.id = a.task_id AND t.job_id = a.job_id`, `t.migration_id = ?`, migrationID)
	if err != nil {
		return nil, err
	}
	out := map[int64]TaskAction{}
	for _, a := range as {
		out[a.TaskID] = a // the newest wins
	}
	return out, nil
}
