package jobs

import (
	"testing"

	"mailmigrate/internal/imapconn"
)

func TestHostLimiter(t *testing.T) {
	l := &hostLimiter{max: 2, busy: map[string]int{}}
	if !l.acquire("imap.a.cz") || !l.acquire("imap.a.cz") {
		t.Fatal("the first two tasks of a host were refused")
	}
	if l.acquire("imap.a.cz") {
		t.Error("a third task of one host was let through")
	}
	if !l.acquire("imap.b.cz") {
		t.Error("another host was held back")
	}
	l.release("imap.a.cz")
	if !l.acquire("imap.a.cz") {
		t.Error("a released slot was not reused")
	}
}

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
