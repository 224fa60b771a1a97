// Package demo runs two small IMAP servers inside the process and fills the
// "old provider" with sample mail: everything a newcomer needs to watch a
// complete migration without any server of their own. The old provider
// listens without encryption on loopback (as many old servers do); the
// hosting uses TLS with a certificate made at start.
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
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/sample"
)

// The demo's names and passwords (they exist only inside the process).
const (
	Domain = "firma.example"
	// OldUser has mail on the old server and is synced into ExistingMailbox.
	OldUser, OldPassword = "jana@old.example", "demo-old-pw"
	// ExistingMailbox exists on the hosting before the migration.
	ExistingMailbox, ExistingPassword = "jana@firma.example", "demo-new-pw"
	// NewMailbox has mail on the old server and is created on the hosting
	// by the migration, with the same password.
	NewMailbox, NewPassword = "petr@firma.example", "demo-petr-pw"
	// FullUser has more mail on the old server than FullMailbox, which
	// exists on the hosting with a small quota: its migration pauses for
	// lack of space.
	FullUser, FullUserPassword = "eva@old.example", "demo-eva-old-pw"
	FullMailbox, FullPassword  = "eva@firma.example", "demo-eva-pw"
	// TypoMailbox exists on the hosting and is synced from TypoUser; after
	// the first copy the old provider changes TypoUser's password
	// (RejectLogins), so the re-sync fails with its ranked explanation.
	// TypoLogin is TypoUser without its domain, a common slip the check
	// explains.
	TypoUser, TypoUserPassword = "tomas@old.example", "demo-tomas-old-pw"
	TypoMailbox, TypoPassword  = "tomas@firma.example", "demo-tomas-pw"
	TypoLogin                  = "tomas"
)

// Env is a running pair of demo servers.
type Env struct {
	// Source is the old provider (plain IMAP on loopback).
	Source imapconn.Endpoint
	// Hosting is the hosting's IMAP server (TLS, trusted through RootCAs).
	Hosting imapconn.Endpoint
	// Driver manages the hosting's mailboxes.
	Driver   hosting.Driver
	Messages int // messages put on the source, in all
	close    []func() error
	source   *memHosting
}

// Close stops both servers.
func (e *Env) Close() error {
	var errs []error
	for _, c := range e.close {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Start starts the servers and loads about n sample messages into each of
// the old mailboxes of OldUser and NewMailbox, and fewer into FullUser's
// and TypoUser's. The hosting has the usual special folders (Sent,
// Drafts, Trash, Junk, Archive) without SPECIAL-USE, so the sample's Czech
// folder names show the name table at work; FullMailbox's quota there is
// half of FullUser's mail.
func Start(ctx context.Context, n int) (*Env, error) {
	certPEM, keyPEM, err := sample.SelfSignedCert("localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	src := newMemHosting(nil)
	env := &Env{source: src}
	dst := newMemHosting([]string{"Sent", "Drafts", "Trash", "Junk", "Archive"})
	olds := []struct {
		user, password string
		messages       int
	}{{OldUser, OldPassword, n}, {NewMailbox, NewPassword, n}, {FullUser, FullUserPassword, max(n/2, 2)},
		{TypoUser, TypoUserPassword, max(n/5, 1)}}
	for _, u := range olds {
		if err := src.Create(ctx, u.user, u.password, 0); err != nil {
			return nil, err
		}
	}
	for _, u := range [][2]string{{ExistingMailbox, ExistingPassword}, {TypoMailbox, TypoPassword}} {
		if err := dst.Create(ctx, u[0], u[1], 0); err != nil {
			return nil, err
		}
	}
	if env.Source, err = env.serve(src, nil); err != nil {
		env.Close()
		return nil, err
	}
	if env.Hosting, err = env.serve(dst, &cert); err != nil {
		env.Close()
		return nil, err
	}
	env.Hosting.RootCAs = roots
	env.Driver = dst
	for i, u := range olds {
		corpus := sample.GenerateCorpus(sample.CorpusOptions{Seed: uint64(2026 + i), Messages: u.messages})
		cl, err := imapclient.DialInsecure(env.Source.Addr(), nil)
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("connect to the demo source: %w", err)
		}
		err = cl.Login(u.user, u.password).Wait()
		if err == nil {
			err = corpus.Load(ctx, cl)
		}
		cl.Close()
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("fill the demo source: %w", err)
		}
		env.Messages += len(corpus.Messages)
		if u.user == FullUser {
			var size int64
			for _, m := range corpus.Messages {
				size += int64(len(m.Body))
			}
			if err := dst.Create(ctx, FullMailbox, FullPassword, size/2); err != nil {
				env.Close()
				return nil, err
			}
		}
	}
	return env, nil
}

// RejectLogins makes the old provider refuse user's login from now on, as
// when its password was changed there after the first copy.
func (e *Env) RejectLogins(user string) {
	e.source.mu.Lock()
	defer e.source.mu.Unlock()
	e.source.rejected[strings.ToLower(user)] = true
}

// serve runs an in-memory IMAP server on a loopback port, with implicit TLS
// when a certificate is given.
func (e *Env) serve(h *memHosting, cert *tls.Certificate) (imapconn.Endpoint, error) {
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &quotaSession{SessionIMAP4rev2: h.mem.NewSession().(imapserver.SessionIMAP4rev2), h: h}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		Logger:       log.New(io.Discard, "", 0),
		InsecureAuth: cert == nil,
	})
	var ln net.Listener
	var err error
	ep := imapconn.Endpoint{Host: "127.0.0.1", Security: imapconn.Plain}
	if cert != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
		ep.Security = imapconn.TLS
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return ep, fmt.Errorf("demo server: %w", err)
	}
	go srv.Serve(ln)
	e.close = append(e.close, srv.Close)
	ep.Port = ln.Addr().(*net.TCPAddr).Port
	return ep, nil
}

// memHosting is a hosting driver over an in-memory IMAP server, with a
// quota per mailbox.
type memHosting struct {
	mem     *imapmemserver.Server
	folders []string // made in every new mailbox

	mu       sync.Mutex
	boxes    []string
	quota    map[string]int64 // by lower-case address; 0 is unlimited
	used     map[string]int64 // bytes appended, which is all the mail there is
	rejected map[string]bool  // by lower-case address: logins refused from now on
}

func newMemHosting(folders []string) *memHosting {
	return &memHosting{mem: imapmemserver.New(), folders: folders, quota: map[string]int64{}, used: map[string]int64{},
		rejected: map[string]bool{}}
}

func (h *memHosting) List(_ context.Context, domain string) ([]hosting.Mailbox, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hosting.Mailbox
	for _, b := range h.boxes {
		if strings.HasSuffix(b, "@"+domain) {
			key := strings.ToLower(b)
			out = append(out, hosting.Mailbox{Address: b, QuotaBytes: h.quota[key], UsedBytes: h.used[key]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

func (h *memHosting) Create(_ context.Context, address, password string, quotaBytes int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.boxes {
		if strings.EqualFold(b, address) {
			return hosting.ErrExists
		}
	}
	u := imapmemserver.NewUser(address, password)
	for _, f := range append([]string{"INBOX"}, h.folders...) {
		if err := u.Create(f, nil); err != nil {
			return fmt.Errorf("demo folder %s: %w", f, err)
		}
		if err := u.Subscribe(f); err != nil {
			return fmt.Errorf("demo folder %s: %w", f, err)
		}
	}
	h.mem.AddUser(u)
	h.boxes = append(h.boxes, address)
	h.quota[strings.ToLower(address)] = quotaBytes
	return nil
}

func (h *memHosting) Quota(ctx context.Context, address string) (hosting.Mailbox, error) {
	bs, _ := h.List(ctx, address[strings.LastIndexByte(address, '@')+1:])
	for _, b := range bs {
		if strings.EqualFold(b.Address, address) {
			return b, nil
		}
	}
	return hosting.Mailbox{}, hosting.ErrNotFound
}

// reserve counts size more bytes in a mailbox, or refuses when they would
// not fit in its quota; a negative size gives bytes back.
func (h *memHosting) reserve(address string, size int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := strings.ToLower(address)
	if q := h.quota[key]; q > 0 && size > 0 && h.used[key]+size > q {
		return false
	}
	h.used[key] += size
	return true
}

// quotaSession refuses an APPEND that would take the mailbox over its
// quota, with the OVERQUOTA code a full mailbox answers on a real server.
type quotaSession struct {
	imapserver.SessionIMAP4rev2
	h    *memHosting
	user string // set at login
}

func (s *quotaSession) Login(username, password string) error {
	s.h.mu.Lock()
	rejected := s.h.rejected[strings.ToLower(username)]
	s.h.mu.Unlock()
	if rejected {
		return imapserver.ErrAuthFailed
	}
	if err := s.SessionIMAP4rev2.Login(username, password); err != nil {
		return err
	}
	s.user = username
	return nil
}

func (s *quotaSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if !s.h.reserve(s.user, r.Size()) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded: the mailbox is full"}
	}
	data, err := s.SessionIMAP4rev2.Append(mailbox, r, options)
	if err != nil {
		s.h.reserve(s.user, -r.Size())
	}
	return data, err
}
