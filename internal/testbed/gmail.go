package testbed

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GmailConfig describes an account as Gmail's IMAP server shows it: its
// messages carry labels, and the folders are made from them.
type GmailConfig struct {
	// User and Password are the only login accepted (LOGIN and
	// AUTHENTICATE PLAIN).
	User, Password string
	// Locale names the system folders as the account's language does:
	// "" (English: "[Gmail]/All Mail"), "en-GB" ("[Google Mail]/All
	// Mail", "[Google Mail]/Bin") or "cs" ("[Gmail]/Všechny zprávy").
	Locale string
	// Messages is the account, each message once.
	Messages []GmailMessage
	// CheckToken, when set, also signs in with OAuth2 access tokens
	// (AUTHENTICATE XOAUTH2 and OAUTHBEARER, as Gmail offers them),
	// checked by it (OAuthServer.Valid).
	CheckToken func(user, token string) bool
}

// GmailMessage is one message of a Gmail account.
type GmailMessage struct {
	MsgID uint64 // X-GM-MSGID: unique, not 0
	ThrID uint64 // X-GM-THRID; MsgID when 0
	// Labels place the message: `\Inbox`, `\Sent`, `\Draft`, `\Spam`,
	// `\Trash`, `\Starred`, `\Important` and user labels ("Work/Clients":
	// "/" separates levels). A message without \Inbox, \Spam or \Trash is
	// archived: it is only in All Mail and its user labels' folders.
	Labels []string
	// Flags are the IMAP flags, the same in every folder. (Gmail itself
	// also shows \Starred as \Flagged; this server shows only these.)
	Flags        []string
	InternalDate time.Time // a fixed date when zero
	Body         []byte
}

// Gmail system labels.
const (
	GmailInbox     = `\Inbox`
	GmailSent      = `\Sent`
	GmailDraft     = `\Draft`
	GmailSpam      = `\Spam`
	GmailTrash     = `\Trash`
	GmailStarred   = `\Starred`
	GmailImportant = `\Important`
	// GmailAll stands for the All Mail folder in Gmail.Folder; it is no
	// label.
	GmailAll = `\All`
)

// gmailSystem is a system folder: the label that puts a message there,
// its SPECIAL-USE attribute and its name per locale.
var gmailSystem = []struct {
	label, use string
	names      map[string]string
}{
	{GmailAll, `\All`, map[string]string{"": "All Mail", "en-GB": "All Mail", "cs": "Všechny zprávy"}},
	{GmailDraft, `\Drafts`, map[string]string{"": "Drafts", "en-GB": "Drafts", "cs": "Koncepty"}},
	{GmailImportant, `\Important`, map[string]string{"": "Important", "en-GB": "Important", "cs": "Důležité"}},
	{GmailSent, `\Sent`, map[string]string{"": "Sent Mail", "en-GB": "Sent Mail", "cs": "Odeslaná pošta"}},
	{GmailSpam, `\Junk`, map[string]string{"": "Spam", "en-GB": "Spam", "cs": "Spam"}},
	{GmailStarred, `\Flagged`, map[string]string{"": "Starred", "en-GB": "Starred", "cs": "S hvězdičkou"}},
	{GmailTrash, `\Trash`, map[string]string{"": "Trash", "en-GB": "Bin", "cs": "Koš"}},
}

// Gmail is a running Gmail-like IMAP server (X-GM-EXT-1): INBOX, a folder
// per user label, and the system folders under "[Gmail]" marked with
// their SPECIAL-USE attributes, each showing the messages that carry its
// label under UIDs of its own. All Mail holds every message but those in
// Spam and Trash, as on Gmail. FETCH answers X-GM-MSGID, X-GM-THRID and
// X-GM-LABELS. It is built on the hostile server (Commands and Writes
// tell what a client did); labels can change between runs (SetLabels).
type Gmail struct {
	*Hostile

	mu     sync.Mutex
	prefix string
	names  map[string]string // system label -> folder name
	msgs   []GmailMessage
	// Every folder that ever was, with the UIDs its messages got: a
	// message that leaves a folder and comes back gets a new UID.
	uids     map[string]map[uint64]uint32 // folder -> message -> UID
	next     map[string]uint32            // folder -> next UID
	byUID    map[string]map[uint32]uint64 // folder -> UID -> message
	validity map[string]uint32
}

// StartGmail serves cfg's account on a loopback port without TLS until the
// test ends.
func StartGmail(t testing.TB, cfg GmailConfig) *Gmail {
	t.Helper()
	g := &Gmail{prefix: "[Gmail]", names: map[string]string{},
		uids: map[string]map[uint64]uint32{}, next: map[string]uint32{},
		byUID: map[string]map[uint32]uint64{}, validity: map[string]uint32{}}
	if cfg.Locale == "en-GB" {
		g.prefix = "[Google Mail]"
	}
	for _, s := range gmailSystem {
		name, ok := s.names[cfg.Locale]
		if !ok {
			t.Fatalf("gmail server: unknown locale %q", cfg.Locale)
		}
		g.names[s.label] = g.prefix + "/" + name
	}
	g.names[GmailInbox] = "INBOX"
	seen := map[uint64]bool{}
	for _, m := range cfg.Messages {
		if m.MsgID == 0 || seen[m.MsgID] {
			t.Fatalf("gmail server: X-GM-MSGID %d is zero or repeated", m.MsgID)
		}
		seen[m.MsgID] = true
		m.Labels, m.Flags = slices.Clone(m.Labels), slices.Clone(m.Flags)
		g.msgs = append(g.msgs, m)
	}
	caps := []string{"X-GM-EXT-1", "UIDPLUS", "CHILDREN"}
	if cfg.CheckToken != nil {
		caps = append(caps, "AUTH=XOAUTH2", "AUTH=OAUTHBEARER")
	}
	g.Hostile = StartHostile(t, HostileConfig{User: cfg.User, Password: cfg.Password, Caps: caps, CheckToken: cfg.CheckToken,
		fetchExt: map[string]func(*HostileFolder, *HostileMessage) string{
			"X-GM-MSGID":  func(f *HostileFolder, m *HostileMessage) string { return strconv.FormatUint(g.message(f, m).MsgID, 10) },
			"X-GM-THRID":  func(f *HostileFolder, m *HostileMessage) string { return strconv.FormatUint(g.message(f, m).ThrID, 10) },
			"X-GM-LABELS": func(f *HostileFolder, m *HostileMessage) string { return gmailLabels(g.message(f, m).Labels) },
		}})
	g.mu.Lock()
	defer g.mu.Unlock()
	g.build()
	return g
}

// Folder returns the name of a system label's folder (GmailAll for All
// Mail) in the account's language; a user label's folder has its name.
func (g *Gmail) Folder(label string) string {
	if n, ok := g.names[label]; ok {
		return n
	}
	return label
}

// SetLabels replaces a message's labels, as the customer does in Gmail
// between two runs of a migration.
func (g *Gmail) SetLabels(msgID uint64, labels ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.msgs, func(m GmailMessage) bool { return m.MsgID == msgID })
	if i < 0 {
		panic(fmt.Sprintf("gmail server: no message %d", msgID))
	}
	g.msgs[i].Labels = slices.Clone(labels)
	g.build()
}

// message finds the message a folder's entry stands for.
func (g *Gmail) message(f *HostileFolder, m *HostileMessage) GmailMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := g.byUID[f.Name][m.UID]
	for _, msg := range g.msgs {
		if msg.MsgID == id {
			if msg.ThrID == 0 {
				msg.ThrID = msg.MsgID
			}
			return msg
		}
	}
	return GmailMessage{}
}

// build derives the folders from the labels and hands them to the
// hostile server. g.mu is held.
func (g *Gmail) build() {
	type folder struct {
		name, use string
		ids       []uint64
	}
	var folders []*folder
	byName := map[string]*folder{}
	add := func(name, use string) *folder {
		if f := byName[name]; f != nil {
			return f
		}
		f := &folder{name: name, use: use}
		byName[name] = f
		folders = append(folders, f)
		return f
	}
	add("INBOX", "")
	var user []string
	for _, m := range g.msgs {
		for _, l := range m.Labels {
			if !strings.HasPrefix(l, `\`) && !slices.Contains(user, l) {
				user = append(user, l)
			}
		}
	}
	// Folders that were once stay, as Gmail keeps a label that no
	// message carries.
	for name := range g.uids {
		if !strings.HasPrefix(name, g.prefix) && name != "INBOX" && !slices.Contains(user, name) {
			user = append(user, name)
		}
	}
	slices.Sort(user)
	for _, l := range user {
		// A nested label's parents are folders too.
		parts := strings.Split(l, "/")
		for k := 1; k < len(parts); k++ {
			add(strings.Join(parts[:k], "/"), "")
		}
		add(l, "")
	}
	add(g.prefix, `\Noselect \HasChildren`)
	for _, s := range gmailSystem {
		add(g.names[s.label], s.use)
	}
	for _, m := range g.msgs {
		hidden := slices.Contains(m.Labels, GmailSpam) || slices.Contains(m.Labels, GmailTrash)
		if !hidden {
			all := byName[g.names[GmailAll]]
			all.ids = append(all.ids, m.MsgID)
		}
		for _, l := range m.Labels {
			if hidden && l != GmailSpam && l != GmailTrash {
				continue
			}
			f := add(g.Folder(l), "")
			if !slices.Contains(f.ids, m.MsgID) {
				f.ids = append(f.ids, m.MsgID)
			}
		}
	}
	h := g.Hostile
	h.data.Lock()
	defer h.data.Unlock()
	for _, f := range folders {
		if g.uids[f.name] == nil {
			g.uids[f.name], g.byUID[f.name] = map[uint64]uint32{}, map[uint32]uint64{}
			g.next[f.name] = 1
			g.validity[f.name] = uint32(600 + len(g.validity))
		}
		var msgs []HostileMessage
		for _, id := range f.ids {
			uid, ok := g.uids[f.name][id]
			if !ok {
				uid = g.next[f.name]
				g.next[f.name]++
				g.uids[f.name][id], g.byUID[f.name][uid] = uid, id
			}
			m := g.msgs[slices.IndexFunc(g.msgs, func(m GmailMessage) bool { return m.MsgID == id })]
			msgs = append(msgs, HostileMessage{UID: uid, Flags: slices.Clone(m.Flags),
				InternalDate: m.InternalDate, Body: m.Body})
		}
		// A message that left the folder loses its UID there.
		for id, uid := range g.uids[f.name] {
			if !slices.Contains(f.ids, id) {
				delete(g.uids[f.name], id)
				delete(g.byUID[f.name], uid)
			}
		}
		slices.SortFunc(msgs, func(a, b HostileMessage) int { return int(a.UID) - int(b.UID) })
		wire := wireName(f.name)
		hf := h.folders[wire]
		if hf == nil {
			hf = &HostileFolder{Name: f.name, UIDValidity: g.validity[f.name], SpecialUse: f.use,
				Subscribed: !strings.Contains(f.use, `\Noselect`)}
			h.folders[wire] = hf
			h.order = append(h.order, wire)
		}
		hf.Messages = msgs
	}
}

// gmailLabels writes X-GM-LABELS as Gmail does: system labels as quoted
// strings ("\\Inbox"), user labels in modified UTF-7, as atoms where they
// can be and quoted otherwise.
func gmailLabels(labels []string) string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		w := wireName(l)
		if strings.HasPrefix(l, `\`) || strings.ContainsAny(w, ` ()[]{}%*"\`) {
			out = append(out, quote(w))
		} else {
			out = append(out, w)
		}
	}
	return "(" + strings.Join(out, " ") + ")"
}
