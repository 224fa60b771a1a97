package testbed

import (
	"io"
	"log"
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// StartMemServer serves one in-memory IMAP account (with an INBOX) on a
// loopback port without TLS, for behaviour Dovecot cannot show: wrap turns
// each session into one that announces or hides something (an
// APPENDLIMIT, no AUTH=PLAIN). A wrapped session hides go-imap's IMAP4rev2
// interfaces, so the server speaks IMAP4rev1 only. It returns the port and
// stops when the test ends.
func StartMemServer(t testing.TB, user, password string, wrap func(imapserver.Session) imapserver.Session) int {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return wrap(mem.NewSession()), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}
