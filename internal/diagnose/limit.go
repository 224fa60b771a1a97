package diagnose

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailmigrate/internal/slots"
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
	// Slots is where attempts are counted: in the database that every
	// server shares, so that more servers do not mean more attempts.
	Slots slots.Slots

	mu      sync.Mutex
	servers map[string]resolved // host name -> its identity, recently
}

// NewFailedLogins makes a limiter with modest defaults: 3 failures per
// login and 10 per server in 15 minutes, counted in sl (nil: in this
// process).
func NewFailedLogins(sl slots.Slots) *FailedLogins {
	if sl == nil {
		sl = slots.NewMemory()
	}
	return &FailedLogins{PerAccount: 3, PerHost: 10, Window: 15 * time.Minute, Slots: sl, servers: map[string]resolved{}}
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

// Begin reserves an attempt of a customer's login at a server (see
// Server): done is nil when it may not be tried now, and wait says how
// long until it may. After the attempt, done must be called with whether
// the login was refused.
//
// An attempt holds a slot of the login and one of the server for the
// window from its start: a refused login keeps them, a login that works
// gives them back with the login's earlier failures (typos, corrected),
// and an attempt whose process died counts as a failure.
func (f *FailedLogins) Begin(ctx context.Context, tenant int64, server, user string) (done func(failed bool), wait time.Duration, err error) {
	hk, uk := f.keys(tenant, server, user)
	ids, wait, err := f.Slots.Take(ctx, []slots.Limit{{Key: uk, Max: f.PerAccount}, {Key: hk, Max: f.PerHost}},
		"login", time.Now().Add(f.Window))
	if err != nil || ids == nil {
		return nil, max(wait, time.Second), err
	}
	var once sync.Once
	return func(failed bool) {
		once.Do(func() {
			if failed {
				return
			}
			ctx := context.WithoutCancel(ctx)
			f.Slots.Free(ctx, ids)
			f.Slots.FreeKey(ctx, uk)
		})
	}, 0, nil
}
