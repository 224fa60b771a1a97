package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Every server starts, takes a user, and stores a message with its flags
// and date in a new folder.
func TestServersStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		user  string
		start func() (Server, error)
	}{
		{"cyrus", "jana", func() (Server, error) { return StartCyrus() }},
		{"courier", "jana@old.test", func() (Server, error) { return StartCourier() }},
		{"mailutils", "jana@old.test", func() (Server, error) { return StartMailutils() }},
		{"dovecot-mbox", "jana@old.test", func() (Server, error) { return StartDovecotServer(DovecotOptions{Mbox: true}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s := StartServerT(t, tc.start)
			t.Logf("%s started in %s", s.Name(), time.Since(start).Round(time.Millisecond))
			if err := s.AddUser(tc.user, `heslo "x" \ ž`); err != nil {
				t.Fatalf("%s: %v\n%s", s.Name(), err, s.LogTail(20))
			}
			c, err := s.Login(tc.user, `heslo "x" \ ž`)
			if err != nil {
				t.Fatalf("%s: %v\n%s", s.Name(), err, s.LogTail(20))
			}
			defer c.Close()
			corpus := &Corpus{Folders: []string{"INBOX", "Archiv"}, Messages: []Message{{
				Folder: "Archiv", Body: []byte("Subject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"),
				Flags: []imap.Flag{imap.FlagSeen}, InternalDate: time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC),
			}}}
			if err := corpus.Load(context.Background(), c); err != nil {
				t.Fatalf("%s: %v\n%s", s.Name(), err, s.LogTail(20))
			}
			names, err := ServerFolderNames(c, corpus.Folders)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := Snapshot(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if st := snap[names["Archiv"]]; st.Messages != 1 {
				t.Errorf("%s: %q holds %d messages, want 1 (%+v)", s.Name(), names["Archiv"], st.Messages, snap)
			}
		})
	}
}
