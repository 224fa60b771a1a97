package testbed

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// The folders are made from the labels as Gmail makes them: INBOX, a
// folder per user label (and its parents), the [Gmail] folders with their
// SPECIAL-USE attributes and localized names, Spam and Trash kept out of
// the others; each folder has UIDs of its own, and a message that leaves
// a folder and comes back gets a new one.
func TestGmailFolders(t *testing.T) {
	msgs := []GmailMessage{
		{MsgID: 10, Labels: []string{GmailInbox, "Práce/Klienti", GmailStarred}},
		{MsgID: 20, Labels: []string{GmailSent}},
		{MsgID: 30, Labels: []string{GmailTrash, "Práce/Klienti"}},
		{MsgID: 40},
	}
	for i := range msgs {
		msgs[i].Body = fmt.Appendf(nil, "Subject: %d\r\n\r\n.\r\n", msgs[i].MsgID)
	}
	g := StartGmail(t, GmailConfig{User: hostileUser, Password: hostilePass, Locale: "cs", Messages: msgs})
	c := dialHostile(t, g.Hostile)
	if err := c.Login(hostileUser, hostilePass).Wait(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has("X-GM-EXT-1") {
		t.Errorf("capabilities %v", c.Caps())
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range list {
		var attrs []string
		for _, a := range l.Attrs {
			attrs = append(attrs, string(a))
		}
		got[l.Mailbox] = strings.Join(attrs, " ")
	}
	want := map[string]string{"INBOX": "", "Práce": "", "Práce/Klienti": "", "[Gmail]": `\Noselect \HasChildren`,
		"[Gmail]/Všechny zprávy": `\All`, "[Gmail]/Odeslaná pošta": `\Sent`, "[Gmail]/Koncepty": `\Drafts`,
		"[Gmail]/Spam": `\Junk`, "[Gmail]/Koš": `\Trash`, "[Gmail]/S hvězdičkou": `\Flagged`, "[Gmail]/Důležité": `\Important`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("folders\n%v\nwant\n%v", got, want)
	}
	held := func(folder string) []uint64 {
		t.Helper()
		var ids []uint64
		for _, m := range g.Messages(folder) {
			ids = append(ids, msgs[slices.IndexFunc(msgs, func(x GmailMessage) bool {
				return strings.Contains(string(m.Body), fmt.Sprintf("Subject: %d\r", x.MsgID))
			})].MsgID)
		}
		return ids
	}
	for folder, ids := range map[string][]uint64{
		"INBOX": {10}, "Práce/Klienti": {10}, "[Gmail]/Všechny zprávy": {10, 20, 40}, "[Gmail]/Odeslaná pošta": {20},
		"[Gmail]/Koš": {30}, "[Gmail]/S hvězdičkou": {10}, "[Gmail]/Spam": nil,
	} {
		if got := held(folder); !slices.Equal(got, ids) {
			t.Errorf("%s holds %v, want %v", folder, got, ids)
		}
	}
	// On the wire: names in modified UTF-7, labels as Gmail writes them.
	conn, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "a LOGIN %s %s\r\nb EXAMINE \"[Gmail]/V&AWE-echny zpr&AOE-vy\"\r\nc UID FETCH 1 (X-GM-MSGID X-GM-LABELS)\r\n",
		quote(hostileUser), quote(hostilePass))
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		if strings.HasPrefix(line, "c ") {
			break
		}
	}
	if fetch := lines[len(lines)-2]; fetch != `* 1 FETCH (UID 1 X-GM-MSGID 10 X-GM-LABELS ("\\Inbox" Pr&AOE-ce/Klienti "\\Starred"))`+"\r\n" {
		t.Errorf("FETCH reply %q", fetch)
	}
	// A label goes and comes back: a new UID in its folder.
	uid := g.Messages("Práce/Klienti")[0].UID
	g.SetLabels(10, GmailInbox)
	if got := held("Práce/Klienti"); len(got) != 0 {
		t.Errorf("after the label went: %v", got)
	}
	g.SetLabels(10, GmailInbox, "Práce/Klienti", "Nový")
	if m := g.Messages("Práce/Klienti"); len(m) != 1 || m[0].UID <= uid {
		t.Errorf("after the label came back: %+v (UID was %d)", m, uid)
	}
	if got := held("Nový"); !slices.Equal(got, []uint64{10}) {
		t.Errorf("a new label's folder holds %v", got)
	}
}
