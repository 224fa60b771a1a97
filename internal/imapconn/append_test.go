package imapconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

func appendMessages(n, size int) []imapconn.AppendMessage {
	var out []imapconn.AppendMessage
	for i := range n {
		body := fmt.Sprintf("Message-ID: <%d@batch.test>\r\nSubject: zpráva %d\r\n\r\n", i, i)
		body += strings.Repeat(fmt.Sprintf("line %d\r\n", i), max(0, size-len(body))/8+1)
		out = append(out, imapconn.AppendMessage{Flags: []imap.Flag{imap.FlagSeen, "$Label1"},
			Date: time.Date(2019, 3, 4, 5, 6, i%60, 0, time.FixedZone("", 3600)),
			Size: int64(len(body)), Body: strings.NewReader(body)})
	}
	return out
}

func dialDovecot(t *testing.T, d *testbed.Dovecot, user string) *imapconn.Conn {
	t.Helper()
	pool, err := imapconn.LoadCAFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: d.Host, Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool},
		imapconn.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, user, "heslo"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A batch goes into Dovecot as one MULTIAPPEND with LITERAL+: every
// message byte for byte, with its flags and date, UIDs in order; the
// connection goes on working for go-imap's commands.
func TestAppendBatchDovecot(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser("batch@new.test", "heslo", 0); err != nil {
		t.Fatal(err)
	}
	c := dialDovecot(t, d, "batch@new.test")
	ctx := context.Background()
	if !c.MultiAppend(ctx) {
		t.Fatal("Dovecot does not offer MULTIAPPEND")
	}
	const folder = "Odeslaná pošta & \"věci\""
	if err := c.Create(ctx, folder, ""); err != nil {
		t.Fatal(err)
	}
	msgs := appendMessages(50, 20<<10)
	msgs = append(msgs, appendMessages(1, 0)...) // a small one
	var bodies [][]byte
	for i := range msgs {
		b := new(bytes.Buffer)
		b.ReadFrom(msgs[i].Body)
		bodies = append(bodies, b.Bytes())
		msgs[i].Body = bytes.NewReader(b.Bytes())
	}
	uids, err := c.Append(ctx, folder, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != len(msgs) || uids[0] != 1 || uids[len(uids)-1] != imap.UID(len(msgs)) {
		t.Fatalf("UIDs %v, want 1..%d", uids, len(msgs))
	}
	// go-imap's own commands still work on the connection.
	if _, err := c.Examine(ctx, folder); err != nil {
		t.Fatal(err)
	}
	got, err := c.FetchMeta(ctx, uids, nil)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("fetch: %d messages, %v", len(got), err)
	}
	for i, g := range got {
		if g.Size != int64(len(bodies[i])) || !g.Date.Equal(msgs[i].Date) || !slices.Contains(g.Flags, "$Label1") {
			t.Errorf("message %d: size %d date %s flags %v; want %d, %s", i, g.Size, g.Date, g.Flags, len(bodies[i]), msgs[i].Date)
		}
	}
	// A second batch on the same connection.
	more := appendMessages(3, 100)
	uids, err = c.Append(ctx, "INBOX", more)
	if err != nil || len(uids) != 3 {
		t.Fatalf("second batch: %v, %v", uids, err)
	}
	// A folder that does not exist: a server error, nothing stored.
	if _, err := c.Append(ctx, "Nikde", appendMessages(2, 100)); imapconn.KindOf(err) != imapconn.ErrServer {
		t.Errorf("append to a missing folder: %v, want a server error", err)
	}
}

// Over quota and too big are told apart, for a batch as for one message.
func TestAppendBatchRefusals(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{MaxMailSize: 64 << 10})
	if err := d.AddUser("full@new.test", "heslo", 200<<10); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := dialDovecot(t, d, "full@new.test")
	if _, err := c.Append(ctx, "INBOX", appendMessages(10, 30<<10)); !errors.Is(err, imapconn.ErrOverQuota) {
		t.Errorf("10 × 30 KiB into 200 KiB: %v, want over quota", err)
	}
	c = dialDovecot(t, d, "full@new.test")
	big := append(appendMessages(2, 1<<10), appendMessages(1, 100<<10)...)
	if _, err := c.Append(ctx, "INBOX", big); !errors.Is(err, imapconn.ErrTooBig) {
		t.Errorf("a 100 KiB message with a 64 KiB limit: %v, want too big", err)
	}
	c = dialDovecot(t, d, "full@new.test")
	if uids, err := c.Append(ctx, "INBOX", appendMessages(2, 1<<10)); err != nil || len(uids) != 2 {
		t.Errorf("what fits: %v, %v", uids, err)
	}
}

// A server without MULTIAPPEND and LITERAL+ gets one message per APPEND,
// each literal over 4 KiB after its continuation request (LITERAL-).
func TestAppendSynchronising(t *testing.T) {
	port := testbed.StartMemServer(t, "eva", "heslo", func(s imapserver.Session) imapserver.Session { return s })
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: port, Security: imapconn.Plain}, imapconn.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx, "eva", "heslo"); err != nil {
		t.Fatal(err)
	}
	if c.MultiAppend(ctx) {
		t.Fatal("the memory server offers MULTIAPPEND")
	}
	if _, err := c.Append(ctx, "INBOX", appendMessages(2, 100)); !errors.Is(err, imapconn.ErrAppendBatch) {
		t.Errorf("a batch without MULTIAPPEND: %v", err)
	}
	for i, m := range appendMessages(3, 10<<10) {
		if _, err := c.Append(ctx, "INBOX", []imapconn.AppendMessage{m}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Refused after a synchronising literal: the connection stays usable.
	if _, err := c.Append(ctx, "Nikde", appendMessages(1, 10<<10)); imapconn.KindOf(err) != imapconn.ErrServer {
		t.Errorf("append to a missing folder: %v, want a server error", err)
	}
	sel, err := c.Examine(ctx, "INBOX")
	if err != nil || sel.NumMessages != 3 {
		t.Fatalf("INBOX holds %v messages (%v), want 3", sel, err)
	}
}

// Login returns only once the CAPABILITY that go-imap sends by itself
// after a login is answered. Append writes its command on the connection
// itself, and a CAPABILITY written meanwhile went inside its literal
// (Courier stored it as the message's first line and answered BAD).
func TestLoginWaitsForCapabilities(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	h := testbed.StartHostile(t, testbed.HostileConfig{User: "eva", Password: "heslo",
		Folders: []testbed.HostileFolder{{Name: "INBOX"}}, Caps: []string{"UIDPLUS"}, CapabilityGate: gate})
	t.Cleanup(open) // before the server stops: its session waits for the gate
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: h.Port, Security: imapconn.Plain},
		imapconn.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	loggedIn := make(chan error, 1)
	go func() { loggedIn <- c.Login(ctx, "eva", "heslo") }()
	asked := func() bool {
		cmds := h.Commands()
		auth := slices.IndexFunc(cmds, func(c string) bool { return strings.HasPrefix(c, "AUTHENTICATE") })
		return auth >= 0 && slices.Contains(cmds[auth:], "CAPABILITY")
	}
	for deadline := time.Now().Add(5 * time.Second); !asked(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("go-imap sent no CAPABILITY after login; commands %q", h.Commands())
		}
	}
	select {
	case err := <-loggedIn:
		t.Fatalf("Login returned (%v) while go-imap's CAPABILITY was unanswered", err)
	case <-time.After(100 * time.Millisecond):
	}
	open()
	if err := <-loggedIn; err != nil {
		t.Fatal(err)
	}
	// An APPEND after it goes in whole.
	body := "Message-ID: <1@settle.test>\r\n\r\n" + strings.Repeat("line\r\n", 2000)
	uids, err := c.Append(ctx, "INBOX", []imapconn.AppendMessage{{Size: int64(len(body)), Body: strings.NewReader(body)}})
	if err != nil || len(uids) != 1 {
		t.Fatalf("append: %v, %v", uids, err)
	}
	if got := h.Messages("INBOX"); len(got) != 1 || string(got[0].Body) != body {
		t.Errorf("the server holds %d messages, want the one appended byte for byte", len(got))
	}
}
