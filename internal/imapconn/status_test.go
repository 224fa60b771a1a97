package imapconn_test

import (
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/testbed"
)

// StatusMany sends every STATUS at once and answers as Status does, each
// reply with its own mailbox's counters; a mailbox that does not exist
// stops it there with an error, and the connection goes on.
func TestStatusMany(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser("many@old.test", "heslo", 0); err != nil {
		t.Fatal(err)
	}
	c := dialDovecot(t, d, "many@old.test")
	ctx := context.Background()
	names := []string{"INBOX", "Archiv", "Účty/2024", "Zprávy \"důležité\""}
	for i, name := range names[1:] {
		if err := c.Create(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Append(ctx, name, appendMessages(i+1, 300)); err != nil {
			t.Fatal(err)
		}
	}
	opts := imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}
	got, err := c.StatusMany(ctx, names, opts)
	if err != nil || len(got) != len(names) {
		t.Fatalf("StatusMany: %d answers, %v", len(got), err)
	}
	for i, name := range names {
		want, err := c.Status(ctx, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		g := got[i]
		if g.Mailbox != name || *g.NumMessages != uint32(i) || *g.NumMessages != *want.NumMessages ||
			g.UIDNext != want.UIDNext || g.UIDValidity != want.UIDValidity {
			t.Errorf("%s: %s %d messages, UIDNEXT %d, UIDVALIDITY %d; Status says %d, %d, %d", name, g.Mailbox,
				*g.NumMessages, g.UIDNext, g.UIDValidity, *want.NumMessages, want.UIDNext, want.UIDValidity)
		}
	}

	got, err = c.StatusMany(ctx, []string{"Archiv", "Nic", "Účty/2024"}, opts)
	if err == nil || len(got) != 1 || *got[0].NumMessages != 1 {
		t.Errorf("with a missing mailbox: %d answers, %v", len(got), err)
	}
	if st, err := c.Status(ctx, "Účty/2024", opts); err != nil || *st.NumMessages != 2 {
		t.Errorf("Status after the failed one: %+v %v", st, err)
	}
}
