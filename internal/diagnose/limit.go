package diagnose

import (
	"strings"
	"sync"
	"time"
)

// FailedLogins remembers recent failed logins to old servers, so that
// typos cannot get the hosting's addresses blocked by the old provider's
// abuse protection (fail2ban, cPHulk and the like): after PerAccount
// failures of one login, or PerHost failures at one server, within Window,
// further attempts are held back until the window has passed.
type FailedLogins struct {
	PerAccount int
	PerHost    int
	Window     time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
}

// NewFailedLogins makes a limiter with modest defaults: 3 failures per
// login and 10 per server in 15 minutes.
func NewFailedLogins() *FailedLogins {
	return &FailedLogins{PerAccount: 3, PerHost: 10, Window: 15 * time.Minute, failures: map[string][]time.Time{}}
}

func (f *FailedLogins) keys(host, user string) (string, string) {
	host = strings.ToLower(host)
	return "host " + host, "user " + host + " " + strings.ToLower(user)
}

// recent drops old failures of a key and returns the rest.
func (f *FailedLogins) recent(key string, now time.Time) []time.Time {
	fs := f.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) > f.Window {
		i++
	}
	f.failures[key] = fs[i:]
	return fs[i:]
}

// Allow reports whether a login may be tried now; if not, how long until
// it may.
func (f *FailedLogins) Allow(host, user string) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	hk, uk := f.keys(host, user)
	for _, c := range []struct {
		key   string
		limit int
	}{{uk, f.PerAccount}, {hk, f.PerHost}} {
		if fs := f.recent(c.key, now); len(fs) >= c.limit {
			return false, f.Window - now.Sub(fs[len(fs)-c.limit])
		}
	}
	return true, 0
}

// Failed records a failed login.
func (f *FailedLogins) Failed(host, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	hk, uk := f.keys(host, user)
	f.failures[hk] = append(f.failures[hk], now)
	f.failures[uk] = append(f.failures[uk], now)
}

// Succeeded forgets a login's failures: it works now.
func (f *FailedLogins) Succeeded(host, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, uk := f.keys(host, user)
	delete(f.failures, uk)
}
