package engine

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
)

// A Gmail account's folders are its labels: one message is in INBOX and
// in the folder of each of its labels, and all of them are in All Mail.
// Copied folder by folder, an account would arrive once per label plus
// once for All Mail. So from a source with X-GM-EXT-1 the engine reads
// All Mail (found by its SPECIAL-USE attribute \All, never by its name,
// which is localized), Spam and Trash (which Gmail keeps out of All Mail),
// with each message's labels and its X-GM-MSGID, and copies each message
// once into every place the customer saw it:
//
//   - \Inbox to INBOX, a user label to a folder of its name (levels of a
//     nested label as subfolders, with the destination's separator);
//   - \Sent and \Draft to the destination's Sent and Drafts folders, Spam
//     and Trash to its Junk and Trash folders, as any source's special
//     folders go (PlanFolders);
//   - a message with none of these labels (archived) to Archive;
//   - \Starred as the \Flagged flag, \Important nowhere; the [Gmail]
//     folders themselves (All Mail, Starred, Important, ...) are not
//     copied as folders.
//
// With Options.GmailOnce each message goes to one place only, the first
// of gmailPlaces.places, and its other user labels become keywords.
//
// The ledger keys these copies by destination folder and X-GM-MSGID
// (Ledger.IDEntries), which a message keeps whatever happens to its
// labels: a re-run copies a message that gained a label into the new
// folder and nothing else, and leaves the copies of a label the message
// lost where they are (the source is never changed, and neither is what
// the destination holds).

// Ledger keys of a Gmail account, in place of source folder names: where
// a place went (the plan), and the messages copied into a destination
// folder. Real folders (by which a folder-by-folder run of the same
// account keys its entries, should All Mail be hidden one day) are not
// named like this.
const (
	gmailPlaceKey = "X-GM-LABELS "
	gmailMsgKey   = "X-GM-MSGID "
)

// Gmail's system labels, as X-GM-LABELS writes them.
const (
	labelInbox   = `\Inbox`
	labelSent    = `\Sent`
	labelDraft   = `\Draft`
	labelStarred = `\Starred`
)

// gmailSource is one folder the Gmail mode reads: All Mail, Spam or Trash.
type gmailSource struct {
	name        string
	role        Role // RoleNone for All Mail
	uidValidity uint32
	msgs        []gmailMsg
}

// gmailMsg is one message of a gmailSource.
type gmailMsg struct {
	meta   imapconn.MessageMeta
	id     uint64 // X-GM-MSGID
	labels []string
}

// gmailPlace is a place a message can be in: INBOX, a user label, a
// special folder, or the archive. Its mailbox is made up for PlanFolders:
// named after the label, or after the last level of the Gmail folder of a
// role (so that a destination without that role gets a folder of the
// customer's language), with the role's SPECIAL-USE attribute.
type gmailPlace struct {
	mbox  imapconn.Mailbox
	shown string       // the Gmail folder the customer knows it as, for the report
	src   *gmailSource // where its messages are read
}

// gmailWork is the Gmail part of a folderWork: the messages of one
// destination folder that are read from one source folder.
type gmailWork struct {
	source string              // the folder read (All Mail, Spam or Trash)
	key    string              // ledger key: gmailMsgKey + destination
	ids    map[imap.UID]uint64 // X-GM-MSGID of each source UID
	extra  map[imap.UID][]imap.Flag
}

// gmailMode reports whether the source is Gmail with All Mail visible
// over IMAP, and returns that folder's name. A Gmail account whose All
// Mail is hidden from IMAP (a setting in Gmail) is copied folder by
// folder, with a message in as many folders as it has labels.
func (m *migration) gmailMode(ctx context.Context) (string, bool) {
	if !m.src.Has(ctx, imapconn.CapGmail) {
		return "", false
	}
	for _, mb := range m.srcLayout.Mailboxes {
		if mb.HasAttr(imap.MailboxAttrAll) && !mb.NoSelect() {
			return mb.Name, true
		}
	}
	m.logf("the source is Gmail, but its All Mail folder is not shown over IMAP; copying folder by folder (a message with several labels arrives in each of their folders)")
	return "", false
}

// readGmail reads All Mail, Spam and Trash: every message's labels and id,
// then its flags, size and date.
func (m *migration) readGmail(ctx context.Context, all string) ([]*gmailSource, error) {
	srcErr := func(err error) error { return &SideError{SideSource, m.acct.SourceUser, err} }
	sources := []*gmailSource{{name: all}}
	for _, r := range []struct {
		attr imap.MailboxAttr
		role Role
	}{{imap.MailboxAttrJunk, RoleJunk}, {imap.MailboxAttrTrash, RoleTrash}} {
		for _, mb := range m.srcLayout.Mailboxes {
			if mb.HasAttr(r.attr) && !mb.NoSelect() {
				sources = append(sources, &gmailSource{name: mb.Name, role: r.role})
				break
			}
		}
	}
	for _, s := range sources {
		var sel *imap.SelectData
		var gm []imapconn.GmailMessage
		// Gmail throttles with NO [THROTTLED]: waited out (fromSource),
		// the folder opened again.
		err := m.fromSource(ctx, func(bool) (err error) {
			if sel, err = m.src.Examine(ctx, s.name); err != nil || sel.NumMessages == 0 {
				return err
			}
			gm, err = m.src.FetchGmail(ctx, nil)
			return err
		})
		if err != nil {
			return nil, srcErr(err)
		}
		s.uidValidity = sel.UIDValidity
		if sel.NumMessages == 0 {
			continue
		}
		byUID := make(map[imap.UID]imapconn.GmailMessage, len(gm))
		uids := make([]imap.UID, 0, len(gm))
		for _, g := range gm {
			if _, dup := byUID[g.UID]; !dup {
				uids = append(uids, g.UID)
			}
			byUID[g.UID] = g
		}
		slices.Sort(uids)
		var meta []imapconn.MessageMeta
		err = m.fromSource(ctx, func(reopened bool) (err error) {
			if reopened {
				if _, err := m.src.Examine(ctx, s.name); err != nil {
					return err
				}
			}
			meta, err = m.src.FetchMeta(ctx, uids, nil)
			return err
		})
		if err != nil {
			return nil, srcErr(err)
		}
		for _, mm := range meta {
			// A message expunged between the two reads is not listed.
			if g, ok := byUID[mm.UID]; ok {
				s.msgs = append(s.msgs, gmailMsg{meta: mm, id: g.MsgID, labels: g.Labels})
			}
		}
	}
	return sources, nil
}

// gmailPlaces names the places of the account: one per role and user
// label, keyed by the made-up mailbox's name (a user label named like a
// role's folder shares its place, as it would share its destination).
type gmailPlaces struct {
	byName map[string]*gmailPlace
	order  []string
	role   map[Role]string // role -> place name
}

func (ps *gmailPlaces) add(name, shown string, attr imap.MailboxAttr, src *gmailSource) *gmailPlace {
	if p := ps.byName[name]; p != nil {
		return p
	}
	p := &gmailPlace{mbox: imapconn.Mailbox{Name: name, Delim: '/', Subscribed: true}, shown: shown, src: src}
	if attr != "" {
		p.mbox.Attrs = []imap.MailboxAttr{attr}
	}
	ps.byName[name] = p
	ps.order = append(ps.order, name)
	return p
}

// newGmailPlaces makes the places of the source's layout and sources.
func (m *migration) newGmailPlaces(sources []*gmailSource) *gmailPlaces {
	ps := &gmailPlaces{byName: map[string]*gmailPlace{}, role: map[Role]string{}}
	all := sources[0]
	leaf := func(name string) string {
		p := m.srcLayout.path(name)
		return p[len(p)-1]
	}
	for _, r := range []struct {
		attr imap.MailboxAttr
		role Role
		name string // when Gmail lists no such folder
	}{{imap.MailboxAttrSent, RoleSent, "Sent"}, {imap.MailboxAttrDrafts, RoleDrafts, "Drafts"}} {
		name, shown := r.name, r.name
		for _, mb := range m.srcLayout.Mailboxes {
			if mb.HasAttr(r.attr) {
				name, shown = leaf(mb.Name), mb.Name
				break
			}
		}
		ps.role[r.role] = ps.add(name, shown, r.attr, all).mbox.Name
	}
	for _, s := range sources[1:] {
		ps.role[s.role] = ps.add(leaf(s.name), s.name, useAttr[s.role], s).mbox.Name
	}
	ps.role[RoleArchive] = ps.add("Archive", all.name, imap.MailboxAttrArchive, all).mbox.Name
	ps.add("INBOX", "INBOX", "", all)
	// User labels: the folders that are neither INBOX nor a system folder
	// (those carry SPECIAL-USE attributes, and are beside All Mail in
	// "[Gmail]" or however the account's language names it), and any
	// label on a message.
	system := ""
	if p := m.srcLayout.path(all.name); len(p) > 1 {
		system, _ = m.srcLayout.name(p[:len(p)-1])
		system += string(m.srcLayout.Delim)
	}
	for _, mb := range m.srcLayout.Mailboxes {
		if !mb.NoSelect() && !strings.EqualFold(mb.Name, "INBOX") && !gmailSystemFolder(mb) &&
			(system == "" || !strings.HasPrefix(mb.Name, system)) {
			ps.add(mb.Name, mb.Name, "", all)
		}
	}
	for _, g := range all.msgs {
		for _, l := range g.labels {
			if !strings.HasPrefix(l, `\`) {
				ps.add(l, l, "", all)
			}
		}
	}
	return ps
}

// gmailSystemFolder reports whether a Gmail folder is one of the
// [Gmail] folders, by its SPECIAL-USE attribute.
func gmailSystemFolder(mb imapconn.Mailbox) bool {
	for _, a := range mb.Attrs {
		switch strings.ToLower(string(a)) {
		case `\all`, `\archive`, `\drafts`, `\flagged`, `\important`, `\junk`, `\sent`, `\trash`:
			return true
		}
	}
	return false
}

// places returns the places of a message of All Mail, in the order
// GmailOnce prefers them: INBOX, Sent, Drafts, user labels by name; the
// archive when there is none.
func (ps *gmailPlaces) places(g gmailMsg) []string {
	var out, user []string
	for _, want := range []struct{ label, place string }{
		{labelInbox, "INBOX"}, {labelSent, ps.role[RoleSent]}, {labelDraft, ps.role[RoleDrafts]}} {
		if slices.ContainsFunc(g.labels, func(l string) bool { return strings.EqualFold(l, want.label) }) {
			out = append(out, want.place)
		}
	}
	for _, l := range g.labels {
		if !strings.HasPrefix(l, `\`) {
			user = append(user, l)
		}
	}
	slices.Sort(user)
	out = append(out, user...)
	if len(out) == 0 {
		out = append(out, ps.role[RoleArchive])
	}
	return slices.Compact(out)
}

// gmailKeyword turns a label into a keyword (an IMAP atom): spaces and
// the characters atoms cannot hold become "_", other letters are written
// in modified UTF-7 as folder names are ("Práce" is "Pr&AOE-ce").
func gmailKeyword(label string) string {
	var b strings.Builder
	for _, r := range label {
		switch {
		case r <= ' ' || r == 0x7f || strings.ContainsRune(`(){%*"\]`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return imapconn.EncodeUTF7(b.String())
}

// gmailTarget is what goes into one destination folder from one source.
type gmailTarget struct {
	plan   FolderPlan
	src    *gmailSource
	places []string
	shown  []string
	msgs   []gmailMsg
	extra  map[imap.UID][]imap.Flag
	// archive: the archived mail of All Mail, not a label's
	archive bool
}

// planGmail reads a Gmail account and returns what goes into each
// destination folder from each source folder, in the plan's order.
func (m *migration) planGmail(ctx context.Context, all string) ([]*gmailTarget, error) {
	sources, err := m.readGmail(ctx, all)
	if err != nil {
		return nil, err
	}
	ps := m.newGmailPlaces(sources)
	syn := Layout{Delim: '/'}
	remembered := map[string]string{}
	for _, name := range ps.order {
		syn.Mailboxes = append(syn.Mailboxes, ps.byName[name].mbox)
		if d, ok := m.remembered[gmailPlaceKey+name]; ok {
			remembered[name] = d
		}
	}
	dest := map[string]FolderPlan{} // place -> plan
	for _, p := range PlanFolders(syn, m.dstLayout, remembered) {
		dest[p.Source] = p
	}
	// Where each message was copied before, for GmailOnce.
	copiedTo := map[uint64]string{}
	if m.opt.GmailOnce && m.led != nil {
		var keys []string
		for k := range m.remembered {
			if strings.HasPrefix(k, gmailMsgKey) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			es, err := m.led.IDEntries(ctx, m.key, k)
			if err != nil {
				return nil, err
			}
			for id := range es {
				if _, ok := copiedTo[id]; !ok {
					copiedTo[id] = m.remembered[k]
				}
			}
		}
	}
	placed := map[string]map[uint64]bool{} // destination -> messages going there
	// Targets by destination folder and source, in the plan's order.
	targets := map[[2]string]*gmailTarget{}
	var order [][2]string
	target := func(place string, src *gmailSource) *gmailTarget {
		p := dest[place]
		k := [2]string{p.Dest, src.name}
		t := targets[k]
		if t == nil {
			t = &gmailTarget{plan: p, src: src, extra: map[imap.UID][]imap.Flag{}}
			targets[k] = t
			order = append(order, k)
		}
		if !slices.Contains(t.places, place) {
			t.places = append(t.places, place)
		}
		if shown := ps.byName[place].shown; !slices.Contains(t.shown, shown) {
			t.shown = append(t.shown, shown)
		}
		return t
	}
	// placeOf returns a place that goes to destination folder d, made
	// for it when no label goes there any more (GmailOnce).
	placeOf := func(d string) string {
		for _, pl := range ps.order {
			if dest[pl].Dest == d {
				return pl
			}
		}
		name := gmailMsgKey + d
		ps.add(name, d, "", sources[0])
		dest[name] = FolderPlan{Source: name, Dest: d}
		return name
	}
	for _, name := range ps.order {
		if p := ps.byName[name]; p.src == sources[0] && p.mbox.Attrs == nil {
			target(name, p.src) // INBOX and every label, empty or not, is a folder
		}
	}
	for _, s := range sources {
		for _, g := range s.msgs {
			places := []string{ps.role[s.role]}
			if s.role == RoleNone {
				places = ps.places(g)
			}
			var keywords []imap.Flag
			if m.opt.GmailOnce {
				first := places[0]
				if d, ok := copiedTo[g.id]; ok {
					// Copied before: it stays where it is, whatever its
					// labels are now.
					first = placeOf(d)
				}
				for _, l := range g.labels {
					if !strings.HasPrefix(l, `\`) && l != first {
						keywords = append(keywords, imap.Flag(gmailKeyword(l)))
					}
				}
				places = places[:1]
				places[0] = first
			}
			for _, pl := range places {
				t := target(pl, s)
				d := t.plan.Dest
				if placed[d] == nil {
					placed[d] = map[uint64]bool{}
				}
				if placed[d][g.id] {
					continue // two labels of one destination folder
				}
				placed[d][g.id] = true
				t.msgs = append(t.msgs, g)
				extra := slices.Clone(keywords)
				if slices.ContainsFunc(g.labels, func(l string) bool { return strings.EqualFold(l, labelStarred) }) {
					extra = append(extra, imap.FlagFlagged)
				}
				if len(extra) > 0 {
					t.extra[g.meta.UID] = extra
				}
			}
		}
	}
	out := make([]*gmailTarget, len(order))
	for i, k := range order {
		out[i] = targets[k]
		out[i].archive = out[i].plan.Role == RoleArchive && out[i].src == sources[0]
	}
	return out, nil
}

// report is the target's row in the report, before the copy.
func (t *gmailTarget) report() FolderReport {
	fr := FolderReport{Source: strings.Join(t.shown, ", "), Dest: t.plan.Dest, Role: t.plan.Role,
		Note: t.plan.Note, SourceMessages: len(t.msgs)}
	if t.archive {
		fr.Note = catalog.M("note.gmail_archive")
	}
	return fr
}

// checkGmail lists what the copy of a Gmail account would put into each
// destination folder, and its size, copying nothing.
func (m *migration) checkGmail(ctx context.Context, all string) error {
	targets, err := m.planGmail(ctx, all)
	if err != nil {
		return err
	}
	var size int64
	for _, t := range targets {
		m.rep.Folders = append(m.rep.Folders, t.report())
		for _, g := range t.msgs {
			size += g.meta.Size
		}
	}
	m.rep.SourceBytes = size
	return m.checkSpace(ctx, size)
}

// runGmail copies a Gmail account (see the comment at the top).
func (m *migration) runGmail(ctx context.Context, all string) error {
	targets, err := m.planGmail(ctx, all)
	if err != nil {
		return err
	}
	how := "once per label"
	if m.opt.GmailOnce {
		how = "once each, other labels as keywords"
	}
	m.logf("the source is Gmail: copying %s from %s", how, all)
	m.opt.Progress.add(&m.opt.Progress.foldersTotal, int64(len(targets)))
	m.rep.Folders = make([]FolderReport, len(targets))
	for i, t := range targets {
		m.opt.Progress.add(&m.opt.Progress.msgsTotal, int64(len(t.msgs)))
		for _, g := range t.msgs {
			m.opt.Progress.add(&m.opt.Progress.bytesTotal, g.meta.Size)
		}
		m.rep.Folders[i] = t.report()
	}
	return m.prepareAndCopy(ctx, len(targets), func(i int) (*folderWork, []imap.UID, error) {
		return m.prepareGmail(ctx, targets[i], &m.rep.Folders[i])
	})
}

// prepareGmail makes a target's destination folder, brings the flags of
// what was copied before up to date, adopts messages already there and
// returns the work of copying the rest (nil when there is none).
func (m *migration) prepareGmail(ctx context.Context, t *gmailTarget, fr *FolderReport) (*folderWork, []imap.UID, error) {
	srcErr := func(err error) error { return &SideError{SideSource, m.acct.SourceUser, err} }
	dstErr := func(err error) error { return &SideError{SideDest, m.acct.DestUser, err} }
	p := t.plan
	p.Subscribed = true
	w := &folderWork{plan: p, fr: fr, started: time.Now(), sizes: map[imap.UID]int64{}, uidValidity: t.src.uidValidity,
		gm: &gmailWork{source: t.src.name, ids: map[imap.UID]uint64{}, extra: t.extra}}
	if !m.dstFolders[p.Dest] {
		dest, err := m.createFolder(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		if dest == "" {
			reason := catalog.M("reason.folder_refused", p.Dest, errText(m.createErr[p.Dest]))
			for _, g := range t.msgs {
				fr.Failed = append(fr.Failed, MessageIssue{UID: uint32(g.meta.UID), Size: g.meta.Size, Reason: reason})
				m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			}
			return nil, nil, nil
		}
		if dest != p.Dest {
			fr.Note = catalog.M("note.created_as", p.Dest, dest)
			m.logf("%s: %s", fr.Source, fr.Note)
			p.Dest, fr.Dest, w.plan.Dest = dest, dest, dest
		}
	}
	w.gm.key = gmailMsgKey + p.Dest
	keys := []string{gmailMsgKey + p.Dest}
	for _, pl := range t.places {
		keys = append(keys, gmailPlaceKey+pl)
	}
	for _, k := range keys {
		if m.remembered[k] != p.Dest {
			if err := m.led.Remember(ctx, m.key, k, p.Dest); err != nil {
				return nil, nil, err
			}
			m.remembered[k] = p.Dest
		}
	}
	if err := m.subscribe(ctx, p); err != nil {
		return nil, nil, err
	}
	dsel, err := m.dst.Select(ctx, p.Dest)
	if err != nil {
		return nil, nil, dstErr(err)
	}
	w.dstUIDValidity = dsel.UIDValidity
	w.filter = newFlagFilter(dsel.PermanentFlags)
	prev, havePrev, err := m.led.Folder(ctx, m.key, w.gm.key)
	if err != nil {
		return nil, nil, err
	}
	if havePrev && prev.DstUIDValidity != dsel.UIDValidity {
		// The destination folder was recreated: its old UIDs mean nothing;
		// content matching takes over.
		if err := m.led.Forget(ctx, m.key, w.gm.key); err != nil {
			return nil, nil, err
		}
	}
	entries, err := m.led.IDEntries(ctx, m.key, w.gm.key)
	if err != nil {
		return nil, nil, err
	}
	var newUIDs []imap.UID
	var flagChanged []Entry
	for _, g := range t.msgs {
		uid := g.meta.UID
		w.gm.ids[uid] = g.id
		e, ok := entries[g.id]
		if !ok {
			w.sizes[uid] = g.meta.Size
			newUIDs = append(newUIDs, uid)
			continue
		}
		e.SrcUID = uid
		fr.AlreadyPresent++
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		m.opt.Progress.add(&m.opt.Progress.bytesDone, g.meta.Size)
		if want := w.flags(uid, g.meta.Flags); e.DstUID != 0 && flagKey(want) != flagKey(e.Flags) {
			add, rem := flagDelta(e.Flags, want)
			e.Flags = want
			flagChanged = append(flagChanged, e)
			if err := m.storeFlags(ctx, e.DstUID, add, rem); err != nil {
				return nil, nil, dstErr(err)
			}
		}
	}
	if len(flagChanged) > 0 {
		if err := m.record(ctx, w, flagChanged); err != nil {
			return nil, nil, err
		}
		fr.FlagsUpdated = len(flagChanged)
	}
	if len(newUIDs) > 0 {
		if err := m.examine(ctx, w); err != nil {
			return nil, nil, srcErr(err)
		}
		if dsel.NumMessages > 0 {
			if newUIDs, err = m.adopt(ctx, w, newUIDs, dstUIDs(entries)); err != nil {
				return nil, nil, err
			}
		}
		if newUIDs, err = m.skipTooBig(ctx, w, newUIDs); err != nil {
			return nil, nil, err
		}
	}
	return m.readyToCopy(ctx, w, newUIDs)
}

// record writes a work's entries to the ledger: by source UID, or for a
// Gmail work by X-GM-MSGID.
func (m *migration) record(ctx context.Context, w *folderWork, entries []Entry) error {
	if w.gm == nil {
		return m.led.Record(ctx, m.key, w.plan.Source, w.uidValidity, entries)
	}
	for i := range entries {
		entries[i].ID = w.gm.ids[entries[i].SrcUID]
	}
	return m.led.RecordIDs(ctx, m.key, w.gm.key, entries)
}

// knownDst returns the destination UIDs the ledger knows of a work's
// destination folder.
func (m *migration) knownDst(ctx context.Context, w *folderWork) (map[imap.UID]bool, error) {
	if w.gm == nil {
		es, err := m.led.Entries(ctx, m.key, w.plan.Source, w.uidValidity)
		return dstUIDs(es), err
	}
	es, err := m.led.IDEntries(ctx, m.key, w.gm.key)
	return dstUIDs(es), err
}

// dstUIDs returns the destination UIDs of ledger entries.
func dstUIDs[K comparable](entries map[K]Entry) map[imap.UID]bool {
	known := make(map[imap.UID]bool, len(entries))
	for _, e := range entries {
		known[e.DstUID] = true
	}
	return known
}
