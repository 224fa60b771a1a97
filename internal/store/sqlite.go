package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	_ "modernc.org/sqlite" // the embedded database, no cgo

	"mailmigrate/internal/engine"
)

// SQLite is the Store in one embedded SQLite file.
type SQLite struct {
	db *sql.DB
	// queue is set once the job queue is open; state changes read it.
	queue atomic.Pointer[NotificationQueue]
}

var _ Store = (*SQLite)(nil)

const schema = `
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
PRAGMA user_version = 7;
`

// Open opens (creating if needed) the SQLite file at path.
func Open(path string) (*SQLite, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and this way no
	// writer ever waits on a busy lock held by a reader of ours.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := upgrade(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("upgrade database %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// upgrade adds what newer versions keep to a database an older version
// made (CREATE TABLE IF NOT EXISTS leaves existing tables as they were).
func upgrade(db *sql.DB) error {
	if err := upgradeSchedule(db); err != nil {
		return err
	}
	if err := addColumn(db, "migration", "source_fingerprint", `TEXT NOT NULL DEFAULT ''`); err != nil {
		return err
	}
	if err := addColumn(db, "task", "dest_key", `TEXT NOT NULL DEFAULT ''`); err != nil {
		return err
	}
	if err := addColumn(db, "user", "lang", `TEXT NOT NULL DEFAULT ''`); err != nil {
		return err
	}
	// Older versions let two tasks write into one mailbox at once; the
	// newest of such tasks are cancelled so that the rule below can hold.
	// The addresses are ASCII in practice, where lower() equals MailboxKey.
	_, err := db.Exec(`UPDATE task SET dest_key = lower(dest_user) WHERE dest_key = ''`)
	if err == nil {
		_, err = db.Exec(`UPDATE task SET state = ?, finished = ? WHERE state IN (?, ?) AND id NOT IN
			(SELECT min(id) FROM task WHERE state IN (?, ?) GROUP BY dest_key)`,
			StateCancelled, unix(time.Now()), StateQueued, StateRunning, StateQueued, StateRunning)
	}
	if err == nil {
		// At most one task writes into a mailbox at any moment.
		_, err = db.Exec(`CREATE UNIQUE INDEX IF NOT EXISTS task_active_mailbox ON task(dest_key)
			WHERE state IN ('` + StateQueued + `', '` + StateRunning + `')`)
	}
	if err == nil {
		err = upgradeRuns(db)
	}
	return err
}

// addColumn adds a column to a table that lacks it.
func addColumn(db *sql.DB, table, column, def string) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + column + ` ` + def)
	return err
}

// Close closes the file.
func (l *SQLite) Close() error { return l.db.Close() }

// DB is the database handle, for the job queue that shares the file (so
// that a migration and its jobs are written together).
func (l *SQLite) DB() *sql.DB { return l.db }

// Folder implements engine.Ledger.
func (l *SQLite) Folder(ctx context.Context, account, srcFolder string) (engine.FolderState, bool, error) {
	st := engine.FolderState{SrcFolder: srcFolder}
	err := l.db.QueryRowContext(ctx, `SELECT dst_folder, src_uidvalidity, src_uidnext,
		src_highestmodseq, src_messages, dst_uidvalidity FROM ledger_folder
		WHERE account = ? AND src_folder = ? AND complete = 1`, account, srcFolder).
		Scan(&st.DstFolder, &st.SrcUIDValidity, &st.SrcUIDNext, &st.SrcHighestModSeq,
			&st.SrcMessages, &st.DstUIDValidity)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read ledger folder %q: %w", srcFolder, err)
	}
	return st, true, nil
}

// SaveFolder implements engine.Ledger.
func (l *SQLite) SaveFolder(ctx context.Context, account string, st engine.FolderState) error {
	_, err := l.db.ExecContext(ctx, `INSERT INTO ledger_folder (account, src_folder, dst_folder,
		src_uidvalidity, src_uidnext, src_highestmodseq, src_messages, dst_uidvalidity, complete)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (account, src_folder) DO UPDATE SET dst_folder = excluded.dst_folder,
		src_uidvalidity = excluded.src_uidvalidity, src_uidnext = excluded.src_uidnext,
		src_highestmodseq = excluded.src_highestmodseq, src_messages = excluded.src_messages,
		dst_uidvalidity = excluded.dst_uidvalidity, complete = 1`,
		account, st.SrcFolder, st.DstFolder, st.SrcUIDValidity, st.SrcUIDNext,
		st.SrcHighestModSeq, st.SrcMessages, st.DstUIDValidity)
	if err != nil {
		return fmt.Errorf("save ledger folder %q: %w", st.SrcFolder, err)
	}
	return nil
}

// Entries implements engine.Ledger.
func (l *SQLite) Entries(ctx context.Context, account, srcFolder string, uidValidity uint32) (map[imap.UID]engine.Entry, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT m.src_uid, m.dst_uid, m.identity, m.flags
		FROM ledger_message m JOIN ledger_folder f ON f.id = m.folder_id
		WHERE f.account = ? AND f.src_folder = ? AND m.src_uidvalidity = ?`,
		account, srcFolder, uidValidity)
	if err != nil {
		return nil, fmt.Errorf("read ledger of %q: %w", srcFolder, err)
	}
	defer rows.Close()
	out := map[imap.UID]engine.Entry{}
	for rows.Next() {
		var e engine.Entry
		var id []byte
		var flags string
		if err := rows.Scan(&e.SrcUID, &e.DstUID, &id, &flags); err != nil {
			return nil, fmt.Errorf("read ledger of %q: %w", srcFolder, err)
		}
		copy(e.Identity[:], id)
		for _, f := range strings.Fields(flags) {
			e.Flags = append(e.Flags, imap.Flag(f))
		}
		out[e.SrcUID] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger of %q: %w", srcFolder, err)
	}
	return out, nil
}

// Record implements engine.Ledger.
func (l *SQLite) Record(ctx context.Context, account, srcFolder string, uidValidity uint32, entries []engine.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	defer tx.Rollback()
	var folderID int64
	err = tx.QueryRowContext(ctx, `INSERT INTO ledger_folder (account, src_folder) VALUES (?, ?)
		ON CONFLICT (account, src_folder) DO UPDATE SET account = excluded.account
		RETURNING id`, account, srcFolder).Scan(&folderID)
	if err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO ledger_message
		(folder_id, src_uidvalidity, src_uid, dst_uid, identity, flags) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	defer stmt.Close()
	for _, e := range entries {
		flags := make([]string, len(e.Flags))
		for i, f := range e.Flags {
			flags[i] = string(f)
		}
		if _, err := stmt.ExecContext(ctx, folderID, uidValidity, e.SrcUID, e.DstUID,
			e.Identity[:], strings.Join(flags, " ")); err != nil {
			return fmt.Errorf("record copied messages: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	return nil
}

// Forget implements engine.Ledger.
func (l *SQLite) Forget(ctx context.Context, account, srcFolder string) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM ledger_message WHERE folder_id IN
		(SELECT id FROM ledger_folder WHERE account = ? AND src_folder = ?)`, account, srcFolder)
	if err == nil {
		_, err = l.db.ExecContext(ctx, `UPDATE ledger_folder SET complete = 0
			WHERE account = ? AND src_folder = ?`, account, srcFolder)
	}
	if err != nil {
		return fmt.Errorf("reset ledger of %q: %w", srcFolder, err)
	}
	return nil
}

// Destinations implements engine.Ledger.
func (l *SQLite) Destinations(ctx context.Context, account string) (map[string]string, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT src_folder, dst_folder FROM ledger_folder
		WHERE account = ? AND dst_folder <> ''`, account)
	if err != nil {
		return nil, fmt.Errorf("read folder plan: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var src, dst string
		if err := rows.Scan(&src, &dst); err != nil {
			return nil, fmt.Errorf("read folder plan: %w", err)
		}
		out[src] = dst
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read folder plan: %w", err)
	}
	return out, nil
}

// Remember implements engine.Ledger. A folder that now goes elsewhere is
// no longer complete: its state described the old destination.
func (l *SQLite) Remember(ctx context.Context, account, srcFolder, dstFolder string) error {
	_, err := l.db.ExecContext(ctx, `INSERT INTO ledger_folder (account, src_folder, dst_folder) VALUES (?, ?, ?)
		ON CONFLICT (account, src_folder) DO UPDATE SET dst_folder = excluded.dst_folder,
		complete = CASE WHEN ledger_folder.dst_folder = excluded.dst_folder THEN ledger_folder.complete ELSE 0 END`,
		account, srcFolder, dstFolder)
	if err != nil {
		return fmt.Errorf("remember folder %q: %w", srcFolder, err)
	}
	return nil
}
