package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the kind of SQL database a DB keeps its data in.
type Dialect int

// Dialects.
const (
	// SQLite is one embedded file, used by one process.
	SQLite Dialect = iota + 1
	// Postgres is a PostgreSQL database that several processes share.
	Postgres
)

// String names the dialect, for logs.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "SQLite"
	case Postgres:
		return "PostgreSQL"
	}
	return "dialect " + strconv.Itoa(int(d))
}

// rebind turns a query written with ? placeholders into the dialect's.
func (d Dialect) rebind(query string) string {
	if d == Postgres {
		return numberPlaceholders(query)
	}
	return query
}

// forUpdate is the clause that locks the rows a SELECT reads until the
// transaction ends. SQLite has none and needs none: its transactions
// (immediate) run one at a time.
func (d Dialect) forUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// numberPlaceholders numbers the ? placeholders of a query as PostgreSQL
// wants them ($1, $2, …). A ? inside a quoted string or identifier, or in
// a -- comment, is left alone.
func numberPlaceholders(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte // the quote a string or identifier opened, or 0
	comment := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case comment:
			comment = c != '\n'
		case quote != 0:
			// A doubled quote inside closes and reopens: the same state.
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			comment = true
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// querier is what a database and a transaction have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the store's queries, written once with ? placeholders, in the
// dialect of the database: on the database itself or in a transaction.
type conn struct {
	q       querier
	dialect Dialect
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.dialect.rebind(query), args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.dialect.rebind(query), args...)
}

// txn is a transaction of the store. Its *sql.Tx is handed to the job
// queue, which inserts jobs in it.
type txn struct {
	conn
	tx *sql.Tx
}

func (t txn) commit() error { return t.tx.Commit() }

// rollback ends a transaction that was not committed; after a commit it
// does nothing.
func (t txn) rollback() { _ = t.tx.Rollback() }

// lockKey names a lock that PostgreSQL transactions take (see txn.lock).
type lockKey int64

const (
	// lockSchema is held while the schema changes, so that processes
	// starting together on one database migrate it one at a time.
	lockSchema lockKey = 0x6d6d_0001
	// lockSubmit is held while a migration's tasks are inserted: two
	// submissions inserting tasks into the same mailboxes in different
	// orders would otherwise wait on each other's entries in the
	// one-writer-per-mailbox index, a deadlock.
	lockSubmit lockKey = 0x6d6d_0002
	// lockSlots is held while slots are counted and taken (see Slots).
	lockSlots lockKey = 0x6d6d_0003
	// lockChecks is held while a check's logins are counted (UseChecks).
	lockChecks lockKey = 0x6d6d_0004
)

// lock takes a lock until the end of the transaction on PostgreSQL, where
// several processes share the database. On SQLite it does nothing: its
// transactions (immediate) run one at a time anyway.
func (t txn) lock(ctx context.Context, key lockKey) error {
	if t.dialect != Postgres {
		return nil
	}
	if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(key)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// DB is the Store in an SQL database: one SQLite file, or a PostgreSQL
// database shared by several servers. The queries are the same in both;
// only the schema's definitions (see migrations.go) differ.
type DB struct {
	conn     // the database itself, outside transactions
	db       *sql.DB
	location string
	// queue is set once the job queue is open; state changes read it.
	queue atomic.Pointer[NotificationQueue]
	// recordFull is the ledger's INSERT of recordRows entries, prepared
	// once: preparing its 600 parameters anew was half the ledger's time.
	recordFull struct {
		once sync.Once
		stmt *sql.Stmt
		err  error
	}
}

var _ Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite file at path and brings its
// schema up to date.
func Open(path string) (*DB, error) {
	// The file holds sealed passwords and who may sign in: its owner's
	// alone, whatever the umask (SQLite gives its -wal and -shm files the
	// same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
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
	return open(context.Background(), db, SQLite, path)
}

// OpenPostgres connects to the PostgreSQL database at a URL
// (postgres://user:password@host:port/database?sslmode=…; what the URL
// leaves out comes from libpq's environment variables and ~/.pgpass) and
// brings its schema up to date. Several servers may share the database.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	location := redactURL(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in what it quotes of the URL.
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	// database/sql keeps 2 idle connections by default; the job queue's
	// workers would open and close connections all the time.
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return open(ctx, db, Postgres, location)
}

// redactURL is a database URL without its password, for logs.
func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// open brings a database's schema up to date and makes it the store.
func open(ctx context.Context, db *sql.DB, d Dialect, location string) (*DB, error) {
	l := &DB{conn: conn{db, d}, db: db, location: location}
	if err := l.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", location, err)
	}
	return l, nil
}

// Close closes the database.
func (l *DB) Close() error {
	if l.recordFull.stmt != nil {
		l.recordFull.stmt.Close()
	}
	return l.db.Close()
}

// DB is the database handle, for the job queue that shares the database
// (so that a migration and its jobs are written together).
func (l *DB) DB() *sql.DB { return l.db }

// Dialect is the kind of database.
func (l *DB) Dialect() Dialect { return l.dialect }

// Location says where the data is, for logs: the SQLite file's path, or
// the PostgreSQL URL without its password.
func (l *DB) Location() string { return l.location }

func (l *DB) begin(ctx context.Context) (txn, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return txn{}, err
	}
	return txn{conn{tx, l.dialect}, tx}, nil
}

// isUnique tells a violated UNIQUE or PRIMARY KEY constraint (or unique
// index), by the database's error code.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// Transient tells an error of the database's availability — a connection
// lost or refused, a server shutting down or restarting, a busy SQLite
// file — from an error of the query: the same work done again a moment
// later will likely succeed.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or starting; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" ||
			pe.Code == "53300"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
