package engine

import (
	"testing"
	"time"
)

// A run's later slice finds what the earlier slice copied already there;
// the joined report counts it as copied by the run, keeps the run's start
// and the later slice's skipped messages, and keeps a folder only the
// earlier slice saw.
func TestReportContinue(t *testing.T) {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	earlier := &Report{Started: start, Folders: []FolderReport{
		{Source: "INBOX", SourceMessages: 100, Copied: 60, BytesCopied: 6000, DatesNotKept: 1, KeywordsDropped: []string{"$Label1"},
			Failed: []MessageIssue{{UID: 7}}},
		{Source: "Gone", SourceMessages: 3, Copied: 3, BytesCopied: 300},
	}}
	later := &Report{Started: start.Add(10 * time.Minute), Folders: []FolderReport{
		{Source: "INBOX", SourceMessages: 100, Copied: 40, AlreadyPresent: 60, BytesCopied: 4000, KeywordsDropped: []string{"$Label1", "$Label2"},
			Skipped: []MessageIssue{{UID: 9}}},
		{Source: "Sent", SourceMessages: 5, Copied: 5, BytesCopied: 500},
	}}
	later.Continue(earlier)
	in := later.Folders[0]
	if in.Copied != 100 || in.AlreadyPresent != 0 || in.BytesCopied != 10000 || in.DatesNotKept != 1 ||
		len(in.KeywordsDropped) != 2 || len(in.Skipped) != 1 || len(in.Failed) != 0 {
		t.Errorf("INBOX joined: %+v", in)
	}
	if len(later.Folders) != 3 || later.Folders[2].Source != "Gone" || later.Folders[2].Copied != 3 {
		t.Errorf("folders: %+v", later.Folders)
	}
	if want := (Totals{SourceMessages: 108, Copied: 108, Skipped: 1, BytesCopied: 10800}); later.Totals != want {
		t.Errorf("totals %+v, want %+v", later.Totals, want)
	}
	if !later.Started.Equal(start) {
		t.Errorf("started %v, want the run's start %v", later.Started, start)
	}
}
