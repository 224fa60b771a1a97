package diagnose

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

func codes(d *Diagnosis) string {
	var s []string
	for _, r := range d.Reasons {
		s = append(s, r.Code)
	}
	return strings.Join(s, ",")
}

// staticResolver answers A lookups from a map.
type staticResolver map[string][]string

func (s staticResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := s[strings.TrimSuffix(host, ".")]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
func (s staticResolver) LookupCNAME(context.Context, string) (string, error) { return "", nil }
func (s staticResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}
func (s staticResolver) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}
func (s staticResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

// Real logins against the test Dovecot, and the causes they get.
func TestLoginDiagnosis(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser("jana@firma.test", "spravne heslo", 0); err != nil {
		t.Fatal(err)
	}
	pool, err := imapconn.LoadCAFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ep := imapconn.Endpoint{Host: "127.0.0.1", Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool}
	ctx := context.Background()
	login := func(ep imapconn.Endpoint, user, pass string) error {
		c, err := imapconn.Dial(ctx, ep, imapconn.Options{Timeout: 2 * time.Second, DialTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Login(ctx, user, pass)
	}
	hostingHere := Expect{Addresses: []string{"127.0.0.1"}, IMAPPorts: []int{d.IMAPSPort}}
	// "localhost" stands for imap.<domain> after the DNS was moved: it
	// leads to this hosting.
	moved := staticResolver{"localhost": {"127.0.0.1"}}

	// A TLS server whose certificate is for another name.
	certPEM, keyPEM, _ := testbed.SelfSignedCert("mail.other.example")
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	tlsLn, _ := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	defer tlsLn.Close()
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	tests := []struct {
		name     string
		ep       imapconn.Endpoint
		user     string
		pass     string
		attempt  LoginAttempt
		kind     string
		first    string
		contains []string
		lacks    []string
	}{
		{name: "wrong password", ep: ep, user: "jana@firma.test", pass: "stare", kind: "auth", first: "password"},
		{name: "login without domain", ep: ep, user: "jana", pass: "spravne heslo", kind: "auth", first: "no_domain",
			contains: []string{"password"}},
		{name: "DNS already moved here", ep: imapconn.Endpoint{Host: "localhost", Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool},
			user: "jana@firma.test", pass: "stare", attempt: LoginAttempt{Resolver: moved, Hosting: hostingHere}, kind: "auth", first: "dns_moved",
			contains: []string{"password"}},
		{name: "Gmail needs an app password", ep: ep, user: "jana@gmail.com", pass: "x", kind: "auth", first: "app_password"},
		{name: "same hosting, old service name", ep: ep, user: "jana@firma.test", pass: "x", kind: "auth",
			attempt: LoginAttempt{HostingNames: []string{"127.0.0.1"}, Hosting: Expect{IMAPPorts: []int{d.IMAPSPort}}}, first: "old_service_name"},
		// The hosting's IMAP answers on 993 and 143 of 127.0.0.1; the old
		// server is another service on the same address, as in the demo.
		{name: "same address, another server", ep: imapconn.Endpoint{Host: "localhost", Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool},
			user: "jana@firma.test", pass: "stare", kind: "auth", first: "password", lacks: []string{"dns_moved", "old_service_name"},
			attempt: LoginAttempt{Resolver: moved, Hosting: Expect{Addresses: []string{"127.0.0.1"}}, HostingNames: []string{"localhost", "127.0.0.1"}}},
		{name: "certificate for another name", ep: imapconn.Endpoint{Host: "127.0.0.1", Port: tlsLn.Addr().(*net.TCPAddr).Port, Security: imapconn.TLS},
			user: "jana@firma.test", pass: "x", kind: "tls", first: "cert_name"},
		{name: "closed port", ep: imapconn.Endpoint{Host: "127.0.0.1", Port: closedPort, Security: imapconn.TLS},
			user: "jana@firma.test", pass: "x", kind: "connect", first: "port"},
		{name: "no such name", ep: imapconn.Endpoint{Host: "imap.no-such-domain.invalid", Port: 993, Security: imapconn.TLS},
			user: "jana@firma.test", pass: "x", kind: "resolve", first: "typo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := login(tc.ep, tc.user, tc.pass)
			if err == nil {
				t.Fatal("the login worked")
			}
			a := tc.attempt
			a.Server, a.User, a.Err = tc.ep, tc.user, err
			diag := Login(ctx, a)
			if diag.Kind != tc.kind || len(diag.Reasons) == 0 || diag.Reasons[0].Code != tc.first {
				t.Errorf("kind %s, reasons %s; want %s first with kind %s (%v)", diag.Kind, codes(diag), tc.first, tc.kind, err)
			}
			for _, c := range tc.contains {
				if !strings.Contains(codes(diag), c) {
					t.Errorf("reasons %s lack %s", codes(diag), c)
				}
			}
			for _, c := range tc.lacks {
				if strings.Contains(codes(diag), c) {
					t.Errorf("reasons %s include %s", codes(diag), c)
				}
			}
			if strings.Contains(diag.Summary.String()+diag.ServerText, tc.pass) && len(tc.pass) > 1 {
				t.Error("the password appears in the diagnosis")
			}
			if tc.kind == "tls" {
				c := diag.Certificate
				if c == nil || len(c.Fingerprint) != 64 || !strings.Contains(strings.Join(c.DNSNames, " "), "mail.other.example") {
					t.Errorf("certificate %+v", c)
				}
			}
		})
	}
}

func TestServerCodes(t *testing.T) {
	for text, want := range map[string]string{
		"[UNAVAILABLE] Temporary failure":                                    "unavailable",
		"Maximum number of connections from user+IP exceeded":                "too_many",
		"[ALERT] Please log in via your web browser":                         "server_alert",
		"Application-specific password required: https://support.google.com": "app_password",
	} {
		code, rest, _ := strings.Cut(strings.TrimPrefix(text, "["), "] ")
		ie := &imapconn.Error{Kind: imapconn.ErrAuth, Text: text}
		if strings.HasPrefix(text, "[") {
			ie.Code, ie.Text = imap.ResponseCode(code), rest
		}
		d := Login(context.Background(), LoginAttempt{Server: imapconn.Endpoint{Host: "imap.x.cz"}, User: "a@x.cz", Err: ie})
		if !strings.Contains(codes(d), want) {
			t.Errorf("%q: reasons %s, want %s", text, codes(d), want)
		}
	}
}

// A throttled login (Exchange's backoff, a connection cap) is the
// provider's load, not a wrong password: no password advice.
func TestThrottledLogin(t *testing.T) {
	for _, text := range []string{"Request is throttled. Suggested Backoff Time: 299609 milliseconds", "Too many simultaneous connections."} {
		err := &imapconn.Error{Kind: imapconn.ErrThrottled, Text: text}
		d := Login(context.Background(), LoginAttempt{Server: imapconn.Endpoint{Host: "outlook.office365.com"}, User: "a@firma.cz", Err: err})
		if got := codes(d); !strings.Contains(got, "busy") || strings.Contains(got, "password") || d.Kind != "throttled" {
			t.Errorf("%q: kind %s, reasons %s; want busy and no password advice", text, d.Kind, got)
		}
	}
}

// Failed logins are counted per customer and per resolved server: one
// customer's typos do not hold back another's, several spellings of one
// server are one server, and parallel attempts are counted before they
// are tried.
func TestFailedLogins(t *testing.T) {
	f := NewFailedLogins(nil)
	f.Resolve = func(_ context.Context, host string) ([]string, error) {
		switch strings.ToLower(strings.TrimSuffix(host, ".")) {
		case "imap.x.cz", "mail.x.cz", "192.0.2.10":
			return []string{"192.0.2.10"}, nil
		}
		return nil, errors.New("no such host")
	}
	ctx := context.Background()
	server := f.Server(ctx, "imap.x.cz", 993)
	for _, spelling := range []string{"IMAP.x.cz", "mail.x.cz.", "192.0.2.10"} {
		if got := f.Server(ctx, spelling, 993); got != server {
			t.Errorf("%s is %s, imap.x.cz %s", spelling, got, server)
		}
	}
	fail := func(tenant int64, user string) {
		t.Helper()
		done, _, _ := f.Begin(ctx, tenant, server, user)
		if done == nil {
			t.Fatalf("tenant %d %s refused too early", tenant, user)
		}
		done(true)
	}
	for range 3 {
		fail(1, "a@x.cz")
	}
	if d, wait, _ := f.Begin(ctx, 1, server, "A@x.cz"); d != nil || wait <= 0 || wait > f.Window {
		t.Errorf("after 3 failures: allowed %v, wait %s", d != nil, wait)
	}
	if d, _, _ := f.Begin(ctx, 2, server, "a@x.cz"); d == nil {
		t.Error("another customer's login was held back by the first one's failures")
	}
	done, _, _ := f.Begin(ctx, 1, server, "b@x.cz")
	if done == nil {
		t.Fatal("another login of the server was held back after 3 failures")
	}
	done(false) // it works: not counted
	for i := range 7 {
		fail(1, "user"+string(rune('a'+i))+"@x.cz")
	}
	if d, _, _ := f.Begin(ctx, 1, f.Server(ctx, "mail.x.cz", 993), "new@x.cz"); d != nil {
		t.Error("a server with 10 failures is still tried under another name")
	}
	// Parallel attempts: three running at once fill one login's allowance.
	g := NewFailedLogins(nil)
	var dones []func(bool)
	for range 3 {
		d, _, _ := g.Begin(ctx, 1, "s:993", "c@x.cz")
		if d == nil {
			t.Fatal("refused before the allowance was used")
		}
		dones = append(dones, d)
	}
	if d, _, _ := g.Begin(ctx, 1, "s:993", "c@x.cz"); d != nil {
		t.Error("a fourth parallel attempt was allowed")
	}
	for _, d := range dones {
		d(false)
	}
	if d, _, _ := g.Begin(ctx, 1, "s:993", "c@x.cz"); d == nil {
		t.Error("successful attempts still count")
	}
	// Failures count for the window from their start, no longer.
	h := NewFailedLogins(nil)
	h.Window = 50 * time.Millisecond
	for range 3 {
		d, _, _ := h.Begin(ctx, 1, "s:993", "e@x.cz")
		d(true)
	}
	if d, _, _ := h.Begin(ctx, 1, "s:993", "e@x.cz"); d != nil {
		t.Error("a fourth failure within the window was allowed")
	}
	time.Sleep(60 * time.Millisecond)
	if d, _, _ := h.Begin(ctx, 1, "s:993", "e@x.cz"); d == nil {
		t.Error("the window did not pass")
	}
}

// The provider to sign in with comes from the server's name or the
// login's domain.
func TestProviderSignIn(t *testing.T) {
	for _, tc := range []struct{ host, user, want string }{
		{"imap.gmail.com", "jana@firma.cz", "google"},
		{"imap.example.com", "jana@gmail.com", "google"},
		{"OUTLOOK.office365.com", "jana@firma.cz", "microsoft"},
		{"imap.example.com", "jana@hotmail.com", "microsoft"},
		{"imap.seznam.cz", "jana@seznam.cz", ""},
		{"imap.example.com", "jana@example.com", ""},
	} {
		got := ""
		if p := ProviderFor(tc.host, tc.user); p != nil {
			got = p.SignIn
		}
		if got != tc.want {
			t.Errorf("%s, %s: sign in with %q, want %q", tc.host, tc.user, got, tc.want)
		}
	}
}
