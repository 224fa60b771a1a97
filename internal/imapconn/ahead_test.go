package imapconn_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

// Fetches sent ahead, two in one folder and one after an EXAMINE of
// another, each read by its own goroutine as Dovecot runs them at the same
// time: every message reaches the fetch that asked for it, with its own
// body, and the connection goes on afterwards.
func TestBodiesSentAhead(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser("ahead@old.test", "heslo", 0); err != nil {
		t.Fatal(err)
	}
	c := dialDovecot(t, d, "ahead@old.test")
	ctx := context.Background()
	if err := c.Create(ctx, "Archiv", ""); err != nil {
		t.Fatal(err)
	}
	const n = 40
	sizes := map[string]int{"INBOX": 3000, "Archiv": 20000}
	for name, size := range sizes {
		if _, err := c.Append(ctx, name, appendMessages(n, size)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.SendBodies("Archiv", []imap.UID{1}); ok {
		t.Fatal("an EXAMINE went ahead before the connection had opened a folder")
	}
	inbox, err := c.Examine(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uids := func(from, to int) (out []imap.UID) {
		for u := from; u <= to; u++ {
			out = append(out, imap.UID(u))
		}
		return out
	}
	f1, _ := c.SendBodies("", uids(1, 20))
	f2, _ := c.SendBodies("", uids(21, n))
	f3, ok := c.SendBodies("Archiv", uids(1, n))
	if !ok {
		t.Fatal("the EXAMINE of Archiv could not go ahead")
	}
	if !f1.Asks(20) || f1.Asks(21) || !f2.Asks(21) {
		t.Error("Asks does not tell the fetches' UIDs apart")
	}
	id := regexp.MustCompile(`Message-ID: <(\d+)@batch\.test>`)
	read := func(f *imapconn.BodyFetch, folder string) error {
		got := map[imap.UID]bool{}
		err := imapconn.ReadBodies(ctx, f, func(m imapconn.Message, r io.Reader, size int64) ([]byte, error) {
			return io.ReadAll(r)
		}, func(m imapconn.Message, body []byte) error {
			sub := id.FindSubmatch(body)
			if sub == nil || string(sub[1]) != fmt.Sprint(m.UID-1) || len(body) < sizes[folder] || !f.Asks(m.UID) || got[m.UID] {
				return fmt.Errorf("%s UID %d: a body of %d bytes, %q, asked for %v, seen before %v", folder, m.UID, len(body), bytes.TrimSpace(body[:min(len(body), 40)]), f.Asks(m.UID), got[m.UID])
			}
			got[m.UID] = true
			return nil
		})
		if err == nil && len(got) != len(asked(f)) {
			err = fmt.Errorf("%s: %d messages", folder, len(got))
		}
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { errs[0] = read(f1, "INBOX") })
	wg.Go(func() { errs[1] = read(f2, "INBOX") })
	wg.Go(func() {
		sel, err := f3.Opened(ctx)
		if err != nil {
			errs[2] = err
			return
		}
		if sel.UIDValidity == inbox.UIDValidity || sel.NumMessages != n {
			errs[2] = fmt.Errorf("EXAMINE Archiv answered %+v", sel)
			return
		}
		errs[2] = read(f3, "Archiv")
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// A fetch sent ahead and thrown away leaves the connection ready.
	f4, _ := c.SendBodies("INBOX", uids(1, n))
	f4.Discard(ctx)
	meta, err := c.FetchMeta(ctx, uids(1, 3), nil)
	if err != nil || len(meta) != 3 || meta[0].Size < int64(sizes["INBOX"]) {
		t.Errorf("after a discarded fetch: %d messages (%+v), %v", len(meta), meta, err)
	}
}

// asked lists the UIDs a fetch asks for, up to 1000.
func asked(f *imapconn.BodyFetch) []imap.UID {
	var out []imap.UID
	for u := imap.UID(1); u <= 1000; u++ {
		if f.Asks(u) {
			out = append(out, u)
		}
	}
	return out
}

// ExamineMeta answers as Examine followed by FetchMeta or FetchChanged; an
// empty folder lists nothing, a missing one fails without ending the
// connection.
func TestExamineMeta(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser("meta@old.test", "heslo", 0); err != nil {
		t.Fatal(err)
	}
	c := dialDovecot(t, d, "meta@old.test")
	ctx := context.Background()
	for _, name := range []string{"Archiv", "Prázdná"} {
		if err := c.Create(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Append(ctx, "Archiv", appendMessages(30, 500)); err != nil {
		t.Fatal(err)
	}
	sel, got, err := c.ExamineMeta(ctx, "Archiv", 0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.FetchMeta(ctx, nil, nil)
	if err != nil || sel.NumMessages != 30 || len(got) != 30 || len(want) != 30 {
		t.Fatalf("ExamineMeta: %+v, %d messages; FetchMeta %d, %v", sel, len(got), len(want), err)
	}
	for i := range got {
		if got[i].UID != want[i].UID || got[i].Size != want[i].Size || !got[i].Date.Equal(want[i].Date) || len(got[i].Flags) != len(want[i].Flags) {
			t.Errorf("message %d: %+v, FetchMeta says %+v", i, got[i], want[i])
		}
	}
	// Only what changed since the folder's HIGHESTMODSEQ: nothing, then
	// the message appended after it.
	if _, changed, err := c.ExamineMeta(ctx, "Archiv", sel.HighestModSeq); err != nil || len(changed) != 0 {
		t.Errorf("changed since %d: %d messages, %v", sel.HighestModSeq, len(changed), err)
	}
	if _, err := c.Append(ctx, "Archiv", appendMessages(1, 500)); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := c.ExamineMeta(ctx, "Archiv", sel.HighestModSeq); err != nil || len(changed) != 1 || changed[0].UID != 31 {
		t.Errorf("changed since %d after an APPEND: %+v, %v", sel.HighestModSeq, changed, err)
	}
	if sel, none, err := c.ExamineMeta(ctx, "Prázdná", 0); err != nil || sel.NumMessages != 0 || len(none) != 0 {
		t.Errorf("empty folder: %+v, %d messages, %v", sel, len(none), err)
	}
	if _, _, err := c.ExamineMeta(ctx, "Nic", 0); err == nil || c.Dead() {
		t.Errorf("missing folder: %v, connection dead %v", err, c.Dead())
	}
	if _, err := c.Examine(ctx, "Archiv"); err != nil {
		t.Errorf("after the missing folder: %v", err)
	}
}
