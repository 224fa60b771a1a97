package hosting

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// SetPassword and SetQuota change one field of one line and leave every
// other byte of a hand-kept file as it was. (That the new hash logs in is
// TestPasswdFileDovecotManage's.)
func TestPasswdFileSetPasswordAndQuota(t *testing.T) {
	path := writeExisting(t)
	p := newFileDriver(t, PasswdFileConfig{Path: path})
	ctx := context.Background()

	if err := p.SetPassword(ctx, "JANA@firma.cz", "nove dlouhe heslo"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetQuota(ctx, "petr@firma.cz", 5<<30); err != nil {
		t.Fatal(err)
	}
	if err := p.SetQuota(ctx, "eva@firma.cz", 3<<20); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(data), "\n")
	want := strings.Split(existingFile, "\n")
	if len(got) != len(want) {
		t.Fatalf("line count %d, want %d:\n%s", len(got), len(want), data)
	}
	for i := range want {
		switch {
		case strings.HasPrefix(want[i], "jana@"):
			f := strings.Split(got[i], ":")
			if !strings.HasPrefix(f[1], "{SHA512-CRYPT}") || strings.Join(f[2:], ":") != strings.Join(strings.Split(want[i], ":")[2:], ":") {
				t.Errorf("jana's line: %q", got[i])
			}
		case strings.HasPrefix(want[i], "petr@firma.cz:{PLAIN}x"):
			if w := "petr@firma.cz:{PLAIN}x:vmail:vmail::/var/vmail/firma.cz/petr::userdb_quota_rule=*:storage=5G nice=10 userdb_acl_groups=sales"; got[i] != w {
				t.Errorf("petr's line:\n%q, want\n%q", got[i], w)
			}
		case strings.HasPrefix(want[i], "eva@"):
			if w := "eva@firma.cz:{PLAIN}z:vmail:vmail::/var/vmail/firma.cz/eva::userdb_quota_rule=*:storage=3M\r"; got[i] != w {
				t.Errorf("eva's line (CRLF kept):\n%q, want\n%q", got[i], w)
			}
		default:
			if got[i] != want[i] {
				t.Errorf("line %d changed:\n%q, was\n%q", i+1, got[i], want[i])
			}
		}
	}
	if mb, err := p.Quota(ctx, "petr@firma.cz"); err != nil || mb.QuotaBytes != 5<<30 {
		t.Errorf("Quota(petr) after SetQuota = %+v, %v", mb, err)
	}

	if err := p.SetPassword(ctx, "nikdo@firma.cz", "dlouhe heslo"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPassword of an unknown mailbox: %v, want ErrNotFound", err)
	}
	if err := p.SetQuota(ctx, "jana@firma.cz", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetQuota(0): %v, want ErrInvalid", err)
	}
	if err := p.SetQuota(ctx, "old@firma.cz", 1<<30); err == nil || !strings.Contains(err.Error(), "old passwd-file format") {
		t.Errorf("SetQuota on an old-format line: %v", err)
	}
	if err := p.SetPassword(ctx, "jana@firma.cz", "a\nb"); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "a\nb") {
		t.Errorf("SetPassword with a line break: %v", err)
	}
}

// The alias table: listed per domain, lines it does not manage kept, the
// reload command run after each change (and its failure reported).
func TestAliasFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "virtual")
	const existing = "# Postfix virtual aliases\n" +
		"info@firma.cz jana@firma.cz, petr@firma.cz\n" +
		"  eva@firma.cz\n" +
		"@catchall.cz someone@firma.cz\n" +
		"sales@jinde.cz karel@jinde.cz\n"
	if err := os.WriteFile(path, []byte(existing), 0o644); err != nil {
		t.Fatal(err)
	}
	// The reload command is run without a shell: its arguments arrive as
	// given, spaces and quotes included.
	log := filepath.Join(dir, "reload log")
	a, err := NewAliasFile(AliasFileConfig{Path: path, Reload: []string{"sh", "-c", `cat "$1" >>"$2"; echo reloaded >>"$2"`, "sh", path, log}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := a.Aliases(ctx, "firma.cz")
	if want := []Alias{{"info@firma.cz", []string{"jana@firma.cz", "petr@firma.cz", "eva@firma.cz"}}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Aliases(firma.cz) = %+v, %v; want %+v", got, err, want)
	}
	if err := a.AddAlias(ctx, Alias{Address: "obchod@firma.cz", Targets: []string{"jana@firma.cz", "x@gmail.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAlias(ctx, Alias{Address: "INFO@firma.cz", Targets: []string{"jana@firma.cz"}}); !errors.Is(err, ErrExists) {
		t.Errorf("AddAlias of an existing alias: %v, want ErrExists", err)
	}
	if err := a.RemoveAlias(ctx, "info@firma.cz"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveAlias(ctx, "info@firma.cz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveAlias: %v, want ErrNotFound", err)
	}
	data, _ := os.ReadFile(path)
	want := "# Postfix virtual aliases\n@catchall.cz someone@firma.cz\nsales@jinde.cz karel@jinde.cz\nobchod@firma.cz jana@firma.cz,x@gmail.example\n"
	if string(data) != want {
		t.Errorf("alias file:\n%s\nwant:\n%s", data, want)
	}
	logged, _ := os.ReadFile(log)
	if n := strings.Count(string(logged), "reloaded"); n != 2 || !strings.HasSuffix(string(logged), want+"reloaded\n") {
		t.Errorf("reload ran %d times, want 2, the last after the final table:\n%s", n, logged)
	}
	for _, bad := range []Alias{{"x@firma.cz", nil}, {"x@firma.cz", []string{"x@firma.cz"}}, {"x", []string{"a@b.cz"}}, {"x@firma.cz", []string{"a b@c.cz"}}} {
		if err := a.AddAlias(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddAlias(%+v) = %v, want ErrInvalid", bad, err)
		}
	}

	failing, err := NewAliasFile(AliasFileConfig{Path: path, Reload: []string{"sh", "-c", "echo postmap: fatal: no such table >&2; exit 1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := failing.AddAlias(ctx, Alias{Address: "b@firma.cz", Targets: []string{"jana@firma.cz"}}); err == nil ||
		!strings.Contains(err.Error(), "was changed, but its reload command") || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("AddAlias with a failing reload: %v", err)
	}
}

// The passwd-file driver offers aliases only with an alias table.
func TestPasswdFileCapabilities(t *testing.T) {
	path := writeExisting(t)
	p := newFileDriver(t, PasswdFileConfig{Path: path})
	if PasswordSetterOf(p) == nil || QuotaSetterOf(p) == nil || AliasManagerOf(p) != nil {
		t.Error("without an alias file: want password and quota, no aliases")
	}
	if _, err := p.Aliases(context.Background(), "firma.cz"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Aliases without an alias file: %v", err)
	}
	af := filepath.Join(t.TempDir(), "virtual")
	os.WriteFile(af, nil, 0o644)
	p = newFileDriver(t, PasswdFileConfig{Path: path, Aliases: AliasFileConfig{Path: af}})
	if AliasManagerOf(p) == nil {
		t.Error("with an alias file: no aliases")
	}
	if _, err := NewPasswdFile(PasswdFileConfig{Path: path, Aliases: AliasFileConfig{Path: af, Reload: []string{"/nonexistent/postmap"}}}); err == nil {
		t.Error("a missing reload command was accepted")
	}
}

func TestCheckNewPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"kratke", false},
		{"123456789", false},
		{"jana.novak", false},
		{"Jana.Novak@firma.cz", false},
		{"Password123", false},
		{"heslo12345", false},
		{"line\nbreak and more", false},
		{"správné koňské heslo", true},
		{"Tr0ub4dor&3x", true},
		{"ěščřžýáíéů", true}, // ten characters, more bytes
	} {
		err := CheckNewPassword("jana.novak@firma.cz", tc.pw)
		if (err == nil) != tc.ok || err != nil && (!errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), tc.pw)) {
			t.Errorf("CheckNewPassword(%q) = %v, want ok=%v and the password not in the error", tc.pw, err, tc.ok)
		}
	}
}
