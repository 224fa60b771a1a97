package store

import (
	"context"
	"fmt"
	"time"
)

// sqliteSchema is the schema as the versions before numbered steps kept
// it (PRAGMA user_version 7). CREATE TABLE IF NOT EXISTS leaves the tables
// of older files as they were; sqliteInitial adds what they lack.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS ledger_folder (
	id INTEGER PRIMARY KEY,
	account TEXT NOT NULL,
	src_folder TEXT NOT NULL,
	dst_folder TEXT NOT NULL DEFAULT '',
	src_uidvalidity INTEGER NOT NULL DEFAULT 0,
	src_uidnext INTEGER NOT NULL DEFAULT 0,
	src_highestmodseq INTEGER NOT NULL DEFAULT 0,
	src_messages INTEGER NOT NULL DEFAULT 0,
	dst_uidvalidity INTEGER NOT NULL DEFAULT 0,
	complete INTEGER NOT NULL DEFAULT 0,
	UNIQUE (account, src_folder)
);
CREATE TABLE IF NOT EXISTS ledger_message (
	folder_id INTEGER NOT NULL REFERENCES ledger_folder(id) ON DELETE CASCADE,
	src_uidvalidity INTEGER NOT NULL,
	src_uid INTEGER NOT NULL,
	dst_uid INTEGER NOT NULL,
	identity BLOB NOT NULL,
	flags TEXT NOT NULL,
	PRIMARY KEY (folder_id, src_uidvalidity, src_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL CHECK (kind IN ('operator', 'customer')),
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_token (
	id INTEGER PRIMARY KEY,
	tenant_id INTEGER NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hash BLOB NOT NULL UNIQUE,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS domain (
	id INTEGER PRIMARY KEY,
	tenant_id INTEGER NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
	name TEXT NOT NULL UNIQUE,
	mailbox_limit INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS migration (
	id INTEGER PRIMARY KEY,
	domain_id INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
	source_host TEXT NOT NULL,
	source_port INTEGER NOT NULL,
	source_security TEXT NOT NULL,
	source_fingerprint TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS task (
	id INTEGER PRIMARY KEY,
	migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
	kind TEXT NOT NULL CHECK (kind IN ('sync', 'create')),
	source_user TEXT NOT NULL,
	dest_user TEXT NOT NULL,
	dest_key TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	job_id INTEGER NOT NULL DEFAULT 0,
	folders_total INTEGER NOT NULL DEFAULT 0,
	folders_done INTEGER NOT NULL DEFAULT 0,
	messages_total INTEGER NOT NULL DEFAULT 0,
	messages_done INTEGER NOT NULL DEFAULT 0,
	bytes_total INTEGER NOT NULL DEFAULT 0,
	bytes_done INTEGER NOT NULL DEFAULT 0,
	report TEXT NOT NULL DEFAULT '',
	failure TEXT NOT NULL DEFAULT '',
	source_secret BLOB,
	dest_secret BLOB,
	created INTEGER NOT NULL,
	started INTEGER NOT NULL DEFAULT 0,
	finished INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS task_migration ON task(migration_id);
CREATE INDEX IF NOT EXISTS task_state ON task(state);
CREATE TABLE IF NOT EXISTS user (
	id INTEGER PRIMARY KEY,
	tenant_id INTEGER NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
	email TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created INTEGER NOT NULL,
	lang TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS session (
	token_hash BLOB PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notification (
	id INTEGER PRIMARY KEY,
	migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
	task_id INTEGER NOT NULL DEFAULT 0,
	job_id INTEGER NOT NULL,
	kind TEXT NOT NULL,
	created INTEGER NOT NULL,
	sent INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	UNIQUE (migration_id, task_id, job_id, kind)
);
CREATE TABLE IF NOT EXISTS task_run (
	id INTEGER PRIMARY KEY,
	task_id INTEGER NOT NULL REFERENCES task(id) ON DELETE CASCADE,
	number INTEGER NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('first', 'resume', 'restart', 'resync')),
	state TEXT NOT NULL,
	started INTEGER NOT NULL,
	finished INTEGER NOT NULL DEFAULT 0,
	report TEXT NOT NULL DEFAULT '',
	failure TEXT NOT NULL DEFAULT '',
	UNIQUE (task_id, number)
);
CREATE TABLE IF NOT EXISTS kept_logins (
	handle_hash BLOB PRIMARY KEY,
	session_hash BLOB NOT NULL REFERENCES session(token_hash) ON DELETE CASCADE,
	sealed BLOB NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resync_schedule (
	migration_id INTEGER PRIMARY KEY REFERENCES migration(id) ON DELETE CASCADE,
	started INTEGER NOT NULL,
	mx_since INTEGER NOT NULL DEFAULT 0,
	last_run INTEGER NOT NULL DEFAULT 0
);
`

// sqliteInitial is step 1 on SQLite: the schema, and what versions before
// numbered steps added to the files of their predecessors.
func sqliteInitial(ctx context.Context, t txn) error {
	if _, err := t.exec(ctx, sqliteSchema); err != nil {
		return err
	}
	for _, c := range []struct{ table, column, def string }{
		{"migration", "source_fingerprint", `TEXT NOT NULL DEFAULT ''`},
		{"task", "dest_key", `TEXT NOT NULL DEFAULT ''`},
		{"user", "lang", `TEXT NOT NULL DEFAULT ''`},
	} {
		if err := addColumn(ctx, t, c.table, c.column, c.def); err != nil {
			return err
		}
	}
	// Older versions let two tasks write into one mailbox at once; the
	// newest of such tasks are cancelled so that the rule below can hold.
	// The addresses are ASCII in practice, where lower() equals MailboxKey.
	if _, err := t.exec(ctx, `UPDATE task SET dest_key = lower(dest_user) WHERE dest_key = ''`); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE task SET state = 'cancelled', finished = ? WHERE state IN ('queued', 'copying')
		AND id NOT IN (SELECT min(id) FROM task WHERE state IN ('queued', 'copying') GROUP BY dest_key)`,
		unix(time.Now())); err != nil {
		return err
	}
	// At most one task writes into a mailbox at any moment.
	if _, err := t.exec(ctx, `CREATE UNIQUE INDEX IF NOT EXISTS task_active_mailbox ON task(dest_key)
		WHERE state IN ('queued', 'copying')`); err != nil {
		return err
	}
	// Every task that was copied before runs were kept gets one run, from
	// what the task kept of its latest.
	if _, err := t.exec(ctx, `INSERT INTO task_run (task_id, number, kind, state, started, finished, report, failure)
		SELECT id, 1, 'first', CASE WHEN state = 'queued' THEN 'copying' ELSE state END, started, finished, report, failure
		FROM task WHERE started <> 0 AND NOT EXISTS (SELECT 1 FROM task_run r WHERE r.task_id = task.id)`); err != nil {
		return fmt.Errorf("keep the runs of earlier tasks: %w", err)
	}
	return nil
}

// addColumn adds a column to a table that lacks it.
func addColumn(ctx context.Context, t txn, table, column, def string) error {
	var n int
	if err := t.queryRow(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := t.exec(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+def)
	return err
}
