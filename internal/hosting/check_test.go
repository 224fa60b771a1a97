package hosting

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A passwd-file driver set up wrong says at start which key to fix.
func TestPasswdFileCheck(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	for _, c := range []struct {
		name    string
		cfg     PasswdFileConfig
		setup   func()
		wantKey string // "" for a working setup
	}{
		{"no file", PasswdFileConfig{Path: filepath.Join(dir, "none")}, nil, "hosting.passwd_file"},
		{"a directory", PasswdFileConfig{Path: dir}, nil, "hosting.passwd_file"},
		{"unknown user", PasswdFileConfig{Path: users, UID: "no-such-vmail-user", GID: "12"}, func() { os.WriteFile(users, nil, 0o600) }, "hosting.uid"},
		{"unknown group", PasswdFileConfig{Path: users, UID: "12", GID: "no-such-vmail-group"}, nil, "hosting.gid"},
		{"missing alias file", PasswdFileConfig{Path: users, Aliases: AliasFileConfig{Path: filepath.Join(dir, "virtual")}}, nil, "hosting.alias_file"},
		{"fine", PasswdFileConfig{Path: users, UID: "12", GID: "12"}, nil, ""},
	} {
		if c.setup != nil {
			c.setup()
		}
		p := &PasswdFile{cfg: c.cfg}
		err := Check(context.Background(), p)
		switch {
		case c.wantKey == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantKey != "" && (err == nil || !strings.Contains(err.Error(), c.wantKey)):
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.wantKey)
		}
	}
}
