package main

import (
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
)

// The command line's report exists in Czech and English; in Czech it
// has its plural forms, decimal commas and dates.
func TestReportInBothLanguages(t *testing.T) {
	for _, p := range catalog.Check() {
		t.Error(p)
	}
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	rep := &engine.Report{Source: "imaps://imap.old.cz:993", SourceUser: "jana@old.cz", Dest: "imaps://imap.hosting.cz:993",
		DestUser: "jana@firma.cz", Status: engine.StatusWarnings, Started: start, Finished: start.Add(90 * time.Second),
		Totals: engine.Totals{SourceMessages: 1234, Copied: 1230, Skipped: 4, BytesCopied: 1_677_722},
		Folders: []engine.FolderReport{{Source: "INBOX", Dest: "INBOX", SourceMessages: 1234, Copied: 1230,
			Skipped: []engine.MessageIssue{{UID: 7, Subject: "Velká příloha", Size: 60 << 20, Date: start}}}}}
	defer func(p *i18n.Printer) { out = p }(out)
	for lang, want := range map[i18n.Lang][]string{
		i18n.Czech:   {"hotovo s upozorněními", "1\u00a0234 zpráv, 1 složka", "1,6 MB", "přeskočeno ve složce INBOX", "27. 11. 2026"},
		i18n.English: {"done with warnings", "1,234 messages in 1 folder", "1.6 MB", "skipped in INBOX", "2026-11-27"},
	} {
		out = i18n.New(lang)
		var b strings.Builder
		printReports(&b, []*engine.Report{rep})
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s report lacks %q:\n%s", lang, w, b.String())
			}
		}
	}
}
