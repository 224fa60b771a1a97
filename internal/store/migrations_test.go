package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/testbed"
)

// makeLegacy turns a new SQLite database into one as the versions before
// numbered schema steps left it (no schema_migration, the users in table
// "user", PRAGMA user_version 7), then runs changes that take it further
// back.
func makeLegacy(t *testing.T, db *sql.DB, changes ...string) {
	t.Helper()
	// Tables of later steps did not exist then.
	for _, q := range append([]string{`DROP TABLE schema_migration`, `ALTER TABLE app_user RENAME TO user`,
		`DROP TABLE setting`, `DROP TABLE slot`, `DROP TABLE backoff`, `ALTER TABLE tenant DROP COLUMN disabled`, `ALTER TABLE user DROP COLUMN disabled`,
		`ALTER TABLE api_token DROP COLUMN last_used`, `DROP TABLE task_action`, `ALTER TABLE task DROP COLUMN source_sign_in`,
		`ALTER TABLE migration DROP COLUMN gmail_once`, `DROP TABLE api_sign_in`, `DROP TABLE check_use`,
		`PRAGMA user_version = 7`}, changes...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
}

// versions lists the schema steps recorded in a database.
func versions(t *testing.T, s *DB) []int {
	t.Helper()
	rows, err := s.query(context.Background(), `SELECT version FROM schema_migration ORDER BY version`)
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
	if got := versions(t, s); len(got) != len(steps) || got[0] != 1 || got[len(got)-1] != len(steps) {
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
	forEachDialect(t, func(t *testing.T, open opener) {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		first := versions(t, s)
		if len(first) != len(steps) {
			t.Errorf("schema versions %v, want 1…%d", first, len(steps))
		}
		s.Close()
		if s, err = open(); err != nil {
			t.Fatal(err)
		}
		if again := versions(t, s); len(again) != len(first) {
			t.Errorf("versions %v after reopening, %v before", again, first)
		}
		if _, err := s.exec(context.Background(), `INSERT INTO schema_migration (version, applied) VALUES (?, 0)`, len(steps)+1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := open(); err == nil || !strings.Contains(err.Error(), "newer mailmigrate") {
			t.Errorf("a newer schema opened: %v", err)
		}
	})
}

// Servers that start together on a new PostgreSQL database create its
// schema once, one after another.
func TestPostgresOpenTogether(t *testing.T) {
	url := testbed.PostgresT(t)
	race(4, func(int) {
		s, err := OpenPostgres(context.Background(), url)
		if err != nil {
			t.Error(err)
			return
		}
		s.Close()
	})
	s, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := versions(t, s); len(got) != len(steps) {
		t.Errorf("schema versions %v, want 1…%d", got, len(steps))
	}
}

// Processes that open one SQLite file together (admin commands while the
// server starts) wait for each other. Not so, as before numbered steps,
// the very first opens of a new file: while one switches it to WAL,
// SQLite may answer another "busy" at once.
func TestSQLiteOpenTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	race(8, func(int) {
		s, err := Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		s.Close()
	})
}
