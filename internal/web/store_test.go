package web

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.PostgresMain(m)) }

// testStore is a fresh store for a test: SQLite, or with
// MAILMIGRATE_TEST_STORE=postgres a new PostgreSQL database, so that the
// API's and the panel's tests run on both (scripts/test.sh runs them
// twice).
func testStore(t *testing.T) *store.DB {
	t.Helper()
	var st *store.DB
	var err error
	if os.Getenv("MAILMIGRATE_TEST_STORE") == "postgres" {
		st, err = store.OpenPostgres(context.Background(), testbed.PostgresT(t))
	} else {
		st, err = store.Open(filepath.Join(t.TempDir(), "db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
