// Package imapconn is the project's adapter over go-imap v2: it dials with the
// right TLS mode, logs in with any password, bounds every command with a
// watchdog (go-imap has no timeouts of its own while it waits for a reply),
// gates extensions on the server's capabilities and turns failures into typed
// errors the engine and the customer-facing layers can act on.
package imapconn

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"mailmigrate/internal/i18n"
)

// Security is how a connection is protected.
type Security int

const (
	// TLS is implicit TLS from the first byte (imaps://, port 993).
	TLS Security = iota
	// StartTLS upgrades a plain connection with STARTTLS and refuses to go on
	// without it (imap://, port 143).
	StartTLS
	// Plain sends everything, passwords included, in clear text. Only with an
	// explicit opt-in.
	Plain
)

func (s Security) String() string {
	switch s {
	case TLS:
		return "TLS"
	case StartTLS:
		return "STARTTLS"
	case Plain:
		return "plaintext"
	}
	return "unknown"
}

// Endpoint is an IMAP server address with its security settings.
type Endpoint struct {
	Host     string
	Port     int
	Security Security
	// InsecureSkipVerify turns off certificate verification. Only on the
	// customer's explicit request: it makes a man-in-the-middle invisible.
	InsecureSkipVerify bool
	// RootCAs, when set, replaces the system roots (a CA file or a
	// certificate the customer chose to trust).
	RootCAs *x509.CertPool
	// TrustFingerprint, when set, is the SHA-256 fingerprint (hex) of a
	// certificate the customer chose to trust for this server although it
	// does not verify (self-signed, expired, another name): exactly that
	// certificate is accepted, nothing else.
	TrustFingerprint string
	// Untrusted marks an address a customer typed: it may not lead to
	// loopback, private, link-local or cloud metadata addresses, whatever
	// the name resolves to at the moment of connecting.
	Untrusted bool
}

// AddressError is a server address the customer gave that cannot be
// used: ParseEndpoint's refusals and ErrForbiddenAddress. Error is the
// English text; Message is the same for the reader's language.
type AddressError struct{ msg i18n.Message }

func (e *AddressError) Error() string { return e.msg.String() }

// Message is the refusal for the customer who typed the address, to be
// written in their language (errors.As with an interface{ Message()
// i18n.Message } finds it).
func (e *AddressError) Message() i18n.Message { return e.msg }

func addressError(key string, args ...any) error {
	return &AddressError{msg: catalog.M(key, args...)}
}

// ErrForbiddenAddress means an untrusted server address resolved to an
// internal network address. It is a sentinel (errors.Is) and an
// *AddressError.
var ErrForbiddenAddress error = &AddressError{msg: catalog.M("address.forbidden")}

// Internal reports whether ip is internal: loopback, private (RFC 1918,
// ULA), link-local (cloud metadata services live there), unspecified,
// multicast or carrier-grade NAT; the places a customer-given name must not
// make the service connect to.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip) // carrier-grade NAT
}

// Addr is host:port for dialing.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// String is the endpoint as a URL the user would recognise (never with credentials).
func (e Endpoint) String() string {
	scheme := "imaps"
	if e.Security != TLS {
		scheme = "imap"
	}
	return scheme + "://" + e.Addr()
}

// ParseEndpoint reads imaps://host[:port] (implicit TLS, default 993) or
// imap://host[:port] (STARTTLS, default 143). A bare host is taken as imaps.
// With allowPlaintext, imap:// connects without TLS; otherwise STARTTLS is
// required.
func ParseEndpoint(raw string, allowPlaintext bool) (Endpoint, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Endpoint{}, addressError("address.empty")
	}
	if !strings.Contains(s, "://") {
		s = "imaps://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, addressError("address.invalid", raw, err.Error())
	}
	if u.User != nil {
		return Endpoint{}, addressError("address.login", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return Endpoint{}, addressError("address.path", raw)
	}
	ep := Endpoint{Host: u.Hostname()}
	if ep.Host == "" {
		return Endpoint{}, addressError("address.no_host", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "imaps":
		ep.Security, ep.Port = TLS, 993
	case "imap":
		ep.Security, ep.Port = StartTLS, 143
		if allowPlaintext {
			ep.Security = Plain
		}
	default:
		return Endpoint{}, addressError("address.scheme", raw, u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Endpoint{}, addressError("address.port", raw, p)
		}
		ep.Port = n
	}
	return ep, nil
}

// LoadCAFile reads PEM certificates to trust instead of the system roots.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func (e Endpoint) tlsConfig() *tls.Config {
	cfg := &tls.Config{
		ServerName:         e.Host,
		RootCAs:            e.RootCAs,
		InsecureSkipVerify: e.InsecureSkipVerify, //nolint:gosec // explicit user opt-out
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"imap"},
	}
	if pin := normalizeFingerprint(e.TrustFingerprint); pin != "" {
		// The usual verification is replaced by the comparison with the
		// one certificate the customer accepted.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the server sent no certificate")
			}
			if Fingerprint(cs.PeerCertificates[0]) != pin {
				return errors.New("tls: the server's certificate is not the one trusted for this migration (its fingerprint changed)")
			}
			return nil
		}
	}
	return cfg
}

// Fingerprint is a certificate's SHA-256 fingerprint as upper-case hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func normalizeFingerprint(s string) string {
	return strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s)))
}
