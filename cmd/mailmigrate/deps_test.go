package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The program a hosting runs carries no test code: neither the test bed
// (which starts servers and knows test passwords) nor package testing.
func TestBinaryHasNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, bad := range []string{"testing", "mailmigrate/internal/testbed"} {
		if slices.Contains(deps, bad) {
			t.Errorf("mailmigrate links %s", bad)
		}
	}
}

// Asking for help is a success, for every command; the admin's help lists
// its subcommands; version prints the version.
func TestHelpAndVersion(t *testing.T) {
	// Help does nothing else: no state file, no database in the home.
	home := t.TempDir()
	for _, args := range [][]string{{"--help"}, {"help"}, {"migrate", "--help"}, {"check", "-h"}, {"discover", "--help"},
		{"dnscheck", "--help"}, {"demo", "--help"}, {"serve", "--help"}, {"admin", "--help"}, {"version"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_STATE_HOME=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("mailmigrate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "admin" {
			for _, cmd := range []string{"init", "list", "secrets forget", "customer add", "customer list", "customer show NAME",
				"customer disable NAME", "customer enable NAME", "customer delete [--yes] NAME", "domain add", "domain list",
				"domain show DOMAIN", "domain set-limit DOMAIN N", "domain delete [--yes] DOMAIN", "user add", "user list",
				"user disable EMAIL", "user enable EMAIL", "user delete [--yes] EMAIL", "user password", "token add", "token list",
				"token revoke [--yes] ID"} {
				if !strings.Contains(string(out), "  "+cmd) {
					t.Errorf("admin --help does not list %q:\n%s", cmd, out)
				}
			}
		}
		if args[0] == "version" && !strings.HasPrefix(string(out), "mailmigrate ") {
			t.Errorf("version: %s", out)
		}
	}
	if err := exec.Command(binary, "admin", "frobnicate").Run(); err == nil {
		t.Error("an unknown admin command succeeded")
	}
	filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a help or version command wrote %s", path)
		}
		return nil
	})
}
