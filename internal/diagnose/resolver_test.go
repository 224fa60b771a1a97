package diagnose

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsLog is the questions a test DNS server was asked.
type dnsLog struct {
	mu sync.Mutex
	qs []dns.Question
}

func (l *dnsLog) add(q []dns.Question) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qs = append(l.qs, q...)
}

// asked reports whether name was asked for with qtype.
func (l *dnsLog) asked(name string, qtype uint16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.qs, func(q dns.Question) bool {
		return strings.EqualFold(q.Name, dns.Fqdn(name)) && q.Qtype == qtype
	})
}

// serveDNS runs handler on loopback, over UDP and TCP on one port, and
// returns the address and the log of questions.
func serveDNS(t *testing.T, handler func(w dns.ResponseWriter, req *dns.Msg)) (string, *dnsLog) {
	t.Helper()
	log := &dnsLog{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		log.add(req.Question)
		handler(w, req)
	})
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String(), log
}

// zoneHandler answers from zone the way startDNS does.
func zoneHandler(t *testing.T, zone string) func(w dns.ResponseWriter, req *dns.Msg) {
	t.Helper()
	var rrs []dns.RR
	for line := range strings.SplitSeq(zone, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	return func(w dns.ResponseWriter, req *dns.Msg) { w.WriteMsg(answer(rrs, nil, req)) }
}

// hostsFileNames are the names in the machine's hosts file: names the
// system resolver knows without asking any DNS server. localhost is in
// every one.
func hostsFileNames(t *testing.T) []string {
	names := []string{"localhost"}
	f, err := os.Open("/etc/hosts")
	if err != nil {
		return names
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		for _, n := range fields[min(1, len(fields)):] {
			if !slices.Contains(names, n) && len(names) < 20 {
				names = append(names, n)
			}
		}
	}
	return names
}

// With a DNS server configured, a name that only the machine's hosts file
// knows does not exist: no lookup reads the hosts file, every one is a
// question to the server. A test cannot add to /etc/hosts, so the test
// binary runs itself again in a mount namespace with a hosts file of its
// own laid over /etc/hosts (where that is allowed: as root with
// unshare(1)); the names already in the machine's file are checked here.
func TestConfiguredServerIgnoresHostsFile(t *testing.T) {
	const onlyInHosts = "imap.only-in-hosts.mailmigrate.test"
	child := os.Getenv("MAILMIGRATE_TEST_HOSTS_CHILD") != ""
	if !child {
		runWithHostsFile(t, "192.0.2.99 "+onlyInHosts+"\n127.0.0.1 localhost\n")
	}
	names := hostsFileNames(t)
	if child {
		// The laid-over file is in effect: the system resolver reads it.
		if addrs, err := NewResolver("").LookupHost(context.Background(), onlyInHosts); err != nil || !slices.Equal(addrs, []string{"192.0.2.99"}) {
			t.Fatalf("the system resolver does not see the test's hosts file: %v, %v", addrs, err)
		}
		if !slices.Contains(names, onlyInHosts) {
			names = append(names, onlyInHosts)
		}
	}
	server, log := serveDNS(t, zoneHandler(t, "firma.cz. A 198.51.100.1"))
	r := NewResolver(server)
	ctx := context.Background()
	for _, name := range names {
		addrs, err := r.LookupHost(ctx, name)
		if outcome(err) != notFound || len(addrs) > 0 {
			t.Errorf("LookupHost(%q) = %v, %v; want not found from the DNS server", name, addrs, err)
		}
		if !log.asked(name, dns.TypeA) || !log.asked(name, dns.TypeAAAA) {
			t.Errorf("LookupHost(%q) did not ask the server for A and AAAA", name)
		}
		if cname, err := r.LookupCNAME(ctx, name); outcome(err) != notFound || cname != "" {
			t.Errorf("LookupCNAME(%q) = %q, %v; want not found", name, cname, err)
		}
		if mxs, err := r.LookupMX(ctx, name); outcome(err) != notFound || len(mxs) > 0 || !log.asked(name, dns.TypeMX) {
			t.Errorf("LookupMX(%q) = %v, %v", name, mxs, err)
		}
		if txts, err := r.LookupTXT(ctx, name); outcome(err) != notFound || len(txts) > 0 || !log.asked(name, dns.TypeTXT) {
			t.Errorf("LookupTXT(%q) = %v, %v", name, txts, err)
		}
		if _, srvs, err := r.LookupSRV(ctx, "imaps", "tcp", name); outcome(err) != notFound || len(srvs) > 0 || !log.asked("_imaps._tcp."+name, dns.TypeSRV) {
			t.Errorf("LookupSRV(%q) = %v, %v", name, srvs, err)
		}
	}
	// And what the server knows, it answers.
	if addrs, err := r.LookupHost(ctx, "firma.cz"); err != nil || !slices.Equal(addrs, []string{"198.51.100.1"}) {
		t.Errorf("LookupHost(firma.cz) = %v, %v", addrs, err)
	}
}

// runWithHostsFile runs the calling test again in a private mount
// namespace whose /etc/hosts is hosts, and fails with its failures.
func runWithHostsFile(t *testing.T, hosts string) {
	t.Helper()
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		t.Logf("no mount namespace (%v): the hosts file is not laid over", err)
		return
	}
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `mount --bind "$1" /etc/hosts || exit 77; exec "$2" -test.run="^$3\$" -test.count=1 -test.v`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", path, os.Args[0], t.Name())
	cmd.Env = append(os.Environ(), "MAILMIGRATE_TEST_HOSTS_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 77:
		t.Logf("cannot mount over /etc/hosts: %s", out)
	case err != nil:
		t.Fatalf("with the test's hosts file: %v\n%s", err, out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the run with the test's hosts file did not run the test:\n%s", out)
	}
}

// What the client makes of answers, good and bad.
func TestDNSClientAnswers(t *testing.T) {
	const zone = `
mail.firma.cz.        CNAME  imap.firma.cz.
imap.firma.cz.        CNAME  host.provider.tld.
host.provider.tld.    A      198.51.100.7
host.provider.tld.    AAAA   2001:db8::7
dangling.firma.cz.    CNAME  nowhere.firma.cz.
loop1.firma.cz.       CNAME  loop2.firma.cz.
loop2.firma.cz.       CNAME  loop1.firma.cz.
firma.cz.             MX     20 mx2.firma.cz.
firma.cz.             MX     10 mx1.firma.cz.
null.cz.              MX     0 .
firma.cz.             TXT    "v=spf1 " "include:_spf.x.cz -all"
quoted.cz.            TXT    "say \"hi\" \\ \200\255 ěš"
_imaps._tcp.firma.cz. SRV    0 1 993 imap.firma.cz.
_imaps._tcp.firma.cz. SRV    0 5 993 imap2.firma.cz.
_imaps._tcp.firma.cz. SRV    10 5 993 imap3.firma.cz.
bad.cz.               MX     10 a\032b.cz.
bad.cz.               MX     20 ok.cz.
`
	server, _ := serveDNS(t, zoneHandler(t, zone))
	r := NewResolver(server)
	ctx := context.Background()

	if addrs, err := r.LookupHost(ctx, "mail.firma.cz"); err != nil || !slices.Equal(addrs, []string{"198.51.100.7", "2001:db8::7"}) {
		t.Errorf("LookupHost through two CNAMEs = %v, %v", addrs, err)
	}
	if c, err := r.LookupCNAME(ctx, "mail.firma.cz"); err != nil || c != "host.provider.tld." {
		t.Errorf("LookupCNAME = %q, %v; want the end of the chain", c, err)
	}
	if c, err := r.LookupCNAME(ctx, "host.provider.tld"); err != nil || c != "" {
		t.Errorf("LookupCNAME of a name with addresses = %q, %v", c, err)
	}
	if c, err := r.LookupCNAME(ctx, "dangling.firma.cz"); err != nil || c != "nowhere.firma.cz." {
		t.Errorf("LookupCNAME of a dangling CNAME = %q, %v", c, err)
	}
	if addrs, err := r.LookupHost(ctx, "dangling.firma.cz"); outcome(err) != notFound || len(addrs) > 0 {
		t.Errorf("LookupHost of a dangling CNAME = %v, %v", addrs, err)
	}
	if addrs, err := r.LookupHost(ctx, "loop1.firma.cz"); err == nil || len(addrs) > 0 {
		t.Errorf("LookupHost of a CNAME loop = %v, %v", addrs, err)
	}
	if mxs, err := r.LookupMX(ctx, "firma.cz"); err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.firma.cz." || mxs[1].Pref != 20 {
		t.Errorf("LookupMX = %v, %v", mxs, err)
	}
	if mxs, err := r.LookupMX(ctx, "null.cz"); err != nil || len(mxs) != 1 || mxs[0].Host != "." {
		t.Errorf("LookupMX of a null MX = %v, %v", mxs, err)
	}
	// A name that is no host name is left out, and said to be.
	if mxs, err := r.LookupMX(ctx, "bad.cz"); len(mxs) != 1 || mxs[0].Host != "ok.cz." || err == nil || outcome(err) == notFound {
		t.Errorf("LookupMX with a malformed name = %v, %v", mxs, err)
	}
	if txts, err := r.LookupTXT(ctx, "firma.cz"); err != nil || !slices.Equal(txts, []string{"v=spf1 include:_spf.x.cz -all"}) {
		t.Errorf("LookupTXT = %q, %v", txts, err)
	}
	if txts, err := r.LookupTXT(ctx, "quoted.cz"); err != nil || !slices.Equal(txts, []string{"say \"hi\" \\ \xc8\xff ěš"}) {
		t.Errorf("LookupTXT with escapes = %q, %v", txts, err)
	}
	cname, srvs, err := r.LookupSRV(ctx, "imaps", "tcp", "firma.cz")
	if err != nil || cname != "_imaps._tcp.firma.cz." || len(srvs) != 3 || srvs[0].Target != "imap2.firma.cz." || srvs[2].Priority != 10 {
		t.Errorf("LookupSRV = %q, %v, %v", cname, srvs, err)
	}
	// An address is its own answer; a name no DNS name can be is not
	// asked for.
	if addrs, err := r.LookupHost(ctx, "192.0.2.1"); err != nil || !slices.Equal(addrs, []string{"192.0.2.1"}) {
		t.Errorf("LookupHost of an address = %v, %v", addrs, err)
	}
	for _, name := range []string{`a\.b.cz`, "a b.cz", "a..cz", strings.Repeat("a", 64) + ".cz", "ř.cz"} {
		if addrs, err := r.LookupHost(ctx, name); outcome(err) != notFound || len(addrs) > 0 {
			t.Errorf("LookupHost(%q) = %v, %v", name, addrs, err)
		}
	}
}

// A server in trouble is a temporary failure, as with Go's resolver; an
// answer too long for UDP is asked again over TCP; an answer about
// something else is not taken.
func TestDNSClientFailures(t *testing.T) {
	ctx := context.Background()
	servfail, _ := serveDNS(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m)
	})
	if _, err := NewResolver(servfail).LookupMX(ctx, "firma.cz"); outcome(err) != temporary {
		t.Errorf("SERVFAIL: %v, want temporary", err)
	}
	refused, _ := serveDNS(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
	})
	if _, err := NewResolver(refused).LookupTXT(ctx, "firma.cz"); outcome(err) != lookupFail {
		t.Errorf("REFUSED: %v, want a failure", err)
	}

	// A server that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	silent := &dnsResolver{server: pc.LocalAddr().String(), timeout: 200 * time.Millisecond, attempts: 2}
	start := time.Now()
	if _, err := silent.LookupHost(ctx, "firma.cz"); outcome(err) != temporary {
		t.Errorf("no answer: %v, want temporary", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("no answer took %v", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := silent.LookupMX(cctx, "firma.cz"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// Truncated over UDP, whole over TCP.
	var many strings.Builder
	for i := range 60 {
		many.WriteString("big.cz. TXT \"" + strings.Repeat("x", 40) + string(rune('a'+i%26)) + "\"\n")
	}
	bigZone := zoneHandler(t, many.String())
	big, log := serveDNS(t, func(w dns.ResponseWriter, req *dns.Msg) {
		if w.LocalAddr().Network() == "udp" {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		bigZone(w, req)
	})
	if txts, err := NewResolver(big).LookupTXT(ctx, "big.cz"); err != nil || len(txts) != 60 {
		t.Errorf("truncated answer: %d records, %v", len(txts), err)
	}
	if !log.asked("big.cz", dns.TypeTXT) {
		t.Error("the TCP server was not asked")
	}

	// Records of another name than asked, or an answer to another
	// question.
	spoof, _ := serveDNS(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		rr, _ := dns.NewRR("evil.cz. A 10.0.0.1")
		m.Answer = append(m.Answer, rr)
		if strings.HasPrefix(req.Question[0].Name, "other") {
			m.Question[0].Name = "evil.cz."
		}
		w.WriteMsg(m)
	})
	if addrs, err := NewResolver(spoof).LookupHost(ctx, "firma.cz"); len(addrs) > 0 || outcome(err) != notFound {
		t.Errorf("records of another name: %v, %v", addrs, err)
	}
	if addrs, err := NewResolver(spoof).LookupHost(ctx, "other.cz"); len(addrs) > 0 || err == nil {
		t.Errorf("an answer to another question: %v, %v", addrs, err)
	}
}

func TestNewResolverServerAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":         "192.0.2.53:53",
		"192.0.2.53:5353":    "192.0.2.53:5353",
		"2001:db8::53":       "[2001:db8::53]:53",
		"[2001:db8::53]":     "[2001:db8::53]:53",
		"[2001:db8::53]:853": "[2001:db8::53]:853",
		"dns.hosting.test":   "dns.hosting.test:53",
	} {
		r, ok := NewResolver(in).(*dnsResolver)
		if !ok || r.server != want {
			t.Errorf("NewResolver(%q) asks %v, want %s", in, NewResolver(in), want)
		}
	}
	if _, ok := NewResolver("").(netResolver); !ok {
		t.Error(`NewResolver("") is not the system resolver`)
	}
}

// A TXT string of any bytes comes back as those bytes.
func FuzzUnescapeTXT(f *testing.F) {
	for _, s := range []string{"v=spf1 -all", `a"b\c`, "\x00\x01\xff", "\\065", "ěščř", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = raw[:min(len(raw), 255)]
		rr := &dns.RFC3597{Hdr: dns.RR_Header{Name: "x.cz.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Rdata: hex.EncodeToString(append([]byte{byte(len(raw))}, raw...))}
		m := new(dns.Msg)
		m.SetQuestion("x.cz.", dns.TypeTXT)
		m.Answer = []dns.RR{rr}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		txt := back.Answer[0].(*dns.TXT)
		if got := unescapeTXT(txt.Txt[0]); got != string(raw) {
			t.Fatalf("%q read as %q, unescaped %q", raw, txt.Txt[0], got)
		}
		// Unescaping never panics on what a library of another version
		// could write either.
		unescapeTXT(string(raw))
	})
}

// Whatever a server answers, the client takes only what the question
// asked for: records of the chain's last name, which is a valid name.
func FuzzDNSAnswer(f *testing.F) {
	seed := func(zone ...string) {
		m := new(dns.Msg)
		m.SetQuestion("firma.cz.", dns.TypeA)
		for _, z := range zone {
			rr, err := dns.NewRR(z)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, uint16(dns.TypeA))
	}
	seed("firma.cz. A 198.51.100.1")
	seed("firma.cz. CNAME a.cz.", "a.cz. CNAME b.cz.", "b.cz. A 198.51.100.2", "evil.cz. A 10.0.0.1")
	seed("firma.cz. CNAME firma.cz.")
	seed("firma.cz. MX 10 a\\032b.cz.", "firma.cz. TXT \"x\\\"y\"")
	f.Fuzz(func(t *testing.T, wire []byte, qtype uint16) {
		var m dns.Msg
		if m.Unpack(wire) != nil {
			return
		}
		name := "firma.cz."
		if len(m.Question) == 1 && validName(m.Question[0].Name) {
			name = m.Question[0].Name
		}
		canonical, rrs := chase(name, m.Answer, qtype)
		if !validName(canonical) {
			t.Fatalf("canonical name %q", canonical)
		}
		for _, rr := range rrs {
			if h := rr.Header(); h.Rrtype != qtype || !strings.EqualFold(h.Name, canonical) {
				t.Fatalf("record %v for %s %d", rr, canonical, qtype)
			}
		}
		r := &dnsResolver{server: "192.0.2.53:53"}
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if resp, err := r.check(name, q, &m); resp != nil && (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
			t.Fatalf("rcode %d taken (%v)", resp.Rcode, err)
		}
	})
}
