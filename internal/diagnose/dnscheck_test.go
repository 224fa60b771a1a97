package diagnose

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailmigrate/internal/i18n"
)

// startDNS serves zone (one record a line, in zone-file syntax) from an
// in-process DNS server on loopback and returns a Resolver that asks it.
// Names at or under a servfail name are answered with SERVFAIL.
func startDNS(t *testing.T, zone string, servfail ...string) Resolver {
	t.Helper()
	var rrs []dns.RR
	for line := range strings.SplitSeq(zone, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			w.WriteMsg(answer(rrs, servfail, req))
		}),
	}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return NewResolver(pc.LocalAddr().String())
}

// answer is a tiny authoritative server: exact matches, CNAME chains,
// NODATA for names that exist with other types, NXDOMAIN otherwise.
func answer(rrs []dns.RR, servfail []string, req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	// Go's resolver takes an answer that is neither authoritative nor
	// recursive for a lame referral.
	m.Authoritative, m.RecursionAvailable = true, true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	for _, s := range servfail {
		if dns.IsSubDomain(dns.Fqdn(s), name) {
			m.Rcode = dns.RcodeServerFailure
			return m
		}
	}
	for range 8 {
		var match []dns.RR
		var cname *dns.CNAME
		exists := false
		for _, rr := range rrs {
			h := rr.Header()
			if dns.IsSubDomain(name, strings.ToLower(h.Name)) {
				exists = true // the name itself, or an empty non-terminal above a name
			}
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch {
			case h.Rrtype == q.Qtype:
				match = append(match, rr)
			case h.Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		switch {
		case len(match) > 0:
			m.Answer = append(m.Answer, match...)
		case cname != nil:
			m.Answer = append(m.Answer, cname)
			name = strings.ToLower(cname.Target)
			continue
		case !exists && len(m.Answer) == 0:
			m.Rcode = dns.RcodeNameError
		}
		break
	}
	return m
}

const hostingZone = `
mx.hosting.example.      A    203.0.113.25
imap.hosting.example.    A    203.0.113.10
smtp.hosting.example.    A    203.0.113.11
_spf.hosting.example.    TXT  "v=spf1 ip4:203.0.113.0/24 -all"
mx.old-provider.tld.     A    198.51.100.25
imap.old-provider.tld.   A    198.51.100.20
autoconfig.old-provider.tld. A 198.51.100.30
`

const checkZone = hostingZone + `
; good.cz: everything points to the hosting, mail. by an A record
good.cz.                 MX   10 mx.hosting.example.
good.cz.                 TXT  "v=spf1 include:_spf.hosting.example ~all"
imap.good.cz.            CNAME imap.hosting.example.
smtp.good.cz.            CNAME smtp.hosting.example.
mail.good.cz.            A    203.0.113.10
autoconfig.good.cz.      CNAME imap.hosting.example.
_imaps._tcp.good.cz.     SRV  0 1 993 imap.hosting.example.

; old.cz: still all at the old provider
old.cz.                  MX   10 mx.old-provider.tld.
old.cz.                  TXT  "v=spf1 include:_spf.old-provider.tld -all"
old.cz.                  TXT  "google-site-verification=abc"
imap.old.cz.             CNAME imap.old-provider.tld.
smtp.old.cz.             A    198.51.100.21
autoconfig.old.cz.       CNAME autoconfig.old-provider.tld.
_imaps._tcp.old.cz.      SRV  0 1 993 imap.old-provider.tld.
_submission._tcp.old.cz. SRV  0 0 0 .

; mixed.cz: half moved
mixed.cz.                MX   10 mx.hosting.example.
mixed.cz.                MX   20 mx.old-provider.tld.
mixed.cz.                TXT  "v=spf1 include:_spf.hosting.example -all"
mixed.cz.                TXT  "v=spf1 a -all"
smtp.mixed.cz.           A    203.0.113.11
mail.mixed.cz.           A    203.0.113.10
mail.mixed.cz.           A    198.51.100.20

; backup.cz: the old exchanger is still the preferred one
backup.cz.               MX   5 mx.old-provider.tld.
backup.cz.               MX   10 mx.hosting.example.

; nomx.cz: a web site only
nomx.cz.                 A    192.0.2.1

; nullmx.cz: RFC 7505
nullmx.cz.               MX   0 .

; flaky.cz: one name's DNS fails
flaky.cz.                MX   10 mx.hosting.example.
`

var testExpect = Expect{
	MX:         []string{"mx.hosting.example"},
	IMAP:       []string{"imap.hosting.example"},
	SMTP:       []string{"smtp.hosting.example"},
	SPFInclude: "_spf.hosting.example",
}

func TestCheckDNS(t *testing.T) {
	r := startDNS(t, checkZone, "broken.cz", "imap.flaky.cz")
	tests := []struct {
		domain string
		want   []string          // "RECORD NAME VERDICT" for every row
		advice map[string]string // "RECORD NAME" → a piece of its advice
	}{
		{
			domain: "good.cz",
			want: []string{
				"MX good.cz ok",
				"CNAME imap.good.cz ok",
				"CNAME smtp.good.cz ok",
				"CNAME mail.good.cz ok",
				"TXT (SPF) good.cz ok",
				"CNAME autoconfig.good.cz ok",
				"SRV _imaps._tcp.good.cz ok",
			},
		},
		{
			domain: "old.cz",
			want: []string{
				"MX old.cz fail",
				"CNAME imap.old.cz fail",
				"CNAME smtp.old.cz fail",
				"TXT (SPF) old.cz fail",
				"CNAME autoconfig.old.cz warn",
				"SRV _imaps._tcp.old.cz warn",
				"SRV _submission._tcp.old.cz warn",
			},
			advice: map[string]string{
				"MX old.cz":                   "Set the MX record of old.cz to mx.hosting.example (priority 10). It now points to mx.old-provider.tld, so new mail still arrives at the old provider.",
				"CNAME imap.old.cz":           "Make imap.old.cz a CNAME record pointing to imap.hosting.example (or give it the address 203.0.113.10). It now points to CNAME imap.old-provider.tld (198.51.100.20): mail programs set to imap.old.cz still read mail from the old server.",
				"CNAME smtp.old.cz":           "It now points to A 198.51.100.21: mail programs set to smtp.old.cz still send through the old server.",
				"CNAME autoconfig.old.cz":     "may get the old provider's settings",
				"SRV _imaps._tcp.old.cz":      "Point it to imap.hosting.example port 993, or delete it.",
				"SRV _submission._tcp.old.cz": "not offered at all",
			},
		},
		{
			domain: "mixed.cz",
			want: []string{
				"MX mixed.cz warn",
				"CNAME imap.mixed.cz warn",
				"CNAME smtp.mixed.cz ok",
				"CNAME mail.mixed.cz warn",
				"TXT (SPF) mixed.cz fail",
			},
			advice: map[string]string{
				"MX mixed.cz":         "Remove the MX records of mixed.cz that point to mx.old-provider.tld (priority 20)",
				"CNAME imap.mixed.cz": "imap.mixed.cz does not exist. Make imap.mixed.cz a CNAME record pointing to imap.hosting.example (or give it the address 203.0.113.10) if your mail programs use it as their server",
				"CNAME mail.mixed.cz": "Remove the records with 198.51.100.20",
			},
		},
		{
			domain: "backup.cz",
			want:   []string{"MX backup.cz fail", "CNAME imap.backup.cz warn", "CNAME smtp.backup.cz warn", "TXT (SPF) backup.cz fail"},
		},
		{
			domain: "nomx.cz",
			want:   []string{"MX nomx.cz fail", "CNAME imap.nomx.cz warn", "CNAME smtp.nomx.cz warn", "TXT (SPF) nomx.cz fail"},
			advice: map[string]string{
				"MX nomx.cz": "nomx.cz has no MX record, so senders do not know where to deliver its mail. Set the MX record of nomx.cz to mx.hosting.example (priority 10).",
			},
		},
		{
			domain: "nullmx.cz",
			want:   []string{"MX nullmx.cz fail", "CNAME imap.nullmx.cz warn", "CNAME smtp.nullmx.cz warn", "TXT (SPF) nullmx.cz fail"},
			advice: map[string]string{"MX nullmx.cz": "receives no mail at all"},
		},
		{
			domain: "flaky.cz",
			want:   []string{"MX flaky.cz ok", "CNAME imap.flaky.cz warn", "CNAME smtp.flaky.cz warn", "TXT (SPF) flaky.cz fail"},
			advice: map[string]string{"CNAME imap.flaky.cz": "temporary failure"},
		},
		{
			domain: "missing.cz",
			want:   []string{"domain missing.cz fail"},
			advice: map[string]string{"domain missing.cz": "missing.cz does not exist in DNS"},
		},
		{
			domain: "broken.cz",
			want:   []string{"domain broken.cz fail"},
			advice: map[string]string{"domain broken.cz": "DNSSEC (DS) record"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rows, err := CheckDNS(ctx, r, tt.domain, testExpect)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range rows {
				got = append(got, row.Record+" "+row.Name+" "+row.Verdict)
				row = row.Localize(i18n.New(i18n.English))
				t.Logf("%-10s %-28s %-4s expected %q found %q\n\t%s", row.Record, row.Name, row.Verdict, row.Expected, row.Found, row.Advice)
				if row.Verdict == VerdictOK && !row.Advice.IsZero() {
					t.Errorf("%s is ok but has advice %q", row.Name, row.Advice)
				}
				if row.Verdict != VerdictOK && row.Advice.IsZero() {
					t.Errorf("%s is %s without advice", row.Name, row.Verdict)
				}
				if want, ok := tt.advice[row.Record+" "+row.Name]; ok && !strings.Contains(row.Advice.String(), want) {
					t.Errorf("advice for %s:\n got %q\nwant it to contain %q", row.Name, row.Advice, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// The found values and the SPF suggestion are what the customer copies.
func TestCheckDNSFoundAndSuggestion(t *testing.T) {
	r := startDNS(t, checkZone)
	rows, err := CheckDNS(context.Background(), r, "Old.CZ.", testExpect)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Row{}
	for _, row := range rows {
		byName[row.Record+" "+row.Name] = row.Localize(i18n.New(i18n.English))
	}
	if got := byName["MX old.cz"].Found.String(); got != "10 mx.old-provider.tld" {
		t.Errorf("MX found = %q", got)
	}
	if got := byName["SRV _submission._tcp.old.cz"].Found.String(); got != "0 0 0 ." {
		t.Errorf("SRV found = %q, want the root shown as a dot", got)
	}
	spf := byName["TXT (SPF) old.cz"]
	if spf.Found.String() != "v=spf1 include:_spf.old-provider.tld -all" {
		t.Errorf("SPF found = %q (other TXT records must not show)", spf.Found)
	}
	if want := `"v=spf1 include:_spf.old-provider.tld include:_spf.hosting.example -all"`; !strings.Contains(spf.Advice.String(), want) {
		t.Errorf("SPF advice %q lacks %s", spf.Advice, want)
	}
	if got := byName["CNAME imap.old.cz"].Expected.String(); got != "CNAME imap.hosting.example (or A 203.0.113.10)" {
		t.Errorf("imap expected = %q", got)
	}
	if got := byName["SRV _imaps._tcp.old.cz"].Found.String(); got != "0 1 993 imap.old-provider.tld" {
		t.Errorf("SRV found = %q", got)
	}
}

// Hostings that give only addresses, and a POP3 name, are checked too.
func TestCheckDNSAddressesOnly(t *testing.T) {
	r := startDNS(t, checkZone+`
ip.cz.       MX  10 mx.ip.cz.
mx.ip.cz.    A   203.0.113.25
imap.ip.cz.  A   203.0.113.10
pop3.ip.cz.  A   198.51.100.20
`)
	e := Expect{MX: []string{"mx.hosting.example"}, IMAP: []string{"203.0.113.10"}, POP3: []string{"203.0.113.10"}, Addresses: []string{"203.0.113.25"}}
	rows, err := CheckDNS(context.Background(), r, "ip.cz", e)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows {
		got = append(got, row.Record+" "+row.Name+" "+row.Verdict)
		if row.Name == "pop3.ip.cz" && !strings.Contains(row.Advice.String(), "Give pop3.ip.cz the address 203.0.113.10") {
			t.Errorf("pop3 advice = %q", row.Advice)
		}
	}
	want := []string{"MX ip.cz ok", "CNAME imap.ip.cz ok", "CNAME pop3.ip.cz fail"}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %q\nwant %q", got, want)
	}
}

func TestCheckDNSBadInput(t *testing.T) {
	r := startDNS(t, checkZone)
	for _, d := range []string{"", "firma", "jana@firma.cz", "http://firma.cz"} {
		if _, err := CheckDNS(context.Background(), r, d, testExpect); err == nil {
			t.Errorf("CheckDNS(%q) accepted it", d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CheckDNS(ctx, r, "good.cz", testExpect); err == nil {
		t.Error("a cancelled check returned no error")
	}
}

func TestDNSPointsToHosting(t *testing.T) {
	r := startDNS(t, checkZone+`
imap.moved.cz.  A  203.0.113.10
`)
	ctx := context.Background()
	for _, tt := range []struct {
		host  string
		here  bool
		addrs []string
		err   bool
	}{
		{host: "imap.moved.cz", here: true, addrs: []string{"203.0.113.10"}},
		{host: "imap.good.cz", here: true, addrs: []string{"203.0.113.10"}},
		{host: "imap.hosting.example.", here: true, addrs: []string{"203.0.113.10"}},
		{host: "imap.old.cz", here: false, addrs: []string{"198.51.100.20"}},
		{host: "203.0.113.11", here: true, addrs: []string{"203.0.113.11"}},
		{host: "198.51.100.20", here: false, addrs: []string{"198.51.100.20"}},
		{host: "imap.missing.cz", err: true},
	} {
		here, addrs, err := PointsToHosting(ctx, r, tt.host, 993, testExpect)
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v", tt.host, err)
			continue
		}
		if here != tt.here || !slices.Equal(addrs, tt.addrs) {
			t.Errorf("%s: got %v %v, want %v %v", tt.host, here, addrs, tt.here, tt.addrs)
		}
	}
	// The same address on a port the hosting's IMAP does not answer on
	// is another server; a port it was configured with is the hosting.
	for port, want := range map[int]bool{143: true, 10143: false, 0: true} {
		if here, _, _ := PointsToHosting(ctx, r, "imap.moved.cz", port, testExpect); here != want {
			t.Errorf("imap.moved.cz port %d: here %v", port, here)
		}
	}
	e := testExpect
	e.IMAPPorts = []int{10143}
	if here, _, _ := PointsToHosting(ctx, r, "imap.moved.cz", 10143, e); !here {
		t.Error("imap.moved.cz on the hosting's own port 10143 is not the hosting")
	}
}

// LookupCNAME answers "" for a name without a CNAME, where net.Resolver
// answers the name itself.
func TestDNSResolverCNAME(t *testing.T) {
	r := startDNS(t, checkZone)
	ctx := context.Background()
	if c, err := r.LookupCNAME(ctx, "imap.good.cz"); err != nil || c != "imap.hosting.example." {
		t.Errorf("imap.good.cz: %q %v", c, err)
	}
	if c, err := r.LookupCNAME(ctx, "mail.good.cz"); err != nil || c != "" {
		t.Errorf("mail.good.cz: %q %v", c, err)
	}
	if _, err := r.LookupCNAME(ctx, "nothing.good.cz"); outcome(err) != notFound {
		t.Errorf("nothing.good.cz: %v", err)
	}
}

// Internationalised domains are looked up in their ASCII form.
func TestDNSDomainNames(t *testing.T) {
	for in, want := range map[string]string{
		"firma.cz":    "firma.cz",
		" Firma.CZ. ": "firma.cz",
		"příklad.cz":  "xn--pklad-zsa96e.cz",
	} {
		if got, err := normDomain(in); err != nil || got != want {
			t.Errorf("normDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
