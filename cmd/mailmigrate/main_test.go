package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/testbed"
)

// The command is tested as a user runs it: built once, started as a
// process, against a real Dovecot.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailmigrate-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailmigrate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	if onPostgres {
		// Servers sharing a database are given their key; the tests'
		// servers inherit it.
		key := make([]byte, 32)
		rand.Read(key)
		os.Setenv("MAILMIGRATE_SECRET_KEY", base64.StdEncoding.EncodeToString(key))
	}
	code := testbed.PostgresMain(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// onPostgres runs the services of the tests on PostgreSQL instead of
// SQLite (MAILMIGRATE_TEST_STORE=postgres): scripts/test.sh runs the API's
// and the panel's tests on both.
var onPostgres = os.Getenv("MAILMIGRATE_TEST_STORE") == "postgres"

type cli struct {
	t       *testing.T
	d       *testbed.Dovecot
	dir     string
	corpus  *testbed.Corpus
	srcUser string
	dstUser string
}

func newCLI(t *testing.T, corpus testbed.CorpusOptions) *cli {
	c := &cli{t: t, d: testbed.StartDovecotT(t, testbed.DovecotOptions{}), dir: t.TempDir(),
		srcUser: "petr@old.test", dstUser: "petr@new.test"}
	for _, u := range []string{c.srcUser, c.dstUser} {
		if err := c.d.AddUser(u, "pw of "+u, 0); err != nil {
			t.Fatal(err)
		}
	}
	c.write("src.pw", "pw of "+c.srcUser+"\r\n")
	c.write("dst.pw", "pw of "+c.dstUser+"\n")
	if corpus.Messages > 0 {
		c.corpus = testbed.GenerateCorpus(corpus)
		if err := c.corpus.Load(context.Background(), c.d.LoginT(t, c.srcUser, "pw of "+c.srcUser)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cli) write(name, content string) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cli) endpointArgs() []string {
	url := "imaps://" + c.d.IMAPSAddr()
	return []string{"--source", url, "--dest", url, "--ca-file", c.d.CAFile,
		"--state", filepath.Join(c.dir, "state.db"), "--timeout", "20s"}
}

func (c *cli) args(extra ...string) []string {
	return append(append([]string{"migrate"}, c.endpointArgs()...), append([]string{
		"--source-user", c.srcUser, "--source-password-file", filepath.Join(c.dir, "src.pw"),
		"--dest-user", c.dstUser, "--dest-password-file", filepath.Join(c.dir, "dst.pw")}, extra...)...)
}

// run starts the binary and returns its exit code and output.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func (c *cli) verify(reportPath string) {
	c.t.Helper()
	var rep struct{ Accounts []*engine.Report }
	data, err := os.ReadFile(reportPath)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		c.t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range rep.Accounts[0].Folders {
		m[f.Source] = f.Dest
	}
	src := c.d.LoginT(c.t, c.srcUser, "pw of "+c.srcUser)
	dst := c.d.LoginT(c.t, c.dstUser, "pw of "+c.dstUser)
	if err := testbed.Verify(context.Background(), src, dst, m); err != nil {
		c.t.Fatalf("destination differs:\n%v", err)
	}
}

func TestMigrateCommand(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{Seed: 11, Messages: 40})
	report := filepath.Join(c.dir, "report.json")
	code, stdout, stderr := c.run(c.args("--report", report)...)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("%d copied", len(c.corpus.Messages))) || !strings.Contains(stdout, "Odeslaná pošta") {
		t.Errorf("report lacks the counts or folder table:\n%s", stdout)
	}
	c.verify(report)
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, "pw of") {
			t.Errorf("a password appears in the output:\n%s", out)
		}
	}
	code, stdout, _ = c.run(c.args()...)
	if code != exitOK || !strings.Contains(stdout, "0 copied") {
		t.Errorf("re-run: exit %d\n%s", code, stdout)
	}
}

func TestExitCodes(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{Seed: 12, Messages: 10})
	c.write("bad.pw", "nope\n")
	tests := []struct {
		name string
		args []string
		code int
		text string
	}{
		{"no flags", []string{"migrate"}, exitUsage, "--source and --dest are required"},
		{"bad scheme", []string{"migrate", "--source", "pop3://x", "--dest", "imaps://y", "--source-user", "a", "--dest-user", "b"}, exitUsage, "unknown scheme"},
		{"missing password file", c.args("--source-password-file", filepath.Join(c.dir, "none")), exitUsage, "no such file"},
		{"wrong source password", c.args("--source-password-file", filepath.Join(c.dir, "bad.pw")), exitAuth, "rejected the login"},
		{"closed port", append(c.args(), "--source", "imaps://127.0.0.1:1"), exitConnection, "Cannot connect"},
		{"untrusted certificate", append(c.args(), "--ca-file", "", "--dest", "imaps://"+c.d.IMAPSAddr()), exitConnection, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := c.run(tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.text) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.code, tc.text, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, "nope") {
				t.Error("the password appears in the output")
			}
		})
	}
}

func TestOverQuotaExitAndResume(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{Seed: 13, Messages: 40})
	var total int64
	for _, m := range c.corpus.Messages {
		total += int64(len(m.Body))
	}
	if err := c.d.SetQuota(c.dstUser, total/3); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := c.run(c.args()...)
	if code != exitOverQuota || !strings.Contains(stdout, "out of space") || !strings.Contains(stdout, "Enlarge the mailbox quota") {
		t.Fatalf("exit %d, want %d with advice:\n%s", code, exitOverQuota, stdout)
	}
	if err := c.d.SetQuota(c.dstUser, 0); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(c.dir, "report.json")
	if code, stdout, _ := c.run(c.args("--report", report)...); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, stdout)
	}
	c.verify(report)
}

func TestBulkAccounts(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{})
	// Seed format: the destination login is the same address on the destination server.
	users := []string{"a@firma.test", "b@firma.test"}
	for i, u := range users {
		if err := c.d.AddUser(u, fmt.Sprintf("heslo %d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	bad := c.write("bad.txt", "a@firma.test heslo 0\nb heslo 1\na@firma.test heslo 0\n")
	args := append(append([]string{"migrate"}, c.endpointArgs()...), "--accounts", bad)
	code, stdout, stderr := c.run(args...)
	if code != exitUsage || !strings.Contains(stderr, "line 2") || !strings.Contains(stderr, "line 3") ||
		!strings.Contains(stderr, "nothing was copied") || strings.Contains(stderr, "heslo") {
		t.Fatalf("bad list: exit %d\n%s%s", code, stdout, stderr)
	}
	good := c.write("good.txt", "a@firma.test heslo 0\nb@firma.test heslo 1\n")
	args[len(args)-1] = good
	code, stdout, stderr = c.run(args...)
	if code != exitOK || strings.Count(stdout, ": done") != 2 || strings.Contains(stdout+stderr, "heslo") {
		t.Fatalf("good list: exit %d\n%s%s", code, stdout, stderr)
	}
	// A CSV with different source and destination logins, one of them wrong.
	csv := c.write("list.csv", "source_user,source_password,dest_user,dest_password\n"+
		c.srcUser+",pw of "+c.srcUser+","+c.dstUser+",pw of "+c.dstUser+"\n"+
		"a@firma.test,wrong,b@firma.test,heslo 1\n")
	args[len(args)-1] = csv
	code, stdout, _ = c.run(args...)
	if code != exitAuth || !strings.Contains(stdout, "failed") {
		t.Fatalf("csv with one wrong password: exit %d\n%s", code, stdout)
	}
}

// A run killed with SIGKILL in the middle of copying, then run again, ends
// with every message exactly once.
func TestKilledMidCopy(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{Seed: 14, Messages: 600})
	cmd := exec.Command(binary, c.args("--workers", "1", "--quiet")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dst := c.d.LoginT(t, c.dstUser, "pw of "+c.dstUser)
	deadline := time.Now().Add(60 * time.Second)
	var copied uint32
	for time.Now().Before(deadline) {
		n, err := testbed.MessageCount(context.Background(), dst, "INBOX")
		if err == nil && n >= 25 {
			copied = n
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if copied == 0 {
		t.Fatal("the copy did not start within 60 s")
	}
	if n, _ := testbed.MessageCount(context.Background(), dst, "INBOX"); int(n) >= countIn(c.corpus, "INBOX") {
		t.Fatalf("INBOX was complete (%d) before the kill; the test needs a bigger corpus", n)
	}
	report := filepath.Join(c.dir, "report.json")
	code, stdout, stderr := c.run(c.args("--report", report)...)
	if code != exitOK {
		t.Fatalf("re-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "already present") {
		t.Errorf("re-run report:\n%s", stdout)
	}
	c.verify(report)
}

func countIn(c *testbed.Corpus, folder string) int {
	n := 0
	for _, m := range c.Messages {
		if m.Folder == folder {
			n++
		}
	}
	return n
}

func TestCheckCommand(t *testing.T) {
	c := newCLI(t, testbed.CorpusOptions{Seed: 15, Messages: 20})
	args := c.args()
	args[0] = "check"
	args = removeFlag(args, "--state")
	code, stdout, stderr := c.run(args...)
	if code != exitOK || !strings.Contains(stdout, "both logins OK") || !strings.Contains(stdout, "Sent") {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
	}
	dst := c.d.LoginT(t, c.dstUser, "pw of "+c.dstUser)
	if n, _ := testbed.MessageCount(context.Background(), dst, "INBOX"); n != 0 {
		t.Errorf("check copied %d messages", n)
	}
}

func removeFlag(args []string, name string) []string {
	for i, a := range args {
		if a == name {
			return append(append([]string{}, args[:i]...), args[i+2:]...)
		}
	}
	return args
}

// The README's first command: the demo runs a sample migration and keeps
// the panel open with the printed sign-in.
func TestDemo(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--listen", "127.0.0.1:0", "--messages", "30")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var printed strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	text := printed.String()
	url := regexp.MustCompile(`runs at (http://\S+)/`).FindStringSubmatch(text)
	if url == nil || strings.Count(text, ": done, 30 messages") != 2 || !strings.Contains(text, "demo-password") {
		t.Fatalf("demo printed:\n%s", text)
	}
	// Sign in with the printed credentials and look at the finished migration.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(url[1]+"/login", map[string][]string{"email": {"demo@firma.example"}, "password": {"demo-password"},
		"next": {"/migrations/1"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(regexp.MustCompile(`<tr id="task-\d+" data-state="done"`).FindAllString(string(page), -1)) != 2 {
		t.Errorf("migration page after sign-in: %d\n%.2000s", resp.StatusCode, page)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo did not stop cleanly on Ctrl-C: %v", err)
	}
}
