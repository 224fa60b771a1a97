package engine

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

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
// Compared case-insensitively, diacritics exact.
var roleNames = map[string]Role{}

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
		for _, n := range names {
			roleNames[strings.ToLower(n)] = role
		}
	}
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
	// Note explains a name change the customer would not expect, such as a
	// separator character inside a folder name.
	Note string
}

// lookalike replaces a hierarchy delimiter that appears inside a folder
// name on the other side, so "v1.2" stays one folder on a "." server.
var lookalike = map[rune]rune{'/': '∕', '.': '․', '\\': '⧵'}

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
			p = strings.ReplaceAll(p, string(s.Delim), string(lookalike[s.Delim]))
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

// roleFolders returns the destination's folder for each role: the one
// marked with SPECIAL-USE wins over one recognised by name.
func (s Layout) roleFolders() map[Role]string {
	byAttr, byName := map[Role]string{}, map[Role]string{}
	for _, m := range s.Mailboxes {
		if m.NoSelect() {
			continue
		}
		for attr, r := range roleAttrs {
			if m.HasAttr(attr) {
				if _, ok := byAttr[r]; !ok {
					byAttr[r] = m.Name
				}
			}
		}
		if r := s.roleOf(m); r != RoleNone {
			if _, ok := byName[r]; !ok {
				byName[r] = m.Name
			}
		}
	}
	for r, n := range byName {
		if _, ok := byAttr[r]; !ok {
			byAttr[r] = n
		}
	}
	return byAttr
}

// PlanFolders maps every selectable source folder onto a destination name:
// special folders onto the destination's own (their subfolders follow),
// namespace prefixes and delimiters translated, INBOX children kept under
// INBOX. Several source folders may map onto one destination folder (a
// server "Sent" and a client-made "Odeslaná pošta" both become Sent).
func PlanFolders(src, dst Layout) []FolderPlan {
	dstRoles := dst.roleFolders()
	// Source folders that carry a role, by their path, so that their
	// subfolders can follow them.
	type rolePath struct {
		path []string
		dest []string
	}
	var rolePaths []rolePath
	for _, m := range src.Mailboxes {
		if r := src.roleOf(m); r != RoleNone {
			if d, ok := dstRoles[r]; ok {
				rolePaths = append(rolePaths, rolePath{src.path(m.Name), dst.path(d)})
			}
		}
	}
	var plans []FolderPlan
	for _, m := range src.Mailboxes {
		if m.NoSelect() {
			continue
		}
		p := FolderPlan{Source: m.Name, Role: src.roleOf(m), Subscribed: m.Subscribed}
		path := src.path(m.Name)
		if d, ok := dstRoles[p.Role]; ok && p.Role != RoleNone {
			p.Dest = d
		} else {
			target := path
			for _, rp := range rolePaths {
				if len(path) > len(rp.path) && equalPath(path[:len(rp.path)], rp.path) {
					target = append(append([]string{}, rp.dest...), path[len(rp.path):]...)
					break
				}
			}
			var renamed bool
			p.Dest, renamed = dst.name(target)
			if renamed {
				p.Note = "a folder name contained the destination's hierarchy separator; it was replaced by a look-alike character"
			}
		}
		plans = append(plans, p)
	}
	sort.SliceStable(plans, func(i, j int) bool { return folderOrder(plans[i]) < folderOrder(plans[j]) })
	return plans
}

// folderOrder copies INBOX first, then the rest by name, parents before
// children.
func folderOrder(p FolderPlan) string {
	if p.Source == "INBOX" {
		return ""
	}
	return "1" + p.Source
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
