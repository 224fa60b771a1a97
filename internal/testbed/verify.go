package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// FolderState is what Snapshot records about one folder.
type FolderState struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    uint32
	UIDs        []imap.UID
	Flags       map[imap.UID][]imap.Flag // sorted, without \Recent
}

// Snapshot reads every selectable folder with EXAMINE (read-only; BODY is
// never fetched, so it changes nothing) — used to assert a source is never
// modified. Keys are folder names as LIST returns them (UTF-8).
//
// \Recent is left out of the flags: it belongs to a session, not to the
// message, and merely opening a folder elsewhere changes it. No folder is
// left selected if the server supports UNSELECT. Cancelling ctx closes cl,
// since imapclient cannot abort a command any other way.
func Snapshot(ctx context.Context, cl *imapclient.Client) (map[string]FolderState, error) {
	defer context.AfterFunc(ctx, func() { cl.Close() })()
	defer unselect(cl)

	list, err := cl.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("snapshot: list: %w", ctxErr(ctx, err))
	}
	out := make(map[string]FolderState, len(list))
	for _, l := range list {
		if !selectable(l) {
			continue
		}
		sel, err := cl.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("snapshot: examine %q: %w", l.Mailbox, ctxErr(ctx, err))
		}
		st := FolderState{
			UIDValidity: sel.UIDValidity,
			UIDNext:     uint32(sel.UIDNext),
			Messages:    sel.NumMessages,
			Flags:       make(map[imap.UID][]imap.Flag),
		}
		if sel.NumMessages > 0 {
			var all imap.SeqSet
			all.AddRange(1, 0) // 1:*
			fetch := cl.Fetch(all, &imap.FetchOptions{UID: true, Flags: true})
			for msg := fetch.Next(); msg != nil; msg = fetch.Next() {
				buf, err := msg.Collect() // UID and FLAGS only: small
				if err != nil {
					fetch.Close()
					return nil, fmt.Errorf("snapshot: fetch %q: %w", l.Mailbox, ctxErr(ctx, err))
				}
				st.UIDs = append(st.UIDs, buf.UID)
				st.Flags[buf.UID] = normalizeFlags(buf.Flags, false)
			}
			if err := fetch.Close(); err != nil {
				return nil, fmt.Errorf("snapshot: fetch %q: %w", l.Mailbox, ctxErr(ctx, err))
			}
			slices.Sort(st.UIDs)
		}
		out[l.Mailbox] = st
	}
	return out, nil
}

// unselect leaves the selected state, so that a caller's next STORE cannot
// hit a folder we examined (read-only) instead of the one it meant.
func unselect(cl *imapclient.Client) {
	if cl.Mailbox() == nil || !(cl.Caps().Has(imap.CapUnselect) || cl.Caps().Has(imap.CapIMAP4rev2)) {
		return
	}
	_ = cl.Unselect().Wait() // best effort: the result of the read stands
}

func selectable(l *imap.ListData) bool {
	for _, a := range l.Attrs {
		if strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) ||
			strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)) {
			return false
		}
	}
	return true
}

// normalizeFlags sorts flags and drops \Recent. With fold, flags are
// lower-cased so that keywords compare case-insensitively: some servers
// change keyword case.
func normalizeFlags(flags []imap.Flag, fold bool) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		if fold {
			f = imap.Flag(strings.ToLower(string(f)))
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MessageCount returns the message count of a folder via STATUS.
func MessageCount(ctx context.Context, cl *imapclient.Client, folder string) (uint32, error) {
	defer context.AfterFunc(ctx, func() { cl.Close() })()
	st, err := cl.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("status %q: %w", folder, ctxErr(ctx, err))
	}
	if st.NumMessages == nil {
		return 0, fmt.Errorf("status %q: server sent no MESSAGES", folder)
	}
	return *st.NumMessages, nil
}

// maxDiffLines caps Verify's report; past that, more lines rarely help.
const maxDiffLines = 50

// Verify checks that for each source folder (key of mapping, the server's
// own folder name as LIST returns it, decoded to UTF-8 by go-imap) the
// mapped destination folder holds the same multiset of messages (the union,
// when several source folders map onto one destination):
// byte-identical bodies (compared by SHA-256), same flags (ignoring \Recent;
// keywords compared case-insensitively), same INTERNALDATE (as instants, to
// the second). Messages are read with EXAMINE and BODY.PEEK[] so neither
// side changes. It returns nil or an error listing every difference
// (capped at about 50 lines).
//
// A destination folder that cannot be opened is a difference; a source
// folder that cannot be opened, or a failing connection, is an error.
// No folder is left selected if the servers support UNSELECT. Cancelling
// ctx closes both clients.
func Verify(ctx context.Context, src, dst *imapclient.Client, mapping map[string]string) error {
	return VerifyWith(ctx, src, dst, mapping, VerifyOptions{})
}

// VerifyOptions relaxes Verify for servers that legitimately change what
// they store; both sides get the same treatment.
type VerifyOptions struct {
	// Body, when set, rewrites every message before it is compared (e.g.
	// MungeHeader8bit for Cyrus); the whole message is then read into
	// memory.
	Body func([]byte) []byte
	// Flags, when set, filters the normalized (lower-case) flags before
	// they are compared, e.g. to drop keywords a server cannot store.
	Flags func([]imap.Flag) []imap.Flag
}

// VerifyWith is Verify with the comparison relaxed by opts.
func VerifyWith(ctx context.Context, src, dst *imapclient.Client, mapping map[string]string, opts VerifyOptions) error {
	defer context.AfterFunc(ctx, func() { src.Close(); dst.Close() })()
	defer unselect(src)
	defer unselect(dst)

	// Several source folders may share one destination (a server's Sent
	// and a client's "Odeslaná pošta" both become Sent): the destination
	// then holds the union of their messages.
	sources := map[string][]string{}
	for sf, df := range mapping {
		sources[df] = append(sources[df], sf)
	}
	dstFolders := make([]string, 0, len(sources))
	for df := range sources {
		dstFolders = append(dstFolders, df)
		sort.Strings(sources[df])
	}
	sort.Strings(dstFolders)

	var diffs []string
	for _, df := range dstFolders {
		quoted := make([]string, len(sources[df]))
		for i, sf := range sources[df] {
			quoted[i] = strconv.Quote(sf)
		}
		where := fmt.Sprintf("%s -> %q", strings.Join(quoted, " + "), df)
		var srcMsgs []msgInfo
		for _, sf := range sources[df] {
			msgs, err := readFolder(src, sf, opts)
			if err != nil {
				return fmt.Errorf("verify: source %q: %w", sf, ctxErr(ctx, err))
			}
			srcMsgs = append(srcMsgs, msgs...)
		}
		dstMsgs, err := readFolder(dst, df, opts)
		if err != nil {
			var ie *imap.Error
			if !errors.As(err, &ie) {
				return fmt.Errorf("verify: destination %q: %w", df, ctxErr(ctx, err))
			}
			diffs = append(diffs, fmt.Sprintf("%s: cannot read destination folder (%v); %d source messages unaccounted for", where, err, len(srcMsgs)))
			continue
		}
		for _, d := range compareFolder(srcMsgs, dstMsgs) {
			diffs = append(diffs, where+": "+d)
		}
	}
	return diffError(diffs)
}

// diffError renders differences as one error, or nil if there are none.
func diffError(diffs []string) error {
	if len(diffs) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verify: %d difference(s):", len(diffs))
	for i, d := range diffs {
		if i == maxDiffLines {
			fmt.Fprintf(&b, "\n  ... and %d more", len(diffs)-maxDiffLines)
			break
		}
		b.WriteString("\n  " + d)
	}
	return errors.New(b.String())
}

// msgInfo is what Verify compares, plus what makes a report readable.
type msgInfo struct {
	uid     imap.UID
	sum     [sha256.Size]byte
	size    int64
	flags   []imap.Flag // normalized, lower-case
	date    time.Time
	subject string
}

func (m msgInfo) describe() string {
	return fmt.Sprintf("UID %d %q (%d bytes, sha256 %s, %s, flags %v)",
		m.uid, m.subject, m.size, hex.EncodeToString(m.sum[:6]), m.date.UTC().Format(time.RFC3339), m.flags)
}

// readFolder examines a folder and hashes every message while its literal
// streams in, so a huge message never sits in memory.
func readFolder(cl *imapclient.Client, folder string, opts VerifyOptions) ([]msgInfo, error) {
	sel, err := cl.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("examine: %w", err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	fetch := cl.Fetch(all, &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	})
	var out []msgInfo
	bySeq := make(map[uint32]int) // a server may split one message's items over several FETCH responses
	for msg := fetch.Next(); msg != nil; msg = fetch.Next() {
		i, ok := bySeq[msg.SeqNum]
		if !ok {
			i = len(out)
			bySeq[msg.SeqNum] = i
			out = append(out, msgInfo{})
		}
		info := &out[i]
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				info.uid = item.UID
			case imapclient.FetchItemDataFlags:
				info.flags = normalizeFlags(item.Flags, true)
				if opts.Flags != nil {
					info.flags = opts.Flags(info.flags)
				}
			case imapclient.FetchItemDataInternalDate:
				info.date = item.Time
			case imapclient.FetchItemDataBodySection:
				if item.Literal == nil {
					continue
				}
				h := sha256.New()
				head := &headCapture{limit: 16 << 10}
				var body io.Reader = item.Literal
				if opts.Body != nil {
					data, err := io.ReadAll(item.Literal)
					if err != nil {
						fetch.Close()
						return nil, fmt.Errorf("fetch body of message %d: %w", msg.SeqNum, err)
					}
					body = bytes.NewReader(opts.Body(data))
				}
				n, err := io.Copy(io.MultiWriter(h, head), body)
				if err != nil {
					fetch.Close()
					return nil, fmt.Errorf("fetch body of message %d: %w", msg.SeqNum, err)
				}
				info.size = n
				copy(info.sum[:], h.Sum(nil))
				info.subject = subjectOf(head.buf.Bytes())
			}
		}
	}
	if err := fetch.Close(); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return out, nil
}

// headCapture keeps the first bytes of a message, where the header is.
type headCapture struct {
	buf   bytes.Buffer
	limit int
}

func (c *headCapture) Write(p []byte) (int, error) {
	if room := c.limit - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// subjectOf extracts a short, decoded Subject for reports.
func subjectOf(head []byte) string {
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+2]
	}
	lines := strings.Split(string(head), "\r\n")
	for i, l := range lines {
		if len(l) < 8 || !strings.EqualFold(l[:8], "subject:") {
			continue
		}
		v := strings.TrimSpace(l[8:])
		for _, cont := range lines[i+1:] {
			if cont == "" || (cont[0] != ' ' && cont[0] != '\t') {
				break
			}
			v += " " + strings.TrimSpace(cont)
		}
		if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
			v = dec
		}
		if utf8.RuneCountInString(v) > 60 {
			v = string([]rune(v)[:57]) + "..."
		}
		return v
	}
	return ""
}

// compareFolder matches messages by body hash, then by flags and date, and
// describes what does not match: missing, extra, or the same body with
// other flags or date.
func compareFolder(src, dst []msgInfo) []string {
	byHash := func(ms []msgInfo) (map[[sha256.Size]byte][]msgInfo, [][sha256.Size]byte) {
		m := make(map[[sha256.Size]byte][]msgInfo)
		var order [][sha256.Size]byte // first-seen order keeps reports stable
		for _, x := range ms {
			if _, ok := m[x.sum]; !ok {
				order = append(order, x.sum)
			}
			m[x.sum] = append(m[x.sum], x)
		}
		return m, order
	}
	srcBy, srcOrder := byHash(src)
	dstBy, dstOrder := byHash(dst)

	same := func(a, b msgInfo) bool {
		return slices.Equal(a.flags, b.flags) && a.date.Unix() == b.date.Unix()
	}
	var diffs []string
	for _, sum := range srcOrder {
		s, d := srcBy[sum], dstBy[sum]
		// Remove exact matches first, so that only real differences pair up.
		var restS []msgInfo
		for _, x := range s {
			if i := slices.IndexFunc(d, func(y msgInfo) bool { return same(x, y) }); i >= 0 {
				d = slices.Delete(d, i, i+1)
			} else {
				restS = append(restS, x)
			}
		}
		for len(restS) > 0 && len(d) > 0 {
			x, y := restS[0], d[0]
			restS, d = restS[1:], d[1:]
			var what []string
			if !slices.Equal(x.flags, y.flags) {
				what = append(what, fmt.Sprintf("flags %v vs %v", x.flags, y.flags))
			}
			if x.date.Unix() != y.date.Unix() {
				what = append(what, fmt.Sprintf("INTERNALDATE %s vs %s", x.date.UTC().Format(time.RFC3339), y.date.UTC().Format(time.RFC3339)))
			}
			diffs = append(diffs, fmt.Sprintf("differs: source UID %d / destination UID %d %q: %s", x.uid, y.uid, x.subject, strings.Join(what, "; ")))
		}
		for _, x := range restS {
			diffs = append(diffs, "missing in destination: "+x.describe())
		}
		dstBy[sum] = d
	}
	for _, sum := range dstOrder {
		for _, y := range dstBy[sum] {
			diffs = append(diffs, "extra in destination: "+y.describe())
		}
	}
	return diffs
}
