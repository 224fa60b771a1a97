package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/testbed"
)

// --gmail-once copies a Gmail message of two labels once, the other label
// as a keyword; without it, once per label.
func TestMigrateGmailOnce(t *testing.T) {
	for _, c := range []struct {
		args   []string
		copied string
		inbox  []imap.Flag
	}{
		{[]string{"--gmail-once"}, "2 copied", []imap.Flag{imap.FlagSeen, "Work"}},
		{nil, "3 copied", []imap.Flag{imap.FlagSeen}},
	} {
		cl := newCLI(t, testbed.CorpusOptions{})
		g := testbed.StartGmail(t, testbed.GmailConfig{User: cl.srcUser, Password: "pw of " + cl.srcUser, Messages: []testbed.GmailMessage{
			{MsgID: 1, Labels: []string{testbed.GmailInbox, "Work"}, Flags: []string{`\Seen`}, Body: []byte("Subject: a\r\n\r\na\r\n")},
			{MsgID: 2, Labels: []string{"Work"}, Body: []byte("Subject: b\r\n\r\nb\r\n")},
		}})
		args := append([]string{"migrate", "--source", "imap://" + g.Addr, "--allow-plaintext",
			"--dest", "imaps://" + cl.d.IMAPSAddr(), "--ca-file", cl.d.CAFile,
			"--state", filepath.Join(cl.dir, "state.db"), "--timeout", "20s",
			"--source-user", cl.srcUser, "--source-password-file", filepath.Join(cl.dir, "src.pw"),
			"--dest-user", cl.dstUser, "--dest-password-file", filepath.Join(cl.dir, "dst.pw")}, c.args...)
		code, stdout, stderr := cl.run(args...)
		if code != exitOK || !strings.Contains(stdout, c.copied) {
			t.Fatalf("%v: exit %d, want %q\nstdout:\n%s\nstderr:\n%s", c.args, code, c.copied, stdout, stderr)
		}
		dst := cl.d.LoginT(t, cl.dstUser, "pw of "+cl.dstUser)
		if _, err := dst.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := dst.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("INBOX: %v, %v", msgs, err)
		}
		flags := slices.DeleteFunc(msgs[0].Flags, func(f imap.Flag) bool { return f == `\Recent` })
		if !slices.Equal(flags, c.inbox) {
			t.Errorf("%v: INBOX message has %v, want %v", c.args, flags, c.inbox)
		}
		dst.Close()
	}
}
