package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
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

// NewResolver returns the system resolver for server "", or a resolver
// that sends every query to server ("host:port", such as "192.0.2.53:53").
// Both use Go's own DNS client, so that the answers do not depend on how
// the C library of the machine is configured.
func NewResolver(server string) Resolver {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			// The address the resolver wants is the one from
			// /etc/resolv.conf; network is "udp" or, for long answers,
			// "tcp", and both go to the chosen server instead.
			d := net.Dialer{Timeout: 5 * time.Second}
			return d.DialContext(ctx, network, server)
		}
	}
	return netResolver{r}
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
