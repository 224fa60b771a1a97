package config

import (
	"net/netip"
	"testing"
)

func TestWebKeys(t *testing.T) {
	c, err := Parse([]byte("web.public_url = https://migrate.hosting.test/\nweb.trusted_proxies = 127.0.0.1, 10.0.0.0/8 ::1\nweb.check_lines = 50\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if c.Web.PublicURL != "https://migrate.hosting.test" || len(c.Web.TrustedProxies) != 3 || c.Web.CheckLines != 50 || c.Web.ChecksPerHour != 2000 {
		t.Errorf("%+v", c.Web)
	}
	o, err := Parse([]byte("web.sign_in_return_origins = https://Panel.Hosting.test/, http://localhost:8443\n"), "t")
	if err != nil || len(o.Web.SignInReturnOrigins) != 2 || o.Web.SignInReturnOrigins[0] != "https://panel.hosting.test" ||
		o.Web.SignInReturnOrigins[1] != "http://localhost:8443" {
		t.Errorf("return origins %q: %v", o.Web.SignInReturnOrigins, err)
	}
	for i, p := range want {
		if c.Web.TrustedProxies[i] != p {
			t.Errorf("proxy %d: %v, want %v", i, c.Web.TrustedProxies[i], p)
		}
	}
	for _, bad := range []string{"web.public_url = migrate.hosting.test", "web.public_url = https://x.test/panel", "web.trusted_proxies = 10.0.0/8", "web.check_lines = x",
		"web.sign_in_return_origins = panel.hosting.test", "web.sign_in_return_origins = https://panel.hosting.test/back",
		"web.sign_in_return_origins = https://user@panel.hosting.test", "web.sign_in_return_origins = ftp://panel.hosting.test"} {
		if _, err := Parse([]byte(bad+"\n"), "t"); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}
