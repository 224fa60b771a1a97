package diagnose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the DNS the checks and the discovery use. It is an interface
// so that the checks can run against a chosen DNS server (the domain's
// authoritative one, to see a change before caches expire) and, in tests,
// against an in-process server.
type Resolver interface {
	// LookupMX returns the mail exchangers of name.
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupCNAME returns the canonical name of name, or "" when name has
	// no CNAME record.
	LookupCNAME(ctx context.Context, name string) (string, error)
	// LookupHost returns name's IPv4 and IPv6 addresses (A and AAAA,
	// following CNAMEs).
	LookupHost(ctx context.Context, name string) ([]string, error)
	// LookupSRV looks up _service._proto.name, as net.Resolver.LookupSRV.
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	// LookupTXT returns the TXT records of name, each record's strings
	// joined.
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// NewResolver returns the system resolver for server "", or a DNS client
// that sends every query to server ("host:port", such as "192.0.2.53:53";
// without a port, 53) and to nothing else.
//
// The system resolver reads /etc/hosts before it asks DNS, and a
// net.Resolver cannot be told not to: with only its Dial pointed at the
// configured server, a name the hosting keeps in its hosts file (its own
// imap.hosting.example pinned to an internal address, say) would be
// answered from the machine's file, for a customer's domain that points
// to it too. A configured server is the DNS the checks are meant to see (the
// domain's authoritative server, say), so there the lookups are a plain DNS
// client's: a question, the server's answer, nothing local. Both kinds
// make names absolute, so resolv.conf's search domains are never appended.
func NewResolver(server string) Resolver {
	if server == "" {
		return netResolver{&net.Resolver{PreferGo: true}}
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(server, "["), "]"), "53")
	}
	return &dnsResolver{server: server, timeout: 5 * time.Second, attempts: 2}
}

// netResolver adapts net.Resolver to Resolver.
type netResolver struct{ r *net.Resolver }

// fqdn makes name absolute, so that resolv.conf's search domains are never
// appended to a name the customer typed (imap.firma.cz must not become
// imap.firma.cz.hosting.internal).
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return n.r.LookupMX(ctx, fqdn(name))
}

func (n netResolver) LookupCNAME(ctx context.Context, name string) (string, error) {
	cname, err := n.r.LookupCNAME(ctx, fqdn(name))
	if err != nil {
		return "", err
	}
	// net.Resolver answers with the name itself when there is no CNAME.
	if strings.EqualFold(cname, fqdn(name)) {
		return "", nil
	}
	return cname, nil
}

func (n netResolver) LookupHost(ctx context.Context, name string) ([]string, error) {
	return n.r.LookupHost(ctx, fqdn(name))
}

func (n netResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	return n.r.LookupSRV(ctx, service, proto, fqdn(name))
}

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return n.r.LookupTXT(ctx, fqdn(name))
}

// dnsResolver is the Resolver of a configured DNS server: every lookup is
// questions to that server, answered by it alone (see NewResolver). Its
// errors are *net.DNSError, set the way net.Resolver sets them, so that
// outcome reads both kinds alike.
type dnsResolver struct {
	server   string        // host:port
	timeout  time.Duration // for one attempt
	attempts int           // over UDP, when one goes unanswered
}

// Errors as net.Resolver words them.
const (
	errTextNoSuchHost = "no such host"
	errTextMalformed  = "DNS response contained records which contain invalid names"
)

// query asks the server one question. A response is returned for
// NOERROR and NXDOMAIN (an NXDOMAIN's answer may hold the CNAME chain that
// led to the missing name) with, for NXDOMAIN, a not-found error.
func (r *dnsResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	fq := dns.Fqdn(name)
	if !validName(fq) {
		// As net.Resolver: a name that cannot exist is not found, and is
		// not sent (a backslash would be read as an escape by the
		// library, and change the question).
		return nil, r.notFound(name)
	}
	q := new(dns.Msg)
	q.SetQuestion(fq, qtype)
	q.SetEdns0(1232, false) // the DNS flag day's size: no fragments, seldom a TCP retry
	var lastErr error
	for range max(r.attempts, 1) {
		c := &dns.Client{Net: "udp", Timeout: r.timeout}
		resp, _, err := c.ExchangeContext(ctx, q, r.server)
		if err == nil && resp.Truncated {
			c.Net = "tcp"
			resp, _, err = c.ExchangeContext(ctx, q, r.server)
		}
		if err == nil {
			return r.check(name, q, resp)
		}
		if ctx.Err() != nil {
			return nil, &net.DNSError{Err: ctx.Err().Error(), Name: name, Server: r.server, UnwrapErr: ctx.Err(),
				IsTimeout: errors.Is(ctx.Err(), context.DeadlineExceeded), IsTemporary: true}
		}
		lastErr = err
	}
	var ne net.Error
	timeout := errors.As(lastErr, &ne) && ne.Timeout()
	// The server did not answer (a timeout, a refused port): worth trying
	// again later, like a SERVFAIL.
	return nil, &net.DNSError{Err: lastErr.Error(), Name: name, Server: r.server, IsTimeout: timeout, IsTemporary: true}
}

// check accepts a response to q, or says why not.
func (r *dnsResolver) check(name string, q, resp *dns.Msg) (*dns.Msg, error) {
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) ||
		resp.Question[0].Qtype != q.Question[0].Qtype || resp.Question[0].Qclass != q.Question[0].Qclass {
		return nil, &net.DNSError{Err: "DNS response does not match the question", Name: name, Server: r.server, IsTemporary: true}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp, nil
	case dns.RcodeNameError:
		return resp, r.notFound(name)
	case dns.RcodeServerFailure:
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, Server: r.server, IsTemporary: true}
	}
	return nil, &net.DNSError{Err: "server misbehaving: " + dns.RcodeToString[resp.Rcode], Name: name, Server: r.server}
}

func (r *dnsResolver) notFound(name string) error {
	return &net.DNSError{Err: errTextNoSuchHost, Name: name, Server: r.server, IsNotFound: true}
}

func (r *dnsResolver) malformed(name string) error {
	return &net.DNSError{Err: errTextMalformed, Name: name, Server: r.server}
}

// records looks up name's records of qtype, following a CNAME chain in
// the answer; canonical is the chain's last name, as the answer spells
// it. A name without records of the type is not found.
func (r *dnsResolver) records(ctx context.Context, name string, qtype uint16) (canonical string, rrs []dns.RR, err error) {
	resp, err := r.query(ctx, name, qtype)
	if resp == nil {
		return "", nil, err
	}
	canonical, rrs = chase(dns.Fqdn(name), resp.Answer, qtype)
	if len(rrs) == 0 && err == nil {
		err = r.notFound(name)
	}
	return canonical, rrs, err
}

// maxChain bounds a CNAME chain (and a loop a server makes of one).
const maxChain = 16

// chase follows the CNAMEs from name through answer and returns the last
// name and its records of qtype. Records of other names, which a server
// must not send and a spoofer would, are ignored.
func chase(name string, answer []dns.RR, qtype uint16) (string, []dns.RR) {
	cur := name
	for range maxChain {
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if c, ok := rr.(*dns.CNAME); ok && h.Class == dns.ClassINET && qtype != dns.TypeCNAME &&
				strings.EqualFold(h.Name, cur) && validName(c.Target) {
				next = c.Target
				break
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	var rrs []dns.RR
	for _, rr := range answer {
		if h := rr.Header(); h.Rrtype == qtype && h.Class == dns.ClassINET && strings.EqualFold(h.Name, cur) {
			rrs = append(rrs, rr)
		}
	}
	return cur, rrs
}

// validName is net.Resolver's rule for a name it asks for or accepts in an
// answer: letters, digits, "-" and "_" in labels of 1 to 63 characters,
// 254 in all with the root's dot; "." is the root itself (a null MX or
// SRV target). It is also what keeps the library's escapes (\032, \.) and
// any other character out of what the checks compare and show.
func validName(s string) bool {
	if s == "." {
		return true
	}
	if s == "" || len(s) > 254 || len(s) == 254 && !strings.HasSuffix(s, ".") {
		return false
	}
	for l := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (r *dnsResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	_, rrs, err := r.records(ctx, name, dns.TypeMX)
	var mxs []*net.MX
	malformed := false
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		if !validName(mx.Mx) {
			malformed = true
			continue
		}
		mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	if malformed && err == nil {
		err = r.malformed(name)
	}
	return mxs, err
}

func (r *dnsResolver) LookupCNAME(ctx context.Context, name string) (string, error) {
	// The canonical name is the end of the chain an address lookup
	// follows, as with net.Resolver; the CNAME question is for a name
	// that has neither kind of address.
	var firstErr error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
		resp, err := r.query(ctx, name, qtype)
		if resp == nil {
			return "", err
		}
		canonical, rrs := chase(dns.Fqdn(name), resp.Answer, qtype)
		if qtype == dns.TypeCNAME {
			for _, rr := range rrs {
				if c := rr.(*dns.CNAME); validName(c.Target) {
					// One step: a further one would be another question,
					// and the name is known to have no address anyway.
					return c.Target, nil
				}
			}
		}
		switch {
		case !strings.EqualFold(canonical, dns.Fqdn(name)):
			return canonical, nil
		case len(rrs) > 0:
			return "", nil
		case err != nil: // NXDOMAIN: no other type will be there
			return "", err
		}
		if firstErr == nil {
			firstErr = r.notFound(name)
		}
	}
	return "", firstErr
}

func (r *dnsResolver) LookupHost(ctx context.Context, name string) ([]string, error) {
	if _, err := netip.ParseAddr(name); err == nil {
		return []string{name}, nil
	}
	type result struct {
		rrs []dns.RR
		err error
	}
	aaaa := make(chan result, 1)
	go func() {
		_, rrs, err := r.records(ctx, name, dns.TypeAAAA)
		aaaa <- result{rrs, err}
	}()
	_, rrs, errA := r.records(ctx, name, dns.TypeA)
	six := <-aaaa
	var addrs []string
	for _, rr := range append(rrs, six.rrs...) {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.String())
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	// Nothing found: an error that says more than "not found" (a server
	// failure for one of the types) is the one to tell.
	for _, err := range []error{errA, six.err} {
		var de *net.DNSError
		if err != nil && !(errors.As(err, &de) && de.IsNotFound) {
			return nil, err
		}
	}
	return nil, r.notFound(name)
}

func (r *dnsResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := name
	if service != "" || proto != "" {
		target = "_" + service + "._" + proto + "." + name
	}
	canonical, rrs, err := r.records(ctx, target, dns.TypeSRV)
	var srvs []*net.SRV
	malformed := false
	for _, rr := range rrs {
		s := rr.(*dns.SRV)
		if !validName(s.Target) {
			malformed = true
			continue
		}
		srvs = append(srvs, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
	}
	// RFC 2782 orders by priority and picks by weight at random; the
	// checks only list them, so the heaviest first, the same each time.
	slices.SortStableFunc(srvs, func(a, b *net.SRV) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(b.Weight, a.Weight))
	})
	if malformed && err == nil {
		err = r.malformed(target)
	}
	if canonical == "" {
		canonical = dns.Fqdn(target)
	}
	return canonical, srvs, err
}

func (r *dnsResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	_, rrs, err := r.records(ctx, name, dns.TypeTXT)
	var txts []string
	for _, rr := range rrs {
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(unescapeTXT(s))
		}
		txts = append(txts, b.String())
	}
	return txts, err
}

// unescapeTXT undoes the escaping the DNS library applies to a TXT
// string it reads (\" and \\ for themselves, \DDD for a byte outside
// printable ASCII), so that the text is the bytes the record holds, as
// net.Resolver gives them.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if i+3 < len(s) && isDigits(s[i+1:i+4]) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		i++
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigits(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// lookupOutcome is how a lookup went, as far as the customer is concerned.
type lookupOutcome int

const (
	found      lookupOutcome = iota
	notFound                 // NXDOMAIN, or the name has no record of that type
	temporary                // SERVFAIL, timeout, no answer: try again later
	lookupFail               // anything else (a malformed answer, ...)
)

// outcome classifies a lookup error. Go's resolver does not tell NXDOMAIN
// from "no record of this type" (both are IsNotFound), so neither can we.
func outcome(err error) lookupOutcome {
	if err == nil {
		return found
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return notFound
		case de.IsTemporary || de.IsTimeout:
			return temporary
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return temporary
	}
	return lookupFail
}

// lookupError wraps a resolver error with what was looked up.
func lookupError(kind, name string, err error) error {
	return fmt.Errorf("DNS lookup of %s %s: %w", kind, strings.TrimSuffix(name, "."), err)
}
