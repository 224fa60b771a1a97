package engine_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/oauth2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// gmailAccount is a Gmail account with a message of every kind: several
// labels (one nested, one with a diacritic), archived with and without a
// label, starred, important, spam, trash, sent and draft.
func gmailAccount() []testbed.GmailMessage {
	msgs := []testbed.GmailMessage{
		{Labels: []string{testbed.GmailInbox, testbed.GmailImportant, "Work/Clients", "Práce"}, Flags: []string{`\Seen`}},
		{}, // archived
		{Labels: []string{testbed.GmailStarred, testbed.GmailImportant}},
		{Labels: []string{testbed.GmailSpam}},
		{Labels: []string{testbed.GmailTrash, "Work"}, Flags: []string{`\Seen`}},
		{Labels: []string{testbed.GmailSent}, Flags: []string{`\Seen`}},
		{Labels: []string{testbed.GmailDraft}, Flags: []string{`\Draft`}},
		{Labels: []string{testbed.GmailInbox, testbed.GmailStarred}, Flags: []string{`\Seen`, `\Answered`}},
		{Labels: []string{"Work"}, Flags: []string{`\Seen`, "$Forwarded"}},
	}
	for i := range msgs {
		n := i + 1
		msgs[i].MsgID = 1<<60 + uint64(n)*1000
		msgs[i].InternalDate = time.Date(2021, 5, n, 8, 30, 0, 0, time.FixedZone("", 7200))
		msgs[i].Body = fmt.Appendf(nil, "Message-ID: <gm-%d@gmail.test>\r\nDate: Mon, %d May 2021 08:30:00 +0200\r\n"+
			"From: Jana <jana@gmail.test>\r\nTo: petr@example.test\r\nSubject: Zpráva %d\r\n\r\n%s\r\n",
			n, n, n, strings.Repeat("text ", 10*n))
	}
	return msgs
}

// gmailCopy is what a destination folder should hold of one message.
type gmailCopy struct {
	msg   int // 1-based, in gmailAccount
	flags string
}

// gmailWant is the destination of gmailAccount copied once per place, on
// a server with separator sep.
func gmailWant(sep string) map[string][]gmailCopy {
	return map[string][]gmailCopy{
		"INBOX":                  {{1, `\seen`}, {8, `\answered \flagged \seen`}},
		"Work" + sep + "Clients": {{1, `\seen`}},
		"Práce":                  {{1, `\seen`}},
		"Work":                   {{9, `$forwarded \seen`}},
		"Archive":                {{2, ``}, {3, `\flagged`}},
		"Junk":                   {{4, ``}},
		"Trash":                  {{5, `\seen`}},
		"Sent":                   {{6, `\seen`}},
		"Drafts":                 {{7, `\draft`}},
	}
}

// gmailRun migrates a Gmail server's account into a destination user.
type gmailRun struct {
	t    *testing.T
	g    *testbed.Gmail
	dst  *testbed.Dovecot
	user string
	acct engine.Account
	led  *store.DB
}

func newGmailRun(t *testing.T, g *testbed.Gmail, dst *testbed.Dovecot, user string) *gmailRun {
	t.Helper()
	if err := dst.AddUser(user, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return &gmailRun{t: t, g: g, dst: dst, user: user, led: led, acct: engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: g.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourcePassword: srcPass,
		Dest: endpoint(t, dst), DestUser: user, DestPassword: dstPass}}
}

func (r *gmailRun) run(opt engine.Options) *engine.Report {
	r.t.Helper()
	opt.Conn.Timeout = 20 * time.Second
	rep, err := engine.Run(context.Background(), r.acct, r.led, opt)
	if err != nil || rep.Status != engine.StatusDone {
		r.t.Fatalf("run: %v, status %s (%+v)", err, rep.Status, rep.Failure)
	}
	if w := r.g.Writes(); len(w) > 0 {
		r.t.Fatalf("the source was written to: %q", w)
	}
	return rep
}

// held reads the destination back: each folder's messages (by their
// number in gmailAccount) with their flags, sorted; it checks every
// message's internal date on the way.
func (r *gmailRun) held() map[string][]gmailCopy {
	r.t.Helper()
	c := r.dst.LoginT(r.t, r.user, dstPass)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]gmailCopy{}
	for _, l := range list {
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			r.t.Fatal(err)
		}
		out[l.Mailbox] = nil
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}}}).Collect()
		if err != nil {
			r.t.Fatal(err)
		}
		for _, m := range msgs {
			var n int
			for _, b := range m.BodySection {
				fmt.Sscanf(strings.TrimSpace(string(b.Bytes)), "Message-ID: <gm-%d@gmail.test>", &n)
			}
			if want := time.Date(2021, 5, n, 8, 30, 0, 0, time.UTC).Add(-2 * time.Hour); !m.InternalDate.Equal(want) {
				r.t.Errorf("%s: message %d dated %v, want %v", l.Mailbox, n, m.InternalDate, want)
			}
			var flags []string
			for _, f := range m.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					flags = append(flags, strings.ToLower(string(f)))
				}
			}
			slices.Sort(flags)
			out[l.Mailbox] = append(out[l.Mailbox], gmailCopy{n, strings.Join(flags, " ")})
		}
		slices.SortFunc(out[l.Mailbox], func(a, b gmailCopy) int { return a.msg - b.msg })
	}
	return out
}

func (r *gmailRun) wantHeld(want map[string][]gmailCopy) {
	r.t.Helper()
	if got := r.held(); !maps.EqualFunc(got, want, slices.Equal) {
		r.t.Errorf("destination holds\n%v\nwant\n%v", got, want)
	}
}

// A Gmail account lands once per place its messages were in: INBOX, a
// folder per label (nested ones as subfolders with the destination's
// separator), Sent, Drafts, Junk, Trash and Archive (archived mail),
// \Starred as \Flagged, nothing of All Mail, Starred or Important as
// folders; whatever the language of its [Gmail] folders. A re-run copies
// nothing.
func TestGmailSource(t *testing.T) {
	slash := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	dot := testbed.StartDovecotT(t, testbed.DovecotOptions{Separator: "."})
	for i, c := range []struct {
		locale string
		dst    *testbed.Dovecot
		sep    string
		sent   string // the source folder the report names for Sent
		trash  string
	}{
		{"", slash, "/", "[Gmail]/Sent Mail", "[Gmail]/Trash"},
		{"cs", slash, "/", "[Gmail]/Odeslaná pošta", "[Gmail]/Koš"},
		{"en-GB", dot, ".", "[Google Mail]/Sent Mail", "[Google Mail]/Bin"},
	} {
		name := c.locale
		if name == "" {
			name = "en"
		}
		t.Run(name, func(t *testing.T) {
			g := testbed.StartGmail(t, testbed.GmailConfig{User: srcUser, Password: srcPass, Locale: c.locale, Messages: gmailAccount()})
			r := newGmailRun(t, g, c.dst, fmt.Sprintf("gmail%d@new.test", i))
			// The pre-flight check lists the same plan, copying nothing.
			chk, err := engine.Check(context.Background(), r.acct, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			planned := map[string]int{}
			var size int64
			for _, f := range chk.Folders {
				planned[f.Dest] += f.SourceMessages
			}
			want := map[string]int{}
			for f, msgs := range gmailWant(c.sep) {
				want[f] = len(msgs)
				// A message of two labels is counted (and copied) twice.
				for _, m := range msgs {
					size += int64(len(gmailAccount()[m.msg-1].Body))
				}
			}
			if !maps.Equal(planned, want) || chk.SourceBytes != size {
				t.Errorf("check plans %v and %d bytes, want %v", planned, chk.SourceBytes, want)
			}
			rep := r.run(engine.Options{})
			r.wantHeld(gmailWant(c.sep))
			if rep.Totals.Copied != 11 || rep.Totals.SourceMessages != 11 {
				t.Errorf("report: %+v, want 11 copies", rep.Totals)
			}
			sources := map[string]string{}
			for _, f := range rep.Folders {
				sources[f.Dest] = f.Source
			}
			if sources["Sent"] != c.sent || sources["Trash"] != c.trash || sources["Work"+c.sep+"Clients"] != "Work/Clients" {
				t.Errorf("report names the sources %v", sources)
			}
			checkReportAddsUp(t, "first run", rep)

			rep = r.run(engine.Options{})
			if rep.Totals.Copied != 0 || rep.Totals.AlreadyPresent != 11 {
				t.Errorf("re-run: %+v, want nothing copied", rep.Totals)
			}
			r.wantHeld(gmailWant(c.sep))
		})
	}
}

// Labels changed between runs: a message that gained one is copied into
// its folder and nothing else is; the copy of a label a message lost
// stays. A starred message's flag follows.
func TestGmailLabelsChange(t *testing.T) {
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	g := testbed.StartGmail(t, testbed.GmailConfig{User: srcUser, Password: srcPass, Messages: gmailAccount()})
	r := newGmailRun(t, g, dst, "labels@new.test")
	r.run(engine.Options{})
	msgs := gmailAccount()
	g.SetLabels(msgs[8].MsgID, "Work", "Práce")                    // 9 gains Práce
	g.SetLabels(msgs[0].MsgID, testbed.GmailInbox, "Work/Clients") // 1 loses Práce and Important
	g.SetLabels(msgs[7].MsgID, testbed.GmailInbox)                 // 8 is no longer starred
	rep := r.run(engine.Options{})
	if rep.Totals.Copied != 1 || rep.Totals.FlagsUpdated != 1 {
		t.Errorf("re-run: %+v, want 1 copy and 1 flag change", rep.Totals)
	}
	want := gmailWant("/")
	want["Práce"] = []gmailCopy{{1, `\seen`}, {9, `$forwarded \seen`}}
	want["INBOX"][1].flags = `\answered \seen`
	r.wantHeld(want)
	if rep := r.run(engine.Options{}); rep.Totals.Copied != 0 || rep.Totals.FlagsUpdated != 0 {
		t.Errorf("third run: %+v, want nothing done", rep.Totals)
	}
}

// With GmailOnce every message lands once, in its first place, its other
// labels as keywords; a re-run copies nothing, even after a label change.
func TestGmailOnce(t *testing.T) {
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	g := testbed.StartGmail(t, testbed.GmailConfig{User: srcUser, Password: srcPass, Messages: gmailAccount()})
	r := newGmailRun(t, g, dst, "once@new.test")
	rep := r.run(engine.Options{GmailOnce: true})
	want := map[string][]gmailCopy{
		"INBOX":        {{1, `\seen pr&aoe-ce work/clients`}, {8, `\answered \flagged \seen`}},
		"Work":         {{9, `$forwarded \seen`}},
		"Work/Clients": nil,
		"Práce":        nil,
		"Archive":      {{2, ``}, {3, `\flagged`}},
		"Junk":         {{4, ``}},
		"Trash":        {{5, `\seen work`}},
		"Sent":         {{6, `\seen`}},
		"Drafts":       {{7, `\draft`}},
	}
	r.wantHeld(want)
	if rep.Totals.Copied != 9 {
		t.Errorf("report: %+v, want 9 copies", rep.Totals)
	}
	msgs := gmailAccount()
	g.SetLabels(msgs[8].MsgID, testbed.GmailInbox, "Work") // 9 now in INBOX too: it stays in Work
	if rep := r.run(engine.Options{GmailOnce: true}); rep.Totals.Copied != 0 {
		t.Errorf("re-run: %+v, want nothing copied", rep.Totals)
	}
	r.wantHeld(want)
}

// Into a mailbox that has only INBOX, the special places get folders
// named as the customer knew them in Gmail (in Czech here), and no
// [Gmail] folder is made.
func TestGmailIntoBareDestination(t *testing.T) {
	g := testbed.StartGmail(t, testbed.GmailConfig{User: srcUser, Password: srcPass, Locale: "cs", Messages: gmailAccount()})
	dst := testbed.StartHostile(t, testbed.HostileConfig{User: dstUser, Password: dstPass,
		Folders: []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 21}}, Caps: []string{"UIDPLUS"}})
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	acct := engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: g.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourcePassword: srcPass,
		Dest: imapconn.Endpoint{Host: "127.0.0.1", Port: dst.Port, Security: imapconn.Plain}, DestUser: dstUser, DestPassword: dstPass}
	rep, err := engine.Run(context.Background(), acct, led, engine.Options{Conn: imapconn.Options{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, rep.Failure)
	}
	var created []string
	for _, c := range dst.Commands() {
		if name, ok := strings.CutPrefix(c, "CREATE "); ok {
			created = append(created, name)
		}
	}
	slices.Sort(created)
	want := []string{`"Archive"`, `"Ko&AWE-"`, `"Koncepty"`, `"Odeslan&AOE- po&AWE-ta"`, `"Pr&AOE-ce"`, `"Spam"`, `"Work"`, `"Work/Clients"`}
	if !slices.Equal(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
	for folder, n := range map[string]int{"INBOX": 2, "Work": 1, "Work/Clients": 1, "Práce": 1, "Archive": 2,
		"Odeslaná pošta": 1, "Koncepty": 1, "Spam": 1, "Koš": 1} {
		if got := len(dst.Messages(folder)); got != n {
			t.Errorf("%s holds %d messages, want %d", folder, got, n)
		}
	}
}

// A Gmail account signed in to with Google (XOAUTH2 / OAUTHBEARER, no
// password accepted) lands as with a password.
func TestGmailSignedInWithGoogle(t *testing.T) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: srcUser, Lifetime: time.Hour})
	g := testbed.StartGmail(t, testbed.GmailConfig{User: srcUser, Messages: gmailAccount(), CheckToken: srv.Valid})
	dst := testbed.StartHostile(t, testbed.HostileConfig{User: dstUser, Password: dstPass,
		Folders: []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 21}}, Caps: []string{"UIDPLUS"}})
	p, err := oauth.New(oauth.Google, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	access, refresh, expiry := srv.Grant()
	tokens := p.NewSource(&oauth2.Token{AccessToken: access, RefreshToken: refresh, Expiry: expiry},
		func(context.Context, string) error { return nil })
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	acct := engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: g.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourceToken: tokens.Token,
		Dest: imapconn.Endpoint{Host: "127.0.0.1", Port: dst.Port, Security: imapconn.Plain}, DestUser: dstUser, DestPassword: dstPass}
	var log strings.Builder
	rep, err := engine.Run(context.Background(), acct, led, engine.Options{Conn: imapconn.Options{Timeout: 5 * time.Second},
		Logf: func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }})
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, rep.Failure)
	}
	for folder, n := range map[string]int{"INBOX": 2, "Work": 1, "Work/Clients": 1, "Práce": 1, "Archive": 2,
		"Sent Mail": 1, "Drafts": 1, "Spam": 1, "Trash": 1} {
		if got := len(dst.Messages(folder)); got != n {
			t.Errorf("%s holds %d messages, want %d", folder, got, n)
		}
	}
	if strings.Contains(log.String(), access) || strings.Contains(log.String(), refresh) {
		t.Error("a token is in the log")
	}
}
