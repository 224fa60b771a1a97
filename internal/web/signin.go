package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// clientAddr is the address a request comes from: the connection's, or,
// when that is one of the trusted reverse proxies, the last address in
// X-Forwarded-For that is not a trusted proxy. Anyone else's
// X-Forwarded-For is ignored: a client could write any address there.
func (a *API) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !a.trusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing before it
		}
		if !a.trusted(hop) {
			return hop.Unmap().String()
		}
		host = hop.Unmap().String()
	}
	return host
}

func (a *API) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// secure tells whether the panel is served over HTTPS, directly or
// behind a TLS proxy named by the public address.
func (a *API) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(a.cfg.PublicURL, "https://")
}

// loginLimiter slows password guessing without locking the owner out: the
// failures of one account from one address make that pair wait longer
// after each one (1 s after the third, doubling up to a quarter of an
// hour), while the owner signs in from elsewhere as usual; an address that
// fails for many accounts (a spray) waits the same way. Nothing is kept
// longer than the window.
type loginLimiter struct {
	mu    sync.Mutex
	state map[string]*backoff
	now   func() time.Time
}

type backoff struct {
	failures int
	last     time.Time
}

const (
	limiterWindow   = time.Hour
	freeFailures    = 3  // per account and address before any wait
	sprayFailures   = 30 // per address, over all accounts
	maxLoginBackoff = 15 * time.Minute
)

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{state: map[string]*backoff{}, now: time.Now}
}

func (l *loginLimiter) wait(key string, free int) time.Duration {
	b := l.state[key]
	if b == nil {
		return 0
	}
	now := l.now()
	if now.Sub(b.last) > limiterWindow {
		delete(l.state, key)
		return 0
	}
	if b.failures < free {
		return 0
	}
	d := min(time.Second<<min(b.failures-free, 20), maxLoginBackoff)
	return max(0, b.last.Add(d).Sub(now))
}

// allow says how long a sign-in of email from addr must wait (0: now).
func (l *loginLimiter) allow(addr, email string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.wait("pair "+email+" "+addr, freeFailures), l.wait("addr "+addr, sprayFailures))
}

func (l *loginLimiter) failed(addr, email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, key := range []string{"pair " + email + " " + addr, "addr " + addr} {
		b := l.state[key]
		if b == nil || now.Sub(b.last) > limiterWindow {
			b = &backoff{}
			l.state[key] = b
		}
		b.failures++
		b.last = now
	}
	// A spray of distinct accounts must not grow the map without bound.
	if len(l.state) > 100_000 {
		for k, b := range l.state {
			if now.Sub(b.last) > limiterWindow {
				delete(l.state, k)
			}
		}
	}
}

func (l *loginLimiter) succeeded(addr, email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.state, "pair "+email+" "+addr)
}

// dummyHash is verified against for an unknown e-mail, so that a sign-in
// takes as long whether the account exists or not.
// It is made at the first sign-in, not at start: every program run links
// this package, and argon2 costs tens of milliseconds and 19 MiB.
var dummyHash = sync.OnceValue(func() string {
	return HashPassword("no account has this password, it only costs the same time")
})

// allowChecks counts a check of n logins against the customer's hourly
// allowance, refusing a check too large or one over the allowance: the
// hosting's address must not serve to try passwords in bulk.
func (a *API) allowChecks(tenant int64, n int) error {
	lines, perHour := a.cfg.CheckLines, a.cfg.ChecksPerHour
	if lines <= 0 {
		lines = 500
	}
	if perHour <= 0 {
		perHour = 2000
	}
	if n > lines {
		return badRequest("invalid.too_many_lines", n, lines)
	}
	a.checksMu.Lock()
	defer a.checksMu.Unlock()
	now := time.Now()
	recent := a.checks[tenant][:0]
	used := 0
	for _, c := range a.checks[tenant] {
		if now.Sub(c.at) < time.Hour {
			recent = append(recent, c)
			used += c.n
		}
	}
	if used+n > perHour {
		a.checks[tenant] = recent
		return failWith(http.StatusTooManyRequests, "too_many_checks", "api.checks", perHour)
	}
	a.checks[tenant] = append(recent, checkCount{now, n})
	return nil
}

// checkCount is one check's logins, for the hourly allowance.
type checkCount struct {
	at time.Time
	n  int
}
