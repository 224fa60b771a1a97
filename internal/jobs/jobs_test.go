package jobs

import (
	"testing"

	"mailmigrate/internal/imapconn"
)

func TestSecurityOf(t *testing.T) {
	for in, want := range map[string]imapconn.Security{"tls": imapconn.TLS, "starttls": imapconn.StartTLS, "plain": imapconn.Plain, "": imapconn.TLS} {
		if got := SecurityOf(in); got != want {
			t.Errorf("%q -> %v", in, got)
		}
	}
}

func TestSecurityNameRoundTrip(t *testing.T) {
	for _, s := range []imapconn.Security{imapconn.TLS, imapconn.StartTLS, imapconn.Plain} {
		if got := SecurityOf(SecurityName(s)); got != s {
			t.Errorf("%v -> %q -> %v", s, SecurityName(s), got)
		}
	}
}
