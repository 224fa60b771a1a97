package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/store"
)

// Guessing a password gets slower and slower for that account from that
// address, while the owner signs in from elsewhere; the wait ends by
// itself, and an unknown account costs the same time as a known one.
func TestSignInSlowsGuessing(t *testing.T) {
	p, _, st := signedIn(t)
	// Counted in the database, as serve does: a second web server on it
	// makes the guesser wait as long.
	counts := st.(*store.DB).Backoffs()
	p.limiter.counts = counts
	other := NewPanel(NewAPI(p.api.cfg))
	other.limiter.counts = counts
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	p.limiter.now = func() time.Time { return now }
	other.limiter.now = p.limiter.now
	h := p.Handler()
	try := func(from, email, password string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = from + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	attacker, owner := "203.0.113.7", "198.51.100.20"
	for i := range freeFailures {
		if rec := try(attacker, "jana@firma.test", "wrong"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, rec.Code)
		}
	}
	rec := try(attacker, "jana@firma.test", "dlouhe heslo")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Wait 1 second") {
		t.Errorf("after %d failures the right password from the same address: %d %q", freeFailures, rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := try(owner, "jana@firma.test", "dlouhe heslo"); rec.Code != http.StatusSeeOther {
		t.Errorf("the owner from another address is locked out: %d", rec.Code)
	}
	if d, err := other.limiter.allow(context.Background(), attacker, "jana@firma.test"); d != time.Second || err != nil {
		t.Errorf("another web server lets the guesser go on: wait %v, %v", d, err)
	}
	// The wait passes; each further failure doubles it.
	now = now.Add(2 * time.Second)
	if rec := try(attacker, "jana@firma.test", "wrong"); rec.Code != http.StatusUnauthorized {
		t.Errorf("after the wait: %d", rec.Code)
	}
	if d, _ := p.limiter.allow(context.Background(), attacker, "jana@firma.test"); d != 2*time.Second {
		t.Errorf("next wait %v, want 2s", d)
	}
	// An hour later the slate is clean.
	now = now.Add(limiterWindow + time.Minute)
	if rec := try(attacker, "jana@firma.test", "dlouhe heslo"); rec.Code != http.StatusSeeOther {
		t.Errorf("an hour later: %d", rec.Code)
	}

	// The same cost for a known and an unknown account: the password hash
	// is computed either way (argon2 takes tens of milliseconds, a lookup
	// alone well under one).
	median := func(email string) time.Duration {
		var ds []time.Duration
		for i := range 5 {
			start := time.Now()
			try("192.0.2."+string(rune('1'+i)), email, "wrong")
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[2]
	}
	known, unknown := median("jana@firma.test"), median("nikdo@firma.test")
	if unknown < known/3 {
		t.Errorf("an unknown account answers in %v, a known one in %v: the difference tells who has an account", unknown, known)
	}
}

// X-Forwarded-For names the client only when the connection comes from a
// configured proxy; then two clients behind it are counted apart.
func TestClientAddressBehindProxy(t *testing.T) {
	a := NewAPI(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.7:1", "198.51.100.1", "203.0.113.7"},         // not a proxy: ignored
		{"10.1.2.3:1", "198.51.100.1", "198.51.100.1"},           // the proxy's word
		{"10.1.2.3:1", "6.6.6.6, 198.51.100.1", "198.51.100.1"},  // the client may prepend anything
		{"10.1.2.3:1", "198.51.100.1, 10.9.9.9", "198.51.100.1"}, // two proxies
		{"10.1.2.3:1", "", "10.1.2.3"},                           // no header
		{"10.1.2.3:1", "garbage, 198.51.100.1", "198.51.100.1"},  // junk before the last hop
		{"[2001:db8::1]:1", "198.51.100.1", "2001:db8::1"},       // IPv6, not a proxy
		{"10.1.2.3:1", "::ffff:198.51.100.9", "198.51.100.9"},    // mapped form
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := a.clientAddr(req); got != c.want {
			t.Errorf("%s with X-Forwarded-For %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// With an https public address the session cookie is Secure and browsers
// are told to keep to HTTPS.
func TestPublicHTTPS(t *testing.T) {
	p, _, _ := signedIn(t)
	p.api.cfg.PublicURL = "https://migrate.hosting.test"
	h := p.Handler()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"email": {"jana@firma.test"}, "password": {"dlouhe heslo"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].Secure {
		t.Errorf("session cookie behind https: %+v", cookies)
	}
	if rec.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS behind https")
	}
}
