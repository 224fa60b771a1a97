package imapconn

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseGmailFetch(t *testing.T) {
	for _, c := range []struct {
		line   string
		want   GmailMessage
		ok     bool
		broken bool
	}{
		{line: `* 1 FETCH (UID 7 X-GM-MSGID 1278455344230334865 X-GM-LABELS ("\\Inbox" "\\Sent" Work/Clients "Muy Importante"))` + "\r\n",
			want: GmailMessage{UID: 7, MsgID: 1278455344230334865, Labels: []string{`\Inbox`, `\Sent`, "Work/Clients", "Muy Importante"}}, ok: true},
		// Google's own example: system labels as flags, the order its own.
		{line: `* 1 FETCH (X-GM-LABELS (\Inbox \Sent Important "Muy Importante") UID 302 X-GM-MSGID 18446744073709551615)` + "\r\n",
			want: GmailMessage{UID: 302, MsgID: 18446744073709551615, Labels: []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}}, ok: true},
		{line: "* 3 fetch (uid 9 x-gm-msgid 5 x-gm-labels ())\r\n", want: GmailMessage{UID: 9, MsgID: 5}, ok: true},
		{line: "* 3 FETCH (UID 9 X-GM-MSGID 5 X-GM-LABELS NIL)\r\n", want: GmailMessage{UID: 9, MsgID: 5}, ok: true},
		// Modified UTF-7, a literal, an escaped quote, other items.
		{line: "* 2 FETCH (MODSEQ (12) UID 4 X-GM-THRID 1 X-GM-MSGID 6 FLAGS (\\Seen $Forwarded) X-GM-LABELS (\"Pr&AOE-ce/Klienti\" {6}\r\na (b)c \"say \\\"hi\\\"\" D&AW8-le&AX4-it&AOk-))\r\n",
			want: GmailMessage{UID: 4, MsgID: 6, Labels: []string{"Práce/Klienti", "a (b)c", `say "hi"`, "Důležité"}}, ok: true},
		// Not valid modified UTF-7: kept as sent.
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 6 X-GM-LABELS (a&b))\r\n", want: GmailMessage{UID: 4, MsgID: 6, Labels: []string{"a&b"}}, ok: true},
		// An unsolicited flag update: not ours.
		{line: "* 2 FETCH (FLAGS (\\Seen))\r\n", want: GmailMessage{}, ok: false},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID x)\r\n", broken: true},
		{line: "* 2 FETCH (UID 0 X-GM-MSGID 1)\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 1 X-GM-LABELS (\"open\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 1 X-GM-LABELS ({10}\r\nab))\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 1 X-GM-LABELS ((a)))\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 1 X-GM-LABELS \"a\")\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID 1) trailing\r\n", broken: true},
		{line: "* 2 FETCH (UID 4 X-GM-MSGID)\r\n", broken: true},
		{line: "* 2 FETCH " + strings.Repeat("(", 20) + strings.Repeat(")", 20) + "\r\n", broken: true},
		{line: "* OK hello\r\n", broken: true},
	} {
		got, ok, err := parseGmailFetch([]byte(c.line))
		if c.broken {
			if err == nil {
				t.Errorf("%q: no error, got %+v", c.line, got)
			}
			continue
		}
		if err != nil || ok != c.ok || got.UID != c.want.UID || got.MsgID != c.want.MsgID || !slices.Equal(got.Labels, c.want.Labels) {
			t.Errorf("%q:\n got %+v, %v, %v\nwant %+v, %v", c.line, got, ok, err, c.want, c.ok)
		}
	}
}

func FuzzGmailFetch(f *testing.F) {
	for _, s := range []string{
		`* 1 FETCH (UID 7 X-GM-MSGID 1 X-GM-LABELS ("\\Inbox" Work/Clients "a b"))` + "\r\n",
		"* 2 FETCH (UID 4 X-GM-MSGID 6 X-GM-LABELS (\"Pr&AOE-ce\" {3}\r\nabc ~{1}\r\nx NIL))\r\n",
		"* 2 FETCH (BODY[HEADER.FIELDS (A B)] {2}\r\nab UID 3 X-GM-MSGID 9)\r\n",
		"* 2 FETCH (UID 4 X-GM-MSGID 1 X-GM-LABELS (&Jjo-&-))\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok, err := parseGmailFetch(b)
		if ok && (err != nil || m.UID == 0) {
			t.Fatalf("%q: ok with UID %d, error %v", b, m.UID, err)
		}
	})
}

// Untagged FETCH responses, literals and all, go to FetchGmail while its
// command runs, with its tagged reply; everything else goes to go-imap,
// however the bytes arrive.
func TestGuardDivertFetch(t *testing.T) {
	in := "* 3 EXISTS\r\n* 1 FETCH (UID 4 X-GM-LABELS ({5}\r\nG1 OK \"b\"))\r\n* 12 EXPUNGE\r\n" +
		"* OK [ALERT] * 2 FETCH\r\n* 2 FETCH (UID 5 X-GM-LABELS ())\r\nG1 OK done\r\n"
	want := "* 3 EXISTS\r\n* 12 EXPUNGE\r\n* OK [ALERT] * 2 FETCH\r\n"
	wantDiverted := []string{"* 1 FETCH (UID 4 X-GM-LABELS ({5}\r\nG1 OK \"b\"))\r\n",
		"* 2 FETCH (UID 5 X-GM-LABELS ())\r\n", "G1 OK done\r\n"}
	for _, step := range []int{1, 2, 7, 4096} {
		g := newGuard(&readerConn{r: strings.NewReader(in), step: step})
		lines := g.divert("G1", true)
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for l := range lines {
				got = append(got, string(l))
				if strings.HasPrefix(string(l), "G1 ") {
					g.undivert()
					return
				}
			}
		}()
		passed, err := io.ReadAll(g)
		<-done
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if string(passed) != want {
			t.Errorf("step %d: go-imap got %q, want %q", step, passed, want)
		}
		if !slices.Equal(got, wantDiverted) {
			t.Errorf("step %d: diverted %q", step, got)
		}
	}
}

// A literal in diverted data counts towards the line's bound.
func TestGuardDivertFetchBounded(t *testing.T) {
	in := "* 1 FETCH (X-GM-LABELS ({2000000}\r\n" + strings.Repeat("x", 100)
	g := newGuard(&readerConn{r: strings.NewReader(in), step: 4096})
	g.divert("G1", true)
	if _, err := io.ReadAll(g); err == nil {
		t.Fatal("a literal larger than a line may be was taken")
	}
}

// The guard's test of a line's start never panics, and a line it took for
// a FETCH response stays one however it goes on.
func FuzzUntaggedFetch(f *testing.F) {
	for _, s := range []string{"* 1 FETCH (", "* 12 fetch", "* OK", "*", "* 1", "* 99999999999 FETCH "} {
		f.Add([]byte(s), []byte("x"))
	}
	f.Fuzz(func(t *testing.T, b, more []byte) {
		if untaggedFetch(b) == divertTaken && untaggedFetch(append(b, more...)) != divertTaken {
			t.Fatalf("%q taken, %q not", b, append(b, more...))
		}
	})
}
