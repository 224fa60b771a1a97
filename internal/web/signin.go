package web

import (
	"context"
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
// longer than the window. The counts are in the database, so that several
// web servers behind one address do not give a guesser several allowances.
type loginLimiter struct {
	counts Backoffs
	now    func() time.Time
}

// Backoffs keeps failure counts per key with the time of the last
// failure: the store's (store.DB.Backoffs), or this process's own.
type Backoffs interface {
	// Failures is how often key failed since windowStart, and when last.
	Failures(ctx context.Context, key string, windowStart time.Time) (int, time.Time, error)
	// Fail counts a failure of each key at now; a key whose last failure
	// was before windowStart starts again from one.
	Fail(ctx context.Context, keys []string, now, windowStart time.Time) error
	// Clear forgets a key's failures.
	Clear(ctx context.Context, key string) error
}

const (
	limiterWindow   = time.Hour
	freeFailures    = 3  // per account and address before any wait
	sprayFailures   = 30 // per address, over all accounts
	maxLoginBackoff = 15 * time.Minute
)

func newLoginLimiter(counts Backoffs) *loginLimiter {
	if counts == nil {
		counts = &memoryBackoffs{state: map[string]backoff{}}
	}
	return &loginLimiter{counts: counts, now: time.Now}
}

func (l *loginLimiter) wait(ctx context.Context, key string, free int) (time.Duration, error) {
	now := l.now()
	failures, last, err := l.counts.Failures(ctx, key, now.Add(-limiterWindow))
	if err != nil || failures < free {
		return 0, err
	}
	d := min(time.Second<<min(failures-free, 20), maxLoginBackoff)
	return max(0, last.Add(d).Sub(now)), nil
}

func pairKey(addr, email string) string { return "signin pair " + email + " " + addr }
func addrKey(addr string) string        { return "signin addr " + addr }

// allow says how long a sign-in of email from addr must wait (0: now).
func (l *loginLimiter) allow(ctx context.Context, addr, email string) (time.Duration, error) {
	pair, err := l.wait(ctx, pairKey(addr, email), freeFailures)
	if err != nil {
		return 0, err
	}
	spray, err := l.wait(ctx, addrKey(addr), sprayFailures)
	return max(pair, spray), err
}

func (l *loginLimiter) failed(ctx context.Context, addr, email string) error {
	now := l.now()
	return l.counts.Fail(ctx, []string{pairKey(addr, email), addrKey(addr)}, now, now.Add(-limiterWindow))
}

func (l *loginLimiter) succeeded(ctx context.Context, addr, email string) error {
	return l.counts.Clear(ctx, pairKey(addr, email))
}

// memoryBackoffs are the counts of a panel without a shared database.
type memoryBackoffs struct {
	mu    sync.Mutex
	state map[string]backoff
}

type backoff struct {
	failures int
	last     time.Time
}

func (m *memoryBackoffs) Failures(_ context.Context, key string, windowStart time.Time) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.state[key]
	if !ok || b.last.Before(windowStart) {
		return 0, time.Time{}, nil
	}
	return b.failures, b.last, nil
}

func (m *memoryBackoffs) Fail(_ context.Context, keys []string, now, windowStart time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, key := range keys {
		b := m.state[key]
		if b.last.Before(windowStart) {
			b = backoff{}
		}
		b.failures++
		b.last = now
		m.state[key] = b
	}
	// A spray of distinct accounts must not grow the map without bound.
	if len(m.state) > 100_000 {
		for k, b := range m.state {
			if b.last.Before(windowStart) {
				delete(m.state, k)
			}
		}
	}
	return nil
}

func (m *memoryBackoffs) Clear(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.state, key)
	return nil
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
// hosting's address must not serve to try passwords in bulk. The count is
// the store's, shared by every web server.
func (a *API) allowChecks(ctx context.Context, tenant int64, n int) error {
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
	ok, err := a.cfg.Store.UseChecks(ctx, tenant, n, perHour, time.Hour, time.Now())
	if err != nil {
		return err
	}
	if !ok {
		return failWith(http.StatusTooManyRequests, "too_many_checks", "api.checks", perHour)
	}
	return nil
}
