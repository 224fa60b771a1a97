// Package notify writes the mails that tell a customer about their
// migrations (finished, a mailbox out of space, a login the old server
// refused) and hands them to the hosting's SMTP relay. What is sent when,
// exactly once, is decided by the store (which records each event) and the
// job queue (which sends and retries); this package only writes and sends.
// Its mails carry customer texts and addresses, never a password or a
// server's technical error.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

// Security is how the connection to the relay is protected.
const (
	StartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587 or 25)
	TLS      = "tls"      // TLS from the first byte (port 465)
	None     = "none"     // no encryption: only for a relay on the same host or network
)

// Config is the relay and what the mails say about the panel.
type Config struct {
	Addr     string // host:port of the relay
	From     string // the sender, "Name <address>" or an address
	Security string // StartTLS (default), TLS or None
	// User and Password log in to the relay (AUTH PLAIN, only over an
	// encrypted connection or to localhost); empty User: no login.
	User, Password string
	// RootCAs trusts a relay's private certificate; nil: the system's.
	RootCAs *x509.CertPool
	// BaseURL is the panel's public address; the mails link to the
	// migration's page under it.
	BaseURL string
	// Timeout bounds one mail's whole SMTP exchange. Default 1 minute.
	Timeout time.Duration
}

// Mailer writes and sends notification mails.
type Mailer struct {
	cfg  Config
	from *mail.Address
	host string // the relay's name, for TLS
	helo string // the panel's host name, which the relay sees in EHLO
}

// New checks the configuration.
func New(cfg Config) (*Mailer, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("notify.smtp %q is not host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify.from %q is not a mail address: %w", cfg.From, err)
	}
	switch cfg.Security {
	case "":
		cfg.Security = StartTLS
	case StartTLS, TLS, None:
	default:
		return nil, fmt.Errorf("notify.security %q: use starttls, tls or none", cfg.Security)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("notify.base_url %q is not the panel's address like https://panel.hosting.example", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	return &Mailer{cfg: cfg, from: from, host: host, helo: u.Hostname()}, nil
}

// Summary is what a notification is about, as its headline tells it.
type Summary struct {
	Kind       string // store.Notify*
	Domain     string
	SourceHost string
	Mailbox    string // the mailbox of a task's event
	// Action says that a finished migration has mailboxes that need the
	// customer (paused or failed).
	Action bool
}

// Headline is the notification in one line: the mail's subject and the
// panel's entry.
func Headline(s Summary, p *i18n.Printer) string {
	switch s.Kind {
	case store.NotifyPaused:
		return fmt.Sprintf(t(p, "headline.paused"), s.Mailbox, s.SourceHost)
	case store.NotifyLoginFailed:
		return fmt.Sprintf(t(p, "headline.login_failed"), s.SourceHost, s.Mailbox)
	case store.NotifyHostingLoginFailed:
		return fmt.Sprintf(t(p, "headline.hosting_login_failed"), s.Mailbox, s.SourceHost)
	case store.NotifySignInAgain:
		return fmt.Sprintf(t(p, "headline.sign_in_again"), s.Mailbox, s.SourceHost)
	case store.NotifyFinished:
		if s.Action {
			return fmt.Sprintf(t(p, "headline.finished_action"), s.SourceHost, s.Domain)
		}
	}
	return fmt.Sprintf(t(p, "headline.finished"), s.SourceHost, s.Domain)
}

// Action is what the customer does about a notification of the kind.
func Action(kind string, p *i18n.Printer) string {
	switch kind {
	case store.NotifyPaused:
		return t(p, "action.paused")
	case store.NotifyLoginFailed:
		return t(p, "action.login_failed")
	case store.NotifyHostingLoginFailed:
		return t(p, "action.hosting_login_failed")
	case store.NotifySignInAgain:
		return t(p, "action.sign_in_again")
	}
	return t(p, "action.finished")
}

// Mailbox is one task of the migration, as the mail lists it.
type Mailbox struct {
	Address, SourceUser, State string
	// Failure is the task's failure; its Message and Reasons are the
	// customer's words (its Detail is never mailed).
	Failure *engine.Failure
}

// Event is a notification with what its mail tells.
type Event struct {
	Summary
	ID          int64 // the notification's: the mail's Message-ID is made from it
	MigrationID int64
	SourceUser  string    // the old login of a task's event
	Mailboxes   []Mailbox // every task of the migration
}

// Message is a written mail.
type Message struct {
	ID      string // Message-ID, the same for every attempt of one notification
	Subject string
	Body    string
}

// needsAction tells a task state the customer has to act on.
func needsAction(state string) bool {
	return state == store.StatePaused || state == store.StateFailed
}

// Compose writes the mail of an event.
func (m *Mailer) Compose(e Event, p *i18n.Printer) Message {
	if e.Kind == store.NotifyFinished {
		for _, mb := range e.Mailboxes {
			e.Action = e.Action || needsAction(mb.State)
		}
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%s", t(p, "greeting"))
	line("")
	switch e.Kind {
	case store.NotifyPaused:
		line(t(p, "intro.paused"), e.Mailbox, e.SourceHost)
		line("")
		line(t(p, "todo"), Action(e.Kind, p))
	case store.NotifyLoginFailed:
		line(t(p, "intro.login_failed"), e.Mailbox, e.SourceHost, e.SourceUser)
		for _, mb := range e.Mailboxes {
			if mb.Address == e.Mailbox && mb.Failure != nil {
				failureLines(line, mb.Failure.Localize(p), "")
			}
		}
		line("")
		line(t(p, "todo"), Action(e.Kind, p))
	case store.NotifyHostingLoginFailed:
		line(t(p, "intro.hosting_login_failed"), e.Mailbox, e.SourceHost)
		line("")
		line(t(p, "todo"), Action(e.Kind, p))
	case store.NotifySignInAgain:
		line(t(p, "intro.sign_in_again"), e.Mailbox, e.SourceHost, e.SourceUser)
		line("")
		line(t(p, "todo"), Action(e.Kind, p))
	default:
		line(t(p, "intro.finished"), e.SourceHost, e.Domain)
	}
	line("")
	if e.Kind != store.NotifyFinished {
		line("%s", t(p, "mailboxes"))
	}
	for _, mb := range e.Mailboxes {
		line(t(p, "mailbox.line"), mb.Address, mb.SourceUser, stateText(mb.State, p))
		if e.Kind != store.NotifyFinished || !needsAction(mb.State) {
			continue
		}
		if mb.State == store.StatePaused {
			line("  "+t(p, "todo"), Action(store.NotifyPaused, p))
		} else if mb.Failure != nil {
			failureLines(line, mb.Failure.Localize(p), "  ")
		}
	}
	line("")
	line(t(p, "link"), fmt.Sprintf("%s/migrations/%d", m.cfg.BaseURL, e.MigrationID))
	line("")
	line("-- ")
	line(t(p, "footer"), e.Domain)
	// One Message-ID per notification and language, the same for every
	// attempt.
	return Message{ID: fmt.Sprintf("<notification-%d.migration-%d.%s@%s>", e.ID, e.MigrationID, p.Lang, m.helo),
		Subject: Headline(e.Summary, p), Body: b.String()}
}

// failureLines writes a failure's explanation and likely causes.
func failureLines(line func(string, ...any), f *engine.Failure, indent string) {
	if f.Message != "" {
		line("%s%s", indent, f.Message)
	}
	for _, r := range f.Reasons {
		line("%s  * %s", indent, r)
	}
}

func stateText(state string, p *i18n.Printer) string { return t(p, "state."+state) }

// Send hands a mail to the relay for the recipients.
func (m *Mailer) Send(ctx context.Context, to []string, msg Message) error {
	var rcpts []*mail.Address
	for _, addr := range to {
		a, err := mail.ParseAddress(addr)
		if err != nil {
			return fmt.Errorf("recipient %q: %w", addr, err)
		}
		rcpts = append(rcpts, a)
	}
	if len(rcpts) == 0 {
		return errors.New("no recipient")
	}
	data, err := m.render(rcpts, msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	if err := m.send(ctx, rcpts, data); err != nil {
		return fmt.Errorf("mail relay %s: %w", m.cfg.Addr, err)
	}
	return nil
}

// render makes the message: UTF-8 plain text, quoted-printable so that
// relays without 8BITMIME pass it unchanged, and marked as sent
// automatically (RFC 3834), so that out-of-office replies stay away.
func (m *Mailer) render(to []*mail.Address, msg Message) ([]byte, error) {
	var b bytes.Buffer
	addrs := make([]string, len(to))
	for i, a := range to {
		addrs[i] = a.String()
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", m.from.String())
	hdr("To", strings.Join(addrs, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", msg.ID)
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(msg.Body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// send is one SMTP exchange, bounded by ctx.
func (m *Mailer) send(ctx context.Context, to []*mail.Address, data []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tc := &tls.Config{ServerName: m.host, RootCAs: m.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if m.cfg.Security == TLS {
		conn = tls.Client(conn, tc)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return err
	}
	if m.cfg.Security == StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the relay does not offer STARTTLS (set notify.security = none for a relay without encryption)")
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if m.cfg.User != "" {
		// PlainAuth refuses to send the password over an unencrypted
		// connection to another host.
		if err := c.Auth(smtp.PlainAuth("", m.cfg.User, m.cfg.Password, m.host)); err != nil {
			return fmt.Errorf("login as %s: %w", m.cfg.User, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return err
	}
	for _, a := range to {
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("recipient %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The relay took the mail at the end of DATA; a failed QUIT does not
	// undo that, and reporting it would send the mail again.
	_ = c.Quit()
	return nil
}
