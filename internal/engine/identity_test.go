package engine

import (
	"strings"

	"mailmigrate/internal/imapconn"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestIdentity(t *testing.T) {
	full := "Return-Path: <a@x.cz>\r\nReceived: from a by b\r\nMessage-ID: <1@x.cz>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n" +
		"From: Jana <a@x.cz>\r\nTo: b@y.cz\r\nSubject: Faktura\r\n  za leden\r\n\r\nbody"
	// What HEADER.FIELDS returns: only the asked fields, in message order.
	fields := "Message-ID: <1@x.cz>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nFrom: Jana <a@x.cz>\r\nTo: b@y.cz\r\nSubject: Faktura\r\n za leden\r\n\r\n"
	tests := []struct {
		name  string
		a, b  string
		sa    int64
		sb    int64
		equal bool
	}{
		{"full header and HEADER.FIELDS agree", full, fields, 100, 100, true},
		{"refolded whitespace is the same", fields, "Message-ID:  <1@x.cz>\nDate: Mon, 1 Jan 2024 10:00:00 +0100\nFrom: Jana <a@x.cz>\nTo: b@y.cz\nSubject: Faktura za leden\n", 100, 100, true},
		{"size differs by far", fields, fields, 100, 5000, false},
		{"a final CRLF added by the server", fields, fields, 10000, 10002, true},
		{"8-bit header bytes munged to X (Cyrus)", "Subject: P\xc5\x99\xc3\xadli\xc5\xa1\r\n\r\n", "Subject: PXXXXliXX\r\n\r\n", 50, 50, true},
		{"bare CR rewritten", "Subject: a\rb\r\n\r\n", "Subject: a\r\n b\r\n\r\n", 50, 51, true},
		{"same Message-ID, other subject", fields, "Message-ID: <1@x.cz>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nFrom: Jana <a@x.cz>\r\nTo: b@y.cz\r\nSubject: Jiná věc\r\n\r\n", 100, 100, false},
		{"no Message-ID at all", "Subject: a\r\n\r\n", "Subject: a\r\n\r\n", 5, 5, true},
		{"Received does not matter", "Received: x\r\nSubject: a\r\n\r\n", "Received: y\r\nSubject: a\r\n\r\n", 5, 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := IdentityOf([]byte(tc.a)) == IdentityOf([]byte(tc.b)) && SameSize(tc.sa, tc.sb)
			if got != tc.equal {
				t.Errorf("equal = %v, want %v", got, tc.equal)
			}
		})
	}
}

func FuzzHeaderFields(f *testing.F) {
	f.Add([]byte("Subject: a\r\n b\r\nFrom: x\r\n\r\nbody"))
	f.Add([]byte("\r\n"))
	f.Add([]byte(" leading fold\r\nX: y"))
	f.Add([]byte("no colon line\nA:\n"))
	f.Fuzz(func(t *testing.T, header []byte) {
		for _, fl := range headerFields(header) {
			if fl.name == "" {
				t.Fatalf("empty field name from %q", header)
			}
		}
		_ = IdentityOf(header)
	})
}

func TestFlagFilterAndDelta(t *testing.T) {
	f := newFlagFilter([]imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "$Forwarded"})
	got := f.apply([]imap.Flag{`\SEEN`, `\Recent`, "$Forwarded", "Projekt", `\Deleted`, `\Seen`})
	want := []imap.Flag{"$Forwarded", imap.FlagDeleted, imap.FlagSeen}
	if flagKey(got) != flagKey(want) {
		t.Errorf("filtered = %v, want %v (no \\Recent, no refused keyword, one \\Seen)", got, want)
	}
	wild := newFlagFilter([]imap.Flag{imap.FlagSeen, imap.FlagWildcard})
	if k := flagKey(wild.apply([]imap.Flag{"Projekt"})); k != "projekt" {
		t.Errorf(`with \* a keyword must pass, got %q`, k)
	}
	add, rem := flagDelta([]imap.Flag{imap.FlagSeen, "$label1"}, []imap.Flag{imap.FlagFlagged, "$Label1"})
	if flagKey(add) != flagKey([]imap.Flag{imap.FlagFlagged}) || flagKey(rem) != flagKey([]imap.Flag{imap.FlagSeen}) {
		t.Errorf("delta add=%v remove=%v; want add \\Flagged, remove \\Seen, keyword case ignored", add, rem)
	}
}

func TestExplainForbiddenAddress(t *testing.T) {
	err := &SideError{Side: SideSource, User: "a@b.cz", Err: &imapconn.Error{Kind: imapconn.ErrConnect, Err: imapconn.ErrForbiddenAddress}}
	f := Explain(err)
	if f.Kind != "connect" || f.Side != SideSource || !strings.Contains(f.Text.String(), "private or local network") {
		t.Errorf("explained as %+v", f)
	}
}
