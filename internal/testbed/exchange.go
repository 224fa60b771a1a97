package testbed

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// ExchangeConfig describes a Microsoft 365 / Exchange Online-like IMAP
// server: Exchange's folders with their attributes, a cap on a user's
// connections, a message size limit and throttling answers at a set rate,
// as Exchange Online gives them (and Gmail's [THROTTLED]). It is the
// hostile server with these behaviours on top, on loopback.
type ExchangeConfig struct {
	User, Password string
	// CheckToken, when set, signs in with OAuth2 access tokens
	// (AUTHENTICATE XOAUTH2, the only way into Exchange Online), checked
	// by it (OAuthServer.Valid); leave Password empty for an account
	// without basic authentication.
	CheckToken func(user, token string) bool
	// Folders is the account in LIST order; ExchangeFolders gives
	// Exchange's own, to which tests add messages and folders.
	Folders []HostileFolder
	// MaxConnections caps the user's open connections; a login beyond it
	// is refused (NO, or * BYE with CapBye), as Exchange Online does. 0:
	// no cap.
	MaxConnections int
	CapBye         bool
	// MaxMessageSize, when set, is the largest body a FETCH hands out; a
	// FETCH of a larger one is answered NO as a whole.
	MaxMessageSize int
	// Throttles answer commands with throttling at a set rate.
	Throttles []Throttle
	// Backoff is the wait the throttling answers suggest; 1 ms when 0.
	Backoff time.Duration
}

// ThrottleReply is how a throttled command is answered.
type ThrottleReply int

// The throttling answers seen from Exchange Online (and Gmail).
const (
	// ThrottleNo: "NO Request is throttled. Suggested Backoff Time: N
	// milliseconds".
	ThrottleNo ThrottleReply = iota
	// ThrottleBadBye: the same as BAD, then "* BYE Connection closed. 14",
	// and the connection is closed.
	ThrottleBadBye
	// ThrottleUnavailable: "NO Server Unavailable. 15", no wait suggested.
	ThrottleUnavailable
	// ThrottleOK: the command is carried out and answered "OK
	// [THROTTLED]" (Gmail): slow down, nothing failed.
	ThrottleOK
)

// Throttle answers every Every-th command named On ("LOGIN"
// (AUTHENTICATE too), "SELECT" (EXAMINE too), "UID FETCH", "FETCH", "STATUS", ...; counted over all
// connections) with Reply.
type Throttle struct {
	On    string
	Every int
	Reply ThrottleReply
}

// Exchange is a running Exchange-like server.
type Exchange struct {
	*Hostile
	cfg ExchangeConfig

	mu        sync.Mutex
	counts    map[int]int // commands seen per Throttle
	throttled int
	refused   int
	maxOpen   int
}

// ExchangeFolders are the folders an Exchange Online mailbox lists over
// IMAP, empty, with the attributes Exchange gives them; czech gives the
// names of a mailbox set up in Czech. INBOX comes first.
func ExchangeFolders(czech bool) []HostileFolder {
	names := map[string]string{"Sent Items": "Odeslaná pošta", "Deleted Items": "Odstraněná pošta",
		"Junk Email": "Nevyžádaná pošta", "Drafts": "Koncepty", "Archive": "Archiv", "Outbox": "Pošta k odeslání",
		"Conversation History": "Historie konverzace", "Calendar": "Kalendář", "Calendar/Birthdays": "Kalendář/Narozeniny",
		"Contacts": "Kontakty", "Tasks": "Úkoly", "Notes": "Poznámky", "Journal": "Deník",
		"Sync Issues": "Problémy se synchronizací", "Sync Issues/Conflicts": "Problémy se synchronizací/Konflikty",
		"Sync Issues/Local Failures":  "Problémy se synchronizací/Místní selhání",
		"Sync Issues/Server Failures": "Problémy se synchronizací/Selhání serveru"}
	// Exchange Online marks the special folders without announcing
	// SPECIAL-USE, and the children flags on every folder.
	list := []struct{ name, attrs string }{
		{"INBOX", `\Marked \HasNoChildren`},
		{"Archive", `\HasNoChildren \Archive`},
		{"Calendar", `\HasChildren`},
		{"Calendar/Birthdays", `\HasNoChildren`},
		{"Contacts", `\HasNoChildren`},
		{"Conversation History", `\HasNoChildren`},
		{"Deleted Items", `\Marked \HasNoChildren \Trash`},
		{"Drafts", `\HasNoChildren \Drafts`},
		{"Journal", `\HasNoChildren`},
		{"Junk Email", `\HasNoChildren \Junk`},
		{"Notes", `\HasNoChildren`},
		{"Outbox", `\HasNoChildren`},
		{"Sent Items", `\HasNoChildren \Sent`},
		{"Sync Issues", `\NoSelect \HasChildren`},
		{"Sync Issues/Conflicts", `\HasNoChildren`},
		{"Sync Issues/Local Failures", `\HasNoChildren`},
		{"Sync Issues/Server Failures", `\HasNoChildren`},
		{"Tasks", `\HasNoChildren`},
	}
	out := make([]HostileFolder, len(list))
	for i, f := range list {
		name := f.name
		if czech && names[name] != "" {
			name = names[name]
		}
		out[i] = HostileFolder{Name: name, UIDValidity: uint32(14 + i), SpecialUse: f.attrs, Subscribed: true}
	}
	return out
}

// StartExchange serves cfg's account until the test ends.
func StartExchange(t testing.TB, cfg ExchangeConfig) *Exchange {
	t.Helper()
	x := &Exchange{cfg: cfg, counts: map[int]int{}}
	if x.cfg.Backoff <= 0 {
		x.cfg.Backoff = time.Millisecond
	}
	caps := []string{"UIDPLUS", "LITERAL+", "MOVE", "ID", "UNSELECT", "CHILDREN", "IDLE"}
	if cfg.CheckToken != nil {
		caps = append(caps, "AUTH=XOAUTH2")
	}
	x.Hostile = StartHostile(t, HostileConfig{User: cfg.User, Password: cfg.Password, Folders: cfg.Folders,
		Caps: caps, CheckToken: cfg.CheckToken, intercept: x.intercept})
	return x
}

// Throttled returns how many commands were answered with throttling.
func (x *Exchange) Throttled() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.throttled
}

// Refused returns how many logins the connection cap refused.
func (x *Exchange) Refused() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.refused
}

// MaxOpen returns the most connections that were logged in at once.
func (x *Exchange) MaxOpen() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.maxOpen
}

// throttle decides whether this command is throttled, and how.
func (x *Exchange) throttle(name string) (ThrottleReply, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, th := range x.cfg.Throttles {
		on := strings.ToUpper(th.On)
		same := on == name || (on == "SELECT" && name == "EXAMINE") || (on == "LOGIN" && name == "AUTHENTICATE")
		if !same || th.Every <= 0 {
			continue
		}
		x.counts[i]++
		if x.counts[i]%th.Every == 0 {
			x.throttled++
			return th.Reply, true
		}
	}
	return 0, false
}

func (x *Exchange) intercept(s *hostileSession, tag, name string, args []arg) (bool, error) {
	if name == "LOGIN" || name == "AUTHENTICATE" {
		open := x.Open()
		x.mu.Lock()
		over := x.cfg.MaxConnections > 0 && open > x.cfg.MaxConnections
		if over {
			x.refused++
		} else {
			x.maxOpen = max(x.maxOpen, open)
		}
		x.mu.Unlock()
		if over && x.cfg.CapBye {
			s.w.WriteString("* BYE Too many simultaneous connections.\r\n")
			return true, errCut
		}
		if over {
			fmt.Fprintf(s.w, "%s NO Too many simultaneous connections.\r\n", tag)
			return true, nil
		}
	}
	reply, throttled := x.throttle(name)
	suggest := fmt.Sprintf("Request is throttled. Suggested Backoff Time: %d milliseconds", max(1, x.cfg.Backoff.Milliseconds()))
	switch {
	case throttled && reply == ThrottleNo:
		fmt.Fprintf(s.w, "%s NO %s\r\n", tag, suggest)
		return true, nil
	case throttled && reply == ThrottleBadBye:
		fmt.Fprintf(s.w, "%s BAD %s\r\n* BYE Connection closed. 14\r\n", tag, suggest)
		return true, errCut
	case throttled && reply == ThrottleUnavailable:
		fmt.Fprintf(s.w, "%s NO Server Unavailable. 15\r\n", tag)
		return true, nil
	}
	if (name == "FETCH" || name == "UID FETCH") && x.cfg.MaxMessageSize > 0 && s.authed && s.sel != nil {
		if big := x.tooBig(s, name == "UID FETCH", args); big {
			fmt.Fprintf(s.w, "%s NO Message exceeds the maximum size the server hands out (%d bytes).\r\n", tag, x.cfg.MaxMessageSize)
			return true, nil
		}
	}
	if !throttled {
		return false, nil
	}
	// [THROTTLED] in an OK: the command is carried out.
	ok, err := s.run(name, args)
	var ce commandError
	switch {
	case err == nil:
		fmt.Fprintf(s.w, "%s OK [THROTTLED] %s\r\n", tag, ok)
	case errors.As(err, &ce):
		fmt.Fprintf(s.w, "%s %s\r\n", tag, ce)
		err = nil
	}
	return true, err
}

// tooBig tells whether a FETCH of bodies asks for a message larger than
// the server hands out.
func (x *Exchange) tooBig(s *hostileSession, byUID bool, args []arg) bool {
	if len(args) != 2 || args[0].kind != atomArg {
		return false
	}
	items, err := parseFetchItems(args[1], nil)
	if err != nil || !hasWhole(items) {
		return false
	}
	msgs := s.h.messages(s.sel)
	if len(msgs) == 0 {
		return false
	}
	last := uint32(len(msgs))
	if byUID {
		last = msgs[len(msgs)-1].UID
	}
	set, err := parseSet(args[0].s, last)
	if err != nil {
		return false
	}
	for i, m := range msgs {
		key := uint32(i + 1)
		if byUID {
			key = m.UID
		}
		if set.has(key) && len(m.Body) > x.cfg.MaxMessageSize {
			return true
		}
	}
	return false
}

func hasWhole(items fetchItems) bool {
	for _, sec := range items.sections {
		if sec.whole {
			return true
		}
	}
	return false
}
