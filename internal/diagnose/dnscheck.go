package diagnose

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/idna"

	"mailmigrate/internal/i18n"
)

// Expect is what a domain's DNS should say once its mail is at this
// hosting.
type Expect struct {
	// MX are the hosting's mail exchangers (host names); any one of them
	// is fine.
	MX []string
	// IMAP, SMTP and POP3 are the host names or IP addresses that the
	// domain's imap., smtp., pop3. and mail. names should reach: a CNAME to
	// one of the host names, or A/AAAA records with one of their addresses.
	// An empty list skips that name.
	IMAP, SMTP, POP3 []string
	// SPFInclude is the hosting's SPF include domain, e.g.
	// "_spf.hosting.example"; empty skips the SPF check.
	SPFInclude string
	// Addresses are the hosting's own IP addresses, for "points to us"
	// decisions. The addresses of every host name above are added to them
	// at each check, so this may stay empty when those names resolve.
	Addresses []string
	// IMAPPorts are the ports the hosting's IMAP service answers on. An old
	// server on one of the hosting's addresses but at another port is a
	// different service (two servers can share an address), not a sign
	// that the DNS was moved. Empty means the standard 993 and 143.
	IMAPPorts []int
}

// servesIMAP tells whether the hosting's IMAP service answers on port;
// 0 (not known) counts as yes.
func (e Expect) servesIMAP(port int) bool {
	if port <= 0 {
		return true
	}
	ports := e.IMAPPorts
	if len(ports) == 0 {
		ports = []int{993, 143}
	}
	return slices.Contains(ports, port)
}

// The verdicts of a Row.
const (
	VerdictOK   = "ok"   // as it should be
	VerdictWarn = "warn" // works, but something is off or could not be checked
	VerdictFail = "fail" // mail goes, or programs connect, where it should not
)

// Row is one line of the DNS check: one record, what it should be, what it
// is and what to do about it.
type Row struct {
	Record string `json:"record"` // MX, CNAME, TXT (SPF), SRV, or "domain" for the domain as a whole
	Name   string `json:"name"`   // the DNS name checked, e.g. imap.firma.cz
	// Expected is the right value, as the customer would enter it; Found
	// is what DNS says now (zero when there is nothing). Both are record
	// values, or words where no value can say it.
	Expected i18n.Message `json:"expected"`
	Found    i18n.Message `json:"found"`
	Verdict  string       `json:"verdict"` // VerdictOK, VerdictWarn or VerdictFail
	Advice   i18n.Message `json:"advice"`  // what to change, in the customer's words; zero when nothing
}

// Localize returns a copy of the row for showing, with its texts written
// in the printer's language (so that an answer's JSON holds plain
// strings). The copy is not for storing.
func (r Row) Localize(p *i18n.Printer) Row {
	r.Expected = i18n.Literal(r.Expected.In(p))
	r.Found = i18n.Literal(r.Found.In(p))
	r.Advice = i18n.Literal(r.Advice.In(p))
	return r
}

// CheckDNS checks a domain's DNS after its mail moved to the hosting: MX,
// the imap./smtp./pop3./mail. names, SPF, and autoconfig and RFC 6186 SRV
// records where they exist. Each problem, including a missing record or a
// DNS server that does not answer, is a row with advice, not an error; the
// error is for a malformed domain or a cancelled ctx. When the domain does
// not exist or its DNS servers do not answer at all, a single "domain" row
// says so instead of one failure per record.
func CheckDNS(ctx context.Context, r Resolver, domain string, e Expect) ([]Row, error) {
	domain, err := normDomain(domain)
	if err != nil {
		return nil, err
	}
	h := resolveHosting(ctx, r, e)

	// The MX lookup doubles as the probe whether the domain exists.
	mxs, mxErr := r.LookupMX(ctx, domain)
	if mxErr != nil && len(mxs) == 0 {
		row, ok := domainRow(ctx, r, domain, mxErr)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("DNS check of %s: %w", domain, err)
		}
		if ok {
			return []Row{row}, nil
		}
	}

	// The remaining checks are independent lookups; against a slow DNS
	// server, doing them one after another would add up their timeouts.
	var checks []func() []Row
	if len(e.MX) > 0 {
		checks = append(checks, func() []Row { return []Row{mxRow(ctx, r, domain, mxs, mxErr, e, h)} })
	}
	for _, n := range nameChecks(e) {
		checks = append(checks, func() []Row { return nameRows(ctx, r, n.label+"."+domain, n, h) })
	}
	if e.SPFInclude != "" {
		checks = append(checks, func() []Row { return []Row{spfRow(ctx, r, domain, e.SPFInclude)} })
	}
	checks = append(checks,
		func() []Row { return autoconfigRows(ctx, r, "autoconfig."+domain, h) },
		func() []Row { return srvRows(ctx, r, "imaps", domain, e.IMAP, 993, h) },
		func() []Row { return srvRows(ctx, r, "submission", domain, e.SMTP, 587, h) },
	)
	results := make([][]Row, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { results[i] = check() })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("DNS check of %s: %w", domain, err)
	}
	return slices.Concat(results...), nil
}

// PointsToHosting reports whether a server the customer gave as the OLD
// server is the hosting's own IMAP service: its name resolves to the
// hosting and port is one the hosting's IMAP answers on. That means the
// domain's DNS was already moved and the name no longer leads to the old
// provider. It returns the addresses found. host may also be an IP
// address; port 0 matches any port.
func PointsToHosting(ctx context.Context, r Resolver, host string, port int, e Expect) (bool, []string, error) {
	h := resolveHosting(ctx, r, e)
	here, addrs, err := h.reaches(ctx, r, host)
	return here && e.servesIMAP(port), addrs, err
}

// hosting is what the hosting is known as, by name and by address.
type hosting struct {
	names map[string]bool
	addrs map[netip.Addr]bool
	// of holds the addresses of each configured host name, to show the
	// customer an A record to set where a CNAME is not possible.
	of map[string][]string
}

// resolveHosting collects the hosting's names and addresses. A hosting name
// that does not resolve just contributes nothing: the check of the
// customer's domain must not fail over the hosting's own DNS.
func resolveHosting(ctx context.Context, r Resolver, e Expect) *hosting {
	h := &hosting{names: map[string]bool{}, addrs: map[netip.Addr]bool{}, of: map[string][]string{}}
	for _, a := range e.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			h.addrs[ip.Unmap()] = true
		}
	}
	var names []string
	for _, n := range slices.Concat(e.MX, e.IMAP, e.SMTP, e.POP3) {
		if ip, err := netip.ParseAddr(n); err == nil {
			h.addrs[ip.Unmap()] = true
			continue
		}
		n = normName(n)
		if n != "" && !h.names[n] {
			h.names[n] = true
			names = append(names, n)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() {
			addrs, _ := r.LookupHost(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			h.of[n] = addrs
			for _, a := range addrs {
				if ip, err := netip.ParseAddr(a); err == nil {
					h.addrs[ip.Unmap()] = true
				}
			}
		})
	}
	wg.Wait()
	return h
}

func (h *hosting) hasAddr(a string) bool {
	ip, err := netip.ParseAddr(a)
	return err == nil && h.addrs[ip.Unmap()]
}

// reaches tells whether host is the hosting: one of its names, a CNAME to
// one, or a name with one of its addresses.
func (h *hosting) reaches(ctx context.Context, r Resolver, host string) (bool, []string, error) {
	host = normName(host)
	if _, err := netip.ParseAddr(host); err == nil {
		return h.hasAddr(host), []string{host}, nil
	}
	cname, _ := r.LookupCNAME(ctx, host)
	addrs, err := r.LookupHost(ctx, host)
	if h.names[host] || (cname != "" && h.names[normName(cname)]) {
		return true, addrs, nil
	}
	if err != nil {
		return false, nil, lookupError("the addresses of", host, err)
	}
	return slices.ContainsFunc(addrs, h.hasAddr), addrs, nil
}

// shownName is a host name from DNS as the customer should see it: the
// root (a null MX or SRV target) stays ".".
func shownName(s string) string {
	if n := normName(s); n != "" {
		return n
	}
	return "."
}

// normName lower-cases a host name and drops the root dot, for comparing.
func normName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// normDomain validates a domain and returns its ASCII form (an
// internationalised name such as příklad.cz is looked up as its xn--
// form).
func normDomain(domain string) (string, error) {
	d := normName(domain)
	if d == "" || strings.ContainsAny(d, "@/: \t") || !strings.Contains(d, ".") {
		return "", &InputError{catalog.M("error.domain", domain)}
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", &InputError{catalog.M("error.domain_invalid", domain, err.Error())}
	}
	return a, nil
}

// domainRow returns the single row for a domain that does not exist or
// whose DNS does not answer; ok is false when the domain is there and the
// record-by-record check should go on.
func domainRow(ctx context.Context, r Resolver, domain string, mxErr error) (Row, bool) {
	_, hostErr := r.LookupHost(ctx, domain)
	_, txtErr := r.LookupTXT(ctx, domain)
	outs := []lookupOutcome{outcome(mxErr), outcome(hostErr), outcome(txtErr)}
	if slices.Contains(outs, found) {
		return Row{}, false
	}
	row := Row{Record: "domain", Name: domain, Expected: catalog.M("expected.domain"), Verdict: VerdictFail}
	switch {
	case !slices.ContainsFunc(outs, func(o lookupOutcome) bool { return o != notFound }):
		row.Found = catalog.M("found.no_records")
		row.Advice = catalog.M("advice.domain.missing", domain)
	case slices.Contains(outs, temporary):
		row.Found = catalog.M("found.no_answer")
		row.Advice = catalog.M("advice.domain.no_answer", domain)
	default:
		return Row{}, false
	}
	return row, true
}

// mxRow checks that the domain's mail is delivered to the hosting.
func mxRow(ctx context.Context, r Resolver, domain string, mxs []*net.MX, err error, e Expect, h *hosting) Row {
	row := Row{Record: "MX", Name: domain, Expected: i18n.Literal(orList(e.MX))}
	set := mxAdvice(domain, e.MX)
	if len(mxs) == 0 {
		switch outcome(err) {
		case notFound:
			row.Verdict = VerdictFail
			row.Advice = catalog.M("advice.mx.none", domain, set)
		default:
			row.Verdict = VerdictWarn
			row.Advice = tryAgain(domain, "MX", err)
		}
		return row
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	var found []string
	var others []i18n.Message
	ours := make([]bool, len(mxs))
	for i, mx := range mxs {
		found = append(found, fmt.Sprintf("%d %s", mx.Pref, shownName(mx.Host)))
		ours[i] = isOurMX(ctx, r, mx.Host, e, h)
		if !ours[i] {
			others = append(others, catalog.M("mx.priority", normName(mx.Host), strconv.Itoa(int(mx.Pref))))
		}
	}
	row.Found = i18n.Literal(strings.Join(found, ", "))
	switch {
	case len(mxs) == 1 && normName(mxs[0].Host) == "":
		// RFC 7505 "null MX": the domain declares it accepts no mail.
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.mx.null", domain, set)
	case !slices.Contains(ours, false):
		row.Verdict = VerdictOK
	case !slices.Contains(ours, true):
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.mx.old", set, strings.Join(hostsOf(mxs), ", "))
	default:
		// Some ours, some not: senders pick by priority and fall back, so
		// part of the new mail still goes to the old provider.
		row.Verdict = VerdictWarn
		if !ours[0] {
			row.Verdict = VerdictFail // the preferred exchanger is the old one
		}
		row.Advice = catalog.M("advice.mx.partly", domain, list(others, "list.comma"))
	}
	return row
}

// isOurMX tells whether an exchanger is the hosting's, by name or, for a
// customer's own name such as mx.firma.cz, by address.
func isOurMX(ctx context.Context, r Resolver, host string, e Expect, h *hosting) bool {
	n := normName(host)
	for _, m := range e.MX {
		if normName(m) == n {
			return true
		}
	}
	if n == "" {
		return false
	}
	addrs, err := r.LookupHost(ctx, n)
	return err == nil && len(addrs) > 0 && !slices.ContainsFunc(addrs, func(a string) bool { return !h.hasAddr(a) })
}

// mxAdvice is the instruction to set the MX records to the hosting's.
func mxAdvice(domain string, mx []string) i18n.Message {
	var parts []i18n.Message
	for i, m := range mx {
		parts = append(parts, catalog.M("mx.priority", normName(m), strconv.Itoa(10*(i+1))))
	}
	if len(parts) == 1 {
		return catalog.M("mx.set.one", domain, parts[0])
	}
	return catalog.M("mx.set.many", domain, list(parts, "list.and"))
}

// list joins items with commas, and the last two with the text of key
// ("list.and": "a, b and c"; "list.comma": "a, b, c").
func list(items []i18n.Message, key string) i18n.Message {
	if len(items) == 0 {
		return i18n.Message{}
	}
	out := items[len(items)-1]
	if len(items) > 1 {
		out = catalog.M(key, list(items[:len(items)-1], "list.comma"), out)
	}
	return out
}

func hostsOf(mxs []*net.MX) []string {
	var s []string
	for _, mx := range mxs {
		s = append(s, normName(mx.Host))
	}
	return s
}

// nameCheck is one of the client-facing names of the domain.
type nameCheck struct {
	label  string
	expect []string
	effect string // key of what keeps happening while the name points elsewhere
	// optional names get no row when they do not exist: only imap. and
	// smtp. are what mail programs are commonly set up with.
	optional bool
}

func nameChecks(e Expect) []nameCheck {
	var out []nameCheck
	add := func(label string, expect []string, effect string, optional bool) {
		if len(expect) > 0 {
			out = append(out, nameCheck{label, expect, effect, optional})
		}
	}
	add("imap", e.IMAP, "effect.imap", false)
	add("smtp", e.SMTP, "effect.smtp", false)
	add("pop3", e.POP3, "effect.pop3", true)
	add("mail", slices.Concat(e.IMAP, e.SMTP, e.POP3), "effect.mail", true)
	return out
}

// nameRows checks that a name such as imap.firma.cz reaches the hosting.
func nameRows(ctx context.Context, r Resolver, name string, n nameCheck, h *hosting) []Row {
	expect := n.expect
	target, addrsOfTarget := firstName(expect, h)
	row := Row{Record: "CNAME", Name: name, Expected: expectedTarget(target, addrsOfTarget)}
	cname, cnameErr := r.LookupCNAME(ctx, name)
	addrs, err := r.LookupHost(ctx, name)
	row.Found = describeTarget(cname, addrs)
	toUs := func(c string) bool {
		return slices.ContainsFunc(expect, func(x string) bool { return normName(x) == normName(c) }) || h.names[normName(c)]
	}
	setIt := setTarget(name, target, addrsOfTarget)
	switch {
	case cname != "" && toUs(cname):
		row.Verdict = VerdictOK
	case len(addrs) == 0 && cname == "":
		switch o := outcome(err); {
		case o == notFound && outcome(cnameErr) != temporary:
			if n.optional {
				return nil
			}
			row.Verdict = VerdictWarn
			direct := target
			if direct == "" && len(addrsOfTarget) > 0 {
				direct = addrsOfTarget[0]
			}
			row.Advice = catalog.M("advice.name.missing", name, setIt, direct)
		default:
			if err == nil {
				err = cnameErr
			}
			row.Verdict = VerdictWarn
			row.Advice = tryAgain(name, "A/AAAA", err)
		}
	case len(addrs) > 0 && !slices.ContainsFunc(addrs, func(a string) bool { return !h.hasAddr(a) }):
		row.Verdict = VerdictOK
	case slices.ContainsFunc(addrs, h.hasAddr):
		var stray []string
		for _, a := range addrs {
			if !h.hasAddr(a) {
				stray = append(stray, a)
			}
		}
		row.Verdict = VerdictWarn
		row.Advice = catalog.M("advice.name.mixed", name, strings.Join(stray, ", "), strings.Join(stray, ", "))
	default:
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.name.elsewhere", setIt, row.Found, catalog.M(n.effect, name))
	}
	return []Row{row}
}

// firstName picks the host name to recommend (a CNAME target), with its
// addresses for those who can only set A records.
func firstName(expect []string, h *hosting) (string, []string) {
	var ips []string
	for _, x := range expect {
		if _, err := netip.ParseAddr(x); err == nil {
			ips = append(ips, x)
			continue
		}
		return normName(x), h.of[normName(x)]
	}
	return "", ips
}

func expectedTarget(target string, addrs []string) i18n.Message {
	switch {
	case target != "" && len(addrs) > 0:
		return catalog.M("expected.cname_or", target, describeAddrs(addrs))
	case target != "":
		return i18n.Literal("CNAME " + target)
	}
	return i18n.Literal(describeAddrs(addrs))
}

// setTarget is the instruction to point name at the hosting, without the
// final full stop.
func setTarget(name, target string, addrs []string) i18n.Message {
	switch {
	case target != "" && len(addrs) > 0:
		return catalog.M("set.cname_or_addr", name, target, strings.Join(addrs, ", "))
	case target != "":
		return catalog.M("set.cname", name, target)
	}
	return catalog.M("set.addr", name, strings.Join(addrs, ", "))
}

func describeTarget(cname string, addrs []string) i18n.Message {
	switch {
	case cname != "" && len(addrs) > 0:
		return i18n.Literal(fmt.Sprintf("CNAME %s (%s)", normName(cname), strings.Join(addrs, ", ")))
	case cname != "":
		return catalog.M("found.cname_no_addr", normName(cname))
	}
	return i18n.Literal(describeAddrs(addrs))
}

func describeAddrs(addrs []string) string {
	var s []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is4() {
			s = append(s, "A "+a)
		} else {
			s = append(s, "AAAA "+a)
		}
	}
	return strings.Join(s, ", ")
}

// spfRow checks that the domain's SPF policy allows the hosting to send
// its mail.
func spfRow(ctx context.Context, r Resolver, domain, include string) Row {
	include = normName(include)
	row := Row{Record: "TXT (SPF)", Name: domain, Expected: i18n.Literal(fmt.Sprintf("v=spf1 … include:%s … ~all", include))}
	txts, err := r.LookupTXT(ctx, domain)
	if o := outcome(err); o != found && o != notFound {
		row.Verdict = VerdictWarn
		row.Advice = tryAgain(domain, "TXT", err)
		return row
	}
	var spfs []string
	for _, t := range txts {
		if isSPF(t) {
			spfs = append(spfs, t)
		}
	}
	row.Found = i18n.Literal(strings.Join(spfs, " | "))
	switch {
	case len(spfs) == 0:
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.spf.none", domain, domain, include)
	case len(spfs) > 1:
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.spf.many", domain, i18n.Count(len(spfs)), include)
	case spfIncludes(spfs[0], include):
		row.Verdict = VerdictOK
	default:
		row.Verdict = VerdictFail
		row.Advice = catalog.M("advice.spf.wrong", domain, withInclude(spfs[0], include))
	}
	return row
}

// isSPF tells whether a TXT record is an SPF policy (RFC 7208 4.5: "v=spf1"
// followed by a space or the end).
func isSPF(txt string) bool {
	t := strings.ToLower(strings.TrimSpace(txt))
	return t == "v=spf1" || strings.HasPrefix(t, "v=spf1 ")
}

// spfIncludes reports whether the policy delegates to the hosting's include
// domain, by include: or by redirect=.
func spfIncludes(spf, include string) bool {
	for _, term := range strings.Fields(strings.ToLower(spf)) {
		term = strings.TrimLeft(term, "+-~?")
		if v, ok := strings.CutPrefix(term, "include:"); ok && normName(v) == include {
			return true
		}
		if v, ok := strings.CutPrefix(term, "redirect="); ok && normName(v) == include {
			return true
		}
	}
	return false
}

// withInclude adds include:<include> to a policy, before its "all" or
// redirect (terms after "all" are never reached).
func withInclude(spf, include string) string {
	terms := strings.Fields(spf)
	at := len(terms)
	for i, t := range terms {
		lt := strings.ToLower(strings.TrimLeft(t, "+-~?"))
		if lt == "all" || strings.HasPrefix(lt, "redirect=") {
			at = i
			break
		}
	}
	terms = slices.Insert(terms, max(at, 1), "include:"+include)
	return strings.Join(terms, " ")
}

// autoconfigRows reports autoconfig.<domain>, which mail programs such as
// Thunderbird ask for their settings; no row when it does not exist.
func autoconfigRows(ctx context.Context, r Resolver, name string, h *hosting) []Row {
	cname, _ := r.LookupCNAME(ctx, name)
	addrs, err := r.LookupHost(ctx, name)
	row := Row{Record: "CNAME", Name: name, Expected: catalog.M("expected.autoconfig"), Found: describeTarget(cname, addrs)}
	switch {
	case cname != "" && h.names[normName(cname)]:
		row.Verdict = VerdictOK
	case len(addrs) == 0 && cname == "":
		if outcome(err) == notFound {
			return nil
		}
		row.Verdict = VerdictWarn
		row.Advice = tryAgain(name, "A/AAAA", err)
	case slices.ContainsFunc(addrs, h.hasAddr):
		row.Verdict = VerdictOK
	default:
		row.Verdict = VerdictWarn
		row.Advice = catalog.M("advice.autoconfig.elsewhere", name, row.Found)
	}
	return []Row{row}
}

// srvRows reports an RFC 6186 SRV record (_imaps._tcp, _submission._tcp),
// which some mail programs use to find their server; no row when there is
// none.
func srvRows(ctx context.Context, r Resolver, service, domain string, expect []string, port int, h *hosting) []Row {
	name := "_" + service + "._tcp." + domain
	_, srvs, err := r.LookupSRV(ctx, service, "tcp", domain)
	target, _ := firstName(expect, h)
	row := Row{Record: "SRV", Name: name, Expected: catalog.M("expected.none")}
	if target != "" {
		row.Expected = catalog.M("expected.srv", strconv.Itoa(port), target)
	}
	if len(srvs) == 0 {
		if o := outcome(err); o == notFound || o == found {
			return nil
		}
		row.Verdict = VerdictWarn
		row.Advice = tryAgain(name, "SRV", err)
		return []Row{row}
	}
	var found []string
	ok := true
	for _, s := range srvs {
		found = append(found, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, shownName(s.Target)))
		if t := normName(s.Target); t == "" || !(h.names[t] || srvReaches(ctx, r, t, h)) {
			ok = false
		}
	}
	row.Found = i18n.Literal(strings.Join(found, ", "))
	fix := catalog.M("fix.delete")
	if target != "" {
		fix = catalog.M("fix.point", target, strconv.Itoa(port))
	}
	switch {
	case ok:
		row.Verdict = VerdictOK
	case len(srvs) == 1 && normName(srvs[0].Target) == "":
		row.Verdict = VerdictWarn
		row.Advice = catalog.M("advice.srv.not_offered", name, fix)
	default:
		row.Verdict = VerdictWarn
		row.Advice = catalog.M("advice.srv.elsewhere", name, row.Found, fix)
	}
	return []Row{row}
}

func srvReaches(ctx context.Context, r Resolver, host string, h *hosting) bool {
	addrs, err := r.LookupHost(ctx, host)
	return err == nil && slices.ContainsFunc(addrs, h.hasAddr)
}

// tryAgain is the advice for a lookup of a record type (what) that failed
// without an answer.
func tryAgain(name, what string, err error) i18n.Message {
	if outcome(err) == temporary {
		return catalog.M("advice.try_again.temporary", what, name)
	}
	return catalog.M("advice.try_again.failed", what, name, fmt.Sprint(err))
}

func orList(s []string) string {
	var n []string
	for _, x := range s {
		n = append(n, normName(x))
	}
	return strings.Join(n, " or ")
}
