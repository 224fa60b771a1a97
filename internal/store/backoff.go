package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backoffs counts failures per key with the time of the last one, for
// waits that grow with each failure (the panel's sign-in): in the
// database, so that every web server sees the same count.
func (l *DB) Backoffs() Backoffs { return Backoffs{l} }

// Backoffs is the store's failure counts (see DB.Backoffs).
type Backoffs struct{ l *DB }

// Failures is how often key failed since the window began, and when last;
// failures before it are forgotten.
func (b Backoffs) Failures(ctx context.Context, key string, windowStart time.Time) (int, time.Time, error) {
	var n int
	var last int64
	err := b.l.queryRow(ctx, `SELECT failures, last FROM backoff WHERE key = ? AND last >= ?`, key, unix(windowStart)).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read failures: %w", err)
	}
	return n, fromUnix(last), nil
}

// Fail counts a failure of each key at now; a key whose last failure was
// before windowStart starts again from one.
func (b Backoffs) Fail(ctx context.Context, keys []string, now, windowStart time.Time) error {
	for _, key := range keys {
		if _, err := b.l.exec(ctx, `INSERT INTO backoff (key, failures, last) VALUES (?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN backoff.last < ? THEN 1 ELSE backoff.failures + 1 END,
			last = excluded.last`, key, unix(now), unix(windowStart)); err != nil {
			return fmt.Errorf("count a failure: %w", err)
		}
	}
	return nil
}

// Clear forgets a key's failures.
func (b Backoffs) Clear(ctx context.Context, key string) error {
	if _, err := b.l.exec(ctx, `DELETE FROM backoff WHERE key = ?`, key); err != nil {
		return fmt.Errorf("forget failures: %w", err)
	}
	return nil
}

// Sweep deletes the counts whose last failure was before windowStart.
func (b Backoffs) Sweep(ctx context.Context, windowStart time.Time) error {
	if _, err := b.l.exec(ctx, `DELETE FROM backoff WHERE last < ?`, unix(windowStart)); err != nil {
		return fmt.Errorf("forget old failures: %w", err)
	}
	return nil
}
