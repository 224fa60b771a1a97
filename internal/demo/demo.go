// Package demo runs two small IMAP servers inside the process, on loopback
// with TLS, and fills the source with sample mail: everything a newcomer
// needs to watch a complete migration without any server of their own.
package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

// Env is a running pair of demo servers and the account that connects them.
type Env struct {
	Account  engine.Account
	Messages int // messages put on the source
	close    []func() error
}

// Close stops both servers.
func (e *Env) Close() error {
	var errs []error
	for _, c := range e.close {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Start starts the servers and loads a sample mailbox of about n messages
// into the source. The destination has the usual special folders (Sent,
// Drafts, Trash, Junk, Archive) without SPECIAL-USE, so the sample's Czech
// folder names show the name table at work.
func Start(ctx context.Context, n int) (*Env, error) {
	certPEM, keyPEM, err := testbed.SelfSignedCert("localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	env := &Env{}
	srcEP, err := env.serve(&cert, roots, "jana@old.example", "demo-source-pw", nil)
	if err != nil {
		env.Close()
		return nil, err
	}
	dstEP, err := env.serve(&cert, roots, "jana@new.example", "demo-dest-pw",
		[]string{"Sent", "Drafts", "Trash", "Junk", "Archive"})
	if err != nil {
		env.Close()
		return nil, err
	}
	env.Account = engine.Account{Source: srcEP, SourceUser: "jana@old.example", SourcePassword: "demo-source-pw",
		Dest: dstEP, DestUser: "jana@new.example", DestPassword: "demo-dest-pw"}

	corpus := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: 2026, Messages: n})
	cl, err := imapclient.DialTLS(srcEP.Addr(), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}})
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("connect to the demo source: %w", err)
	}
	defer cl.Close()
	if err := cl.Login(env.Account.SourceUser, env.Account.SourcePassword).Wait(); err != nil {
		env.Close()
		return nil, fmt.Errorf("log in to the demo source: %w", err)
	}
	if err := corpus.Load(ctx, cl); err != nil {
		env.Close()
		return nil, fmt.Errorf("fill the demo source: %w", err)
	}
	env.Messages = len(corpus.Messages)
	return env, nil
}

func (e *Env) serve(cert *tls.Certificate, roots *x509.CertPool, user, password string, folders []string) (imapconn.Endpoint, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	for _, f := range append([]string{"INBOX"}, folders...) {
		if err := u.Create(f, nil); err != nil {
			return imapconn.Endpoint{}, fmt.Errorf("demo folder %s: %w", f, err)
		}
		if err := u.Subscribe(f); err != nil {
			return imapconn.Endpoint{}, fmt.Errorf("demo folder %s: %w", f, err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		Logger: log.New(io.Discard, "", 0),
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		return imapconn.Endpoint{}, fmt.Errorf("demo server: %w", err)
	}
	go srv.Serve(ln)
	e.close = append(e.close, srv.Close)
	port := ln.Addr().(*net.TCPAddr).Port
	return imapconn.Endpoint{Host: "127.0.0.1", Port: port, Security: imapconn.TLS, RootCAs: roots}, nil
}
