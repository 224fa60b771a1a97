package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
)

// The delimiters servers use, and one no server should (a name's
// characters come from the server, so the tests take any).
var fuzzDelims = []rune{'/', '.', '\\', 0}

func fuzzLayout(prefix string, delim uint8) Layout {
	return Layout{Prefix: prefix, Delim: fuzzDelims[int(delim)%len(fuzzDelims)]}
}

// A name read from a server splits into levels that join back into a name
// that splits the same way; levels that hold the delimiter are kept one
// level each by the look-alike character.
func FuzzFolderNames(f *testing.F) {
	for _, s := range []struct {
		name, prefix string
		delim        uint8
	}{
		{"INBOX", "", 0}, {"inbox", "INBOX.", 1}, {"INBOX.Sent", "INBOX.", 1}, {"Projekty/Klient A", "", 0},
		{"INBOX/Archiv/2023", "", 0}, {"v1.2", "", 0}, {"Koš", "INBOX.", 1}, {"a\\b", "", 2}, {"", "", 0},
		{"INBOX.", "INBOX.", 1}, {"a//b", "", 0}, {"Smlouvy & faktury", "", 3}, {"", "0", 1},
	} {
		f.Add(s.name, s.prefix, s.delim)
	}
	f.Fuzz(func(t *testing.T, name, prefix string, delim uint8) {
		l := fuzzLayout(prefix, delim)
		p := l.path(name)
		if len(p) == 0 {
			t.Fatalf("path(%q) is empty", name)
		}
		joined, renamed := l.name(p)
		if renamed {
			t.Fatalf("%+v: the levels %q of %q hold the delimiter", l, p, name)
		}
		// path(name(path(x))) == path(x), except that on a server whose
		// namespace is INBOX. a top-level folder named INBOX ("INBOX.INBOX")
		// cannot be told from INBOX's children, and that an empty level
		// (a name "" or "a//b", which no server should list) may not
		// survive the prefix: "" becomes the prefix itself.
		if again := l.path(joined); !slices.Equal(again, p) && !(strings.EqualFold(p[0], "INBOX") && len(p) > 1) && !slices.Contains(p, "") {
			t.Fatalf("%+v: %q -> %q -> %q -> %q", l, name, p, joined, again)
		}

		// A level that holds the delimiter stays one level.
		levels := strings.Split(name, "\n")
		if l.Delim == 0 || l.Prefix != "" || slices.Contains(levels, "") || strings.EqualFold(levels[0], "INBOX") {
			return
		}
		joined, _ = l.name(levels)
		if got := l.path(joined); len(got) != len(levels) {
			t.Fatalf("%+v: levels %q -> %q -> %q", l, levels, joined, got)
		}
	})
}

// Whatever folders a server lists, every selectable one is planned once,
// onto a destination name, and the plan does not depend on the order of
// the listing.
func FuzzPlanFolders(f *testing.F) {
	f.Add("INBOX\nOdeslaná pošta\nKoš\nArchiv\nArchiv/2023\nProjekty/Klient A", "", uint8(0), "", uint8(0), uint8(0))
	f.Add("INBOX\nINBOX.Sent\nINBOX.Trash\nINBOX.v1/2", "INBOX.", uint8(1), "", uint8(0), uint8(5))
	f.Add("Sent\nSent Items\nGesendet\nSent/x\nSent Items/x", "", uint8(0), "INBOX.", uint8(1), uint8(3))
	f.Add("INBOX\ninbox\nINBOX/INBOX\n\n/", "", uint8(0), "", uint8(3), uint8(255))
	f.Fuzz(func(t *testing.T, names, srcPrefix string, srcDelim uint8, dstPrefix string, dstDelim uint8, attrs uint8) {
		src := fuzzLayout(srcPrefix, srcDelim)
		dst := fuzzLayout(dstPrefix, dstDelim)
		dst.Mailboxes = []imapconn.Mailbox{mbox("INBOX"), mbox("Sent", imap.MailboxAttrSent), mbox("Trash")}
		special := []imap.MailboxAttr{imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrNoSelect}
		seen := map[string]bool{}
		selectable := 0
		for i, n := range strings.Split(names, "\n") {
			if seen[n] || i > 30 {
				continue
			}
			seen[n] = true
			m := mbox(n)
			if attrs>>(i%8)&1 == 1 {
				m.Attrs = []imap.MailboxAttr{special[i%len(special)]}
			}
			if !m.NoSelect() {
				selectable++
			}
			src.Mailboxes = append(src.Mailboxes, m)
		}
		plans := PlanFolders(src, dst, nil)
		if len(plans) != selectable {
			t.Fatalf("%d plans for %d selectable folders: %+v", len(plans), selectable, plans)
		}
		planned := map[string]bool{}
		for _, p := range plans {
			if planned[p.Source] {
				t.Fatalf("%q planned twice", p.Source)
			}
			planned[p.Source] = true
			if p.Dest == "" && p.Source != "" {
				t.Fatalf("%q planned onto no name: %+v", p.Source, plans)
			}
		}
		reversed := src
		reversed.Mailboxes = slices.Clone(src.Mailboxes)
		slices.Reverse(reversed.Mailboxes)
		again := PlanFolders(reversed, dst, nil)
		dests := func(ps []FolderPlan) map[string]string {
			m := map[string]string{}
			for _, p := range ps {
				m[p.Source] = p.Dest
			}
			return m
		}
		a, b := dests(plans), dests(again)
		for s, d := range a {
			if b[s] != d {
				t.Fatalf("%q goes to %q or %q by the order of the listing", s, d, b[s])
			}
		}
	})
}
