package jobs

import (
	"slices"
	"testing"

	"github.com/riverqueue/river/rivertype"

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

// A finished task must be queueable again (restart), so completed jobs
// may not block a new one; waiting or running ones must.
func TestTaskJobUniqueness(t *testing.T) {
	states := TaskArgs{}.InsertOpts().UniqueOpts.ByState
	if slices.Contains(states, rivertype.JobStateCompleted) || slices.Contains(states, rivertype.JobStateCancelled) {
		t.Errorf("finished jobs block a restart: %v", states)
	}
	for _, s := range []rivertype.JobState{rivertype.JobStateRunning, rivertype.JobStateAvailable, rivertype.JobStateScheduled} {
		if !slices.Contains(states, s) {
			t.Errorf("a %s job does not block a second one", s)
		}
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
