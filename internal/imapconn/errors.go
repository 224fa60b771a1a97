package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

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
)

var kindNames = map[Kind]string{
	ErrOther: "error", ErrResolve: "cannot resolve", ErrConnect: "cannot connect",
	ErrTLS: "TLS failure", ErrAuth: "authentication failed", ErrTimeout: "timeout",
	ErrOverQuota: "over quota", ErrTooBig: "message too big", ErrServer: "server error",
	ErrConnLost: "connection lost", ErrProtocol: "reply not understood",
}

func (k Kind) Error() string { return kindNames[k] }

// Code is a stable machine-readable name for the kind (reports, API).
func (k Kind) Code() string {
	return [...]string{"other", "resolve", "connect", "tls", "auth", "timeout",
		"over_quota", "too_big", "server", "connection_lost", "protocol"}[k]
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
	Err    error
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
	tooBigText    = regexp.MustCompile(`(?i)too (large|big)|maximum (message )?size|size (limit )?exceeded|message.*exceeds|appendable`)
	overQuotaText = regexp.MustCompile(`(?i)quota|mailbox (is )?full|not enough (disk )?space|storage.*(limit|full)`)
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
