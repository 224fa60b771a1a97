package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/testbed"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in    string
		plain bool
		want  Endpoint
		err   string
	}{
		{in: "imaps://imap.old.tld", want: Endpoint{Host: "imap.old.tld", Port: 993, Security: TLS}},
		{in: "imap.old.tld", want: Endpoint{Host: "imap.old.tld", Port: 993, Security: TLS}},
		{in: " IMAPS://imap.old.tld:10993 ", want: Endpoint{Host: "imap.old.tld", Port: 10993, Security: TLS}},
		{in: "imap://mail.x.cz", want: Endpoint{Host: "mail.x.cz", Port: 143, Security: StartTLS}},
		{in: "imap://mail.x.cz", plain: true, want: Endpoint{Host: "mail.x.cz", Port: 143, Security: Plain}},
		{in: "imaps://[2001:db8::1]:993", want: Endpoint{Host: "2001:db8::1", Port: 993, Security: TLS}},
		{in: "", err: "no server address"},
		{in: "pop3://x.cz", err: "unknown scheme"},
		{in: "imaps://user:pw@x.cz", err: "must not contain a login"},
		{in: "imaps://x.cz:99999", err: "port"},
		{in: "imaps://x.cz/INBOX", err: "path"},
		{in: "imaps://:993", err: "no host"},
		{in: "imaps://imap.příklad.cz", want: Endpoint{Host: "imap.xn--pklad-zsa96e.cz", Port: 993, Security: TLS}},
		{in: "imap_old.x.cz.", want: Endpoint{Host: "imap_old.x.cz.", Port: 993, Security: TLS}},
		{in: "imaps://[::ffff:8.8.8.8]", want: Endpoint{Host: "::ffff:8.8.8.8", Port: 993, Security: TLS}},
		{in: "]", err: "not a valid server name"},
		{in: "imaps://a!b.cz", err: "not a valid server name"},
		{in: "imaps://a..cz", err: "not a valid server name"},
		{in: "imaps://2130706433", err: "not a valid server name"},
		{in: "imaps://0x7f.1", err: "not a valid server name"},
		{in: "imaps://127.1:993", err: "not a valid server name"},
		{in: "imaps://" + strings.Repeat("a", 64) + ".cz", err: "not a valid server name"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEndpoint(tc.in, tc.plain)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"dovecot over quota", no(imap.ResponseCodeOverQuota, "Quota exceeded (mailbox for user is full)"), ErrOverQuota},
		{"quota without a code", no("", "Mailbox is full / Blocks limit exceeded"), ErrOverQuota},
		{"cyrus over quota", no("", "Over quota"), ErrOverQuota},
		{"courier over quota", no(imap.ResponseCodeAlert, "You exceeded your mail quota."), ErrOverQuota},
		{"zimbra over quota", no("", "APPEND failed: mailbox quota exceeded"), ErrOverQuota},
		{"disk full", no("", "write failed: No space left on device"), ErrOverQuota},
		{"dovecot cannot count the quota", no("", "Internal quota calculation error (0.004 + 0.000 + 0.003 secs)."), ErrServer},
		{"quota root unknown", no("", "Unknown quota root"), ErrServer},
		{"dovecot max mail size", no(imap.ResponseCodeLimit, "Mail size is larger than the maximum size allowed by server configuration"), ErrTooBig},
		{"appendlimit", no(imap.ResponseCodeTooBig, "Message too large"), ErrTooBig},
		{"exchange size", no("", "Maximum size of appendable message has been exceeded"), ErrTooBig},
		{"auth", no(imap.ResponseCodeAuthenticationFailed, "Authentication failed."), ErrAuth},
		{"other NO", no(imap.ResponseCodeServerBug, "Internal error"), ErrServer},
		{"dns", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, ErrResolve},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ErrConnect},
		{"certificate", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), ErrTLS},
		{"dropped", errors.New("unexpected EOF"), ErrConnLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("op", "host:1", tc.err)
			if !errors.Is(err, tc.want) || KindOf(err) != tc.want {
				t.Errorf("kind %v, want %v (%v)", KindOf(err), tc.want, err)
			}
		})
	}
	if err := classify("op", "h", context.Canceled); err != context.Canceled {
		t.Errorf("cancellation must stay itself, got %v", err)
	}
}

func TestUntrustedAddressGuard(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "::1", "fd00::1", "100.64.1.1", "0.0.0.0", "::ffff:127.0.0.1"} {
		if !Internal(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "2a00:1450::1", "185.1.2.3"} {
		if Internal(netip.MustParseAddr(a)) {
			t.Errorf("%s refused", a)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ep := Endpoint{Host: "localhost", Port: ln.Addr().(*net.TCPAddr).Port, Security: Plain, Untrusted: true}
	_, err = Dial(context.Background(), ep, Options{})
	if !errors.Is(err, ErrForbiddenAddress) || !errors.Is(err, ErrConnect) {
		t.Errorf("dial to loopback: %v, want a refused private address", err)
	}
}

// A certificate the customer chose to trust is accepted, and only that one.
func TestTrustFingerprint(t *testing.T) {
	certPEM, keyPEM, err := testbed.SelfSignedCert("mail.other.example")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
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
				c.Write([]byte("* OK ready\r\n"))
				time.Sleep(time.Second)
				c.Close()
			}()
		}
	}()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	ep := Endpoint{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: TLS}
	if _, err := Dial(context.Background(), ep, Options{}); !errors.Is(err, ErrTLS) {
		t.Fatalf("untrusted certificate: %v", err)
	}
	ep.TrustFingerprint = strings.ToLower(Fingerprint(leaf))
	c, err := Dial(context.Background(), ep, Options{})
	if err != nil {
		t.Fatalf("trusted certificate: %v", err)
	}
	c.Close()
	ep.TrustFingerprint = strings.Repeat("AB", 32)
	if _, err := Dial(context.Background(), ep, Options{}); !errors.Is(err, ErrTLS) {
		t.Errorf("another fingerprint: %v", err)
	}
}
