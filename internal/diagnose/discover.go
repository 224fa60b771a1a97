package diagnose

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

// Where a Candidate came from.
const (
	SourceProviderTable = "provider table" // the address's domain is a known provider's
	SourceAutoconfig    = "autoconfig"     // the domain publishes Mozilla autoconfig
	SourceSRV           = "srv"            // RFC 6186 _imaps._tcp / _imap._tcp records
	SourceMX            = "mx"             // the domain's MX belongs to a known provider
	SourceGuess         = "guess"          // imap.<domain> or mail.<domain> answers
)

// Candidate is a possible old IMAP server for a mailbox.
type Candidate struct {
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	Security string    `json:"security"` // "tls", "starttls", or "plain" (only when autoconfig says so)
	Source   string    `json:"source"`   // one of the Source constants
	Provider *Provider `json:"provider,omitempty"`
	// LoginForm is what the source says the login is: "address", "local",
	// or "" when it does not say.
	LoginForm string `json:"login_form,omitempty"`
	// Reachable means a TCP connection to Host:Port succeeded. Nothing was
	// said over it: whether IMAP and the login work is for the login
	// check to find out.
	Reachable bool `json:"reachable"`
	// IsHosting means Host resolves to this hosting: the domain's DNS was
	// already moved, and the name no longer leads to the old server.
	IsHosting bool         `json:"is_hosting"`
	Note      i18n.Message `json:"note,omitzero"` // for the customer: what to do or know
}

// Localize returns a copy of the candidate for showing, with its note and
// its provider's needs written in the printer's language (so that an
// answer's JSON holds plain strings). The copy is not for storing.
func (c Candidate) Localize(p *i18n.Printer) Candidate {
	c.Note = i18n.Literal(c.Note.In(p))
	if c.Provider != nil {
		// A copy: Provider points into the shared table.
		pr := *c.Provider
		pr.Needs = i18n.Literal(pr.Needs.In(p))
		c.Provider = &pr
	}
	return c
}

// InputError is a mistake in an address or a domain name the customer
// typed, said so that it can be shown in the reader's language.
type InputError struct {
	Text i18n.Message
}

func (e *InputError) Error() string { return e.Text.String() }

// Message is the mistake as a sentence for the customer.
func (e *InputError) Message() i18n.Message { return e.Text }

// Addr is Host:Port.
func (c Candidate) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Best returns the first candidate worth trying: reachable and not the
// hosting itself.
func Best(cs []Candidate) (Candidate, bool) {
	for _, c := range cs {
		if c.Reachable && !c.IsHosting {
			return c, true
		}
	}
	return Candidate{}, false
}

// Discoverer finds the old IMAP server of a mailbox from its address.
type Discoverer struct {
	// Resolver answers the DNS questions; nil uses the system resolver.
	Resolver Resolver
	// HTTP fetches autoconfig files; nil uses a client that reaches only
	// public addresses over HTTPS.
	HTTP *http.Client
	// Dial makes the reachability probes; nil uses a dialer that reaches
	// only public addresses. A domain's DNS is the customer's to write,
	// so its names may point anywhere, including into our own network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hosting is this hosting, to recognise names that already point here.
	Hosting Expect
	// Timeout bounds each lookup, fetch and probe; 0 means 5 seconds.
	Timeout time.Duration
	// Ports are the ports a found server may use besides 143 and 993
	// (imapconn.CheckPort): a domain's SRV records must not make the
	// service probe other ports. AnyPort lifts the rule (private sources
	// allowed, as in tests).
	Ports   []int
	AnyPort bool
}

// Discover lists the likely old IMAP servers for address, best sources
// first: the provider table by the address's domain, the domain's Mozilla
// autoconfig, RFC 6186 SRV records, the provider its MX records belong to,
// and finally imap.<domain> and mail.<domain> if they answer. Each
// candidate is probed with a plain TCP connect and checked against the
// hosting's addresses. Duplicates are merged into the first. Errors are
// for a malformed address or a cancelled ctx; a source that finds nothing
// (or fails) just adds no candidates.
func (d *Discoverer) Discover(ctx context.Context, address string) ([]Candidate, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	r := d.Resolver
	if r == nil {
		r = NewResolver("")
	}
	// The sources are asked at once and put in order afterwards: one after
	// another, every silent one would add its whole timeout.
	var h *hosting
	var sources [5][]Candidate
	var wg sync.WaitGroup
	wg.Go(func() {
		sctx, cancel := d.step(ctx)
		defer cancel()
		h = resolveHosting(sctx, r, d.Hosting)
	})
	wg.Go(func() {
		if p := ProviderForDomain(domain); p != nil {
			sources[0] = []Candidate{providerCandidate(p, SourceProviderTable, i18n.Message{})}
		}
	})
	wg.Go(func() { sources[1] = d.autoconfig(ctx, local, domain) })
	wg.Go(func() { sources[2] = d.srv(ctx, r, domain) })
	wg.Go(func() { sources[3] = d.mx(ctx, r, domain) })
	wg.Go(func() { sources[4] = d.guesses(ctx, r, domain) })
	wg.Wait()

	cands := merge(slices.Concat(sources[:]...))
	if !d.AnyPort {
		cands = slices.DeleteFunc(cands, func(c Candidate) bool { return imapconn.CheckPort(c.Port, d.Ports) != nil })
	}
	for i := range cands {
		wg.Go(func() { d.check(ctx, r, h, &cands[i]) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("finding the server of %s: %w", address, err)
	}
	return prune(cands), nil
}

// step bounds one lookup, fetch or probe, so that a silent server costs
// Timeout and not the caller's whole deadline.
func (d *Discoverer) step(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.Timeout
	if t <= 0 {
		t = 5 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

// splitAddress returns the local part and the ASCII domain of an address.
func splitAddress(address string) (string, string, error) {
	at := strings.LastIndex(address, "@")
	if at <= 0 || at == len(address)-1 {
		return "", "", &InputError{catalog.M("error.address", address)}
	}
	domain, err := normDomain(address[at+1:])
	if ie := (*InputError)(nil); errors.As(err, &ie) {
		return "", "", &InputError{catalog.M("error.address_domain", address, ie.Text)}
	}
	return strings.TrimSpace(address[:at]), domain, nil
}

func providerCandidate(p *Provider, source string, note i18n.Message) Candidate {
	return Candidate{Host: p.Host, Port: p.Port, Security: p.Security, Source: source, Provider: p, LoginForm: p.LoginForm, Note: note}
}

// The Mozilla autoconfig format (config-v1.1.xml), as far as IMAP needs it.
type clientConfig struct {
	XMLName   xml.Name `xml:"clientConfig"`
	Providers []struct {
		Incoming []struct {
			Type       string `xml:"type,attr"`
			Hostname   string `xml:"hostname"`
			Port       int    `xml:"port"`
			SocketType string `xml:"socketType"`
			Username   string `xml:"username"`
		} `xml:"incomingServer"`
	} `xml:"emailProvider"`
}

// autoconfig asks the domain itself. Only HTTPS is tried, unlike
// Thunderbird, which falls back to plain HTTP: an answer over HTTP could be
// forged on the way, and it would send customers' passwords to whatever
// server the forger named.
func (d *Discoverer) autoconfig(ctx context.Context, local, domain string) []Candidate {
	address := local + "@" + domain
	urls := []string{
		"https://autoconfig." + domain + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(address),
		"https://" + domain + "/.well-known/autoconfig/mail/config-v1.1.xml",
	}
	for _, u := range urls {
		cfg, err := d.fetchConfig(ctx, u)
		if err != nil {
			continue
		}
		var out []Candidate
		for _, p := range cfg.Providers {
			for _, in := range p.Incoming {
				if c, ok := autoconfigCandidate(in.Type, in.Hostname, in.Port, in.SocketType, in.Username, local, domain); ok {
					out = append(out, c)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

func autoconfigCandidate(typ, host string, port int, socket, username, local, domain string) (Candidate, bool) {
	if !strings.EqualFold(typ, "imap") {
		return Candidate{}, false
	}
	host = strings.NewReplacer("%EMAILDOMAIN%", domain, "%EMAILLOCALPART%", local).Replace(strings.TrimSpace(host))
	host = normName(host)
	if host == "" || strings.ContainsAny(host, " /%@") || port <= 0 || port > 65535 {
		return Candidate{}, false
	}
	c := Candidate{Host: host, Port: port, Source: SourceAutoconfig}
	switch strings.ToUpper(strings.TrimSpace(socket)) {
	case "SSL", "TLS":
		c.Security = "tls"
	case "STARTTLS":
		c.Security = "starttls"
	default:
		c.Security = "plain"
		c.Note = catalog.M("note.plain")
	}
	switch strings.TrimSpace(username) {
	case "%EMAILADDRESS%":
		c.LoginForm = "address"
	case "%EMAILLOCALPART%":
		c.LoginForm = "local"
	}
	return c, true
}

func (d *Discoverer) fetchConfig(ctx context.Context, u string) (*clientConfig, error) {
	ctx, cancel := d.step(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	client := d.HTTP
	if client == nil {
		client = defaultHTTP
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("autoconfig %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("autoconfig %s: %s", u, resp.Status)
	}
	// Real files are a few kilobytes; the limit keeps a hostile server
	// from making us read forever.
	var cfg clientConfig
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&cfg); err != nil {
		return nil, fmt.Errorf("autoconfig %s: %w", u, err)
	}
	return &cfg, nil
}

// srv reads RFC 6186 records, implicit TLS first (RFC 8314 prefers it).
func (d *Discoverer) srv(ctx context.Context, r Resolver, domain string) []Candidate {
	var out []Candidate
	for _, s := range []struct{ service, security string }{{"imaps", "tls"}, {"imap", "starttls"}} {
		sctx, cancel := d.step(ctx)
		_, recs, _ := r.LookupSRV(sctx, s.service, "tcp", domain)
		cancel()
		for _, rec := range recs {
			// A target of "." says the service is explicitly not offered.
			if t := normName(rec.Target); t != "" && rec.Port != 0 {
				out = append(out, Candidate{Host: t, Port: int(rec.Port), Security: s.security, Source: SourceSRV})
			}
		}
	}
	return out
}

// mx recognises a provider by the domain's mail exchangers.
func (d *Discoverer) mx(ctx context.Context, r Resolver, domain string) []Candidate {
	sctx, cancel := d.step(ctx)
	defer cancel()
	mxs, _ := r.LookupMX(sctx, domain)
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	var out []Candidate
	for _, mx := range mxs {
		if p := ProviderForMX(mx.Host); p != nil {
			out = append(out, providerCandidate(p, SourceMX, catalog.M("note.mx", domain, p.Name, normName(mx.Host))))
		}
	}
	return out
}

// guesses tries the names most hosts use, if they exist at all.
func (d *Discoverer) guesses(ctx context.Context, r Resolver, domain string) []Candidate {
	var out []Candidate
	for _, host := range []string{"imap." + domain, "mail." + domain} {
		sctx, cancel := d.step(ctx)
		addrs, err := r.LookupHost(sctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			continue
		}
		out = append(out,
			Candidate{Host: host, Port: 993, Security: "tls", Source: SourceGuess},
			Candidate{Host: host, Port: 143, Security: "starttls", Source: SourceGuess})
	}
	return out
}

// merge drops repeated host:port pairs, keeping the first (best) source and
// what later ones knew in addition.
func merge(cs []Candidate) []Candidate {
	var out []Candidate
	at := map[string]int{}
	for _, c := range cs {
		c.Host = normName(c.Host)
		key := c.Addr()
		i, seen := at[key]
		if !seen {
			at[key] = len(out)
			out = append(out, c)
			continue
		}
		if out[i].Provider == nil {
			out[i].Provider = c.Provider
		}
		if out[i].LoginForm == "" {
			out[i].LoginForm = c.LoginForm
		}
		if out[i].Note.IsZero() {
			out[i].Note = c.Note
		}
	}
	return out
}

// check marks a candidate that is the hosting and probes whether its port
// answers.
func (d *Discoverer) check(ctx context.Context, r Resolver, h *hosting, c *Candidate) {
	if c.Provider == nil {
		for i := range Providers {
			if strings.EqualFold(Providers[i].Host, c.Host) {
				c.Provider = &Providers[i]
				break
			}
		}
	}
	if p := c.Provider; p != nil && p.OAuth {
		c.addNote(catalog.M("note.oauth", p.Name, p.Needs))
	} else if p != nil && !p.Needs.IsZero() {
		c.addNote(catalog.M("note.needs", p.Name, p.Needs))
	}
	if len(h.names) > 0 || len(h.addrs) > 0 {
		sctx, cancel := d.step(ctx)
		here, addrs, err := h.reaches(sctx, r, c.Host)
		cancel()
		if err == nil && here && d.Hosting.servesIMAP(c.Port) {
			c.IsHosting = true
			// This is the one thing the customer must act on: first.
			c.Note = joined(catalog.M("note.hosting", c.Host, strings.Join(addrs, ", ")), c.Note)
		}
	}
	sctx, cancel := d.step(ctx)
	defer cancel()
	dial := d.Dial
	if dial == nil {
		dial = publicDialer.DialContext
	}
	conn, err := dial(sctx, "tcp", c.Addr())
	if err != nil {
		if !c.IsHosting {
			c.addNote(catalog.M("note.unreachable", c.Host, strconv.Itoa(c.Port)))
		}
		return
	}
	c.Reachable = true
	conn.Close()
}

func (c *Candidate) addNote(m i18n.Message) {
	c.Note = joined(c.Note, m)
}

// joined is two sentences one after the other, or the one there is.
func joined(a, b i18n.Message) i18n.Message {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	}
	return catalog.M("join", a, b)
}

// prune drops guesses that lead nowhere: a guessed name that does not
// answer is noise, and one that is the hosting needs saying once, not per
// port. Candidates from the other sources stay, reachable or not, because
// they are what the domain or the provider declare.
func prune(cs []Candidate) []Candidate {
	hostingSaid := map[string]bool{}
	return slices.DeleteFunc(cs, func(c Candidate) bool {
		if c.Source != SourceGuess {
			return false
		}
		if c.IsHosting {
			if hostingSaid[c.Host] {
				return true
			}
			hostingSaid[c.Host] = true
			return false
		}
		return !c.Reachable
	})
}

// errInternalAddress is the refusal of the default dialer.
var errInternalAddress = errors.New("the address is in a private or local network")

// publicDialer checks the address actually connected to, after the name
// was resolved, so that a name resolving differently the second time
// cannot slip past.
var publicDialer = &net.Dialer{
	Timeout: 10 * time.Second,
	ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || imapconn.Internal(ap.Addr()) {
			return fmt.Errorf("connecting to %s: %w", address, errInternalAddress)
		}
		return nil
	},
}

// defaultHTTP fetches autoconfig files from public addresses only, and
// follows redirects only to HTTPS.
var defaultHTTP = &http.Client{
	Transport: &http.Transport{
		DialContext:         publicDialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        10,
		IdleConnTimeout:     30 * time.Second,
	},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("autoconfig redirect to %s: only HTTPS is followed", req.URL)
		}
		if len(via) >= 3 {
			return errors.New("autoconfig: too many redirects")
		}
		return nil
	},
}
