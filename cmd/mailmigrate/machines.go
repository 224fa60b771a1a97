package main

import (
	"context"
	"os"
	"strings"
	"time"

	"mailmigrate/internal/store"
)

// passwdFileLapse is how long a machine's claim on the passwd-file driver
// outlasts its last server: another machine may take over after that.
const passwdFileLapse = 2 * time.Minute

// holdPasswdFile makes this machine the one whose servers write Dovecot's
// passwd-file, and keeps it so while the server runs (stop ends that). A
// server on another machine would create mailboxes in a file that Dovecot
// does not read: it refuses to start, saying which machine has the file.
func holdPasswdFile(ctx context.Context, st *store.DB, path, machine string) (stop func(), err error) {
	claim := func(ctx context.Context) (string, error) {
		return st.ClaimMachine(ctx, "passwd-file", machine, passwdFileLapse)
	}
	other, err := claim(ctx)
	if err != nil {
		return nil, err
	}
	if other != "" {
		return nil, usagef("hosting.driver = passwd-file: servers on %s already create mailboxes in their Dovecot users file; a server "+
			"here would write %s on this machine (%s), which that Dovecot never reads. Run the servers that share this database on "+
			"that machine, or use hosting.driver = command, which works from any machine (README: Running on several machines). "+
			"If Dovecot and its file have moved here, stop the servers on %s: this one can start %s later.",
			other, path, machine, other, passwdFileLapse)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(passwdFileLapse / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				claim(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

// machineName tells this machine from others: its host name and the start
// of its machine ID (two machines may share a name).
func machineName() string {
	name, _ := os.Hostname()
	if id, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(id))) >= 8 {
		name += " (" + strings.TrimSpace(string(id))[:8] + ")"
	}
	return name
}
