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
