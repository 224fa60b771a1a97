package store

import (
	"context"
	"fmt"
	"time"
)

// inTx runs f in a transaction and commits it; errors say what was done.
func (l *DB) inTx(ctx context.Context, what string, f func(tx txn) error) error {
	tx, err := l.begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.rollback()
	if err := f(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// mustChange turns an UPDATE or DELETE that touched no row into
// ErrNotFound.
func mustChange(ok bool, err error) error {
	if err == nil && !ok {
		return ErrNotFound
	}
	return err
}

// refuseRunning returns a *RunningError for the first task queued or
// copying in the migrations that the query migrations selects. On
// PostgreSQL it locks the tasks' rows, so that none is queued again before
// the transaction ends (SQLite's transaction holds the write lock anyway).
func refuseRunning(ctx context.Context, tx txn, migrations string, args ...any) error {
	rows, err := tx.query(ctx, `SELECT id, migration_id, dest_user, state FROM task
		WHERE migration_id IN (`+migrations+`) ORDER BY id`+tx.dialect.forUpdate(), args...)
	if err != nil {
		return fmt.Errorf("read the tasks: %w", err)
	}
	defer rows.Close()
	var running *RunningError
	for rows.Next() {
		var e RunningError
		var state string
		if err := rows.Scan(&e.TaskID, &e.MigrationID, &e.Mailbox, &state); err != nil {
			return fmt.Errorf("read the tasks: %w", err)
		}
		if running == nil && !Finished(state) {
			running = &e
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the tasks: %w", err)
	}
	if running != nil {
		return running
	}
	return nil
}

// keepOperator refuses deleting or disabling tenant id when it is the
// only enabled operator. The operators' rows stay locked until the
// transaction ends, so that two such changes cannot each leave the other
// operator as the last one.
func keepOperator(ctx context.Context, tx txn, id int64) error {
	rows, err := tx.query(ctx, `SELECT id, disabled FROM tenant WHERE kind = ? ORDER BY id`+tx.dialect.forUpdate(), KindOperator)
	if err != nil {
		return fmt.Errorf("read the operators: %w", err)
	}
	defer rows.Close()
	target, others := false, 0
	for rows.Next() {
		var opID, disabled int64
		if err := rows.Scan(&opID, &disabled); err != nil {
			return fmt.Errorf("read the operators: %w", err)
		}
		switch {
		case opID == id:
			target = true
		case disabled == 0:
			others++
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the operators: %w", err)
	}
	if target && others == 0 {
		return ErrLastOperator
	}
	return nil
}

// setDisabled is the value of a disabled column: kept as it was when the
// row is disabled already, so that it says since when.
func setDisabled(disabled bool) (string, []any) {
	if !disabled {
		return `disabled = 0`, nil
	}
	return `disabled = CASE WHEN disabled = 0 THEN ? ELSE disabled END`, []any{unix(time.Now())}
}

// SetTenantDisabled implements Store.
func (l *DB) SetTenantDisabled(ctx context.Context, id int64, disabled bool) error {
	return l.inTx(ctx, fmt.Sprintf("disable or enable tenant %d", id), func(tx txn) error {
		if disabled {
			if err := keepOperator(ctx, tx, id); err != nil {
				return err
			}
		}
		set, args := setDisabled(disabled)
		if err := mustChange(changed(tx.exec(ctx, `UPDATE tenant SET `+set+` WHERE id = ?`, append(args, id)...))); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		_, err := tx.exec(ctx, `DELETE FROM session WHERE user_id IN (SELECT id FROM app_user WHERE tenant_id = ?)`, id)
		return err
	})
}

// DeleteTenant implements Store. The schema's foreign keys delete what
// the tenant owns.
func (l *DB) DeleteTenant(ctx context.Context, id int64) error {
	return l.inTx(ctx, fmt.Sprintf("delete tenant %d", id), func(tx txn) error {
		// No migration into its domains starts meanwhile.
		if err := tx.lock(ctx, lockSubmit); err != nil {
			return err
		}
		if err := keepOperator(ctx, tx, id); err != nil {
			return err
		}
		if err := refuseRunning(ctx, tx, `SELECT m.id FROM migration m JOIN domain d ON d.id = m.domain_id
			WHERE d.tenant_id = ?`, id); err != nil {
			return err
		}
		return mustChange(changed(tx.exec(ctx, `DELETE FROM tenant WHERE id = ?`, id)))
	})
}

const tokenCols = `id, tenant_id, name, created, last_used`

func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var k Token
	var created, used int64
	err := row.Scan(&k.ID, &k.TenantID, &k.Label, &created, &used)
	k.Created, k.LastUsed = fromUnix(created), fromUnix(used)
	return k, notFound(err)
}

// Tokens implements Store.
func (l *DB) Tokens(ctx context.Context, tenantID int64) ([]Token, error) {
	rows, err := l.query(ctx, `SELECT `+tokenCols+` FROM api_token WHERE ? = 0 OR tenant_id = ? ORDER BY tenant_id, id`,
		tenantID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read the API tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("read the API tokens: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteToken implements Store.
func (l *DB) DeleteToken(ctx context.Context, id int64) (Token, error) {
	k, err := scanToken(l.queryRow(ctx, `DELETE FROM api_token WHERE id = ? RETURNING `+tokenCols, id))
	if err != nil {
		return k, fmt.Errorf("revoke API token %d: %w", id, err)
	}
	return k, nil
}

// SetMailboxLimit implements Store.
func (l *DB) SetMailboxLimit(ctx context.Context, domainID int64, limit int) error {
	if err := mustChange(changed(l.exec(ctx, `UPDATE domain SET mailbox_limit = ? WHERE id = ?`, limit, domainID))); err != nil {
		return fmt.Errorf("set the mailbox limit of domain %d: %w", domainID, err)
	}
	return nil
}

// DeleteDomain implements Store.
func (l *DB) DeleteDomain(ctx context.Context, id int64) error {
	return l.inTx(ctx, fmt.Sprintf("delete domain %d", id), func(tx txn) error {
		if err := tx.lock(ctx, lockSubmit); err != nil {
			return err
		}
		if err := refuseRunning(ctx, tx, `SELECT id FROM migration WHERE domain_id = ?`, id); err != nil {
			return err
		}
		return mustChange(changed(tx.exec(ctx, `DELETE FROM domain WHERE id = ?`, id)))
	})
}

// DomainActivity implements Store.
func (l *DB) DomainActivity(ctx context.Context, domainID int64) (Activity, error) {
	a := Activity{Mailboxes: map[string]int{}}
	err := l.queryRow(ctx, `SELECT count(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM task t
		WHERE t.migration_id = m.id AND t.state IN (?, ?)) THEN 1 ELSE 0 END), 0) FROM migration m WHERE m.domain_id = ?`,
		StateQueued, StateRunning, domainID).Scan(&a.Migrations, &a.Running)
	if err != nil {
		return a, fmt.Errorf("count the migrations of domain %d: %w", domainID, err)
	}
	rows, err := l.query(ctx, `SELECT t.state, count(*) FROM task t JOIN migration m ON m.id = t.migration_id
		WHERE m.domain_id = ? GROUP BY t.state`, domainID)
	if err != nil {
		return a, fmt.Errorf("count the mailboxes of domain %d: %w", domainID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return a, fmt.Errorf("count the mailboxes of domain %d: %w", domainID, err)
		}
		a.Mailboxes[state] = n
	}
	return a, rows.Err()
}

// endSessions ends a person's sign-in sessions and says how many.
func endSessions(ctx context.Context, tx txn, userID int64) (int, error) {
	res, err := tx.exec(ctx, `DELETE FROM session WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("end the sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// SetUserDisabled implements Store.
func (l *DB) SetUserDisabled(ctx context.Context, userID int64, disabled bool) error {
	return l.inTx(ctx, fmt.Sprintf("disable or enable user %d", userID), func(tx txn) error {
		set, args := setDisabled(disabled)
		if err := mustChange(changed(tx.exec(ctx, `UPDATE app_user SET `+set+` WHERE id = ?`, append(args, userID)...))); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		_, err := endSessions(ctx, tx, userID)
		return err
	})
}

// DeleteUser implements Store. The sessions go with the user (foreign
// key).
func (l *DB) DeleteUser(ctx context.Context, userID int64) error {
	if err := mustChange(changed(l.exec(ctx, `DELETE FROM app_user WHERE id = ?`, userID))); err != nil {
		return fmt.Errorf("delete user %d: %w", userID, err)
	}
	return nil
}

// SetUserPassword implements Store.
func (l *DB) SetUserPassword(ctx context.Context, userID int64, passwordHash string) (int, error) {
	var ended int
	err := l.inTx(ctx, fmt.Sprintf("set the password of user %d", userID), func(tx txn) error {
		err := mustChange(changed(tx.exec(ctx, `UPDATE app_user SET password_hash = ? WHERE id = ?`, passwordHash, userID)))
		if err != nil {
			return err
		}
		ended, err = endSessions(ctx, tx, userID)
		return err
	})
	return ended, err
}
