package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"mailmigrate/internal/store"
)

// Servers on one machine share Dovecot's passwd-file; a server on another
// machine refuses to start, naming the machine that has it.
func TestPasswdFileOnOneMachine(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	stopA, err := holdPasswdFile(ctx, st, "/etc/dovecot/users", "mail1 (0a1b2c3d)")
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	stopA2, err := holdPasswdFile(ctx, st, "/etc/dovecot/users", "mail1 (0a1b2c3d)")
	if err != nil {
		t.Fatalf("a second server on the same machine: %v", err)
	}
	stopA2()
	_, err = holdPasswdFile(ctx, st, "/etc/dovecot/users", "web2 (99887766)")
	var ue usageError
	if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "mail1 (0a1b2c3d)") || !strings.Contains(err.Error(), "hosting.driver = command") {
		t.Fatalf("a server on another machine: %v", err)
	}
}
