// Package diagnose explains why a migration cannot reach or log in to the
// old server, finds where the old server is, and checks a domain's DNS
// after the move. Most customers who fail, fail at login: the likely
// causes are ranked by the evidence gathered, never left as a raw server
// line.
package diagnose

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

// Reason is one likely cause of a failure with what to do about it.
type Reason struct {
	Code   string       `json:"code"`   // stable: no_domain, dns_moved, app_password, oauth, password, old_service_name, ...
	Advice i18n.Message `json:"advice"` // in the customer's words
}

// Certificate describes a server certificate the customer may decide to
// trust for one migration.
type Certificate struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"sha256_fingerprint"`
}

// Diagnosis is the explanation of a failed connection or login.
type Diagnosis struct {
	Kind    string       `json:"kind"`    // imapconn kind code: auth, tls, connect, resolve, timeout, ...
	Summary i18n.Message `json:"summary"` // one sentence
	Reasons []Reason     `json:"reasons"` // most likely first
	// ServerText is what the server said (never a password: servers do
	// not repeat them, and commands with credentials are not echoed).
	ServerText  string       `json:"server_text,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
}

// Localize returns a copy of the diagnosis for showing, with its summary
// and advice written in the printer's language (so that an answer's JSON
// holds plain strings); nil for nil. The copy is not for storing.
func (d *Diagnosis) Localize(p *i18n.Printer) *Diagnosis {
	if d == nil {
		return nil
	}
	c := *d
	c.Summary = i18n.Literal(d.Summary.In(p))
	c.Reasons = nil
	for _, r := range d.Reasons {
		c.Reasons = append(c.Reasons, Reason{Code: r.Code, Advice: i18n.Literal(r.Advice.In(p))})
	}
	return &c
}

// LoginAttempt is what was tried.
type LoginAttempt struct {
	Server imapconn.Endpoint
	User   string
	Err    error
	// Resolver and Hosting let the diagnosis tell whether the server name
	// already points to this hosting (the DNS was moved).
	Resolver Resolver
	Hosting  Expect
	// HostingNames are names this same hosting was known under (its own
	// IMAP server names): a source there, on one of Hosting.IMAPPorts,
	// means a migration between two of its services.
	HostingNames []string
}

var missingServiceName = regexp.MustCompile(`@w\d+$`)

// Login explains a failed connection or login to the old server.
func Login(ctx context.Context, a LoginAttempt) *Diagnosis {
	kind := imapconn.KindOf(a.Err)
	d := &Diagnosis{Kind: kind.Code()}
	var ie *imapconn.Error
	if errors.As(a.Err, &ie) {
		d.ServerText = strings.TrimSpace(strings.TrimSpace(string(ie.Code)+" ") + ie.Text)
	}
	host := a.Server.Host
	switch kind {
	case imapconn.ErrResolve:
		d.Summary = catalog.M("summary.resolve", host)
		d.add("typo", catalog.M("reason.typo"))
	case imapconn.ErrConnect:
		if errors.Is(a.Err, imapconn.ErrForbiddenAddress) {
			d.Summary = catalog.M("summary.private", host)
			d.add("private_address", catalog.M("reason.private_address"))
			break
		}
		d.Summary = catalog.M("summary.connect", host, strconv.Itoa(a.Server.Port))
		d.add("port", catalog.M("reason.port"))
		d.add("firewall", catalog.M("reason.firewall"))
		d.dnsMoved(ctx, a)
	case imapconn.ErrTimeout, imapconn.ErrConnLost:
		d.Summary = catalog.M("summary.timeout", host)
		d.add("busy", catalog.M("reason.busy"))
	case imapconn.ErrThrottled:
		// Not the password's fault: the provider spreads its load
		// (Exchange Online) or counts the mailbox's connections.
		d.Summary = catalog.M("summary.unavailable", host)
		d.add("busy", catalog.M("reason.busy"))
	case imapconn.ErrTLS:
		d.Summary = catalog.M("summary.tls", host)
		d.Certificate = certificateOf(a.Err)
		switch {
		case d.Certificate != nil && !covers(d.Certificate, host):
			d.add("cert_name", catalog.M("reason.cert_name", strings.Join(d.Certificate.DNSNames, ", "), host))
		case d.Certificate != nil && time.Now().After(d.Certificate.NotAfter):
			// A Message has no date argument; the ISO date reads the same
			// in both languages.
			d.add("cert_expired", catalog.M("reason.cert_expired", i18n.Day(d.Certificate.NotAfter)))
		case d.Certificate != nil:
			d.add("cert_untrusted", catalog.M("reason.cert_untrusted"))
		default:
			d.add("no_tls", catalog.M("reason.no_tls"))
		}
		d.add("dns_moved_tls", catalog.M("reason.dns_moved_tls"))
	case imapconn.ErrAuth:
		d.Summary = catalog.M("summary.auth", a.User)
		d.authReasons(ctx, a)
	default:
		d.Summary = catalog.M("summary.refused", host)
		if ie != nil && ie.Code == imap.ResponseCodeUnavailable {
			d.Summary = catalog.M("summary.unavailable", host)
			d.add("unavailable", catalog.M("reason.retry"))
		}
	}
	d.serverCodes(ie)
	return d
}

func (d *Diagnosis) add(code string, advice i18n.Message) {
	for _, r := range d.Reasons {
		if r.Code == code {
			return
		}
	}
	d.Reasons = append(d.Reasons, Reason{code, advice})
}

// authReasons ranks the causes of a rejected login by the evidence.
func (d *Diagnosis) authReasons(ctx context.Context, a LoginAttempt) {
	user, host := a.User, strings.ToLower(a.Server.Host)
	if !strings.Contains(user, "@") {
		d.add("no_domain", catalog.M("reason.no_domain", user, user))
	}
	d.dnsMoved(ctx, a)
	for _, name := range a.HostingNames {
		// Another server on the hosting's address (another port) is not
		// one of its services.
		if strings.EqualFold(name, host) && a.Hosting.servesIMAP(a.Server.Port) {
			d.add("old_service_name", catalog.M("reason.old_service_name"))
		}
	}
	if p := ProviderFor(host, user); p != nil {
		switch {
		case p.OAuth:
			d.add("oauth", catalog.M("reason.oauth", p.Name, p.Name))
		case !p.Needs.IsZero():
			d.add("app_password", catalog.M("reason.app_password", p.Name, p.Needs))
		}
	}
	d.add("password", catalog.M("reason.password"))
	if missingServiceName.MatchString(user) {
		d.add("removed_service", catalog.M("reason.removed_service"))
	}
}

// dnsMoved adds the cause that the server name already leads to this
// hosting.
func (d *Diagnosis) dnsMoved(ctx context.Context, a LoginAttempt) {
	if a.Resolver == nil || (len(a.Hosting.Addresses) == 0 && len(a.Hosting.IMAP) == 0) {
		return
	}
	here, addrs, err := PointsToHosting(ctx, a.Resolver, a.Server.Host, a.Server.Port, a.Hosting)
	if err != nil || !here {
		return
	}
	reason := Reason{"dns_moved", catalog.M("reason.dns_moved", a.Server.Host, strings.Join(addrs, ", "))}
	// The strongest evidence there is: first.
	d.Reasons = append([]Reason{reason}, d.Reasons...)
}

// serverCodes interprets what the server's response codes say.
func (d *Diagnosis) serverCodes(ie *imapconn.Error) {
	if ie == nil {
		return
	}
	text := strings.ToLower(ie.Text)
	switch {
	case ie.Code == imap.ResponseCodeAlert:
		d.add("server_alert", catalog.M("reason.server_alert", ie.Text))
	case ie.Code == imap.ResponseCodeLimit || strings.Contains(text, "too many") || strings.Contains(text, "maximum number of connections"):
		d.add("too_many", catalog.M("reason.too_many"))
	case ie.Code == imap.ResponseCodeUnavailable:
		d.add("unavailable", catalog.M("reason.unavailable"))
	case strings.Contains(text, "application-specific password") || strings.Contains(text, "app password"):
		d.add("app_password", catalog.M("reason.app_password.asked"))
	case strings.Contains(text, "web browser") || strings.Contains(text, "webloginrequired"):
		d.add("web_login", catalog.M("reason.web_login"))
	}
}

// ProviderFor finds the provider of a mailbox by its server's name or its
// login's domain, or nil.
func ProviderFor(host, user string) *Provider {
	host = strings.ToLower(host)
	_, domain, _ := strings.Cut(strings.ToLower(user), "@")
	for i := range Providers {
		p := &Providers[i]
		if strings.EqualFold(p.Host, host) {
			return p
		}
		for _, dom := range p.Domains {
			if dom == domain {
				return p
			}
		}
	}
	return nil
}

// certificateOf finds the server's certificate in a TLS error.
func certificateOf(err error) *Certificate {
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) || len(cv.UnverifiedCertificates) == 0 {
		return nil
	}
	c := cv.UnverifiedCertificates[0]
	return describe(c)
}

func describe(c *x509.Certificate) *Certificate {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return &Certificate{Subject: c.Subject.String(), Issuer: c.Issuer.String(), DNSNames: names,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, Fingerprint: imapconn.Fingerprint(c)}
}

func covers(c *Certificate, host string) bool {
	for _, n := range c.DNSNames {
		if strings.EqualFold(n, host) {
			return true
		}
		if strings.HasPrefix(n, "*.") {
			if _, rest, ok := strings.Cut(host, "."); ok && strings.EqualFold(rest, n[2:]) {
				return true
			}
		}
	}
	return false
}
