package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`# comment
listen = 0.0.0.0:9000
hosting.imap = imaps://mail.hosting.tld   # trailing comment
hosting.default_quota = 2G
sources.allow_private = true
jobs.slice = 90s
`), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.Hosting.IMAP != "imaps://mail.hosting.tld" || c.Hosting.DefaultQuota != 2<<30 ||
		!c.Sources.AllowPrivate || c.Jobs.Slice != 90*time.Second || c.Jobs.Workers != 6 {
		t.Errorf("parsed %+v", c)
	}
	_, err = Parse([]byte("nonsense\nhosting.driver = ldap\njobs.workers = -1\nfoo = 1\n"), "bad.conf")
	for _, want := range []string{"bad.conf:1", "bad.conf:2: hosting.driver", "bad.conf:3", "bad.conf:4: foo: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// The database is SQLite unless a PostgreSQL URL is given; a wrong value
// is refused without being repeated (it may hold a password).
func TestDatabase(t *testing.T) {
	if c, err := Parse(nil, "test.conf"); err != nil || c.Database != "" {
		t.Errorf("default database %q, %v", c.Database, err)
	}
	const url = "postgres://mailmigrate:s3cret@db.hosting.tld:5432/mailmigrate?sslmode=verify-full"
	c, err := Parse([]byte("database = "+url+"\n"), "test.conf")
	if err != nil || c.Database != url {
		t.Errorf("database %q, %v", c.Database, err)
	}
	for _, bad := range []string{"mysql://root:s3cret@db/mm", "s3cret", "host=db password=s3cret", "postgres://u:s3cret@db/%zz"} {
		_, err := Parse([]byte("database = "+bad+"\n"), "bad.conf")
		if err == nil || !strings.Contains(err.Error(), "bad.conf:1: database: not a PostgreSQL URL") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("database = %s: %v", bad, err)
		}
	}
}

func TestMailboxManagementKeys(t *testing.T) {
	c, err := Parse([]byte(`hosting.max_quota = 10G
hosting.alias_file = /etc/postfix/virtual
hosting.alias_reload_command = /usr/sbin/postmap '/etc/postfix/my virtual'
hosting.command.password = /usr/local/lib/mm/password
hosting.command.set_quota = /usr/local/lib/mm/quota
hosting.command.aliases = /usr/local/lib/mm/aliases
`), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hosting
	if h.MaxQuota != 10<<30 || h.AliasFile != "/etc/postfix/virtual" || strings.Join(h.AliasReloadCommand, "|") != "/usr/sbin/postmap|/etc/postfix/my virtual" ||
		h.CommandPassword == "" || h.CommandSetQuota == "" || h.CommandAliases == "" {
		t.Errorf("parsed %+v", h)
	}
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string]string{
		`postmap /etc/postfix/virtual`:         "postmap|/etc/postfix/virtual",
		`  a   b  `:                            "a|b",
		`sh -c 'echo $HOME; rm x'`:             "sh|-c|echo $HOME; rm x",
		`x "a \"b\" c" d\ e ''`:                `x|a "b" c|d e|`,
		`/usr/sbin/postmap hash:/etc/x;reboot`: "/usr/sbin/postmap|hash:/etc/x;reboot",
		"":                                     "",
	} {
		got, err := SplitCommand(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`a 'b`, `a "b`, `a\`} {
		if _, err := SplitCommand(bad); err == nil {
			t.Errorf("SplitCommand(%q) accepted", bad)
		}
	}
}
