package jobs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.PostgresMain(m)) }

// forEachStore runs f on a new SQLite store and on a new PostgreSQL one:
// the jobs work the same on both.
func forEachStore(t *testing.T, f func(t *testing.T, st *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteStore(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, postgresStore(t)) })
}

func sqliteStore(t *testing.T) *store.DB {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func postgresStore(t *testing.T) *store.DB {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), testbed.PostgresT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
