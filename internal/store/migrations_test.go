package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeLegacy turns a new SQLite database into one as the versions before
// numbered schema steps left it (no schema_migration, the users in table
// "user", PRAGMA user_version 7), then runs changes that take it further
// back.
func makeLegacy(t *testing.T, db *sql.DB, changes ...string) {
	t.Helper()
	for _, q := range append([]string{`DROP TABLE schema_migration`, `ALTER TABLE app_user RENAME TO user`,
		`PRAGMA user_version = 7`}, changes...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
}

// versions lists the schema steps recorded in a database.
func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migration ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// A file of a version before numbered steps opens with its data: its users
// keep signing in (their table is renamed under the sessions that refer to
// it), and every step is recorded.
func TestLegacySQLiteUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
	u, err := s.CreateUser(ctx, c.ID, "jana@firma.cz", "hash")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, []byte("live"), u.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	makeLegacy(t, s.DB(), `ALTER TABLE user DROP COLUMN lang`)
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _, err := s.SessionUser(ctx, []byte("live")); err != nil || got.ID != u.ID || got.Lang != "" {
		t.Errorf("the session of a user of the old file: %+v %v", got, err)
	}
	if err := s.SetUserLang(ctx, u.ID, "cs"); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, s.DB()); len(got) != len(steps) || got[0] != 1 || got[len(got)-1] != len(steps) {
		t.Errorf("recorded schema versions %v, want 1…%d", got, len(steps))
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'user'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a table named user is left: %d %v", n, err)
	}
}

// Opening again applies nothing twice; a database that a newer version
// changed further is refused, not used half-understood.
func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	first := versions(t, s.DB())
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if again := versions(t, s.DB()); len(again) != len(first) {
		t.Errorf("versions %v after reopening, %v before", again, first)
	}
	if _, err := s.DB().Exec(`INSERT INTO schema_migration (version, applied) VALUES (?, 0)`, len(steps)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer mailmigrate") {
		if s != nil {
			s.Close()
		}
		t.Errorf("a newer schema opened: %v", err)
	}
}

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
