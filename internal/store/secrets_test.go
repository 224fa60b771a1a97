package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// The database remembers which key its passwords are sealed with; a
// forgotten key's passwords can be dropped, which starts afresh.
func TestKeyFingerprint(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		if fp, held, err := s.KeyFingerprint(ctx, "aaaa"); err != nil || fp != "aaaa" || held {
			t.Fatalf("first key: %q %v %v", fp, held, err)
		}
		if fp, _, err := s.KeyFingerprint(ctx, "bbbb"); err != nil || fp != "aaaa" {
			t.Errorf("another key replaced the recorded one: %q %v", fp, err)
		}
		d := seedDomain(t, s)
		_, _, err := s.CreateMigration(ctx, Migration{DomainID: d.ID, SourceHost: "imap.old.cz", SourcePort: 993},
			[]Task{{Kind: TaskSync, SourceUser: "x@old.cz", DestUser: "jana@firma.cz"}}, func(_ *sql.Tx, tasks []Task) error {
				tasks[0].SourceSecret, tasks[0].JobID = []byte("sealed"), 1
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if _, held, _ := s.KeyFingerprint(ctx, "aaaa"); !held {
			t.Error("a stored password is not seen")
		}
		if n, err := s.ForgetSecrets(ctx); err != nil || n != 1 {
			t.Errorf("forget: %d %v", n, err)
		}
		if fp, held, err := s.KeyFingerprint(ctx, "bbbb"); err != nil || fp != "bbbb" || held {
			t.Errorf("after forgetting: %q %v %v", fp, held, err)
		}
	})
}

// The SQLite file holds sealed passwords and who signs in: only its owner
// reads it.
func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mailmigrate.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "new.db"), path} {
		s, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", filepath.Base(p), fi.Mode().Perm(), err)
		}
	}
}
