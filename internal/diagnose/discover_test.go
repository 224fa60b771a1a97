package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmigrate/internal/i18n"
)

const discoverZone = hostingZone + `
; firma.cz: mail at Google, imap. already moved to the hosting, mail. still the old web host
firma.cz.               MX   1 aspmx.l.google.com.
firma.cz.               MX   5 alt1.aspmx.l.google.com.
imap.firma.cz.          A    203.0.113.10
mail.firma.cz.          A    198.51.100.40

; auto.cz: publishes autoconfig and SRV records
auto.cz.                MX   10 mx.auto-old.tld.
_imaps._tcp.auto.cz.    SRV  0 1 993 imap.auto-old.tld.
_imap._tcp.auto.cz.     SRV  0 0 0 .
imap.auto.cz.           CNAME imap.auto-old.tld.
imap.auto-old.tld.      A    198.51.100.50

; wk.cz: autoconfig only at the .well-known address
wk.cz.                  A    198.51.100.60
mail.wk.cz.             A    198.51.100.60

; srv.cz: SRV only
_imaps._tcp.srv.cz.     SRV  0 1 9993 imap.srv-host.tld.
imap.srv-host.tld.      A    198.51.100.70

; ms.cz: Microsoft 365
ms.cz.                  MX   0 ms-cz.mail.protection.outlook.com.
`

const autoconfigXML = `<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="auto-old.tld">
    <domain>auto.cz</domain>
    <incomingServer type="pop3">
      <hostname>pop.auto-old.tld</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.auto-old.tld</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.auto-old.tld</hostname><port>143</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
  </emailProvider>
</clientConfig>`

const wellKnownXML = `<clientConfig version="1.1"><emailProvider id="wk">
  <incomingServer type="imap">
    <hostname>mail.%EMAILDOMAIN%</hostname><port>993</port><socketType>SSL</socketType>
    <username>%EMAILLOCALPART%</username>
  </incomingServer>
</emailProvider></clientConfig>`

// testDiscoverer wires a Discoverer to an in-process DNS server, an HTTPS
// server that answers for every host name, and loopback listeners standing
// in for the IMAP servers in open.
func testDiscoverer(t *testing.T, open ...string) *Discoverer {
	t.Helper()
	r := startDNS(t, discoverZone)

	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Host == "autoconfig.auto.cz" && req.URL.Path == "/mail/config-v1.1.xml":
			if got := req.URL.Query().Get("emailaddress"); got != "petr+test@auto.cz" {
				http.Error(w, "emailaddress is "+got, http.StatusBadRequest)
				return
			}
			io.WriteString(w, autoconfigXML)
		case req.Host == "wk.cz" && req.URL.Path == "/.well-known/autoconfig/mail/config-v1.1.xml":
			io.WriteString(w, wellKnownXML)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(web.Close)
	client := web.Client()
	tr := client.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, web.Listener.Addr().String())
	}
	// The test certificate is issued for example.com; every host name is
	// this one server.
	tr.TLSClientConfig.ServerName = "example.com"
	client.Transport = tr

	listeners := map[string]string{}
	for _, hostport := range open {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		listeners[hostport] = l.Addr().String()
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := listeners[addr]
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}
	// srv.cz's SRV record names port 9993, which this hosting allows.
	return &Discoverer{Resolver: r, HTTP: client, Dial: dial, Hosting: testExpect, Timeout: 5 * time.Second, Ports: []int{9993}}
}

// brief is a candidate in one line: host:port security source provider
// reachable/hosting.
func brief(c Candidate) string {
	p := "-"
	if c.Provider != nil {
		p = c.Provider.ID
	}
	s := fmt.Sprintf("%s %s %s %s", c.Addr(), c.Security, c.Source, p)
	if c.Reachable {
		s += " reachable"
	}
	if c.IsHosting {
		s += " hosting"
	}
	return s
}

func TestDiscover(t *testing.T) {
	d := testDiscoverer(t,
		"imap.gmail.com:993", "imap.auto-old.tld:993", "mail.firma.cz:993", "imap.firma.cz:993",
		"imap.srv-host.tld:9993", "mail.wk.cz:993", "outlook.office365.com:993")
	tests := []struct {
		address string
		want    []string
		notes   map[string]string // host:port → a piece of its note
		login   map[string]string // host:port → LoginForm
	}{
		{
			address: "jana.novak@gmail.com",
			want:    []string{"imap.gmail.com:993 tls provider table gmail reachable"},
			notes:   map[string]string{"imap.gmail.com:993": "Gmail needs an app password (2-step verification must be on"},
			login:   map[string]string{"imap.gmail.com:993": "address"},
		},
		{
			// The domain's mail is at Google; imap.firma.cz was moved
			// already; mail.firma.cz still answers.
			address: "jana@firma.cz",
			want: []string{
				"imap.gmail.com:993 tls mx google-workspace reachable",
				"imap.firma.cz:993 tls guess - reachable hosting",
				"mail.firma.cz:993 tls guess - reachable",
			},
			notes: map[string]string{
				"imap.gmail.com:993": "The mail of firma.cz is delivered to Google Workspace (MX aspmx.l.google.com). Google Workspace needs an app password",
				"imap.firma.cz:993":  "imap.firma.cz already points to this hosting (203.0.113.10): the domain's DNS was moved, so this name no longer leads to the old server. Enter the old provider's own server name or its IP address instead.",
			},
		},
		{
			address: "petr+test@auto.cz",
			want: []string{
				"imap.auto-old.tld:993 tls autoconfig - reachable",
				"imap.auto-old.tld:143 starttls autoconfig -",
			},
			login: map[string]string{"imap.auto-old.tld:993": "address"},
			notes: map[string]string{"imap.auto-old.tld:143": "No connection to imap.auto-old.tld on port 143"},
		},
		{
			address: "eva@WK.cz",
			want:    []string{"mail.wk.cz:993 tls autoconfig - reachable"},
			login:   map[string]string{"mail.wk.cz:993": "local"},
		},
		{
			address: "karel@srv.cz",
			want:    []string{"imap.srv-host.tld:9993 tls srv - reachable"},
		},
		{
			address: "ota@ms.cz",
			want:    []string{"outlook.office365.com:993 tls mx microsoft365 reachable"},
			notes:   map[string]string{"outlook.office365.com:993": "Microsoft 365 does not accept passwords for IMAP: it needs a sign-in with Microsoft (OAuth2)"},
		},
		{
			address: "nikdo@missing.cz",
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cands, err := d.Discover(ctx, tt.address)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cands {
				got = append(got, brief(c))
				note := c.Note.In(i18n.New(i18n.English))
				t.Logf("%s login=%q\n\t%s", brief(c), c.LoginForm, note)
				if want, ok := tt.notes[c.Addr()]; ok && !strings.Contains(note, want) {
					t.Errorf("note of %s:\n got %q\nwant it to contain %q", c.Addr(), note, want)
				}
				if want, ok := tt.login[c.Addr()]; ok && c.LoginForm != want {
					t.Errorf("login form of %s = %q, want %q", c.Addr(), c.LoginForm, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("candidates:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A port the hosting does not allow for old servers is not probed, even
// when the domain's SRV record names it.
func TestDiscoverSkipsOtherPorts(t *testing.T) {
	d := testDiscoverer(t, "imap.srv-host.tld:9993")
	d.Ports = nil
	cands, err := d.Discover(context.Background(), "karel@srv.cz")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		if c.Port == 9993 {
			t.Errorf("port 9993 offered: %s", brief(c))
		}
	}
}

func TestDiscoverBest(t *testing.T) {
	d := testDiscoverer(t, "imap.firma.cz:993", "mail.firma.cz:993")
	cands, err := d.Discover(context.Background(), "jana@firma.cz")
	if err != nil {
		t.Fatal(err)
	}
	// imap.gmail.com does not answer here and imap.firma.cz is the
	// hosting: mail.firma.cz is the one to try.
	best, ok := Best(cands)
	if !ok || best.Addr() != "mail.firma.cz:993" {
		t.Errorf("Best = %v %v in %v", brief(best), ok, cands)
	}
	if _, ok := Best(nil); ok {
		t.Error("Best of nothing found something")
	}
}

func TestDiscoverBadAddress(t *testing.T) {
	d := testDiscoverer(t)
	for _, a := range []string{"", "jana", "jana@", "@firma.cz", "jana@firma"} {
		if _, err := d.Discover(context.Background(), a); err == nil {
			t.Errorf("Discover(%q) accepted it", a)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Discover(ctx, "jana@firma.cz"); err == nil {
		t.Error("a cancelled discovery returned no error")
	}
}

// The default dialer must not let a customer's DNS lead us into our own
// network.
func TestDiscoverDefaultDialRefusesInternal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = publicDialer.DialContext(context.Background(), "tcp", l.Addr().String())
	if !errors.Is(err, errInternalAddress) {
		t.Errorf("dial to loopback: %v, want errInternalAddress", err)
	}
}

func TestProviderLookup(t *testing.T) {
	for _, tt := range []struct {
		domain, mx string
		want       string // provider ID, "" for none
	}{
		{domain: "gmail.com", want: "gmail"},
		{domain: "GoogleMail.com.", want: "gmail"},
		{domain: "firma.onmicrosoft.com", want: "microsoft365"},
		{domain: "hotmail.cz", want: "outlook"},
		{domain: "email.cz", want: "seznam"},
		{domain: "notgmail.com", want: ""},
		{mx: "aspmx.l.google.com", want: "google-workspace"},
		{mx: "ALT1.ASPMX.L.GOOGLE.COM.", want: "google-workspace"},
		{mx: "firma-cz.mail.protection.outlook.com", want: "microsoft365"},
		{mx: "eur.olc.protection.outlook.com", want: "outlook"},
		{mx: "mx.zoho.com", want: "zoho-org"},
		{mx: "mx.zoho.com.au", want: "zoho-org-au"},
		{mx: "mx00.ionos.de", want: "ionos"},
		{mx: "mx.old-provider.tld", want: ""},
		{mx: "evilgoogle.com", want: ""},
	} {
		var p *Provider
		if tt.domain != "" {
			p = ProviderForDomain(tt.domain)
		} else {
			p = ProviderForMX(tt.mx)
		}
		got := ""
		if p != nil {
			got = p.ID
		}
		if got != tt.want {
			t.Errorf("%s%s → %q, want %q", tt.domain, tt.mx, got, tt.want)
		}
	}
	if p := ProviderForDomain("gmail.com"); p.Host != "imap.gmail.com" || p.Port != 993 || !strings.Contains(p.Needs.String(), "app password") {
		t.Errorf("gmail.com: %+v", p)
	}
}

// Every entry must be usable as it stands: the texts are shown in
// sentences, the settings dialed.
func TestProviderTable(t *testing.T) {
	ids := map[string]bool{}
	for _, p := range Providers {
		if p.ID == "" || ids[p.ID] {
			t.Errorf("%q: missing or repeated ID", p.ID)
		}
		ids[p.ID] = true
		if p.Name == "" || p.Host == "" || p.Port <= 0 || (p.Security != "tls" && p.Security != "starttls") {
			t.Errorf("%s: incomplete server settings %+v", p.ID, p)
		}
		if p.LoginForm != "address" && p.LoginForm != "local" {
			t.Errorf("%s: login form %q", p.ID, p.LoginForm)
		}
		if len(p.Domains) == 0 && len(p.MXSuffixes) == 0 {
			t.Errorf("%s: can never be found", p.ID)
		}
		for _, l := range i18n.All {
			needs := p.Needs.In(i18n.New(l))
			if strings.HasSuffix(needs, ".") {
				t.Errorf("%s: Needs in %s ends a sentence it is only part of", p.ID, l)
			}
			if p.OAuth && !strings.Contains(needs, "OAuth") {
				t.Errorf("%s: OAuth provider without saying so in %s", p.ID, l)
			}
		}
	}
	for _, id := range []string{"gmail", "google-workspace", "microsoft365", "outlook", "yahoo", "aol", "icloud",
		"zoho", "zoho-org", "seznam", "gmx", "webde", "ionos", "forpsi", "active24", "wedos", "yandex"} {
		if !ids[id] {
			t.Errorf("provider %s is missing", id)
		}
	}
}
