package diagnose

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FailedLogins keeps the hosting from becoming a password-spraying relay
// and from getting its addresses blocked by an old provider's abuse
// protection (fail2ban, cPHulk and the like): a customer's logins to one
// server are counted by the server's resolved address, not by the name as
// typed (six spellings of one server are one server), and per customer (one
// customer's typos must not hold back another's correct login). An attempt
// is counted before it is tried, so parallel logins cannot overshoot: after
// PerAccount failed or running attempts of one login, or PerHost at one
// server, within Window, further attempts wait until the window has passed.
type FailedLogins struct {
	PerAccount int
	PerHost    int
	Window     time.Duration
	// Resolve finds a server's addresses; nil: the system's resolver.
	Resolve func(ctx context.Context, host string) ([]string, error)

	mu       sync.Mutex
	attempts map[string][]attempt
	servers  map[string]resolved // host name -> its identity, recently
}

type attempt struct {
	at      time.Time
	running bool // tried now; a success removes it, a failure keeps it
}

// NewFailedLogins makes a limiter with modest defaults: 3 failures per
// login and 10 per server in 15 minutes.
func NewFailedLogins() *FailedLogins {
	return &FailedLogins{PerAccount: 3, PerHost: 10, Window: 15 * time.Minute, attempts: map[string][]attempt{},
		servers: map[string]resolved{}}
}

// Server is the identity of an old server for counting: its lowest
// resolved address and the port, or the name when it does not resolve
// (such a login fails before any password is sent). Answers are kept for
// a minute: every slice of every copy asks again.
func (f *FailedLogins) Server(ctx context.Context, host string, port int) string {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	f.mu.Lock()
	c, ok := f.servers[name]
	f.mu.Unlock()
	if !ok || time.Since(c.at) > time.Minute {
		resolve := f.Resolve
		if resolve == nil {
			resolve = func(ctx context.Context, host string) ([]string, error) {
				return net.DefaultResolver.LookupHost(ctx, host)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c = resolved{id: name, at: time.Now()}
		if addrs, err := resolve(ctx, host); err == nil && len(addrs) > 0 {
			slices.Sort(addrs)
			c.id = addrs[0]
		}
		f.mu.Lock()
		if len(f.servers) > 10_000 {
			clear(f.servers)
		}
		f.servers[name] = c
		f.mu.Unlock()
	}
	return net.JoinHostPort(c.id, strconv.Itoa(port))
}

type resolved struct {
	id string
	at time.Time
}

func (f *FailedLogins) keys(tenant int64, server, user string) (host, account string) {
	t := strconv.FormatInt(tenant, 10)
	return "host " + t + " " + server, "user " + t + " " + server + " " + strings.ToLower(user)
}

// recent drops attempts older than the window and returns the rest.
func (f *FailedLogins) recent(key string, now time.Time) []attempt {
	as := f.attempts[key]
	i := 0
	for i < len(as) && now.Sub(as[i].at) > f.Window {
		i++
	}
	if i == len(as) {
		delete(f.attempts, key)
		return nil
	}
	f.attempts[key] = as[i:]
	return as[i:]
}

// Begin reserves an attempt of a customer's login at a server (see
// Server): ok when it may be tried now, else how long until it may. After
// the attempt, done must be called with whether the login was refused.
func (f *FailedLogins) Begin(tenant int64, server, user string) (done func(failed bool), wait time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	hk, uk := f.keys(tenant, server, user)
	for _, c := range []struct {
		key   string
		limit int
	}{{uk, f.PerAccount}, {hk, f.PerHost}} {
		if as := f.recent(c.key, now); len(as) >= c.limit {
			return nil, max(time.Second, f.Window-now.Sub(as[len(as)-c.limit].at)), false
		}
	}
	a := attempt{at: now, running: true}
	f.attempts[hk] = append(f.attempts[hk], a)
	f.attempts[uk] = append(f.attempts[uk], a)
	var once sync.Once
	return func(failed bool) {
		once.Do(func() { f.end(hk, uk, a, failed) })
	}, 0, true
}

func (f *FailedLogins) end(hk, uk string, a attempt, failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, key := range []string{hk, uk} {
		as := f.attempts[key]
		i := slices.Index(as, a)
		if i < 0 {
			continue
		}
		if failed {
			as[i].running = false
			continue
		}
		f.attempts[key] = slices.Delete(as, i, i+1)
	}
	if !failed {
		// The login works: its earlier failures were typos now corrected.
		delete(f.attempts, uk)
	}
}
