package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A password with characters JSON escapes or shells mangle.
const cmdPassword = `S3cr<e>t&"pass"\wörd`

func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "cmd", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestCommand returns a driver whose three operations run the given
// scripts, with $HOSTING_TEST_DIR set to a fresh directory.
func newTestCommand(t *testing.T, list, create, quota string, timeout time.Duration) (*Command, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOSTING_TEST_DIR", dir)
	c, err := NewCommand(CommandConfig{List: script(t, list), Create: script(t, create), Quota: script(t, quota), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestCommandContract(t *testing.T) {
	c, dir := newTestCommand(t, "list.sh", "create.sh", "quota.sh", 0)
	ctx := context.Background()

	got, err := c.List(ctx, "Firma.CZ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mailbox{
		{Address: "jana@firma.cz", QuotaBytes: 1 << 30, UsedBytes: 5 << 20},
		{Address: "petr@firma.cz", QuotaBytes: 0, UsedBytes: -1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %+v, want %+v", got, want)
	}
	if got, err := c.List(ctx, "jinde.cz"); err != nil || len(got) != 0 {
		t.Errorf("List of an empty domain = %+v, %v; want none", got, err)
	}

	if err := c.Create(ctx, "nova@Firma.cz", cmdPassword, 5<<20); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.ReadFile(filepath.Join(dir, "create.stdin"))
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Address    string `json:"address"`
		Password   string `json:"password"`
		QuotaBytes *int64 `json:"quota_bytes"`
	}
	if err := json.Unmarshal(stdin, &req); err != nil {
		t.Fatalf("create request %q: %v", stdin, err)
	}
	if req.Address != "nova@firma.cz" || req.Password != cmdPassword || req.QuotaBytes == nil || *req.QuotaBytes != 5<<20 {
		t.Errorf("create request = %s", stdin)
	}
	// '<' must arrive as '<', not as \u003c.
	if !strings.Contains(string(stdin), "S3cr<e>t&") {
		t.Errorf("password HTML-escaped in request: %s", stdin)
	}
	for _, f := range []string{"create.env", "create.args"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "S3cr") {
			t.Errorf("password visible in the command's %s", f)
		}
	}

	err = c.Create(ctx, "taken@firma.cz", cmdPassword, 0)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already in the panel") {
		t.Errorf("Create of a taken address: %v, want ErrExists with the command's message", err)
	}

	mb, err := c.Quota(ctx, "jana@firma.cz")
	if err != nil || mb != (Mailbox{Address: "jana@firma.cz", QuotaBytes: 1 << 30, UsedBytes: 5 << 20}) {
		t.Errorf("Quota(jana) = %+v, %v", mb, err)
	}
	mb, err = c.Quota(ctx, "petr@firma.cz")
	if err != nil || mb.UsedBytes != -1 {
		t.Errorf("Quota(petr) = %+v, %v; want UsedBytes -1", mb, err)
	}
	if _, err := c.Quota(ctx, "nikdo@firma.cz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Quota of an unknown mailbox: %v, want ErrNotFound", err)
	}
}

func TestCommandRefusesBadInput(t *testing.T) {
	c, dir := newTestCommand(t, "list.sh", "create.sh", "quota.sh", 0)
	ctx := context.Background()
	for _, tc := range []struct {
		addr, pw string
		quota    int64
	}{
		{"jana", "pw", 0},
		{"jana@firma.cz", "two\nlines", 0},
		{"jana@firma.cz", "", 0},
		{"jana@firma.cz", "pw", -1},
		{"ja:na@firma.cz", "pw", 0},
	} {
		err := c.Create(ctx, tc.addr, tc.pw, tc.quota)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q, %q, %d) = %v, want ErrInvalid", tc.addr, tc.pw, tc.quota, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "create.stdin")); err == nil {
		t.Error("the command ran for refused input")
	}
	if _, err := c.List(ctx, "firma"); !errors.Is(err, ErrInvalid) {
		t.Errorf("List(firma) = %v, want ErrInvalid", err)
	}
}

func TestCommandErrorsKeepPasswordOut(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCommand(t, "list.sh", "echo-stderr.sh", "quota.sh", 0)
	err := c.Create(ctx, "jana@firma.cz", cmdPassword, 0)
	if err == nil {
		t.Fatal("Create succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"backend_down", "panel API unreachable", `"address":"jana@firma.cz"`, redacted} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "S3cr") || strings.Contains(msg, "wörd") {
		t.Errorf("password in error: %q", msg)
	}

	// The password straddling the 4 KiB cut: no piece of it may remain.
	c, _ = newTestCommand(t, "list.sh", "echo-stderr-boundary.sh", "quota.sh", 0)
	prefix := len(`{"address":"jana@firma.cz","password":"`)
	for fill := maxCommandStderr - prefix - 15; fill <= maxCommandStderr-prefix+2; fill++ {
		t.Setenv("HOSTING_TEST_FILL", strconv.Itoa(fill))
		err := c.Create(ctx, "jana@firma.cz", cmdPassword, 0)
		if err == nil {
			t.Fatal("Create succeeded")
		}
		msg := err.Error()
		if len(msg) > maxCommandStderr+500 {
			t.Errorf("fill %d: error is %d bytes long, stderr not bounded", fill, len(msg))
		}
		if i := strings.LastIndex(msg, `"password":"`); i >= 0 {
			rest := msg[i+len(`"password":"`):]
			if strings.HasPrefix(rest, "S") {
				t.Errorf("fill %d: a piece of the password in error: …%s", fill, rest)
			}
		}
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor(cmdPassword)
	for _, in := range []string{
		"typed: " + cmdPassword,
		`json: "S3cr<e>t&\"pass\"\\wörd"`,
		`go json: "S3cr\u003ce\u003et\u0026\"pass\"\\wörd"`,
	} {
		out := r.clean([]byte(in), 1000, false)
		if strings.Contains(out, "S3cr") || !strings.Contains(out, redacted) {
			t.Errorf("clean(%q) = %q", in, out)
		}
	}
	if got := r.clean([]byte("cut at S3cr<e"), 1000, true); strings.Contains(got, "S3cr") {
		t.Errorf("truncated prefix kept: %q", got)
	}
	if got := newRedactor("").clean([]byte("  plain  "), 3, false); got != "pla …(truncated)" {
		t.Errorf("clean without secret = %q", got)
	}
}

func TestCommandTimeoutKillsGroup(t *testing.T) {
	c, dir := newTestCommand(t, "slow.sh", "slow.sh", "slow.sh", 300*time.Millisecond)
	start := time.Now()
	_, err := c.List(context.Background(), "firma.cz")
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("List = %v, want a timeout", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("timeout took %v", elapsed)
	}
	data, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The caller's own deadline is reported as such, not as our timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c.cfg.Timeout = time.Minute
	if _, err := c.List(ctx, "firma.cz"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("List with a short ctx = %v, want context.DeadlineExceeded", err)
	}
}

// processRunning reports whether pid runs; a zombie (exited, not yet
// reaped by init) counts as gone.
func processRunning(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z")
}

func TestCommandBadAnswers(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCommand(t, "bad-json.sh", "silent-fail.sh", "no-stdin.sh", 0)
	if _, err := c.List(ctx, "firma.cz"); err == nil || !strings.Contains(err.Error(), "unusable JSON") {
		t.Errorf("List with non-JSON output: %v", err)
	}
	err := c.Create(ctx, "jana@firma.cz", "pw", 0)
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "panel: connection refused") {
		t.Errorf("Create with a bare failure: %v", err)
	}
	// {} is not a quota answer.
	if _, err := c.Quota(ctx, "jana@firma.cz"); err == nil || !strings.Contains(err.Error(), "quota_bytes") {
		t.Errorf("Quota with an empty answer: %v", err)
	}

	// A command that answers without reading its stdin is fine.
	c, _ = newTestCommand(t, "list.sh", "no-stdin.sh", "quota.sh", 0)
	if err := c.Create(ctx, "jana@firma.cz", strings.Repeat("p", maxPasswordBytes), 0); err != nil {
		t.Errorf("Create with a command that ignores stdin: %v", err)
	}
}

func TestNewCommandChecksConfig(t *testing.T) {
	ok := script(t, "list.sh")
	notExec := filepath.Join(t.TempDir(), "x.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []CommandConfig{
		{Create: ok, Quota: ok},
		{List: ok, Create: "/nonexistent/create", Quota: ok},
		{List: ok, Create: ok, Quota: notExec},
		{List: ok, Create: ok, Quota: ok, Timeout: -time.Second},
	} {
		if _, err := NewCommand(cfg); err == nil {
			t.Errorf("NewCommand(%+v) accepted", cfg)
		}
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{max: 10}
	// io.Copy prefers ReaderFrom when the writer has one; the limit must
	// hold on that path too.
	n, err := io.Copy(b, strings.NewReader(strings.Repeat("x", 100)))
	if err != nil || n != 100 {
		t.Fatalf("io.Copy = %d, %v; want all 100 bytes accepted", n, err)
	}
	if len(b.Bytes()) != 10 || !b.truncated {
		t.Errorf("kept %d bytes (truncated %v), want 10 and true", len(b.Bytes()), b.truncated)
	}
}
