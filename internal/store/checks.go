package store

import (
	"context"
	"fmt"
	"time"
)

// UseChecks counts a check of n logins against a customer's allowance of
// limit logins in the window that ends at now: it returns false, and
// counts nothing, when the check would go over. All web servers count in
// the same table, so that several of them behind one address do not give
// a customer several allowances to try passwords with.
func (l *DB) UseChecks(ctx context.Context, tenant int64, n, limit int, window time.Duration, now time.Time) (bool, error) {
	t, err := l.begin(ctx)
	if err != nil {
		return false, err
	}
	defer t.rollback()
	if err := t.lock(ctx, lockChecks); err != nil {
		return false, err
	}
	var used int
	if err := t.queryRow(ctx, `SELECT COALESCE(SUM(logins), 0) FROM check_use WHERE tenant_id = ? AND at > ?`,
		tenant, unix(now.Add(-window))).Scan(&used); err != nil {
		return false, fmt.Errorf("count a customer's checks: %w", err)
	}
	if used+n > limit {
		return false, nil
	}
	if _, err := t.exec(ctx, `INSERT INTO check_use (tenant_id, at, logins) VALUES (?, ?, ?)`, tenant, unix(now), n); err != nil {
		return false, fmt.Errorf("count a check: %w", err)
	}
	return true, t.commit()
}

// SweepChecks forgets the checks made before the given time.
func (l *DB) SweepChecks(ctx context.Context, before time.Time) error {
	if _, err := l.exec(ctx, `DELETE FROM check_use WHERE at < ?`, unix(before)); err != nil {
		return fmt.Errorf("forget old checks: %w", err)
	}
	return nil
}
