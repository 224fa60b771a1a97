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

// newManageCommand returns a driver with every optional command set to
// testdata/cmd/manage.sh.
func newManageCommand(t *testing.T) (*Command, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOSTING_TEST_DIR", dir)
	m := script(t, "manage.sh")
	c, err := NewCommand(CommandConfig{List: script(t, "list.sh"), Create: script(t, "create.sh"), Quota: script(t, "quota.sh"),
		Password: m, SetQuota: m, Aliases: m})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestCommandManageContract(t *testing.T) {
	c, dir := newManageCommand(t)
	ctx := context.Background()
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	if err := c.SetPassword(ctx, "jana@Firma.CZ", cmdPassword); err != nil {
		t.Fatal(err)
	}
	if got := read("password.stdin"); got != `{"address":"jana@firma.cz","password":"S3cr<e>t&\"pass\"\\wörd"}` {
		t.Errorf("password request: %s", got)
	}
	for _, f := range []string{"password.env", "password.args"} {
		if strings.Contains(read(f), "S3cr") {
			t.Errorf("password visible in the command's %s", f)
		}
	}
	if err := c.SetPassword(ctx, "nikdo@firma.cz", cmdPassword); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "S3cr") {
		t.Errorf("SetPassword of an unknown mailbox: %v, want ErrNotFound without the password", err)
	}

	if err := c.SetQuota(ctx, "jana@firma.cz", 5<<30); err != nil {
		t.Fatal(err)
	}
	if got := read("set_quota.stdin"); got != `{"address":"jana@firma.cz","quota_bytes":5368709120}` {
		t.Errorf("set_quota request: %s", got)
	}
	err := c.SetQuota(ctx, "jana@firma.cz", 1<<40)
	if !errors.Is(err, ErrInvalid) || err.Error() != "Your plan allows at most 50 GB." {
		t.Errorf("SetQuota refused by the hosting: %v, want ErrInvalid with the hosting's message", err)
	}
	if err := c.SetQuota(ctx, "jana@firma.cz", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetQuota(0) = %v, want ErrInvalid", err)
	}

	got, err := c.Aliases(ctx, "firma.cz")
	want := []Alias{{"info@firma.cz", []string{"jana@firma.cz", "petr@firma.cz"}}, {"sales@firma.cz", []string{"petr@firma.cz"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Aliases = %+v, %v; want %+v (sorted, other domains dropped)", got, err, want)
	}
	if err := c.AddAlias(ctx, Alias{Address: "Obchod@firma.cz", Targets: []string{"jana@firma.cz", "JANA@firma.cz", "x@gmail.example"}}); err != nil {
		t.Fatal(err)
	}
	if got := read("add_alias.stdin"); got != `{"address":"Obchod@firma.cz","targets":["jana@firma.cz","x@gmail.example"]}` {
		t.Errorf("add_alias request: %s", got)
	}
	if err := c.AddAlias(ctx, Alias{Address: "info@firma.cz", Targets: []string{"jana@firma.cz"}}); !errors.Is(err, ErrExists) {
		t.Errorf("AddAlias of an existing alias: %v, want ErrExists", err)
	}
	if err := c.RemoveAlias(ctx, "sales@firma.cz"); err != nil {
		t.Fatal(err)
	}
	if got := read("remove_alias.stdin"); got != `{"address":"sales@firma.cz"}` {
		t.Errorf("remove_alias request: %s", got)
	}
}

// Without the optional commands the driver offers none of the operations.
func TestCommandOptionalCapabilities(t *testing.T) {
	plain, _ := newTestCommand(t, "list.sh", "create.sh", "quota.sh", 0)
	if PasswordSetterOf(plain) != nil || QuotaSetterOf(plain) != nil || AliasManagerOf(plain) != nil {
		t.Error("a command driver without optional commands offers them")
	}
	full, _ := newManageCommand(t)
	if PasswordSetterOf(full) == nil || QuotaSetterOf(full) == nil || AliasManagerOf(full) == nil {
		t.Error("a command driver with all optional commands does not offer them")
	}
	if _, err := NewCommand(CommandConfig{List: script(t, "list.sh"), Create: script(t, "create.sh"), Quota: script(t, "quota.sh"),
		Password: "/nonexistent/password"}); err == nil || !strings.Contains(err.Error(), "Password") {
		t.Errorf("NewCommand with a missing password command: %v", err)
	}
}
