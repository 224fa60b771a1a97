package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// step is one numbered change of the schema, written for each dialect;
// nil: nothing to do in that one. A released step never changes (it holds
// literal values, not the Go constants of states): a later change is a
// further step.
type step struct {
	sqlite, postgres func(ctx context.Context, t txn) error
}

// steps are the schema's versions: steps[i] makes version i+1, the same
// schema in both dialects. Open applies those a database lacks, in order,
// in one transaction, and records each in schema_migration.
var steps = []step{
	// 1: the schema as mailmigrate kept it before migrations were
	// numbered. On SQLite it also brings any database of those versions
	// (PRAGMA user_version up to 7) to it.
	{sqlite: sqliteInitial, postgres: script(postgresInitial)},
	// 2: "user" is a reserved word in SQL. PostgreSQL databases never had
	// that table.
	{sqlite: script(`ALTER TABLE user RENAME TO app_user`)},
	// 3: settings of the whole service, such as which key the stored
	// passwords are sealed with.
	{sqlite: script(`CREATE TABLE setting (name TEXT PRIMARY KEY, value TEXT NOT NULL)`),
		postgres: script(`CREATE TABLE setting (name TEXT PRIMARY KEY, value TEXT NOT NULL)`)},
	// 4: slots, the limits that hold across servers (see Slots).
	{sqlite: script(`CREATE TABLE slot (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, holder TEXT NOT NULL,
			lapses INTEGER NOT NULL);
		CREATE INDEX slot_key ON slot (key, lapses)`),
		postgres: script(`CREATE TABLE slot (id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, holder TEXT NOT NULL,
			lapses BIGINT NOT NULL);
		CREATE INDEX slot_key ON slot (key, lapses)`)},
	// 5: the operator's side: customers and sign-ins can be disabled
	// (since when, unix milliseconds; 0: enabled), and an API token's last
	// use is kept, to tell the operator which tokens are still in use. It
	// needs no step after 1.
	{sqlite: script(`ALTER TABLE tenant ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE app_user ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE api_token ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0`),
		postgres: script(`ALTER TABLE tenant ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
		ALTER TABLE app_user ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
		ALTER TABLE api_token ADD COLUMN last_used BIGINT NOT NULL DEFAULT 0`)},
	// 6: failure counts of the panel's sign-in (see Backoffs), shared by
	// every web server.
	{sqlite: script(`CREATE TABLE backoff (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last INTEGER NOT NULL)`),
		postgres: script(`CREATE TABLE backoff (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last BIGINT NOT NULL)`)},
}

// script is a step of fixed statements.
func script(statements string) func(context.Context, txn) error {
	return func(ctx context.Context, t txn) error {
		_, err := t.tx.ExecContext(ctx, statements)
		return err
	}
}

// migrate applies the steps the database lacks.
func (l *DB) migrate(ctx context.Context) error {
	return l.schemaTx(ctx, func(t txn) error {
		if _, err := t.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migration (
			version INTEGER PRIMARY KEY,
			applied BIGINT NOT NULL
		)`); err != nil {
			return fmt.Errorf("schema versions: %w", err)
		}
		var version int
		if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migration`).Scan(&version); err != nil {
			return fmt.Errorf("schema versions: %w", err)
		}
		if version > len(steps) {
			return fmt.Errorf("the database has schema version %d, but this mailmigrate knows only up to %d: run a newer mailmigrate",
				version, len(steps))
		}
		for v := version + 1; v <= len(steps); v++ {
			apply := steps[v-1].sqlite
			if l.dialect == Postgres {
				apply = steps[v-1].postgres
			}
			if apply != nil {
				if err := apply(ctx, t); err != nil {
					return fmt.Errorf("schema version %d: %w", v, err)
				}
			}
			if _, err := t.exec(ctx, `INSERT INTO schema_migration (version, applied) VALUES (?, ?)`, v, unix(time.Now())); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
		}
		return nil
	})
}

// SchemaTx runs f in a transaction that holds the lock under which the
// store's schema changes: servers starting together on one PostgreSQL
// database change it one at a time. The job queue creates its tables in
// it.
func (l *DB) SchemaTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	return l.schemaTx(ctx, func(t txn) error { return f(t.tx) })
}

// schemaTx runs f in a transaction that holds the schema lock.
func (l *DB) schemaTx(ctx context.Context, f func(t txn) error) error {
	t, err := l.begin(ctx)
	if err != nil {
		return err
	}
	defer t.rollback()
	if err := t.lock(ctx, lockSchema); err != nil {
		return err
	}
	if err := f(t); err != nil {
		return err
	}
	return t.commit()
}
