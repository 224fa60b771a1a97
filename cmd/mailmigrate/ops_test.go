package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmigrate/internal/testbed"
)

// A hosting set up wrong stops serve at start with the key to fix; a
// working one is ready (/readyz), and says so no longer when its IMAP
// server is gone.
func TestServeChecksHosting(t *testing.T) {
	s := newService(t, "10m", true)
	conf, _ := os.ReadFile(s.conf)
	for _, c := range []struct{ from, to, key string }{
		{"hosting.passwd_file = " + s.dst.PasswdFile, "hosting.passwd_file = " + s.dst.PasswdFile + ".none", "hosting.passwd_file"},
		{"hosting.uid = ", "hosting.uid = no-such-vmail-user\n#", "hosting.uid"},
		{"hosting.imap = imaps://127.0.0.1:", "hosting.imap = imaps://127.0.0.1:1\n#", "hosting.imap"},
	} {
		broken := strings.Replace(string(conf), c.from, c.to, 1)
		path := s.conf + ".broken"
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		serveRefuses(t, path, c.key)
	}
	// A customer mailbox exists: the master user's login is tried with it.
	ctx := context.Background()
	s.customer("Firma s.r.o.", "firma.test", 0)
	if err := s.driver.Create(ctx, "jana@firma.test", "Janino-heslo-123", 0); err != nil {
		t.Fatal(err)
	}
	s.start()
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ready" {
		t.Errorf("/readyz: %d %s", resp.StatusCode, body)
	}
	s.dst.Stop()
	time.Sleep(6 * time.Second) // the IMAP check is cached for five seconds
	resp, err = http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "hosting.imap") {
		t.Errorf("/readyz with the hosting's IMAP down: %d %s", resp.StatusCode, body)
	}
}

// /metrics tells Prometheus the tasks by state and what this process
// copied, to this machine only.
func TestServeMetrics(t *testing.T) {
	s := newService(t, "10m", false)
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	a := account{srcUser: "jana@old.test", srcPass: "Janino-stare-heslo-1", mailbox: "jana@firma.test", hostPW: "Janino-tady-heslo-1"}
	a.messages = s.sourceAccount(a.srcUser, a.srcPass, 77, 12)
	if err := s.driver.Create(context.Background(), a.mailbox, a.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.wait(firma, s.syncMigration(firma, a).ID)
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mailmigrate_tasks{state="done"} 1`, "mailmigrate_messages_copied_total 12",
		"mailmigrate_queue_depth 0", "mailmigrate_bytes_copied_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// One observation per APPEND command: with MULTIAPPEND a folder's
	// messages go in one.
	n := -1
	if count := regexp.MustCompile(`mailmigrate_append_seconds_count (\d+)`).FindStringSubmatch(string(body)); count != nil {
		n, _ = strconv.Atoi(count[1])
	}
	if n < 1 || n > 12 {
		t.Errorf("/metrics counts %d APPEND commands, want 1 to 12", n)
	}
	req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics through a proxy: %v %v", resp.StatusCode, err)
	}
}

// A lost or swapped secret key stops serve before it would leave every
// stored password unreadable; the operator restores the key, or tells the
// service to forget the passwords.
func TestServeKeyGuard(t *testing.T) {
	if onPostgres {
		t.Skip("the key file of an SQLite data directory; servers on PostgreSQL are given their key (TestServeRefusesWithoutSharedKey)")
	}
	s := newService(t, "10m", false)
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	a := account{srcUser: "jana@old.test", srcPass: "Janino-stare-heslo-1", mailbox: "jana@firma.test", hostPW: "Janino-tady-heslo-1"}
	a.messages = s.sourceAccount(a.srcUser, a.srcPass, 78, 5)
	if err := s.driver.Create(context.Background(), a.mailbox, a.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.wait(firma, s.syncMigration(firma, a).ID) // its passwords stay stored for a final re-sync
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	keyPath := filepath.Join(s.dir, "data", "secret.key")
	original, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(want string) { t.Helper(); serveRefuses(t, s.conf, want) }
	os.Remove(keyPath)
	refused("is missing")
	if _, err := os.Stat(keyPath); err == nil {
		t.Error("a new key was made while the database holds passwords sealed with the old one")
	}
	if err := os.WriteFile(keyPath, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("is not the one")
	if err := os.WriteFile(keyPath, original, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start() // the right key again
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	os.Remove(keyPath)
	if out := s.admin("secrets", "forget"); !strings.Contains(out, "forgot the stored passwords of 1") {
		t.Errorf("admin secrets forget: %s", out)
	}
	s.start() // a new key for a database without passwords
}

// serveRefuses runs serve with a configuration and expects it to refuse
// to start, as a usage error whose message says want.
func serveRefuses(t *testing.T, conf, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--config", conf).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), want) {
		t.Errorf("serve with %s: %v, want a refusal saying %q:\n%s", conf, err, want, out)
	}
}

// Servers that share a PostgreSQL database are given their key: none is
// made up, and a key other than the one the stored passwords were sealed
// with is refused, naming both fingerprints.
func TestServeRefusesWithoutSharedKey(t *testing.T) {
	s := newServiceWith(t, "10m", false, "database = "+testbed.PostgresT(t)+"\n")
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	a := account{srcUser: "jana@old.test", srcPass: "Janino-stare-heslo-2", mailbox: "jana@firma.test", hostPW: "Janino-tady-heslo-2"}
	a.messages = s.sourceAccount(a.srcUser, a.srcPass, 79, 5)
	if err := s.driver.Create(context.Background(), a.mailbox, a.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILMIGRATE_SECRET_KEY", "")
	serveRefuses(t, s.conf, "servers that share a database must all use the same key")
	if _, err := os.Stat(filepath.Join(s.dir, "data", "secret.key")); err == nil {
		t.Error("a key was made up for a shared database")
	}
	t.Setenv("MAILMIGRATE_SECRET_KEY", base64.StdEncoding.EncodeToString([]byte("the first server's key, 32 bytes")))
	s.start()
	s.wait(firma, s.syncMigration(firma, a).ID) // its passwords stay stored
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	t.Setenv("MAILMIGRATE_SECRET_KEY", base64.StdEncoding.EncodeToString([]byte("another server's key, 32 bytes..")))
	serveRefuses(t, s.conf, "is not the one this database's passwords were sealed with")
}
