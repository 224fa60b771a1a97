package engine_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/oauth2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// exchangeMessages makes n messages of a folder with distinct Message-IDs,
// varied flags and dates, UIDs 1..n.
func exchangeMessages(folder string, n int) []testbed.HostileMessage {
	flags := [][]string{{`\Seen`}, {}, {`\Seen`, `\Answered`}, {`\Flagged`}, {`\Seen`, `$Label1`}}
	out := make([]testbed.HostileMessage, n)
	for i := range n {
		id := fmt.Sprintf("%s-%d", strings.ReplaceAll(folder, " ", "-"), i+1)
		body := fmt.Sprintf("Message-ID: <%s@contoso.test>\r\nDate: Tue, 5 Mar 2024 10:%02d:%02d +0100\r\n"+
			"From: Adele <adele@contoso.test>\r\nTo: jana@contoso.test\r\nSubject: %s\r\n\r\n%s\r\n",
			id, i/60%60, i%60, id, strings.Repeat("text ", 10+i*37%400))
		out[i] = testbed.HostileMessage{UID: uint32(i + 1), Flags: flags[i%len(flags)],
			InternalDate: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute), Body: []byte(body)}
	}
	return out
}

// exchangeAccount is an Exchange Online mailbox of several hundred
// messages in its special folders and one of the customer's own; INBOX
// holds one message larger than the server hands out.
func exchangeAccount(czech bool, maxSize int) (folders []testbed.HostileFolder, want map[string][]testbed.HostileMessage, big string) {
	folders = testbed.ExchangeFolders(czech)
	want = map[string][]testbed.HostileMessage{}
	counts := map[string]int{"INBOX": 180, "Sent Items": 90, "Odeslaná pošta": 90, "Deleted Items": 40,
		"Odstraněná pošta": 40, "Junk Email": 25, "Nevyžádaná pošta": 25, "Archive": 30, "Archiv": 30}
	for i := range folders {
		if n := counts[folders[i].Name]; n > 0 {
			folders[i].Messages = exchangeMessages(folders[i].Name, n)
		}
	}
	own := testbed.HostileFolder{Name: "Projekty/Alfa", UIDValidity: 99, SpecialUse: `\HasNoChildren`, Subscribed: true,
		Messages: exchangeMessages("Projekty Alfa", 60)}
	folders = append(folders, own)
	// The large one: its body is over the limit, its neighbours are not.
	inbox := &folders[0]
	m := &inbox.Messages[41]
	big = "INBOX-42"
	m.Body = append(m.Body, strings.Repeat("large attachment\r\n", maxSize/18+1)...)
	for _, f := range folders {
		want[f.Name] = f.Messages
	}
	return folders, want, big
}

// exchangeDest is where each folder of exchangeAccount must arrive on the
// testbed's Dovecot ("" for the folders that must not be created).
func exchangeDest(czech bool) map[string]string {
	if czech {
		return map[string]string{"INBOX": "INBOX", "Odeslaná pošta": "Sent", "Odstraněná pošta": "Trash",
			"Nevyžádaná pošta": "Junk", "Archiv": "Archive", "Projekty/Alfa": "Projekty/Alfa", "Kalendář": "", "Kontakty": "",
			"Úkoly": "", "Poznámky": "", "Deník": "", "Kalendář/Narozeniny": ""}
	}
	return map[string]string{"INBOX": "INBOX", "Sent Items": "Sent", "Deleted Items": "Trash", "Junk Email": "Junk",
		"Archive": "Archive", "Projekty/Alfa": "Projekty/Alfa", "Calendar": "", "Contacts": "", "Tasks": "", "Notes": "",
		"Journal": "", "Calendar/Birthdays": "", "Sync Issues/Conflicts": ""}
}

// A throttling Microsoft 365 source (throttled LOGIN, EXAMINE and FETCH,
// BAD followed by BYE, Server Unavailable, OK [THROTTLED], a cap of one
// connection, a size limit) is copied completely and exactly once: every
// message arrives once, in its folder, with its flags and date; the
// too-large one is reported alone, and calendar-like folders are not
// created. A second run copies nothing again.
func TestExchangeThrottledCopy(t *testing.T) {
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{Separator: "/"})
	const maxSize = 64 << 10
	for _, czech := range []bool{false, true} {
		t.Run(map[bool]string{false: "english", true: "czech"}[czech], func(t *testing.T) {
			folders, want, big := exchangeAccount(czech, maxSize)
			cfg := testbed.ExchangeConfig{User: srcUser, Password: srcPass, Folders: folders,
				MaxConnections: 1, CapBye: czech, MaxMessageSize: maxSize, Backoff: 40 * time.Millisecond,
				Throttles: []testbed.Throttle{
					{On: "LOGIN", Every: 3, Reply: testbed.ThrottleNo},
					{On: "SELECT", Every: 5, Reply: testbed.ThrottleBadBye},
					{On: "UID FETCH", Every: 4, Reply: testbed.ThrottleNo},
					{On: "UID FETCH", Every: 7, Reply: testbed.ThrottleBadBye},
					{On: "UID FETCH", Every: 9, Reply: testbed.ThrottleOK},
					{On: "STATUS", Every: 6, Reply: testbed.ThrottleUnavailable},
					{On: "LIST", Every: 2, Reply: testbed.ThrottleOK},
				}}
			var token func(context.Context, string) (string, error)
			if czech {
				// As Exchange Online: no password opens the mailbox, only
				// a sign-in with Microsoft (XOAUTH2).
				srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: srcUser, Lifetime: time.Hour})
				p, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
				if err != nil {
					t.Fatal(err)
				}
				access, refresh, expiry := srv.Grant()
				token = p.NewSource(&oauth2.Token{AccessToken: access, RefreshToken: refresh, Expiry: expiry},
					func(context.Context, string) error { return nil }).Token
				cfg.Password, cfg.CheckToken = "", srv.Valid
			}
			x := testbed.StartExchange(t, cfg)
			user := fmt.Sprintf("exchange%d@new.test", hostileUsers.Add(1))
			if err := dst.AddUser(user, dstPass, 0); err != nil {
				t.Fatal(err)
			}
			led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { led.Close() })
			acct := engine.Account{Source: imapconn.Endpoint{Host: "127.0.0.1", Port: x.Port, Security: imapconn.Plain},
				SourceUser: srcUser, SourcePassword: cfg.Password, SourceToken: token, Dest: endpoint(t, dst), DestUser: user, DestPassword: dstPass}
			var heard, paused atomic.Int32
			// Memory for a few dozen messages at a time: folders come in
			// several chunks, each asked for while the one before is read,
			// and the throttling answers fall on chunks with others on
			// their way.
			opt := engine.Options{TempDir: t.TempDir(), MaxThrottleWait: 5 * time.Second, Memory: engine.NewMemory(256 << 10),
				Throttled: func(until time.Time) { heard.Add(1) },
				Conn: imapconn.Options{Timeout: 10 * time.Second, ThrottleWait: 20 * time.Millisecond,
					Pause: 5 * time.Millisecond, Paused: func(time.Duration) { paused.Add(1) }}}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// Another client holds the one connection the cap allows for
			// a moment: the first logins are refused.
			other, err := net.Dial("tcp", x.Addr)
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(150*time.Millisecond, func() { other.Close() })
			rep, err := engine.Run(ctx, acct, led, opt)
			if err != nil {
				t.Fatalf("run: %v (%+v)", err, rep.Failure)
			}
			t.Logf("%d throttled answers, %d heard, %d pauses, %d logins refused by the cap, %d connections",
				x.Throttled(), heard.Load(), paused.Load(), x.Refused(), x.Opened())
			if heard.Load() == 0 || paused.Load() == 0 || x.Throttled() < 10 {
				t.Errorf("the server throttled %d times, the run heard %d and paused %d times: the test throttled too little",
					x.Throttled(), heard.Load(), paused.Load())
			}
			if x.Refused() == 0 {
				t.Error("the connection cap refused no login")
			}
			if x.MaxOpen() > 1 {
				t.Errorf("%d source connections were logged in at once; the cap is 1", x.MaxOpen())
			}
			if w := x.Writes(); len(w) > 0 {
				t.Errorf("the source received write commands: %q", w)
			}
			if rep.Status != engine.StatusWarnings {
				t.Errorf("status %s, want %s (the one message too large)", rep.Status, engine.StatusWarnings)
			}
			// The report adds up, and names the large message alone.
			total := 0
			for _, f := range rep.Folders {
				if got := f.Copied + f.AlreadyPresent + len(f.Skipped) + len(f.Failed); got != f.SourceMessages {
					t.Errorf("%q: %d on the source, %d accounted for", f.Source, f.SourceMessages, got)
				}
				total += f.SourceMessages
				if f.Source != "INBOX" && len(f.Skipped)+len(f.Failed) > 0 {
					t.Errorf("%q: %d skipped, %d failed", f.Source, len(f.Skipped), len(f.Failed))
				}
			}
			inbox := folderReport(t, rep, "INBOX")
			if len(inbox.Failed) != 1 || inbox.Failed[0].UID != 42 || !strings.Contains(inbox.Failed[0].Reason.String(), "larger than its limit") {
				t.Errorf("INBOX: %d failed (first %+v), want UID 42 alone, as too large", len(inbox.Failed), inbox.Failed[:min(1, len(inbox.Failed))])
			}
			checkExchangeDest(t, dst, user, want, exchangeDest(czech), big)

			// A second run finds everything there.
			again, err := engine.Run(ctx, acct, led, opt)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if again.Totals.Copied != 0 {
				t.Errorf("the second run copied %d messages again", again.Totals.Copied)
			}
			checkExchangeDest(t, dst, user, want, exchangeDest(czech), big)
			if total < 400 {
				t.Errorf("only %d messages in the account", total)
			}
		})
	}
}

// checkExchangeDest reads the destination back: each source folder's
// messages are in its destination folder once each (by Message-ID), with
// their flags and arrival dates; folders mapped to "" do not exist.
func checkExchangeDest(t *testing.T, dst *testbed.Dovecot, user string, want map[string][]testbed.HostileMessage,
	dest map[string]string, big string) {
	t.Helper()
	c := dst.LoginT(t, user, dstPass)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, l := range list {
		exists[l.Mailbox] = true
	}
	for src, d := range dest {
		if d == "" {
			if exists[src] {
				t.Errorf("the non-mail folder %q was created on the destination", src)
			}
			continue
		}
		sel, err := c.Select(d, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Errorf("%q -> %q: %v", src, d, err)
			continue
		}
		var msgs []*imapclient.FetchMessageBuffer
		if sel.NumMessages > 0 {
			msgs, err = c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true,
				Envelope: true}).Collect()
			if err != nil {
				t.Fatalf("fetch %q: %v", d, err)
			}
		}
		got := map[string]int{}
		byID := map[string]*testbed.HostileMessage{}
		for i := range want[src] {
			m := &want[src][i]
			byID[messageID(m.Body)] = m
		}
		for _, m := range msgs {
			id := "<" + m.Envelope.MessageID + ">"
			w, ok := byID[id]
			if !ok {
				t.Errorf("%q: a message not from %q: %s", d, src, id)
				continue
			}
			got[id]++
			if !m.InternalDate.Equal(w.InternalDate) {
				t.Errorf("%q: %s dated %v, want %v", d, id, m.InternalDate, w.InternalDate)
			}
			var flags []string
			for _, f := range m.Flags {
				if f != `\Recent` {
					flags = append(flags, string(f))
				}
			}
			wf := slices.Clone(w.Flags)
			slices.Sort(flags)
			slices.Sort(wf)
			if !slices.Equal(flags, wf) {
				t.Errorf("%q: %s has flags %q, want %q", d, id, flags, wf)
			}
		}
		for id := range byID {
			wantN := 1
			if id == "<"+big+"@contoso.test>" {
				wantN = 0
			}
			if got[id] != wantN {
				t.Errorf("%q: %s arrived %d times, want %d", d, id, got[id], wantN)
			}
		}
	}
}
