package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// existingFile is a hand-kept passwd-file: comments, blank lines, CRLF,
// extra fields this package does not know, an old-format line, a
// duplicate, and no newline at the end.
const existingFile = `# Mailboxes of the hosting; edited by hand too.

petr@firma.cz:{PLAIN}x:vmail:vmail::/var/vmail/firma.cz/petr::userdb_quota_rule=*:storage=1048576 nice=10 userdb_acl_groups=sales
# a comment between users
jana@firma.cz:{PLAIN}y:vmail:vmail::/var/vmail/firma.cz/jana::userdb_quota_rule=*:storage=2G userdb_quota_rule2=Trash:storage=+100M
eva@firma.cz:{PLAIN}z:vmail:vmail::/var/vmail/firma.cz/eva::userdb_quota_rule=*:storage=10%` + "\r" + `
old@firma.cz:{PLAIN}o:vmail:vmail::/var/vmail/old:::maildir:~/Maildir
petr@firma.cz:{PLAIN}dup:vmail:vmail::/elsewhere::userdb_quota_rule=*:storage=1B
:{PLAIN}nouser
karel@jinde.cz:{PLAIN}k:vmail:vmail::/var/vmail/jinde.cz/karel::userdb_quota_rule=*:bytes=5000:messages=10
root-like-line-without-domain:{PLAIN}r:vmail:vmail::/home/x::`

func writeExisting(t *testing.T) (path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(existingFile), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func newFileDriver(t *testing.T, cfg PasswdFileConfig) *PasswdFile {
	t.Helper()
	if cfg.Scheme == "" {
		// Cheap to compute under -race; the schemes have their own tests.
		cfg.Scheme = SchemeSHA512Crypt
	}
	p, err := NewPasswdFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseQuotaRule(t *testing.T) {
	for rule, want := range map[string]int64{
		"*:storage=1048576":         1 << 30, // bare number: KiB
		"*:storage=100B":            100,
		"*:storage=64k":             64 << 10,
		"*:storage=2G":              2 << 30,
		"*:storage=1T":              1 << 40,
		"*:storage=5M:messages=100": 5 << 20,
		"*:messages=100":            0,
		"*:bytes=5000":              5000,
		"*:bytes=5K":                5 << 10,
		"*:storage=0":               0,
		"*:ignore":                  0,
		"?:storage=1M":              1 << 20,
		"*:storage=10%":             -1,
		"*:storage=+100M":           -1,
		"*:storage=1X":              -1,
		"*:storage=99999999999999G": -1,
		"Trash:storage=1M":          -1,
		"garbage":                   -1,
	} {
		if got := parseQuotaRule(rule); got != want {
			t.Errorf("parseQuotaRule(%q) = %d, want %d", rule, got, want)
		}
	}
	for q, want := range map[int64]string{
		1 << 30:         "userdb_quota_rule=*:storage=1G",
		3 << 20:         "userdb_quota_rule=*:storage=3M",
		1536:            "userdb_quota_rule=*:storage=1536B",
		64 << 10:        "userdb_quota_rule=*:storage=64K",
		5 << 40:         "userdb_quota_rule=*:storage=5T",
		1000:            "userdb_quota_rule=*:storage=1000B",
		(1 << 30) + 512: "userdb_quota_rule=*:storage=1073742336B",
	} {
		got := formatQuotaRule(q)
		if got != want {
			t.Errorf("formatQuotaRule(%d) = %q, want %q", q, got, want)
		}
		v, _ := strings.CutPrefix(got, "userdb_quota_rule=")
		if back := parseQuotaRule(v); back != q {
			t.Errorf("formatQuotaRule(%d) reads back as %d", q, back)
		}
	}
}

func TestPasswdFileListAndQuota(t *testing.T) {
	p := newFileDriver(t, PasswdFileConfig{Path: writeExisting(t)})
	ctx := context.Background()
	got, err := p.List(ctx, "FIRMA.cz")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mailbox{
		{Address: "eva@firma.cz", QuotaBytes: -1, UsedBytes: -1},
		{Address: "jana@firma.cz", QuotaBytes: 2 << 30, UsedBytes: -1},
		{Address: "old@firma.cz", QuotaBytes: 0, UsedBytes: -1},
		{Address: "petr@firma.cz", QuotaBytes: 1 << 30, UsedBytes: -1}, // the first line counts, as in Dovecot
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List(firma.cz) =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := p.List(ctx, "nikde.cz"); err != nil || len(got) != 0 {
		t.Errorf("List(nikde.cz) = %+v, %v", got, err)
	}
	mb, err := p.Quota(ctx, "karel@JINDE.cz")
	if err != nil || mb != (Mailbox{Address: "karel@jinde.cz", QuotaBytes: 5000, UsedBytes: -1}) {
		t.Errorf("Quota(karel) = %+v, %v", mb, err)
	}
	if mb, err := p.Quota(ctx, "Jana@firma.cz"); err != nil || mb.Address != "jana@firma.cz" {
		t.Errorf("Quota(Jana) = %+v, %v; want the jana line (case-insensitive)", mb, err)
	}
	if _, err := p.Quota(ctx, "nikdo@firma.cz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Quota(nikdo) = %v, want ErrNotFound", err)
	}
	if _, err := p.List(ctx, "firma"); !errors.Is(err, ErrInvalid) {
		t.Errorf("List(firma) = %v, want ErrInvalid", err)
	}
}

func TestPasswdFileCreateKeepsOtherLines(t *testing.T) {
	path := writeExisting(t)
	p := newFileDriver(t, PasswdFileConfig{Path: path, UID: "vmail", GID: "mail", Home: "/var/vmail/%d/%n", DefaultQuotaBytes: 1 << 30})
	ctx := context.Background()
	if err := p.Create(ctx, "nova@Firma.CZ", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx, "malá@firma.cz", "pw", 3<<20); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The old file had no final newline; one is added, nothing else moves.
	if !bytes.HasPrefix(data, []byte(existingFile+"\n")) {
		t.Fatalf("existing lines changed:\n%s", data)
	}
	added := strings.Split(strings.TrimSuffix(string(data[len(existingFile)+1:]), "\n"), "\n")
	if len(added) != 2 {
		t.Fatalf("added lines: %q", added)
	}
	for i, want := range []struct{ addr, tail string }{
		{"nova@firma.cz", ":vmail:mail::/var/vmail/firma.cz/nova::userdb_quota_rule=*:storage=1G"},
		{"malá@firma.cz", ":vmail:mail::/var/vmail/firma.cz/malá::userdb_quota_rule=*:storage=3M"},
	} {
		f := strings.SplitN(added[i], ":", 3)
		if f[0] != want.addr || !strings.HasPrefix(f[1], "{SHA512-CRYPT}$6$") || !strings.HasSuffix(added[i], want.tail) {
			t.Errorf("line %d = %q, want %s:{SHA512-CRYPT}…%s", i, added[i], want.addr, want.tail)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite = %v, want 0640", fi.Mode().Perm())
	}
	// No temporary files left behind; only the lock file is new.
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"passwd", "passwd.lock"}) {
		t.Errorf("directory holds %v", names)
	}

	mb, err := p.Quota(ctx, "nova@firma.cz")
	if err != nil || mb.QuotaBytes != 1<<30 {
		t.Errorf("Quota(nova) = %+v, %v; want the default 1 GiB", mb, err)
	}

	for _, addr := range []string{"nova@firma.cz", "NOVA@firma.cz", "petr@firma.cz", "old@Firma.cz"} {
		if err := p.Create(ctx, addr, "pw", 0); !errors.Is(err, ErrExists) {
			t.Errorf("Create(%s) again = %v, want ErrExists", addr, err)
		}
	}
}

func TestPasswdFileCreateNoDefaultQuota(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := newFileDriver(t, PasswdFileConfig{Path: path})
	if err := p.Create(context.Background(), "a@b.cz", "pw", 0); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(data), "::::::\n") || strings.Count(string(data), "\n") != 1 {
		t.Errorf("file = %q, want one line without uid, gid, home or quota rule", data)
	}
}

func TestPasswdFileConcurrentCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte("# start\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// Two drivers over one file stand for two processes: only the file
	// lock orders them.
	drivers := []*PasswdFile{newFileDriver(t, PasswdFileConfig{Path: path}), newFileDriver(t, PasswdFileConfig{Path: path})}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			errs[i] = drivers[i%2].Create(context.Background(), fmt.Sprintf("u%02d@firma.cz", i), "pw", int64(i+1)<<20)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	got, err := drivers[0].List(context.Background(), "firma.cz")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("%d mailboxes after 10 concurrent creates: %+v", len(got), got)
	}
	for i, mb := range got {
		if want := fmt.Sprintf("u%02d@firma.cz", i); mb.Address != want || mb.QuotaBytes != int64(i+1)<<20 {
			t.Errorf("mailbox %d = %+v, want %s with %d MiB", i, mb, want, i+1)
		}
	}
}

func TestPasswdFileCreateWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	p := newFileDriver(t, PasswdFileConfig{Path: path})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Create(ctx, "a@b.cz", "pw", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create while another holds the lock = %v, want DeadlineExceeded", err)
	}
	unlock()
	if err := p.Create(context.Background(), "a@b.cz", "pw", 0); err != nil {
		t.Errorf("Create after the lock was released: %v", err)
	}
}

func TestPasswdFileRefusesBadInput(t *testing.T) {
	path := writeExisting(t)
	p := newFileDriver(t, PasswdFileConfig{Path: path})
	for _, tc := range []struct {
		addr, pw string
		quota    int64
	}{
		{"nova", "pw", 0},
		{"no:va@firma.cz", "pw", 0},
		{"nova@firma.cz\nevil::0:0::/::", "pw", 0},
		{"nova@firma.cz", "line\nbreak", 0},
		{"nova@firma.cz", "nul\x00", 0},
		{"nova@firma.cz", "", 0},
		{"nova@firma.cz", "pw", -5},
		{"../../etc@firma.cz", "pw", 0},
	} {
		err := p.Create(context.Background(), tc.addr, tc.pw, tc.quota)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q, %q, %d) = %v, want ErrInvalid", tc.addr, tc.pw, tc.quota, err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != existingFile {
		t.Error("refused input changed the file")
	}

	blf := newFileDriver(t, PasswdFileConfig{Path: path, Scheme: "blf-crypt"})
	if err := blf.Create(context.Background(), "nova@firma.cz", strings.Repeat("x", 80), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("BLF-CRYPT with an 80-byte password = %v, want ErrInvalid", err)
	}

	missing := newFileDriver(t, PasswdFileConfig{Path: filepath.Join(t.TempDir(), "nope")})
	if err := missing.Create(context.Background(), "nova@firma.cz", "pw", 0); err == nil || !strings.Contains(err.Error(), "does not exist: create it") {
		t.Errorf("Create with a missing file = %v", err)
	}
	if _, err := missing.List(context.Background(), "firma.cz"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("List with a missing file = %v", err)
	}
}

func TestNewPasswdFileChecksConfig(t *testing.T) {
	for _, cfg := range []PasswdFileConfig{
		{},
		{Path: "/x", DefaultQuotaBytes: -1},
		{Path: "/x", Scheme: "MD5"},
		{Path: "/x", UID: "vmail"},
		{Path: "/x", UID: "0", GID: "0"},
		{Path: "/x", UID: "vm:ail", GID: "vmail"},
		{Path: "/x", UID: "vmail", GID: "vmail\n"},
		{Path: "/x", Home: "var/vmail/%d/%n"},
		{Path: "/x", Home: "/var/vmail/%d/%n:"},
		{Path: "/x", Home: "/var/vmail/%h"},
		{Path: "/x", Home: "/var/vmail/%"},
	} {
		if _, err := NewPasswdFile(cfg); err == nil {
			t.Errorf("NewPasswdFile(%+v) accepted", cfg)
		}
	}
	p, err := NewPasswdFile(PasswdFileConfig{Path: "/x", Scheme: "sha512-crypt"})
	if err != nil || p.cfg.Scheme != SchemeSHA512Crypt {
		t.Errorf("scheme names are case-insensitive: %v", err)
	}
	if p, err := NewPasswdFile(PasswdFileConfig{Path: "/x"}); err != nil || p.cfg.Scheme != SchemeArgon2ID {
		t.Errorf("default scheme: %v", err)
	}
}
