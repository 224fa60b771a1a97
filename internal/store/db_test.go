package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestNumberPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`: `SELECT 1`,
		`UPDATE t SET a = ?, b = ? WHERE id = ? AND s IN (?, ?)`: `UPDATE t SET a = $1, b = $2 WHERE id = $3 AND s IN ($4, $5)`,
		`SELECT '?', "a?b", ? FROM t`:                            `SELECT '?', "a?b", $1 FROM t`,
		`SELECT 'it''s ?', ?`:                                    `SELECT 'it''s ?', $1`,
		"SELECT ? -- isn't ?\n, ?":                               "SELECT $1 -- isn't ?\n, $2",
		`SELECT ?` + strings.Repeat(", ?", 10):                   `SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11`,
		`SELECT a - ? FROM t`:                                    `SELECT a - $1 FROM t`,
	} {
		if got := numberPlaceholders(in); got != want {
			t.Errorf("numberPlaceholders(%q) = %q, want %q", in, got, want)
		}
		if got := SQLite.rebind(in); got != in {
			t.Errorf("SQLite changed %q to %q", in, got)
		}
	}
}

// A database URL is logged without its password, wherever it is given.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://mm:s3cret@db.example:5432/mm?sslmode=verify-full": "postgres://mm:xxxxx@db.example:5432/mm?sslmode=verify-full",
		"postgres://mm@db/mm?password=s3cret&sslpassword=k3y":         "postgres://mm@db/mm?password=xxxxx&sslpassword=xxxxx",
		"postgresql:///mm?host=/run/postgresql":                       "postgresql:///mm?host=/run/postgresql",
		"postgres://mm:s3cret@db/mm%zz":                               "(a database URL that does not parse)",
	} {
		if got := redactURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Errors of a database that cannot be opened do not carry its password.
func TestOpenPostgresErrorsHidePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://mm:s3cret@127.0.0.1:notaport/mm",            // does not parse
		"postgres://mm:s3cret@127.0.0.1:1/mm?connect_timeout=2", // nothing listens
	} {
		s, err := OpenPostgres(context.Background(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("%s opened", dsn)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("syntax error"), false},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("start task 3: %w", &pgconn.PgError{Code: "57P01"}), true},
		{&pgconn.PgError{Code: "08006"}, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{sql.ErrNoRows, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
