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
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
)

// Reason is one likely cause of a failure with what to do about it.
type Reason struct {
	Code   string `json:"code"`   // stable: no_domain, dns_moved, app_password, oauth, password, old_service_name, ...
	Advice string `json:"advice"` // in the customer's words
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
	Kind    string   `json:"kind"`    // imapconn kind code: auth, tls, connect, resolve, timeout, ...
	Summary string   `json:"summary"` // one sentence
	Reasons []Reason `json:"reasons"` // most likely first
	// ServerText is what the server said (never a password: servers do
	// not repeat them, and commands with credentials are not echoed).
	ServerText  string       `json:"server_text,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
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
		d.Summary = fmt.Sprintf("The server name %s does not exist in DNS.", host)
		d.add("typo", "Check the server name for typos. Your old provider's help pages or your mail program's account settings show the exact IMAP server name.")
	case imapconn.ErrConnect:
		if errors.Is(a.Err, imapconn.ErrForbiddenAddress) {
			d.Summary = fmt.Sprintf("%s points into a private or local network, which this service does not connect to.", host)
			d.add("private_address", "Give the old provider's public IMAP server name.")
			break
		}
		d.Summary = fmt.Sprintf("No connection to %s on port %d.", host, a.Server.Port)
		d.add("port", "Check the port: 993 for TLS, 143 for STARTTLS. Some providers use other ports; see their help pages.")
		d.add("firewall", "The server may not accept IMAP connections from the internet, or a firewall blocks them. Ask the old provider whether IMAP access is enabled for your account.")
		d.dnsMoved(ctx, a)
	case imapconn.ErrTimeout, imapconn.ErrConnLost:
		d.Summary = fmt.Sprintf("%s stopped answering.", host)
		d.add("busy", "The server may be overloaded or limit connections. Try again later; what was copied is kept.")
	case imapconn.ErrTLS:
		d.Summary = fmt.Sprintf("A secure connection to %s could not be established.", host)
		d.Certificate = certificateOf(a.Err)
		switch {
		case d.Certificate != nil && !covers(d.Certificate, host):
			d.add("cert_name", fmt.Sprintf("The server's certificate is issued for %s, not for %s. Use that name as the server address, or trust this certificate for this migration if you recognise it.",
				strings.Join(d.Certificate.DNSNames, ", "), host))
		case d.Certificate != nil && time.Now().After(d.Certificate.NotAfter):
			d.add("cert_expired", fmt.Sprintf("The server's certificate expired on %s. Ask the old provider to renew it, or trust this certificate for this migration if you recognise it.", d.Certificate.NotAfter.Format("2006-01-02")))
		case d.Certificate != nil:
			d.add("cert_untrusted", "The server's certificate is not issued by a known authority (self-signed). Trust it for this migration only if its fingerprint matches what your old provider publishes.")
		default:
			d.add("no_tls", "The server does not offer encryption on this port. Try the other security setting (TLS on 993 or STARTTLS on 143).")
		}
		d.add("dns_moved_tls", "If the DNS of your domain was already moved, the name may lead to another server than the old one: use the old provider's own server name.")
	case imapconn.ErrAuth:
		d.Summary = fmt.Sprintf("The old server rejected the login %q.", a.User)
		d.authReasons(ctx, a)
	default:
		d.Summary = fmt.Sprintf("The old server %s refused the request.", host)
		if ie != nil && ie.Code == imap.ResponseCodeUnavailable {
			d.Summary = fmt.Sprintf("The old server %s is temporarily unavailable.", host)
			d.add("unavailable", "Try again in a few minutes.")
		}
	}
	d.serverCodes(ie)
	return d
}

func (d *Diagnosis) add(code, advice string) {
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
		d.add("no_domain", fmt.Sprintf("The login %q has no domain. Most servers want the full address, such as %s@yourdomain.tld.", user, user))
	}
	d.dnsMoved(ctx, a)
	for _, name := range a.HostingNames {
		// Another server on the hosting's address (another port) is not
		// one of its services.
		if strings.EqualFold(name, host) && a.Hosting.servesIMAP(a.Server.Port) {
			d.add("old_service_name", "This is the server of this hosting. If you move mail between two of its services, log in with the old service's name, or with its identifier if the name was removed, such as mailbox@w123456.")
		}
	}
	if p := providerFor(host, user); p != nil {
		switch {
		case p.OAuth:
			d.add("oauth", fmt.Sprintf("%s no longer accepts passwords for IMAP: it needs a sign-in with %s (OAuth2), which this migration cannot do with a password.", p.Name, p.Name))
		case p.Needs != "":
			d.add("app_password", fmt.Sprintf("%s needs %s before other programs may log in.", p.Name, p.Needs))
		}
	}
	d.add("password", "The password may be old or mistyped. Check it by signing in to the old provider's webmail with the same login.")
	if missingServiceName.MatchString(user) {
		d.add("removed_service", "A login like mailbox@w123456 works only on this hosting's own server, for a service whose name was removed.")
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
	reason := Reason{"dns_moved", fmt.Sprintf("%s already points to this hosting (%s), because the domain's DNS was moved. Enter the old provider's own server name or its IP address instead.",
		a.Server.Host, strings.Join(addrs, ", "))}
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
		d.add("server_alert", "The server says: "+ie.Text)
	case ie.Code == imap.ResponseCodeLimit || strings.Contains(text, "too many") || strings.Contains(text, "maximum number of connections"):
		d.add("too_many", "The server allows only a few connections at once. Close mail programs that use this mailbox, or try again later.")
	case ie.Code == imap.ResponseCodeUnavailable:
		d.add("unavailable", "The server is temporarily unavailable. Try again in a few minutes.")
	case strings.Contains(text, "application-specific password") || strings.Contains(text, "app password"):
		d.add("app_password", "The server asks for an app password: create one in your account's security settings and use it here.")
	case strings.Contains(text, "web browser") || strings.Contains(text, "webloginrequired"):
		d.add("web_login", "The server wants you to sign in through its website first (a security check). Do that, then try again.")
	}
}

// providerFor finds the provider by server name or login domain.
func providerFor(host, user string) *Provider {
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
