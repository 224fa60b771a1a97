// Package smtptest is a tiny SMTP relay for tests: it takes mails on a
// loopback port (with STARTTLS and AUTH PLAIN when asked to), keeps them,
// and can refuse a number of them first, as a relay that is down does.
package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mail is one mail the relay took.
type Mail struct {
	From string
	To   []string
	Data string // the message as sent
	// Subject and Body are decoded from Data.
	Subject string
	Body    string
}

// Server is a running relay.
type Server struct {
	Addr string
	// CAs trusts the relay's certificate (for STARTTLS).
	CAs *x509.CertPool
	// CAPEM is that certificate in PEM, for a configuration's CA file.
	CAPEM []byte

	t        testing.TB
	ln       net.Listener
	tls      *tls.Config
	user, pw string
	implicit bool // TLS from the first byte

	mu     sync.Mutex
	mails  []Mail
	refuse int
	tries  int
}

// Start runs a relay until the test ends. With user set, it offers
// STARTTLS and wants AUTH PLAIN with user and pw before taking mail.
func Start(t testing.TB, user, pw string) *Server {
	return start(t, user, pw, false)
}

// StartTLS runs a relay that speaks TLS from the first byte (port 465's
// "implicit TLS"), and wants AUTH PLAIN when user is set.
func StartTLS(t testing.TB, user, pw string) *Server {
	return start(t, user, pw, true)
}

func start(t testing.TB, user, pw string, implicit bool) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), t: t, ln: ln, user: user, pw: pw, implicit: implicit}
	if user != "" || implicit {
		s.tls, s.CAs, s.CAPEM = selfSigned(t)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Refuse makes the relay answer the next n mails with a temporary error.
func (s *Server) Refuse(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Mails returns the mails taken so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Tries is how many mails were offered, taken or refused.
func (s *Server) Tries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

// Wait waits until n mails were taken (or fails the test after timeout).
func (s *Server) Wait(n int, timeout time.Duration) []Mail {
	s.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := s.Mails(); len(m) >= n {
			return m
		}
	}
	s.t.Fatalf("the relay took %d mail(s), want %d", len(s.Mails()), n)
	return nil
}

func (s *Server) serve(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(time.Minute))
	if s.implicit {
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		c = tc
	}
	rd := bufio.NewReader(c)
	say := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	say("220 smtptest ready")
	var cur Mail
	authed, secure := s.user == "", s.implicit
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			if s.tls != nil && !secure {
				say("250-smtptest\r\n250-8BITMIME\r\n250 STARTTLS")
			} else if s.user != "" {
				say("250-smtptest\r\n250-8BITMIME\r\n250 AUTH PLAIN")
			} else {
				say("250-smtptest\r\n250 8BITMIME")
			}
		case "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, rd, secure = tc, bufio.NewReader(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			dec, _ := base64.StdEncoding.DecodeString(resp)
			if strings.ToUpper(mech) == "PLAIN" && string(dec) == "\x00"+s.user+"\x00"+s.pw && secure {
				authed = true
				say("235 ok")
			} else {
				say("535 authentication failed")
			}
		case "MAIL":
			if !authed {
				say("530 authentication required")
				continue
			}
			s.mu.Lock()
			s.tries++
			refuse := s.refuse > 0
			if refuse {
				s.refuse--
			}
			s.mu.Unlock()
			if refuse {
				say("451 try again later")
				continue
			}
			cur = Mail{From: addr(arg)}
			say("250 ok")
		case "RCPT":
			cur.To = append(cur.To, addr(arg))
			say("250 ok")
		case "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = b.String()
			cur.Subject, cur.Body = decode(s.t, cur.Data)
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			say("250 queued")
		case "RSET", "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

// addr takes the address out of "FROM:<a@b>" or "TO:<a@b>".
func addr(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}

func decode(t testing.TB, data string) (subject, body string) {
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Errorf("the relay got an unreadable mail: %v\n%s", err, data)
		return "", ""
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Errorf("subject: %v", err)
	}
	var b strings.Builder
	if _, err := bufio.NewReader(quotedprintable.NewReader(m.Body)).WriteTo(&b); err != nil {
		t.Errorf("body: %v", err)
	}
	return subject, strings.ReplaceAll(b.String(), "\r\n", "\n")
}

func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
