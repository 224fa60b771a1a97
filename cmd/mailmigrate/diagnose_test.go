package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer answers from a zone (one record a line) on loopback: exact
// name and type, NODATA for a known name, NXDOMAIN otherwise.
func dnsServer(t *testing.T, zone string) string {
	t.Helper()
	var rrs []dns.RR
	for _, line := range strings.Split(strings.TrimSpace(zone), "\n") {
		rr, err := dns.NewRR(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative, m.RecursionAvailable = true, true
			q := req.Question[0]
			known := false
			for _, rr := range rrs {
				if strings.EqualFold(rr.Header().Name, q.Name) {
					known = true
					if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
						m.Answer = append(m.Answer, rr)
					}
				}
			}
			if !known {
				m.Rcode = dns.RcodeNameError
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNSCheckCommand(t *testing.T) {
	addr := dnsServer(t, `
firma.test. 60 IN MX 10 mx.old-provider.test.
firma.test. 60 IN TXT "v=spf1 include:_spf.old-provider.test -all"
imap.firma.test. 60 IN CNAME imap.hosting.test.
smtp.firma.test. 60 IN A 192.0.2.99
imap.hosting.test. 60 IN A 192.0.2.10
smtp.hosting.test. 60 IN A 192.0.2.10
mx.hosting.test. 60 IN A 192.0.2.20
`)
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	os.WriteFile(conf, []byte("hosting.imap = imaps://imap.hosting.test\nhosting.mx = mx.hosting.test\n"+
		"hosting.smtp_names = smtp.hosting.test\nhosting.spf_include = _spf.hosting.test\n"), 0o600)
	c := &cli{t: t}
	code, out, errOut := c.run("dnscheck", "--config", conf, "--dns", addr, "firma.test")
	if code != exitPartial {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"mx.old-provider.test", "mx.hosting.test", "imap.firma.test", "smtp.firma.test", "_spf.hosting.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The imap name is right (CNAME to the hosting), the MX and smtp are not.
	lines := strings.Split(out, "\n")
	verdict := func(name string) string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 2 && f[1] == name {
				return f[len(f)-1]
			}
		}
		return ""
	}
	if verdict("imap.firma.test") != "ok" || verdict("smtp.firma.test") != "fail" || verdict("firma.test") != "fail" {
		t.Errorf("verdicts imap %q smtp %q mx %q:\n%s", verdict("imap.firma.test"), verdict("smtp.firma.test"), verdict("firma.test"), out)
	}
}

// Discovery itself is tested in internal/diagnose with its lookups and
// probes injected; here only the command's input, since a real run would
// ask DNS and servers outside this machine.
func TestDiscoverCommandInput(t *testing.T) {
	c := &cli{t: t}
	if code, _, errOut := c.run("discover", "jana"); code != exitUsage || !strings.Contains(errOut, "mailbox address") {
		t.Errorf("discover without an address: %d %s", code, errOut)
	}
}
