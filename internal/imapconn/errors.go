package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Kind is the class of a failure. Callers decide by kind (errors.Is(err,
// imapconn.ErrAuth)); the customer-facing explanation is chosen by kind too.
type Kind int

// The failure kinds. Each is also an error value usable as an errors.Is target.
const (
	ErrOther     Kind = iota // anything not classified below
	ErrResolve               // the host name does not resolve
	ErrConnect               // refused, unreachable, or no answer to connect
	ErrTLS                   // handshake or certificate failure, or STARTTLS missing
	ErrAuth                  // the server rejected the login
	ErrTimeout               // the server stopped answering mid-session
	ErrOverQuota             // the destination mailbox is full
	ErrTooBig                // the message exceeds the server's size limit
	ErrServer                // the server answered NO/BAD to a command
	ErrConnLost              // the connection dropped
	ErrProtocol              // the server's reply breaks the protocol; a retry gets the same
	ErrThrottled             // the server asks us to slow down and come back later (Error.Wait)
)

var kindNames = map[Kind]string{
	ErrOther: "error", ErrResolve: "cannot resolve", ErrConnect: "cannot connect",
	ErrTLS: "TLS failure", ErrAuth: "authentication failed", ErrTimeout: "timeout",
	ErrOverQuota: "over quota", ErrTooBig: "message too big", ErrServer: "server error",
	ErrConnLost: "connection lost", ErrProtocol: "reply not understood", ErrThrottled: "throttled",
}

func (k Kind) Error() string { return kindNames[k] }

// Code is a stable machine-readable name for the kind (reports, API).
func (k Kind) Code() string {
	return [...]string{"other", "resolve", "connect", "tls", "auth", "timeout",
		"over_quota", "too_big", "server", "connection_lost", "protocol", "throttled"}[k]
}

// Error is a classified IMAP failure. It never holds a password: the server
// text comes from responses, and commands carrying credentials are never
// echoed.
type Error struct {
	Kind   Kind
	Op     string // what we were doing: "connect", "login", `append to "Sent"`
	Server string // host:port
	Code   imap.ResponseCode
	Text   string // the server's own words, if any
	// Wait is how long a throttled connection should stay away: the
	// server's suggestion, else a default, bounded (see Options).
	Wait time.Duration
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
	}
	if e.Server != "" {
		fmt.Fprintf(&b, " (%s)", e.Server)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	switch {
	case e.Text != "" && e.Code != "":
		fmt.Fprintf(&b, ": [%s] %s", e.Code, e.Text)
	case e.Text != "":
		fmt.Fprintf(&b, ": %s", e.Text)
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, ErrAuth) match by kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// KindOf returns the kind of err, ErrOther when it is not classified.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return ErrOther
}

var (
	tooBigText = regexp.MustCompile(`(?i)too (large|big)|maximum (message )?size|size (limit )?exceeded|message.*exceeds|appendable`)
	// Not the word "quota" alone: Dovecot answers a GETQUOTAROOT it
	// cannot count with "Internal quota calculation error".
	overQuotaText = regexp.MustCompile(`(?i)over ?quota|quota (is )?(exceeded|full|reached)|exceeded (the |your )?(\w+ )?quota|mailbox (is )?full|not enough (disk )?space|no space left|storage.*(limit|full)|insufficient (storage|space)`)
)

// classify turns any error from a command into an *Error.
func classify(op, server string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &Error{Op: op, Server: server, Err: err, Kind: ErrConnLost}
	var ie *imap.Error
	if errors.As(err, &ie) {
		e.Code, e.Text = ie.Code, strings.TrimSpace(ie.Text)
		e.Kind = ErrServer
		if wait, ok := ThrottleHint(ie.Code, ie.Text); ok {
			e.Kind, e.Wait = ErrThrottled, wait
			return e
		}
		switch {
		case ie.Code == imap.ResponseCodeTooBig || tooBigText.MatchString(ie.Text):
			e.Kind = ErrTooBig
		case ie.Code == imap.ResponseCodeOverQuota || overQuotaText.MatchString(ie.Text):
			e.Kind = ErrOverQuota
		case ie.Code == imap.ResponseCodeAuthenticationFailed || ie.Code == imap.ResponseCodeAuthorizationFailed:
			e.Kind = ErrAuth
		}
		return e
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		e.Kind = ErrResolve
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr),
		errors.As(err, &invErr), errors.As(err, &recErr), errors.As(err, &alert),
		strings.Contains(err.Error(), "tls:"):
		e.Kind = ErrTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e.Kind = ErrConnect
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Kind = ErrTimeout
	}
	return e
}

// ResponseCodeThrottled is Gmail's response code for a command it carried
// out but wants fewer of: in an OK, slow down; in a NO, come back later.
const ResponseCodeThrottled imap.ResponseCode = "THROTTLED"

var (
	// Exchange Online: "Request is throttled. Suggested Backoff Time:
	// 299609 milliseconds" (NO, or BAD followed by BYE), and "Server
	// Unavailable. 15" when a backend is overloaded.
	throttledText = regexp.MustCompile(`(?i)request is throttled|server unavailable\.|too many (simultaneous |concurrent |open |parallel )?(connections|sessions|logins)|maximum number of connections|connection limit (exceeded|reached)`)
	backoffText   = regexp.MustCompile(`(?i)backoff time:?\s*([0-9]+)\s*(milliseconds|millisecond|ms|seconds|second|s)\b`)
)

// ThrottleHint tells whether a NO or BAD answer (its response code and
// text) asks the client to slow down, and the wait it suggests (0 when it
// suggests none).
func ThrottleHint(code imap.ResponseCode, text string) (wait time.Duration, throttled bool) {
	if !strings.EqualFold(string(code), string(ResponseCodeThrottled)) && !throttledText.MatchString(text) {
		return 0, false
	}
	return SuggestedWait(text), true
}

// SuggestedWait reads the backoff a server names in its answer ("Suggested
// Backoff Time: 299609 milliseconds"); 0 when it names none. A number too
// large to be meant is returned as it is: the caller bounds it.
func SuggestedWait(text string) time.Duration {
	m := backoffText.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return maxWait // only digits: a number too large
	}
	unit := time.Millisecond
	if u := strings.ToLower(m[2]); strings.HasPrefix(u, "s") {
		unit = time.Second
	}
	if n > int64(maxWait/unit) {
		return maxWait
	}
	return time.Duration(n) * unit
}

// maxWait bounds any parsed wait before the connection's own bound.
const maxWait = 24 * time.Hour

// ThrottleWait returns the wait of a throttled failure anywhere in err's
// chain.
func ThrottleWait(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrThrottled {
		return e.Wait, true
	}
	return 0, false
}
