package store

import (
	"strings"
	"testing"
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
