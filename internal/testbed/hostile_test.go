package testbed

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

const hostileUser, hostilePass = "jana@old.test", `zdroj "heslo" \ {ž}`

func hostileMessage(uid uint32, subject string) HostileMessage {
	return HostileMessage{UID: uid, Flags: []string{`\Seen`},
		InternalDate: time.Date(2019, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600)),
		Body: []byte(fmt.Sprintf("Message-ID: <%d@old.test>\r\nSubject: %s\r\n\tcontinued\r\n"+
			"From: a@old.test\r\n\r\nBody of %d.\r\n", uid, subject, uid))}
}

func hostileAccount() HostileConfig {
	return HostileConfig{User: hostileUser, Password: hostilePass, Folders: []HostileFolder{
		{Name: "INBOX", UIDValidity: 7, Subscribed: true,
			Messages: []HostileMessage{hostileMessage(5, "five"), hostileMessage(2, "two")}},
		{Name: "Odeslaná pošta", SpecialUse: `\Sent`, Messages: []HostileMessage{hostileMessage(1, "sent")}},
		{Name: "Archiv 2019", Subscribed: true},
	}}
}

func dialHostile(t *testing.T, h *Hostile) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(h.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The well-behaved path, as a migration source uses it.
func TestHostileNormal(t *testing.T) {
	h := StartHostile(t, hostileAccount())
	c := dialHostile(t, h)
	if err := c.Login(hostileUser, "wrong").Wait(); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := c.Authenticate(sasl.NewPlainClient("", hostileUser, hostilePass)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
	if caps := c.Caps(); !caps.Has(imap.CapSpecialUse) || !caps.Has(imap.CapListExtended) || caps.Has(imap.CapCondStore) {
		t.Errorf("capabilities %v", caps)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Fatalf("namespace %+v, %v", ns, err)
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true, ReturnSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
		subscribed := slices.Contains(l.Attrs, imap.MailboxAttrSubscribed)
		if sent := slices.Contains(l.Attrs, imap.MailboxAttrSent); sent != (l.Mailbox == "Odeslaná pošta") || subscribed == (l.Mailbox == "Odeslaná pošta") {
			t.Errorf("%q has attributes %v", l.Mailbox, l.Attrs)
		}
	}
	if want := []string{"INBOX", "Odeslaná pošta", "Archiv 2019"}; !slices.Equal(names, want) {
		t.Errorf("LIST gave %q, want %q", names, want)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
	if err != nil || *st.NumMessages != 2 || st.UIDNext != 6 || st.UIDValidity != 7 {
		t.Fatalf("STATUS INBOX %+v, %v", st, err)
	}
	sel, err := c.Select("Odeslaná pošta", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("EXAMINE %+v, %v", sel, err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	meta, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true}).Collect()
	if err != nil || len(meta) != 2 || meta[0].UID != 2 || meta[1].UID != 5 || meta[1].Flags[0] != imap.FlagSeen {
		t.Fatalf("metadata FETCH %+v, %v", meta, err)
	}
	want := hostileMessage(5, "five")
	if meta[1].RFC822Size != int64(len(want.Body)) {
		t.Errorf("RFC822.SIZE %d, want %d", meta[1].RFC822Size, len(want.Body))
	}
	hdr, err := c.Fetch(imap.UIDSetNum(5), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "Message-ID"}, Peek: true}}}).Collect()
	if err != nil || len(hdr) != 1 || len(hdr[0].BodySection) != 1 {
		t.Fatalf("header FETCH %+v, %v", hdr, err)
	}
	if got := string(hdr[0].BodySection[0].Bytes); got != "Message-ID: <5@old.test>\r\nSubject: five\r\n\tcontinued\r\n\r\n" {
		t.Errorf("header fields %q", got)
	}
	full, err := c.Fetch(imap.UIDSetNum(2, 5), &imap.FetchOptions{UID: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(full) != 2 {
		t.Fatalf("body FETCH %+v, %v", full, err)
	}
	if got := string(full[1].BodySection[0].Bytes); got != string(want.Body) || !full[1].InternalDate.Equal(want.InternalDate) {
		t.Errorf("UID 5: body %q date %v", got, full[1].InternalDate)
	}
	if len(h.Writes()) != 0 {
		t.Errorf("writes recorded for reading: %q", h.Writes())
	}
	// A write is refused and recorded.
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err == nil {
		t.Error("STORE accepted")
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	if w := h.Writes(); len(w) != 1 || !strings.HasPrefix(w[0], "UID STORE 2 ") {
		t.Errorf("writes %q, want the UID STORE", w)
	}
	for _, cmd := range h.Commands() {
		if strings.Contains(cmd, "heslo") || strings.Contains(cmd, "wrong") {
			t.Errorf("a password was recorded: %q", cmd)
		}
	}
	waitClosed(t, h)
}

func waitClosed(t *testing.T, h *Hostile) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.Open() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) still open", h.Open())
		}
	}
}

// rawHostile is a wire-level client for replies go-imap refuses to parse.
type rawHostile struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialRaw(t *testing.T, h *Hostile) *rawHostile {
	t.Helper()
	c, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawHostile{t: t, c: c, r: bufio.NewReader(c)}
	r.line()
	r.cmd(`LOGIN "jana@old.test" {` + fmt.Sprint(len(hostilePass)) + `}`)
	if l := r.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("no continuation for the literal: %q", l)
	}
	fmt.Fprintf(c, "%s\r\n", hostilePass)
	if l := r.line(); !strings.Contains(l, "OK") {
		t.Fatalf("LOGIN with a literal: %q", l)
	}
	return r
}

func (r *rawHostile) cmd(s string) {
	r.tag++
	fmt.Fprintf(r.c, "T%d %s\r\n", r.tag, s)
}

func (r *rawHostile) line() string {
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// reply sends a command and returns its untagged lines, literals inline.
func (r *rawHostile) reply(s string) []string {
	r.cmd(s)
	var out []string
	for {
		l := r.line()
		if strings.HasPrefix(l, fmt.Sprintf("T%d ", r.tag)) {
			return append(out, l)
		}
		out = append(out, l)
	}
}

func TestHostileMisbehaviours(t *testing.T) {
	cfg := hostileAccount()
	cfg.StatusUnquoted = true
	cfg.StatusOmit = []string{"MESSAGES"}
	cfg.ExtraFolders = 3
	cfg.GarbageOn = "NOOP"
	cfg.Folders[0].NewUIDValidity = 8
	cfg.Folders[0].Messages[0].Vanish = true     // UID 5 after sorting is the second
	cfg.Folders[0].Messages[1].LiteralSize = 1e6 // UID 2
	h := StartHostile(t, cfg)
	r := dialRaw(t, h)

	if got := r.reply(`STATUS "Archiv 2019" (MESSAGES UIDNEXT UIDVALIDITY)`); got[0] != "* STATUS Archiv 2019 (UIDNEXT 1 UIDVALIDITY 1)" {
		t.Errorf("STATUS: %q", got)
	}
	if got := r.reply(`LIST "" "Folder *"`); len(got) != 4 || got[2] != `* LIST () "/" "Folder 000003"` {
		t.Errorf("generated folders: %q", got)
	}
	if got := r.reply("NOOP"); got[0] != "* 1 FETCH (UID)" {
		t.Errorf("garbage: %q", got)
	}
	if got := r.reply("EXAMINE INBOX"); !slices.Contains(got, "* OK [UIDVALIDITY 7] UIDs valid") {
		t.Errorf("first EXAMINE: %q", got)
	}
	if got := r.reply("UID FETCH 1:* (UID RFC822.SIZE)"); len(got) != 3 {
		t.Errorf("metadata FETCH lists %q, want both messages", got)
	}
	got := r.reply("UID FETCH 1:* (UID BODY.PEEK[])")
	if len(got) < 2 || !strings.HasPrefix(got[0], "* 1 FETCH (UID 2 BODY[] {1000000}") {
		t.Errorf("body FETCH starts %q", got[:min(len(got), 2)])
	}
	n := 0
	for _, l := range got {
		n += len(l) + 2
		if strings.Contains(l, "UID 5") {
			t.Errorf("vanished message sent: %q", l)
		}
	}
	if n < 1e6 {
		t.Errorf("body FETCH sent %d bytes, want the 1 MB literal", n)
	}
	if got := r.reply("EXAMINE INBOX"); !slices.Contains(got, "* OK [UIDVALIDITY 8] UIDs valid") {
		t.Errorf("second EXAMINE: %q", got)
	}
	if len(h.Writes()) != 0 {
		t.Errorf("writes %q", h.Writes())
	}
}

// A line without end, and a literal that stops: the server falls silent and
// lets go of the connection when the client does.
func TestHostileSilences(t *testing.T) {
	cfg := hostileAccount()
	cfg.LongLineOn = "LIST"
	cfg.LongLineSize = 3 << 20
	cfg.Folders[1].Messages[0].StallAfter = 10
	h := StartHostile(t, cfg)

	r := dialRaw(t, h)
	r.cmd(`LIST "" "*"`)
	buf := make([]byte, 64<<10)
	total := 0
	r.c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, err := r.r.Read(buf)
		total += n
		if strings.ContainsAny(string(buf[:n]), "\r\n") && total > 20 {
			t.Fatal("the long line ended")
		}
		if err != nil {
			break
		}
	}
	if total != len(`* LIST () "/" `)+3<<20 || h.BytesSent() < 3<<20 {
		t.Errorf("long line of %d bytes", total)
	}

	r2 := dialRaw(t, h)
	r2.reply(`EXAMINE "Odeslan&AOE- po&AWE-ta"`)
	r2.cmd("UID FETCH 1 (UID BODY.PEEK[])")
	if l := r2.line(); l != "* 1 FETCH (UID 1 BODY[] {"+fmt.Sprint(len(hostileMessage(1, "sent").Body))+"}" {
		t.Fatalf("body FETCH %q", l)
	}
	r2.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	got := make([]byte, 100)
	n, _ := r2.r.Read(got)
	if n != 10 {
		t.Errorf("sent %d bytes of the literal before stalling, want 10", n)
	}
	r.c.Close()
	r2.c.Close()
	waitClosed(t, h)
}
