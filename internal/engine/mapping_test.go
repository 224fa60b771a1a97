package engine

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
)

func mbox(name string, attrs ...imap.MailboxAttr) imapconn.Mailbox {
	return imapconn.Mailbox{Name: name, Attrs: attrs, Subscribed: true}
}

func TestPlanFolders(t *testing.T) {
	dovecotDst := Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
		mbox("INBOX"), mbox("Sent", imap.MailboxAttrSent), mbox("Drafts", imap.MailboxAttrDrafts),
		mbox("Trash", imap.MailboxAttrTrash), mbox("Junk", imap.MailboxAttrJunk),
		mbox("Archive", imap.MailboxAttrArchive)}}
	courierDst := Layout{Prefix: "INBOX.", Delim: '.', Mailboxes: []imapconn.Mailbox{
		mbox("INBOX"), mbox("INBOX.Sent"), mbox("INBOX.Trash")}}
	tests := []struct {
		name string
		src  Layout
		dst  Layout
		want map[string]string
	}{
		{"czech names onto special-use folders", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
			mbox("INBOX"), mbox("Odeslaná pošta"), mbox("Koš"), mbox("Koncepty"), mbox("Nevyžádaná pošta"),
			mbox("Archiv"), mbox("Archiv/2023"), mbox("Projekty/Klient A")}}, dovecotDst,
			map[string]string{"INBOX": "INBOX", "Odeslaná pošta": "Sent", "Koš": "Trash", "Koncepty": "Drafts",
				"Nevyžádaná pošta": "Junk", "Archiv": "Archive", "Archiv/2023": "Archive/2023",
				"Projekty/Klient A": "Projekty/Klient A"}},
		{"german and slovak names", Layout{Delim: '.', Mailboxes: []imapconn.Mailbox{
			mbox("Gesendete Elemente"), mbox("Papierkorb"), mbox("Odoslané"), mbox("Entwürfe")}}, dovecotDst,
			map[string]string{"Gesendete Elemente": "Sent", "Papierkorb": "Trash", "Odoslané": "Sent", "Entwürfe": "Drafts"}},
		{"special-use attribute beats the name", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
			mbox("Poslané", imap.MailboxAttrSent), mbox("Sent Items/Old")}}, dovecotDst,
			map[string]string{"Poslané": "Sent", "Sent Items/Old": "Sent Items/Old"}},
		{"subfolder of a special folder follows it", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
			mbox("Odeslaná pošta"), mbox("Odeslaná pošta/2019")}}, dovecotDst,
			map[string]string{"Odeslaná pošta/2019": "Sent/2019"}},
		{"slash server to INBOX. dot server", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
			mbox("INBOX"), mbox("INBOX/Faktury"), mbox("Projekty/v1.2"), mbox("Sent", imap.MailboxAttrSent)}}, courierDst,
			map[string]string{"INBOX": "INBOX", "INBOX/Faktury": "INBOX.Faktury", "Projekty/v1.2": "INBOX.Projekty.v1․2",
				"Sent": "INBOX.Sent"}},
		{"INBOX. dot server to slash server", Layout{Prefix: "INBOX.", Delim: '.', Mailboxes: []imapconn.Mailbox{
			mbox("INBOX"), mbox("INBOX.Klienti"), mbox("INBOX.Klienti.A/B"), mbox("INBOX.Trash")}}, dovecotDst,
			map[string]string{"INBOX": "INBOX", "INBOX.Klienti": "Klienti", "INBOX.Klienti.A/B": "Klienti/A∕B",
				"INBOX.Trash": "Trash"}},
		{"noselect parents are not copied", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
			mbox("Parent", imap.MailboxAttrNoSelect), mbox("Parent/Child")}}, dovecotDst,
			map[string]string{"Parent/Child": "Parent/Child"}},
		{"lower-case inbox", Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{mbox("Inbox"), mbox("Inbox/Sub")}}, dovecotDst,
			map[string]string{"Inbox": "INBOX", "Inbox/Sub": "INBOX/Sub"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, p := range PlanFolders(tc.src, tc.dst, nil) {
				got[p.Source] = p.Dest
			}
			if _, ok := got["Parent"]; ok {
				t.Errorf("a \\Noselect folder was planned")
			}
			for src, want := range tc.want {
				if got[src] != want {
					t.Errorf("%q -> %q, want %q", src, got[src], want)
				}
			}
		})
	}
}

// Exchange's folders, as Exchange Online lists them in an English and a
// Czech mailbox (special-use attributes on some, names only on others),
// land on the hosting's special folders; its calendar, contacts, tasks,
// notes and sync-log folders are marked as not mail, with their subfolders.
func TestPlanFoldersExchange(t *testing.T) {
	dst := Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{
		mbox("INBOX"), mbox("Sent", imap.MailboxAttrSent), mbox("Drafts", imap.MailboxAttrDrafts),
		mbox("Trash", imap.MailboxAttrTrash), mbox("Spam", imap.MailboxAttrJunk)}}
	for _, tc := range []struct {
		name    string
		src     []imapconn.Mailbox
		want    map[string]string
		nonMail []string
	}{
		{"english", []imapconn.Mailbox{mbox("INBOX"), mbox("Sent Items", imap.MailboxAttrSent), mbox("Deleted Items", imap.MailboxAttrTrash),
			mbox("Junk Email", imap.MailboxAttrJunk), mbox("Drafts", imap.MailboxAttrDrafts), mbox("Archive", imap.MailboxAttrArchive),
			mbox("Outbox"), mbox("Conversation History"), mbox("Calendar"), mbox("Calendar/Birthdays"), mbox("Contacts"),
			mbox("Tasks"), mbox("Notes"), mbox("Journal"), mbox("Sync Issues", imap.MailboxAttrNoSelect), mbox("Sync Issues/Conflicts")},
			map[string]string{"INBOX": "INBOX", "Sent Items": "Sent", "Deleted Items": "Trash", "Junk Email": "Spam",
				"Drafts": "Drafts", "Archive": "Archive", "Outbox": "Outbox", "Conversation History": "Conversation History"},
			[]string{"Calendar", "Calendar/Birthdays", "Contacts", "Tasks", "Notes", "Journal", "Sync Issues/Conflicts"}},
		{"czech, names only", []imapconn.Mailbox{mbox("INBOX"), mbox("Odeslaná pošta"), mbox("Odstraněná pošta"),
			mbox("Nevyžádaná pošta"), mbox("Koncepty"), mbox("Archiv"), mbox("Pošta k odeslání"), mbox("Kalendář"),
			mbox("Kalendář/Narozeniny"), mbox("Kontakty"), mbox("Úkoly"), mbox("Poznámky"), mbox("Deník"),
			mbox("Problémy se synchronizací/Místní selhání")},
			map[string]string{"Odeslaná pošta": "Sent", "Odstraněná pošta": "Trash", "Nevyžádaná pošta": "Spam",
				"Koncepty": "Drafts", "Archiv": "Archiv", "Pošta k odeslání": "Pošta k odeslání"},
			[]string{"Kalendář", "Kalendář/Narozeniny", "Kontakty", "Úkoly", "Poznámky", "Deník", "Problémy se synchronizací/Místní selhání"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, nonMail := map[string]string{}, map[string]bool{}
			for _, p := range PlanFolders(Layout{Delim: '/', Mailboxes: tc.src}, dst, nil) {
				got[p.Source], nonMail[p.Source] = p.Dest, p.NonMail
			}
			for src, want := range tc.want {
				if got[src] != want || nonMail[src] {
					t.Errorf("%q -> %q (not mail: %v), want %q, mail", src, got[src], nonMail[src], want)
				}
			}
			for _, src := range tc.nonMail {
				if !nonMail[src] {
					t.Errorf("%q is not marked as a non-mail folder", src)
				}
			}
			if _, ok := got["Sync Issues"]; ok {
				t.Error("the \\NoSelect Sync Issues was planned")
			}
		})
	}
}

func TestPlanFoldersNotesRename(t *testing.T) {
	src := Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{mbox("Projekty/v1.2")}}
	dst := Layout{Delim: '.', Mailboxes: []imapconn.Mailbox{mbox("INBOX")}}
	plans := PlanFolders(src, dst, nil)
	if len(plans) != 1 || plans[0].Note.IsZero() {
		t.Fatalf("plans = %+v, want one with a note about the renamed folder", plans)
	}
}

// TestPlanFoldersStable is the Junk/Spam case of servers without
// SPECIAL-USE: whatever the first run created, a later run (with or without
// the ledger) must send every source folder where it went before.
func TestPlanFoldersStable(t *testing.T) {
	src := Layout{Delim: '/', Mailboxes: []imapconn.Mailbox{mbox("INBOX"), mbox("Spam"), mbox("Junk", imap.MailboxAttrJunk)}}
	courier := func(names ...string) Layout {
		l := Layout{Prefix: "INBOX.", Delim: '.', Mailboxes: []imapconn.Mailbox{mbox("INBOX")}}
		for _, n := range names {
			l.Mailboxes = append(l.Mailboxes, mbox(n))
		}
		return l
	}
	tests := []struct {
		name       string
		dst        Layout
		remembered map[string]string
		want       map[string]string
	}{
		{"first run makes one junk folder for both", courier(), nil,
			map[string]string{"Junk": "INBOX.Junk", "Spam": "INBOX.Junk"}},
		{"re-run finds it by name", courier("INBOX.Junk"), nil,
			map[string]string{"Junk": "INBOX.Junk", "Spam": "INBOX.Junk"}},
		{"folders of an earlier copy keep their mail, in any LIST order", courier("INBOX.Spam", "INBOX.Junk"), nil,
			map[string]string{"Junk": "INBOX.Junk", "Spam": "INBOX.Spam"}},
		{"same, other order", courier("INBOX.Junk", "INBOX.Spam"), nil,
			map[string]string{"Junk": "INBOX.Junk", "Spam": "INBOX.Spam"}},
		{"the ledger's plan wins", courier("INBOX.Junk"), map[string]string{"Spam": "INBOX.Spam"},
			map[string]string{"Junk": "INBOX.Junk", "Spam": "INBOX.Spam"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			var uses []imap.MailboxAttr
			for _, p := range PlanFolders(src, tc.dst, tc.remembered) {
				got[p.Source] = p.Dest
				if p.Use != "" {
					uses = append(uses, p.Use)
				}
			}
			for s, d := range tc.want {
				if got[s] != d {
					t.Errorf("%s -> %q, want %q", s, got[s], d)
				}
			}
			if tc.name == "first run makes one junk folder for both" && len(uses) == 0 {
				t.Errorf("the new junk folder is not created with \\Junk")
			}
		})
	}
}

// A level that holds the destination's delimiter stays one level, and
// turns into readable text, whatever the delimiter.
func TestNameWithAnyDelimiter(t *testing.T) {
	for _, d := range []rune{'/', '.', '\\', ':', '|', '-', '#'} {
		l := Layout{Delim: d}
		name, renamed := l.name([]string{"Projekt" + string(d) + " A"})
		if !renamed || strings.ContainsRune(name, d) || strings.ContainsRune(name, 0) || !utf8.ValidString(name) {
			t.Errorf("delimiter %q: %q (renamed %v)", d, name, renamed)
		}
	}
}
