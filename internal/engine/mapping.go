package engine

import (
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

// Role is a special-use folder role (RFC 6154).
type Role string

// The roles that are mapped onto the destination's own folders.
const (
	RoleNone    Role = ""
	RoleSent    Role = "sent"
	RoleDrafts  Role = "drafts"
	RoleTrash   Role = "trash"
	RoleJunk    Role = "junk"
	RoleArchive Role = "archive"
)

var roleAttrs = map[imap.MailboxAttr]Role{
	imap.MailboxAttrSent: RoleSent, imap.MailboxAttrDrafts: RoleDrafts,
	imap.MailboxAttrTrash: RoleTrash, imap.MailboxAttrJunk: RoleJunk,
	imap.MailboxAttrArchive: RoleArchive,
}

// roleNames recognises special folders on servers without SPECIAL-USE, by
// the names mail clients give them in English, Czech, Slovak and German.
// Compared case-insensitively, diacritics exact. roleRank is a name's place
// in its role's list: the most usual name first.
var roleNames, roleRank = map[string]Role{}, map[string]int{}

func init() {
	for role, names := range map[Role][]string{
		RoleSent: {"Sent", "Sent Items", "Sent Messages", "Sent Mail", "Outbox Sent",
			"Odeslaná pošta", "Odeslané", "Odeslaná", "Odeslané zprávy",
			"Odoslaná pošta", "Odoslané", "Odoslané správy",
			"Gesendet", "Gesendete Elemente", "Gesendete Objekte", "Gesendete Nachrichten"},
		RoleDrafts: {"Drafts", "Draft", "Koncepty", "Rozepsané", "Návrhy", "Rozpísané",
			"Entwürfe", "Entwurf"},
		RoleTrash: {"Trash", "Deleted", "Deleted Items", "Deleted Messages", "Bin",
			"Koš", "Odstraněná pošta", "Odstraněné", "Smazané", "Odstránená pošta",
			"Odstránené", "Kôš", "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte"},
		RoleJunk: {"Junk", "Junk E-mail", "Junk Email", "Junk Mail", "Spam", "Bulk Mail",
			"Nevyžádaná pošta", "Nevyžádaná", "Nevyžiadaná pošta", "Nevyžiadaná",
			"Junk-E-Mail", "Unerwünscht"},
		RoleArchive: {"Archive", "Archives", "Archiv", "Archív", "Archivy"},
	} {
		for i, n := range names {
			roleNames[strings.ToLower(n)] = role
			roleRank[strings.ToLower(n)] = i
		}
	}
}

// nonMailNames are the folders Exchange (and Outlook over IMAP) lists for
// its calendars, contacts, tasks, notes, journal and synchronisation
// logs, in the languages we serve and their neighbours'. They hold no mail
// over IMAP, so they are not created empty on the destination; with
// messages in them they are copied as any folder. Their subfolders
// (Calendar/Birthdays) count as theirs.
var nonMailNames = map[string]bool{}

func init() {
	for _, n := range []string{
		"Calendar", "Contacts", "Tasks", "Notes", "Journal", "Sync Issues", "Sync Issues (This computer only)",
		"Kalendář", "Kontakty", "Úkoly", "Poznámky", "Deník", "Problémy se synchronizací",
		"Problémy se synchronizací (pouze tento počítač)",
		"Kalendár", "Úlohy", "Denník", "Problémy so synchronizáciou",
		"Kalender", "Kontakte", "Aufgaben", "Notizen", "Synchronisierungsprobleme",
	} {
		nonMailNames[strings.ToLower(n)] = true
	}
}

// nonMail tells a folder that is, or sits under, one of nonMailNames at
// the top level.
func (s Layout) nonMail(name string) bool {
	p := s.path(name)
	return len(p) > 0 && nonMailNames[strings.ToLower(p[0])]
}

// Layout describes one server's folder layout.
type Layout struct {
	Prefix    string // personal namespace prefix, e.g. "INBOX."
	Delim     rune   // hierarchy delimiter; 0 for a flat server
	Mailboxes []imapconn.Mailbox
}

// FolderPlan maps one source folder onto the destination.
type FolderPlan struct {
	Source     string
	Dest       string
	Role       Role
	Subscribed bool
	// Use is the SPECIAL-USE attribute to create the destination folder
	// with, when the plan made a new folder for a role.
	Use imap.MailboxAttr
	// Note explains a name change the customer would not expect, such as a
	// separator character inside a folder name.
	Note i18n.Message
	// NonMail marks a calendar, contacts, tasks or notes folder
	// (Exchange's): not created on the destination while it is empty.
	NonMail bool
}

// lookalike replaces a hierarchy delimiter that appears inside a folder
// name on the other side, so "v1.2" stays one folder on a "." server; a
// server with a rarer delimiter gets the fallback.
var lookalike = map[rune]rune{'/': '∕', '.': '․', '\\': '⧵', ':': '꞉', '|': '│', '-': '‐'}

// lookalikeOf is the character that stands for delimiter d inside a name.
func lookalikeOf(d rune) rune {
	if r, ok := lookalike[d]; ok {
		return r
	}
	return '_'
}

// path splits a mailbox name into its hierarchy levels, without the
// personal namespace prefix. INBOX is always "INBOX".
func (s Layout) path(name string) []string {
	if strings.EqualFold(name, "INBOX") {
		return []string{"INBOX"}
	}
	if s.Prefix != "" && strings.HasPrefix(name, s.Prefix) && len(name) > len(s.Prefix) {
		name = name[len(s.Prefix):]
	}
	var parts []string
	if s.Delim == 0 {
		parts = []string{name}
	} else {
		parts = strings.Split(name, string(s.Delim))
	}
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0] = "INBOX"
	}
	return parts
}

// name joins hierarchy levels into a mailbox name on this side, replacing
// delimiter characters inside a level; renamed reports whether it had to.
func (s Layout) name(path []string) (name string, renamed bool) {
	parts := make([]string, len(path))
	for i, p := range path {
		if s.Delim != 0 && strings.ContainsRune(p, s.Delim) {
			p = strings.ReplaceAll(p, string(s.Delim), string(lookalikeOf(s.Delim)))
			renamed = true
		}
		parts[i] = p
	}
	if parts[0] == "INBOX" {
		if len(parts) == 1 {
			return "INBOX", renamed
		}
		return "INBOX" + string(s.Delim) + strings.Join(parts[1:], string(s.Delim)), renamed
	}
	d := string(s.Delim)
	if s.Delim == 0 {
		d = "/"
	}
	return s.Prefix + strings.Join(parts, d), renamed
}

// roleOf returns the role of a mailbox: its SPECIAL-USE attribute, or its
// name when it sits at the top level (or directly under INBOX).
func (s Layout) roleOf(m imapconn.Mailbox) Role {
	for attr, r := range roleAttrs {
		if m.HasAttr(attr) {
			return r
		}
	}
	p := s.path(m.Name)
	if len(p) == 2 && p[0] == "INBOX" {
		p = p[1:]
	}
	if len(p) == 1 {
		return roleNames[strings.ToLower(p[0])]
	}
	return RoleNone
}

// roleFolders returns the destination's folder for each role and whether
// it carries the SPECIAL-USE attribute: one marked with SPECIAL-USE wins
// over one recognised by name; among names, the most usual one (the order
// of the name table), then the first in alphabetical order, so that the
// choice does not depend on the server's LIST order.
func (s Layout) roleFolders() (folders map[Role]string, byAttr map[Role]bool) {
	folders, byAttr = map[Role]string{}, map[Role]bool{}
	rank := func(name string) (int, string) {
		p := s.path(name)
		return roleRank[strings.ToLower(p[len(p)-1])], name
	}
	better := func(a, b string) bool {
		ra, na := rank(a)
		rb, nb := rank(b)
		return ra < rb || (ra == rb && na < nb)
	}
	for _, m := range s.Mailboxes {
		if m.NoSelect() {
			continue
		}
		for attr, r := range roleAttrs {
			if m.HasAttr(attr) && (!byAttr[r] || better(m.Name, folders[r])) {
				folders[r], byAttr[r] = m.Name, true
			}
		}
		if r := s.roleOf(m); r != RoleNone && !byAttr[r] {
			if cur, ok := folders[r]; !ok || better(m.Name, cur) {
				folders[r] = m.Name
			}
		}
	}
	return folders, byAttr
}

// PlanFolders maps every selectable source folder onto a destination name.
// A folder the ledger remembers (remembered: source name to destination
// name) goes where it went before, so that a re-run never copies a folder
// into a second place. Otherwise special folders go onto the destination's
// own; a role the destination has no folder for gets one, named after the
// source's folder of that role and created with the role (Use), and every
// source folder of that role goes there. Subfolders follow a parent that
// moved; namespace prefixes and delimiters are translated, INBOX children
// kept under INBOX. Several source folders may map onto one destination
// folder (a server "Sent" and a client-made "Odeslaná pošta" both become
// Sent).
func PlanFolders(src, dst Layout, remembered map[string]string) []FolderPlan {
	dstRoles, roleByAttr := dst.roleFolders()
	dstHas := map[string]bool{}
	for _, m := range dst.Mailboxes {
		if !m.NoSelect() {
			dstHas[m.Name] = true
		}
	}
	// Source folders in the order roles are claimed: marked ones first.
	mboxes := slices.Clone(src.Mailboxes)
	sort.SliceStable(mboxes, func(i, j int) bool {
		ai, aj := src.roleAttr(mboxes[i]) != "", src.roleAttr(mboxes[j]) != ""
		if ai != aj {
			return ai
		}
		return folderOrder(mboxes[i].Name) < folderOrder(mboxes[j].Name)
	})
	newRole := map[Role]bool{}
	for _, m := range mboxes {
		r := src.roleOf(m)
		if r == RoleNone || m.NoSelect() {
			continue
		}
		if _, ok := dstRoles[r]; !ok {
			dstRoles[r], _ = dst.name(src.path(m.Name))
			newRole[r] = true
		}
	}
	// Parents before children, so that a child can follow its parent.
	sort.SliceStable(mboxes, func(i, j int) bool {
		return len(src.path(mboxes[i].Name)) < len(src.path(mboxes[j].Name))
	})
	type placed struct {
		dest  []string
		moved bool // the destination is not the plain translation
	}
	byPath := map[string]placed{}
	var plans []FolderPlan
	for _, m := range mboxes {
		path := src.path(m.Name)
		plain, renamed := dst.name(path)
		p := FolderPlan{Source: m.Name, Role: src.roleOf(m), Subscribed: m.Subscribed, NonMail: src.nonMail(m.Name)}
		rolesDest, hasRole := dstRoles[p.Role]
		switch remember, ok := remembered[m.Name]; {
		case ok && remember != "":
			p.Dest = remember
		case p.Role != RoleNone && hasRole && !roleByAttr[p.Role] && dstHas[plain]:
			// Without SPECIAL-USE on the destination, a folder of the
			// source's own name is where an earlier copy put it.
			p.Dest = plain
		case p.Role != RoleNone && hasRole:
			p.Dest = rolesDest
			if newRole[p.Role] {
				p.Use = useAttr[p.Role]
			}
		default:
			p.Dest = plain
			for k := len(path) - 1; k >= 1; k-- {
				if anc, ok := byPath[strings.Join(path[:k], "\x00")]; ok && anc.moved {
					p.Dest, renamed = dst.name(append(slices.Clone(anc.dest), path[k:]...))
					break
				}
			}
			if renamed {
				p.Note = catalog.M("note.lookalike")
			}
		}
		byPath[strings.Join(path, "\x00")] = placed{dest: dst.path(p.Dest), moved: p.Dest != plain}
		if !m.NoSelect() {
			plans = append(plans, p)
		}
	}
	sort.SliceStable(plans, func(i, j int) bool { return folderOrder(plans[i].Source) < folderOrder(plans[j].Source) })
	return plans
}

// roleAttr returns the SPECIAL-USE attribute a mailbox carries, or "".
func (s Layout) roleAttr(m imapconn.Mailbox) imap.MailboxAttr {
	for attr := range roleAttrs {
		if m.HasAttr(attr) {
			return attr
		}
	}
	return ""
}

// useAttr is the attribute a new folder of a role is created with.
var useAttr = map[Role]imap.MailboxAttr{}

func init() {
	for attr, r := range roleAttrs {
		useAttr[r] = attr
	}
}

// folderOrder copies INBOX first, then the rest by name, parents before
// children.
func folderOrder(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return ""
	}
	return "1" + name
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
