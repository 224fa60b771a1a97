package bulk

import (
	"strings"
	"testing"
)

// The panel's lines name the old mailbox: any domain, or a renamed
// service's identifier; the mailbox created is the name in the customer's
// domain, and a third part is a new password.
func TestParseNewMailboxes(t *testing.T) {
	in := "zora@w123456 stare-heslo\nzora@old-domain.cz\tstare heslo\tnove-heslo-1234\n" +
		"ZORA@jina.cz heslo\nadam heslo\npetr@old-domain.cz a b c d\nolga@firma.test olga-heslo\n"
	got, errs, err := ParseNewMailboxes(strings.NewReader(in), "firma.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Line: 1, SourceUser: "zora@w123456", SourcePassword: "stare-heslo", DestUser: "zora@firma.test", DestPassword: "stare-heslo"},
		{Line: 6, SourceUser: "olga@firma.test", SourcePassword: "olga-heslo", DestUser: "olga@firma.test", DestPassword: "olga-heslo"},
	}
	if len(got) != len(want) {
		t.Fatalf("entries = %+v, want %+v (errors %v)", got, want, errs)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	wantErrs := map[int]string{2: "already used on line 1", 3: "already used on line 1", 4: "no domain", 5: "more than three parts"}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors = %v", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Reason.String(), wantErrs[e.Line]) {
			t.Errorf("line %d: %q, want %q", e.Line, e.Reason, wantErrs[e.Line])
		}
		if strings.Contains(e.Reason.String(), "heslo") {
			t.Errorf("line %d reveals a password: %q", e.Line, e.Reason)
		}
	}

	// Tabs keep spaces inside passwords; a third part is the new password.
	got, errs, _ = ParseNewMailboxes(strings.NewReader("zora@old-domain.cz\tstare heslo\tnove-heslo-1234\n"), "firma.test")
	if len(errs) != 0 || len(got) != 1 || got[0].SourcePassword != "stare heslo" || got[0].DestPassword != "nove-heslo-1234" || got[0].DestUser != "zora@firma.test" {
		t.Fatalf("got %+v, %v", got, errs)
	}
	// The CLI's meaning is unchanged: there the login is the destination.
	if _, err := Parse(strings.NewReader("zora@w123456 heslo\n")); err == nil || !strings.Contains(err.Error(), "not a domain") {
		t.Errorf("CLI list with a service identifier: %v", err)
	}
}
