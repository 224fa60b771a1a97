package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOAuthKeys(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "ms.secret")
	if err := os.WriteFile(secretFile, []byte("from-file\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(`oauth.google.client_id = g-id
oauth.google.client_secret = g-secret
oauth.google.auth_url = http://127.0.0.1:9/authorize
oauth.google.token_url = http://127.0.0.1:9/token
oauth.google.device_url = http://127.0.0.1:9/device
oauth.microsoft.client_id = m-id
oauth.microsoft.client_secret_file = `+secretFile+"\n"), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	g, m := c.OAuth["google"], c.OAuth["microsoft"]
	if g.ClientID != "g-id" || g.AuthURL != "http://127.0.0.1:9/authorize" || g.TokenURL == "" || g.DeviceURL == "" || m.ClientID != "m-id" {
		t.Errorf("parsed %+v", c.OAuth)
	}
	for _, tc := range []struct {
		o    OAuthClient
		want string
	}{{g, "g-secret"}, {m, "from-file"}} {
		if s, err := tc.o.Secret(); err != nil || s != tc.want {
			t.Errorf("secret %q, %v; want %q", s, err, tc.want)
		}
	}
	for _, bad := range []string{"oauth.yahoo.client_id = x", "oauth.google.token_url = ftp://x", "oauth.google.colour = x"} {
		if _, err := Parse([]byte(bad), "bad.conf"); err == nil || strings.Contains(err.Error(), "g-secret") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
