package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"mailmigrate/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.PostgresMain(m)) }

// opener opens a test's database, the same one each time it is called;
// what it opens is closed when the test ends.
type opener func() (*DB, error)

// forEachDialect runs f on SQLite and on PostgreSQL, each time with a new
// and empty database: the store's tests are one conformance suite.
func forEachDialect(t *testing.T, f func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.db")
		f(t, closing(t, func() (*DB, error) { return Open(path) }))
	})
	t.Run("postgres", func(t *testing.T) {
		url := testbed.PostgresT(t)
		f(t, closing(t, func() (*DB, error) { return OpenPostgres(context.Background(), url) }))
	})
}

func closing(t *testing.T, open opener) opener {
	return func() (*DB, error) {
		s, err := open()
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return s, err
	}
}

// forEachStore runs f on a new store of each dialect.
func forEachStore(t *testing.T, f func(t *testing.T, s *DB)) {
	forEachDialect(t, func(t *testing.T, open opener) {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		f(t, s)
	})
}
