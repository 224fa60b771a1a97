package config

import "testing"

// The example in the repository must stay a valid configuration.
func TestExampleParses(t *testing.T) {
	c, err := Load("../../mailmigrate.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosting.IMAP == "" || c.Hosting.PasswdFile == "" || c.Hosting.DefaultQuota != 2<<30 {
		t.Errorf("example parsed as %+v", c.Hosting)
	}
}
