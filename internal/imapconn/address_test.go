package imapconn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailmigrate/internal/i18n"
)

// Every spelling of an address that is not a public server, and the public
// ones next to the blocks' edges, so that a block drawn too wide shows too.
func TestInternalAddresses(t *testing.T) {
	tests := []struct {
		addr     string
		internal bool
	}{
		// IPv4 special-purpose blocks.
		{"0.0.0.0", true},                // unspecified: the local host
		{"0.1.2.3", true},                // "this network"
		{"10.0.0.1", true},               // RFC 1918
		{"100.64.0.1", true},             // carrier-grade NAT
		{"100.127.255.255", true},        // carrier-grade NAT, last
		{"127.0.0.1", true},              // loopback
		{"127.255.255.254", true},        // loopback, all of /8
		{"169.254.169.254", true},        // cloud metadata
		{"172.16.0.1", true},             // RFC 1918
		{"172.31.255.255", true},         // RFC 1918, last
		{"192.0.0.1", true},              // IETF protocol assignments
		{"192.0.0.170", true},            // NAT64 discovery
		{"192.0.2.1", true},              // TEST-NET-1
		{"192.88.99.1", true},            // 6to4 relay anycast
		{"192.168.1.1", true},            // RFC 1918
		{"198.18.0.1", true},             // benchmarking
		{"198.19.255.255", true},         // benchmarking, last
		{"198.51.100.7", true},           // TEST-NET-2
		{"203.0.113.9", true},            // TEST-NET-3
		{"224.0.0.1", true},              // multicast
		{"239.255.255.250", true},        // multicast (SSDP)
		{"240.0.0.1", true},              // reserved
		{"255.255.255.255", true},        // broadcast
		{"::ffff:127.0.0.1", true},       // IPv4-mapped loopback
		{"::ffff:10.0.0.1", true},        // IPv4-mapped private
		{"::ffff:169.254.169.254", true}, // IPv4-mapped metadata
		{"::ffff:198.18.0.1", true},      // IPv4-mapped benchmarking

		// IPv6 special-purpose blocks.
		{"::", true},                                   // unspecified
		{"::1", true},                                  // loopback
		{"::127.0.0.1", true},                          // IPv4-compatible loopback
		{"::10.0.0.1", true},                           // IPv4-compatible private
		{"::8.8.8.8", true},                            // IPv4-compatible, deprecated whatever it holds
		{"::ffff:0:127.0.0.1", true},                   // SIIT IPv4-translated
		{"::ffff:0:8.8.8.8", true},                     // SIIT, public inside
		{"64:ff9b::127.0.0.1", true},                   // NAT64 to loopback
		{"64:ff9b::7f00:1", true},                      // the same, in hex
		{"64:ff9b::10.0.0.1", true},                    // NAT64 to RFC 1918
		{"64:ff9b::a9fe:a9fe", true},                   // NAT64 to cloud metadata
		{"64:ff9b::100.64.0.1", true},                  // NAT64 to carrier-grade NAT
		{"64:ff9b::0.0.0.0", true},                     // NAT64 to unspecified
		{"64:ff9b::1:8.8.8.8", true},                   // in 64:ff9b::/64, outside the /96
		{"64:ff9b:1::8.8.8.8", true},                   // local-use NAT64 (RFC 8215)
		{"64:ff9b:1:abcd::1", true},                    // local-use NAT64, another position
		{"2002:7f00:1::1", true},                       // 6to4 of 127.0.0.1
		{"2002:a00:1::1", true},                        // 6to4 of 10.0.0.1
		{"2002:a9fe:a9fe::", true},                     // 6to4 of 169.254.169.254
		{"2002:808:808::1", true},                      // 6to4 of a public address: refused all the same
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true}, // Teredo (RFC 4380's example)
		{"2001::f5ff:fffe", true},                      // Teredo, client 10.0.0.1 obfuscated
		{"2001::1", true},                              // Teredo
		{"2001:2::1", true},                            // benchmarking
		{"2001:20::1", true},                           // ORCHIDv2
		{"2001:db8::1", true},                          // documentation
		{"3fff::1", true},                              // documentation (RFC 9637)
		{"3ffe::1", true},                              // 6bone
		{"fec0::1", true},                              // site-local, deprecated
		{"feff::1", true},                              // site-local, last
		{"fe80::1", true},                              // link-local
		{"fe80::1%eth0", true},                         // link-local with its zone
		{"2a00:1450:4001::1%eth0", true},               // a public address with a zone is a scoped one
		{"fc00::1", true},                              // unique local
		{"fd12:3456::1", true},                         // unique local
		{"ff02::1", true},                              // multicast
		{"ff05::1:3", true},                            // multicast
		{"100::1", true},                               // discard-only
		{"5f00::1", true},                              // SRv6 SIDs: outside 2000::/3
		{"4000::1", true},                              // unassigned

		// Public.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"185.1.2.3", false},
		{"77.75.77.222", false},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.0.1.255", false},
		{"192.0.3.0", false},
		{"192.169.0.1", false},
		{"198.17.255.255", false},
		{"198.20.0.0", false},
		{"223.255.255.255", false},
		{"::ffff:8.8.8.8", false},     // IPv4-mapped: dialled as 8.8.8.8
		{"64:ff9b::8.8.8.8", false},   // NAT64 of a public address (DNS64)
		{"64:ff9b::5db8:d822", false}, // NAT64 of 93.184.216.34
		{"2a00:1450:4001::1", false},
		{"2001:4860:4860::8888", false},
		{"2001:200::1", false}, // first address after 2001::/23
		{"2003::1", false},     // first after 6to4
		{"2606:4700:4700::1111", false},
		{"2a02:598:2::1", false},
	}
	for _, tc := range tests {
		ip := netip.MustParseAddr(tc.addr)
		if got := Internal(ip); got != tc.internal {
			t.Errorf("Internal(%s) = %v, want %v", tc.addr, got, tc.internal)
		}
	}
	if !Internal(netip.Addr{}) {
		t.Error("the zero Addr is not internal")
	}
}

// The guard works on the address the dialer connects to, whatever the
// customer wrote.
func TestUntrustedDialRefusesLocalSpellings(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// This machine, its networks and the other internal ranges, spelt as
	// a customer might type them to reach the hosting's own services.
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.254", "127.000.000.001", "0127.0.0.1",
		"0.0.0.0", "0.1.2.3", "localhost", "LOCALHOST", "LocalHost", "localhost.", "ip6-localhost",
		"::1", "[::1]", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "::", "::0",
		"::ffff:127.0.0.1", "::ffff:7f00:1", "0:0:0:0:0:ffff:7f00:1", "::FFFF:127.0.0.1", "::127.0.0.1", "::7f00:1",
		"64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::7f00:1", "2002:7f00:1::1", "2001:0:7f00:1::1",
		"fe80::1", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1",
		"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.0.1", "192.168.255.255",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "192.0.0.1", "192.0.2.1",
		"198.18.0.1", "198.19.255.254", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250",
		"240.0.0.1", "255.255.255.255", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.1.1",
		"64:ff9b::a00:1", "64:ff9b::169.254.169.254", "2002:a00:1::", "2002:c0a8:101::1", "::10.0.0.1",
		"0:0:0:0:0:ffff:a9fe:a9fe", "::ffff:0.0.0.0"}
	for _, host := range hosts {
		ep := Endpoint{Host: host, Port: port, Security: Plain, Untrusted: true}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := Dial(ctx, ep, Options{})
		cancel()
		if err == nil {
			t.Errorf("dial to %s succeeded", ep.Addr())
		} else if ip := net.ParseIP(host); ip != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dial to %s: %v, want ErrForbiddenAddress", ep.Addr(), err)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d of %d spellings of internal addresses reached a listener", n, len(hosts))
	}
	t.Logf("%d spellings of internal addresses: %d connections", len(hosts), accepted.Load())
}

func TestCheckPort(t *testing.T) {
	for _, tc := range []struct {
		port  int
		extra []int
		ok    bool
	}{
		{993, nil, true},
		{143, nil, true},
		{143, []int{10143}, true},
		{10143, []int{10143, 20993}, true},
		{10143, nil, false},
		{25, nil, false},
		{22, nil, false},
		{80, nil, false},
		{6379, nil, false},
		{587, []int{10143}, false},
		{0, []int{0}, false},
		{-993, []int{-993}, false},
		{65536, []int{65536}, false},
	} {
		err := CheckPort(tc.port, tc.extra)
		if (err == nil) != tc.ok {
			t.Errorf("CheckPort(%d, %v) = %v, want allowed %v", tc.port, tc.extra, err, tc.ok)
		}
	}

	// The refusal names the port and what is allowed, in both languages,
	// the numbers as they are written in an address.
	err := CheckPort(10025, []int{20993, 10143, 993, 0, 70000})
	var m interface{ Message() i18n.Message }
	if !errors.As(err, &m) {
		t.Fatalf("%v has no Message", err)
	}
	en, cs := m.Message().In(i18n.New(i18n.English)), m.Message().In(i18n.New(i18n.Czech))
	if en != err.Error() || !strings.Contains(en, "port 10025 ") || !strings.Contains(en, "143, 993, 10143, 20993)") {
		t.Errorf("English refusal %q", en)
	}
	if !strings.Contains(cs, "port serveru 10025 ") || !strings.Contains(cs, "povolené porty: 143, 993, 10143, 20993)") {
		t.Errorf("Czech refusal %q", cs)
	}
}

// A refused address never repeats the password typed into it, however
// url.Parse would have read it.
func TestParseEndpointNeverRepeatsPassword(t *testing.T) {
	for _, in := range []string{
		"imaps://jana:Secret1@imap.x.cz",
		"imaps://jana:Secret1@imap.x.cz:port",
		"imaps://jana:Sec/ret1@imap.x.cz",
		"imaps://jana:Sec%zzret1@imap.x.cz",
		"imaps://jana:Sec@ret1@imap.x.cz",
		"jana:Secret1@imap.x.cz:99x",
		"jana@x.cz:Secret1@imap.x.cz",
		"Secret1@imap.x.cz",
		"imap://Secret1@",
	} {
		_, err := ParseEndpoint(in, false)
		var m interface{ Message() i18n.Message }
		if !errors.As(err, &m) {
			t.Errorf("ParseEndpoint(%q) = %v, want a refusal with a Message", in, err)
			continue
		}
		for _, s := range []string{err.Error(), m.Message().In(i18n.New(i18n.Czech))} {
			if strings.Contains(s, "Secret1") || strings.Contains(s, "Sec") {
				t.Errorf("ParseEndpoint(%q) repeats the password: %s", in, s)
			}
		}
		if !strings.Contains(err.Error(), "must not contain a login") {
			t.Errorf("ParseEndpoint(%q) = %v, want the login refusal", in, err)
		}
	}
}

func TestEndpointStringReadsBack(t *testing.T) {
	for _, in := range []string{"imaps://[fe80::1%25eth0]:993", "imap://mail.x.cz:10143", "imaps://[2001:db8::1]"} {
		ep, err := ParseEndpoint(in, false)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		back, err := ParseEndpoint(ep.String(), false)
		if err != nil || back != ep {
			t.Errorf("%s: String %q reads back as %+v, %v", in, ep.String(), back, err)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"imaps://imap.old.tld", "imap.old.tld", " IMAPS://imap.old.tld:10993 ", "imap://mail.x.cz",
		"imaps://[2001:db8::1]:993", "imaps://[fe80::1%25eth0]", "pop3://x.cz", "imaps://user:pw@x.cz",
		"imaps://x.cz:99999", "imaps://x.cz/INBOX", "imaps://:993", "imaps://x.cz:%zz", "x.cz:143",
		"imaps://x.cz?q", "imaps://x.cz#f", "imaps://příklad.cz", "imaps://%C5%99.cz", "imaps://[::ffff:127.0.0.1]:0",
		"imaps://x.cz:0993", "imaps://x.cz:+993", "imaps://x.cz:", "imaps://[", "imaps:///x", "]", "imaps://[x]",
		"imaps://2130706433", "imap_old.x.cz.", "imaps://a%25b.cz", "imaps://xn--pklad-zsa96e.cz",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, plain bool) {
		ep, err := ParseEndpoint(raw, plain)
		if err != nil {
			var ae *AddressError
			if !errors.As(err, &ae) || ae.Message().IsZero() {
				t.Fatalf("ParseEndpoint(%q) = %v, not an AddressError", raw, err)
			}
			if ep != (Endpoint{}) {
				t.Fatalf("ParseEndpoint(%q) refused but returned %+v", raw, ep)
			}
			// Whatever came before an @ may be a password.
			if at := strings.LastIndexByte(raw, '@'); at > 0 {
				login := strings.TrimSpace(raw[:at])
				if sep := strings.Index(login, "://"); sep >= 0 {
					login = login[sep+3:]
				}
				if len(login) > 8 && strings.Contains(err.Error(), login) {
					t.Fatalf("ParseEndpoint(%q) repeats the login part: %v", raw, err)
				}
			}
			return
		}
		if ep.Host == "" || ep.Port < 1 || ep.Port > 65535 {
			t.Fatalf("ParseEndpoint(%q) = %+v", raw, ep)
		}
		if strings.ContainsAny(ep.Host, "/@?# \t\r\n\x00") {
			t.Fatalf("ParseEndpoint(%q): host %q", raw, ep.Host)
		}
		switch {
		case ep.Security == Plain && !plain:
			t.Fatalf("ParseEndpoint(%q, false) chose plaintext", raw)
		case ep.Security != TLS && ep.Security != StartTLS && ep.Security != Plain:
			t.Fatalf("ParseEndpoint(%q): security %v", raw, ep.Security)
		}
		if ep.Untrusted || ep.InsecureSkipVerify || ep.RootCAs != nil || ep.TrustFingerprint != "" {
			t.Fatalf("ParseEndpoint(%q) set more than the address: %+v", raw, ep)
		}
		// What the report shows reads back as the same endpoint.
		back, err := ParseEndpoint(ep.String(), plain)
		if err != nil || back != ep {
			t.Fatalf("ParseEndpoint(%q) = %+v; its String %q reads back as %+v, %v", raw, ep, ep.String(), back, err)
		}
		// Addr is what is dialled: the same host and port.
		h, p, err := net.SplitHostPort(ep.Addr())
		if err != nil || h != ep.Host || p != strconv.Itoa(ep.Port) {
			t.Fatalf("ParseEndpoint(%q): Addr %q splits into %q %q, %v", raw, ep.Addr(), h, p, err)
		}
	})
}

// Internal judges an IPv4 address the same in each form that reaches it,
// and calls internal everything the standard library knows as not public.
func FuzzInternal(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "8.8.8.8", "::1", "2a00:1450::1", "64:ff9b::a00:1", "2002:a00:1::", "fe80::1", "::ffff:10.0.0.1"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b [16]byte
		copy(b[:], raw)
		ip := netip.AddrFrom16(b)
		in := Internal(ip)
		if !in && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.Unmap().IsGlobalUnicast()) {
			t.Fatalf("%s is not public but allowed", ip)
		}
		if Internal(ip.WithZone("eth0")) != true {
			t.Fatalf("%s with a zone allowed", ip)
		}
		var v4 [4]byte
		copy(v4[:], raw)
		a4 := netip.AddrFrom4(v4)
		mapped := netip.AddrFrom16(a4.As16())
		nat := b
		copy(nat[:], netip.MustParseAddr("64:ff9b::").AsSlice()[:12])
		copy(nat[12:], v4[:])
		if Internal(a4) != Internal(mapped) || Internal(a4) != Internal(netip.AddrFrom16(nat)) {
			t.Fatalf("%s: IPv4 %v, mapped %v, NAT64 %v", a4, Internal(a4), Internal(mapped), Internal(netip.AddrFrom16(nat)))
		}
		compat := [16]byte{12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}
		sixToFour := [16]byte{0x20, 0x02, v4[0], v4[1], v4[2], v4[3], 15: 1}
		if !Internal(netip.AddrFrom16(compat)) || !Internal(netip.AddrFrom16(sixToFour)) {
			t.Fatalf("%s: an IPv4-compatible or 6to4 form allowed", a4)
		}
	})
}
