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
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

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

// Internal reports whether ip is anything but a public unicast address:
// loopback, private (RFC 1918, ULA), link-local (cloud metadata services
// live there), carrier-grade NAT, unspecified, multicast, broadcast,
// reserved, documentation and benchmarking networks, and the IPv6 forms
// that carry or tunnel to an IPv4 address (IPv4-compatible, SIIT, 6to4,
// Teredo, local-use NAT64); the places a customer-given name must not make
// the service connect to. Everything IPv6 outside 2000::/3, the only
// global unicast space, is internal, so that a block assigned a special
// meaning later is refused before it is listed here.
//
// Two forms are judged by the IPv4 address inside them, because reaching
// them is reaching exactly that address and nothing else: IPv4-mapped
// ::ffff:a.b.c.d (the kernel dials a.b.c.d over IPv4) and the NAT64
// well-known prefix 64:ff9b::/96 (RFC 6052 allows it only for public IPv4
// addresses, and on an IPv6-only hosting with DNS64 it is how every
// IPv4-only provider's server resolves, so refusing it would make those
// migrations impossible). An operator's own NAT64 prefix cannot be told
// from a public address; a hosting that has one must keep it unreachable
// from this service by its firewall.
func Internal(ip netip.Addr) bool {
	// A zone means a scoped (link-local) address; a public one has none,
	// and netip.Prefix.Contains never matches a zoned address, so it
	// must not get as far as the prefix lists.
	if !ip.IsValid() || ip.Zone() != "" {
		return true
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is4() {
		return internal4(ip)
	}
	if nat64WellKnown.Contains(ip) {
		b := ip.As16()
		return internal4(netip.AddrFrom4([4]byte(b[12:])))
	}
	if !globalUnicast6.Contains(ip) {
		return true
	}
	for _, p := range nonPublic6 {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func internal4(ip netip.Addr) bool {
	for _, p := range nonPublic4 {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// nonPublic4 is every IPv4 network of the IANA special-purpose registry
// (RFC 6890) that is not globally reachable, and the deprecated 6to4
// relay anycast, which tunnels to any IPv4 address.
var nonPublic4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 is the local host
	netip.MustParsePrefix("10.0.0.0/8"),      // private, RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local: cloud metadata services
	netip.MustParsePrefix("172.16.0.0/12"),   // private, RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (DS-Lite, NAT64 discovery)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation, TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast, deprecated (RFC 7526)
	netip.MustParsePrefix("192.168.0.0/16"),  // private, RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking; often used inside networks
	netip.MustParsePrefix("198.51.100.0/24"), // documentation, TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation, TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, with the broadcast 255.255.255.255
}

var (
	// globalUnicast6 is the only IPv6 space routed on the internet; ::/96
	// (IPv4-compatible), ::ffff:0:0:0/96 (SIIT), 64:ff9b:1::/48
	// (local-use NAT64), 100::/64 (discard), fc00::/7, fec0::/10,
	// fe80::/10 and ff00::/8 are all outside it.
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
)

// nonPublic6 are the special blocks inside 2000::/3. 6to4 and Teredo
// embed an IPv4 address (Teredo's obfuscated) that a host with such a
// tunnel sends to, public or not; no IMAP provider publishes its server
// under either, so they are refused whatever they carry.
var nonPublic6 = []netip.Prefix{
	netip.MustParsePrefix("2001::/23"),     // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("2002::/16"),     // 6to4
	netip.MustParsePrefix("3ffe::/16"),     // the 6bone's, returned (RFC 3701)
	netip.MustParsePrefix("3fff::/20"),     // documentation (RFC 9637)
}

// Addr is host:port for dialing.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// String is the endpoint as a URL the user would recognise (never with
// credentials), one that ParseEndpoint reads back: an IPv6 zone's "%" is
// written "%25" as URLs require.
func (e Endpoint) String() string {
	scheme := "imaps"
	if e.Security != TLS {
		scheme = "imap"
	}
	host := strings.ReplaceAll(e.Host, "%", "%25")
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(e.Port))
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
	// No host name, port or (allowed) path has an @, so one means a login
	// was typed in, likely with its password. Decided before url.Parse,
	// whose errors quote the whole address: a password with a character
	// url.Parse stumbles on ("/", "%") would be repeated in the refusal,
	// and refusals are logged.
	if strings.Contains(s, "@") {
		return Endpoint{}, addressError("address.login", withoutLogin(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, addressError("address.invalid", raw, err.Error())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return Endpoint{}, addressError("address.path", raw)
	}
	ep := Endpoint{Host: u.Hostname()}
	if ep.Host == "" {
		return Endpoint{}, addressError("address.no_host", raw)
	}
	if ep.Host, err = serverName(ep.Host); err != nil {
		return Endpoint{}, addressError("address.host", raw, u.Hostname())
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

// serverName checks the host of an address: an IP address, or a DNS
// name, which is returned in its ASCII form (an internationalised name
// such as imap.příklad.cz is looked up, and its certificate issued, as
// xn--…). url.Parse takes almost anything for a host ("]", "a!b"), and
// the system's resolver may read what Go's does not, so nothing else goes
// on to be resolved and dialled. The last label must begin with a letter,
// as every top-level domain does: "2130706433" or "0x7f.1" are loopback
// to inet_aton.
func serverName(host string) (string, error) {
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	name := host
	if strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// Only such names: Lookup's rules refuse "_", which Go's
		// resolver and some old servers' names have.
		var err error
		if name, err = idna.Lookup.ToASCII(host); err != nil {
			return "", err
		}
	}
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	if len(name) > 254 {
		return "", errors.New("name too long")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) {
			return "", fmt.Errorf("label %q", l)
		}
	}
	if last := labels[len(labels)-1][0]; !('a' <= last && last <= 'z' || 'A' <= last && last <= 'Z') {
		return "", errors.New("the top-level label does not begin with a letter")
	}
	return name, nil
}

// standardPorts are the IMAP ports every customer-given server may use:
// 143 (imap://, STARTTLS) and 993 (imaps://).
var standardPorts = []int{143, 993}

// CheckPort refuses the port of a customer-given server address unless it
// is a standard IMAP port (143, 993) or one of extra (the operator's
// sources.allowed_ports, for providers known to listen elsewhere). Without
// it anyone could make the service knock on every port of a host and read
// the answers from its error messages, or speak IMAP (a login with a
// password) to an SMTP, HTTP or database server. The refusal is an
// *AddressError whose Message names the allowed ports.
//
// CheckPort belongs to the same policy as Endpoint.Untrusted, and callers
// apply it exactly where they set Untrusted: not when sources.allow_private
// is on. That switch is what test setups and hostings migrating from their
// own machines use, and both run servers on high ports of loopback or
// private addresses; a second switch for the same trust would only be
// forgotten.
func CheckPort(port int, extra []int) error {
	if port >= 1 && port <= 65535 && (slices.Contains(standardPorts, port) || slices.Contains(extra, port)) {
		return nil
	}
	allowed := slices.Clone(standardPorts)
	for _, p := range extra {
		if p >= 1 && p <= 65535 && !slices.Contains(allowed, p) {
			allowed = append(allowed, p)
		}
	}
	slices.Sort(allowed)
	list := make([]string, len(allowed))
	for i, p := range allowed {
		list[i] = strconv.Itoa(p)
	}
	// Numbers go in as strings: the printer would group 10143 as
	// "10,143" or "10 143".
	return addressError("address.port_forbidden", strconv.Itoa(port), strings.Join(list, ", "))
}

// withoutLogin is an address with everything before its last @ after the
// scheme blanked out; a password may hold any character, @ included.
func withoutLogin(s string) string {
	at := strings.LastIndexByte(s, '@')
	if sep := strings.Index(s, "://"); sep >= 0 && sep < at {
		return s[:sep+3] + "xxxxx" + s[at:]
	}
	return "xxxxx" + s[at:]
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
