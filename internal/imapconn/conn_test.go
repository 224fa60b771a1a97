package imapconn_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

// Passwords of any characters log in over TLS and STARTTLS (SASL PLAIN);
// a wrong one is an authentication error.
func TestLoginAnyPassword(t *testing.T) {
	const user, pass = "eva@firma.test", `"quoted" \back\ {3}` + "\x7f ž 日本"
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser(user, pass, 0); err != nil {
		t.Fatal(err)
	}
	pool, err := imapconn.LoadCAFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ep := range []imapconn.Endpoint{
		{Host: d.Host, Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool},
		{Host: d.Host, Port: d.IMAPPort, Security: imapconn.StartTLS, RootCAs: pool},
	} {
		c, err := imapconn.Dial(ctx, ep, imapconn.Options{})
		if err != nil {
			t.Fatalf("%s: %v", ep.Security, err)
		}
		if err := c.Login(ctx, user, pass); err != nil {
			t.Fatalf("%s login: %v", ep.Security, err)
		}
		c.Logout(ctx)
		c, err = imapconn.Dial(ctx, ep, imapconn.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx, user, pass+"x"); !errors.Is(err, imapconn.ErrAuth) {
			t.Errorf("wrong password: %v, want ErrAuth", err)
		}
		c.Close()
	}
}

// loginOnly hides AUTH=PLAIN, as some old servers do, so that the client
// must use the LOGIN command.
type loginOnly struct{ imapserver.Session }

func (loginOnly) AuthenticateMechanisms() []string { return nil }
func (loginOnly) Authenticate(string) (sasl.Server, error) {
	return nil, errors.New("no SASL here")
}

func TestLoginCommandWithLiteralPassword(t *testing.T) {
	const user, pass = "eva@firma.test", `"quoted" \back\ {3}` + " ž 日本"
	port := testbed.StartMemServer(t, user, pass, func(s imapserver.Session) imapserver.Session { return loginOnly{s} })
	ep := imapconn.Endpoint{Host: "127.0.0.1", Port: port, Security: imapconn.Plain}
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, ep, imapconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Has(ctx, imap.AuthCap("PLAIN")) {
		t.Fatal("the server still offers AUTH=PLAIN")
	}
	if err := c.Login(ctx, user, pass); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	c2, err := imapconn.Dial(ctx, ep, imapconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login(ctx, user, "wrong"); !errors.Is(err, imapconn.ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}
}

// A server that greets and then never answers fails the command after the
// timeout instead of hanging; so does one that closes mid-command.
func TestSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"))
				bufio.NewReader(c).ReadString('\n') // the login, never answered
				time.Sleep(10 * time.Second)
			}()
		}
	}()
	ep := imapconn.Endpoint{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: imapconn.Plain}
	c, err := imapconn.Dial(context.Background(), ep, imapconn.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Login(context.Background(), "u", "p")
	if !errors.Is(err, imapconn.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %s", d)
	}
	if !c.Dead() {
		t.Error("connection still open after a timeout")
	}

	// Cancellation ends a waiting command at once, with the context's error.
	c, err = imapconn.Dial(context.Background(), ep, imapconn.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.Login(ctx, "u", "p"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}
