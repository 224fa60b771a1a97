package imapconn_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

// FetchGmail reads every message's id and labels from All Mail, decoded,
// and go-imap's commands work on the same connection before and after.
func TestFetchGmail(t *testing.T) {
	var msgs []testbed.GmailMessage
	for i := range 3 {
		msgs = append(msgs, testbed.GmailMessage{MsgID: uint64(1)<<60 + uint64(i),
			Body: fmt.Appendf(nil, "Subject: %d\r\n\r\nbody\r\n", i)})
	}
	msgs[0].Labels = []string{testbed.GmailInbox, testbed.GmailImportant, "Práce/Klienti"}
	msgs[1].Labels = []string{"a (b) \"c\""}
	msgs[2].Labels = []string{testbed.GmailTrash, "Work"} // not in All Mail
	g := testbed.StartGmail(t, testbed.GmailConfig{User: "eva", Password: "heslo", Locale: "cs", Messages: msgs})
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: g.Port, Security: imapconn.Plain}, imapconn.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx, "eva", "heslo"); err != nil {
		t.Fatal(err)
	}
	if !c.Has(ctx, imapconn.CapGmail) {
		t.Fatal("no X-GM-EXT-1")
	}
	list, err := c.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := slices.IndexFunc(list, func(m imapconn.Mailbox) bool { return m.HasAttr(`\All`) })
	if all < 0 || list[all].Name != "[Gmail]/Všechny zprávy" {
		t.Fatalf("no All Mail folder in %+v", list)
	}
	if _, err := c.Examine(ctx, list[all].Name); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := c.FetchGmail(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].MsgID != msgs[0].MsgID || !slices.Equal(got[0].Labels, msgs[0].Labels) ||
			got[1].MsgID != msgs[1].MsgID || !slices.Equal(got[1].Labels, msgs[1].Labels) {
			t.Fatalf("got %+v", got)
		}
		meta, err := c.FetchMeta(ctx, []imap.UID{got[1].UID}, nil)
		if err != nil || len(meta) != 1 || meta[0].UID != got[1].UID {
			t.Fatalf("go-imap after FetchGmail: %+v, %v", meta, err)
		}
	}
	g.SetLabels(msgs[1].MsgID, testbed.GmailInbox)
	got, err := c.FetchGmail(ctx, []imap.UID{2})
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Labels, []string{testbed.GmailInbox}) {
		t.Fatalf("after a label change: %+v, %v", got, err)
	}
	if w := g.Writes(); len(w) > 0 {
		t.Errorf("the source was written to: %q", w)
	}
}

// A FETCH response FetchGmail cannot read is a protocol error quoting the
// server, not a lost connection.
func TestFetchGmailBrokenReply(t *testing.T) {
	h := testbed.StartHostile(t, testbed.HostileConfig{User: "eva", Password: "heslo", GarbageOn: "UID FETCH",
		GarbageLine: `* 1 FETCH (UID 1 X-GM-MSGID 7 X-GM-LABELS ("open`, Caps: []string{"X-GM-EXT-1"},
		Folders: []testbed.HostileFolder{{Name: "INBOX", Messages: []testbed.HostileMessage{{UID: 1, Body: []byte("Subject: a\r\n\r\na\r\n")}}}}})
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: h.Port, Security: imapconn.Plain}, imapconn.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx, "eva", "heslo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Examine(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	_, err = c.FetchGmail(ctx, nil)
	var e *imapconn.Error
	if !errors.As(err, &e) || e.Kind != imapconn.ErrProtocol || !strings.Contains(e.Text, `X-GM-LABELS ("open`) {
		t.Fatalf("got %v, want a protocol error quoting the line", err)
	}
	if !c.Dead() {
		t.Error("the connection stays open after an unreadable reply")
	}
}
