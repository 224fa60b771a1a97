package imapconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Options tune a connection.
type Options struct {
	// Timeout is the longest the server may stay silent while we wait for
	// it; then the connection is closed and the command fails with
	// ErrTimeout. Default 60 s.
	Timeout time.Duration
	// DialTimeout bounds connecting and the TLS handshake. Default 20 s.
	DialTimeout time.Duration
	// ThrottleWait is the wait of a throttled answer that suggests none
	// (Exchange's "Server Unavailable", a connection cap). Default 30 s.
	ThrottleWait time.Duration
	// MaxThrottleWait bounds the wait a server suggests. Default 15 min.
	MaxThrottleWait time.Duration
	// Pause is how long the connection rests after a command whose OK
	// carried [THROTTLED]: the server did it but asks for fewer commands.
	// Default 1 s.
	Pause time.Duration
	// Paused, if set, hears each such rest (for a service's metrics).
	Paused func(time.Duration)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 20 * time.Second
	}
	if o.ThrottleWait <= 0 {
		o.ThrottleWait = 30 * time.Second
	}
	if o.MaxThrottleWait <= 0 {
		o.MaxThrottleWait = 15 * time.Minute
	}
	if o.Pause <= 0 {
		o.Pause = time.Second
	}
	return o
}

// Conn is one IMAP session. It is meant to be used by one goroutine at a
// time; the engine gives each worker its own Conn.
type Conn struct {
	ep      Endpoint
	cl      *imapclient.Client
	timeout time.Duration
	opt     Options

	guard *guard
	tags  int           // commands imapconn wrote itself (Append), for their tags
	out   *bufio.Writer // what Append writes goes through it

	mu sync.Mutex
	// timers are the watchdogs of the commands being waited for: a reply
	// read ahead (BodyFetch) is waited for while another is.
	timers map[*time.Timer]bool
	// examineOpts are the options of this connection's last EXAMINE, for
	// one sent ahead (SendBodies); nil before the first.
	examineOpts *imap.SelectOptions
	bodies      int // body fetches sent and not yet read (BodyFetch)
	timedOut    atomic.Bool
	dropped     atomic.Bool // the socket was closed under go-imap
}

// Dial connects to ep and reads the greeting; with StartTLS it upgrades the
// connection before returning and fails if the server cannot.
func Dial(ctx context.Context, ep Endpoint, opt Options) (*Conn, error) {
	opt = opt.withDefaults()
	addr := ep.Addr()
	dctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	if ep.Untrusted {
		// Checked on the address actually dialled, so that a name that
		// resolves differently later (DNS rebinding) gains nothing.
		d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || Internal(ap.Addr()) {
				return ErrForbiddenAddress
			}
			return nil
		}
	}
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrForbiddenAddress) {
			return nil, &Error{Kind: ErrConnect, Op: "connect", Server: addr, Err: ErrForbiddenAddress}
		}
		e := classify("connect", addr, err)
		var ce *Error
		if errors.As(e, &ce) && ce.Kind == ErrTimeout {
			ce.Kind = ErrConnect
		}
		return nil, e
	}
	c := &Conn{ep: ep, timeout: opt.Timeout, opt: opt}
	clOpts := &imapclient.Options{TLSConfig: ep.tlsConfig()}
	var plain net.Conn // what go-imap reads: the guard watches it
	switch ep.Security {
	case TLS:
		wr := newWire(raw)
		tc := tls.Client(wr, ep.tlsConfig())
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &Error{Kind: ErrTLS, Op: "TLS handshake", Server: addr, Err: err}
		}
		plain = encrypted{tc, wr}
	case StartTLS:
		tc, err := startTLS(dctx, raw, ep.tlsConfig(), opt.DialTimeout)
		if err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var e *Error
			if errors.As(err, &e) {
				e.Server = addr
				return nil, e
			}
			kind := ErrTLS
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				kind = ErrTimeout
			}
			return nil, &Error{Kind: kind, Op: "STARTTLS", Server: addr, Err: err}
		}
		plain = tc
	default:
		plain = raw
	}
	c.guard = newGuard(plain)
	c.cl = imapclient.New(c.guard, clOpts)
	done := c.arm(ctx)
	err = c.cl.WaitGreeting()
	done()
	if err != nil {
		c.cl.Close()
		return nil, c.fail(ctx, "read greeting", err)
	}
	return c, nil
}

// Endpoint is the server this connection talks to.
func (c *Conn) Endpoint() Endpoint { return c.ep }

// arm starts the watchdog for one command: if the server stays silent for
// the timeout, or ctx ends, the connection is closed so that the blocked
// go-imap call returns. The returned func disarms it.
func (c *Conn) arm(ctx context.Context) func() {
	t := time.AfterFunc(c.timeout, func() {
		c.timedOut.Store(true)
		c.drop()
	})
	c.mu.Lock()
	if c.timers == nil {
		c.timers = make(map[*time.Timer]bool)
	}
	c.timers[t] = true
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, c.drop)
	return func() {
		stop()
		t.Stop()
		c.mu.Lock()
		delete(c.timers, t)
		c.mu.Unlock()
		if c.guard != nil && c.guard.slowedDown() {
			c.pause(ctx)
		}
	}
}

// pause rests after an OK that asked for fewer commands ([THROTTLED]), so
// that the next command comes later, without failing this one.
func (c *Conn) pause(ctx context.Context) {
	if c.opt.Paused != nil {
		c.opt.Paused(c.opt.Pause)
	}
	t := time.NewTimer(c.opt.Pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// touch tells the watchdog that the server is making progress.
func (c *Conn) touch() {
	c.mu.Lock()
	for t := range c.timers {
		t.Reset(c.timeout)
	}
	c.mu.Unlock()
}

func (c *Conn) fail(ctx context.Context, op string, err error) (out error) {
	if err == nil {
		return nil
	}
	// go-imap fails the commands of a connection the server ended before
	// it reports the connection closed: Dead must not wait for that.
	defer func() {
		if _, bye := c.guard.bye(); bye || KindOf(out) == ErrConnLost {
			c.dropped.Store(true)
		}
	}()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.timedOut.Load() {
		return &Error{Kind: ErrTimeout, Op: op, Server: c.ep.Addr(),
			Err: fmt.Errorf("no answer within %s", c.timeout)}
	}
	if text, ok := c.guard.bye(); ok && tokenExpiredBye.MatchString(text) {
		return &Error{Kind: ErrConnLost, Op: op, Server: c.ep.Addr(), Text: text, Err: ErrTokenExpired}
	}
	if cut, line := c.guard.problem(); cut != nil || parseFailure(err) {
		// Retrying on a fresh connection would get the same reply.
		if cut != nil {
			err = cut
		}
		return &Error{Kind: ErrProtocol, Op: op, Server: c.ep.Addr(), Text: line, Err: err}
	}
	err = classify(op, c.ep.Addr(), err)
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrConnLost {
		// A server that hangs up on a command for its load or a
		// connection cap says why in its BYE (Dovecot's "Maximum number
		// of connections", Exchange's "Too many simultaneous connections").
		if text, ok := c.guard.bye(); ok {
			if wait, throttled := ThrottleHint("", text); throttled {
				e.Kind, e.Text, e.Wait = ErrThrottled, text, wait
			}
		}
	}
	if e != nil && e.Kind == ErrThrottled {
		if e.Wait <= 0 {
			e.Wait = c.opt.ThrottleWait
		}
		e.Wait = min(e.Wait, c.opt.MaxThrottleWait)
	}
	return err
}

// Dead reports whether the connection is closed (after a timeout, a
// cancellation or a protocol error) and must be replaced.
func (c *Conn) Dead() bool {
	if c.dropped.Load() {
		return true
	}
	select {
	case <-c.cl.Closed():
		return true
	default:
		return false
	}
}

// Login authenticates. SASL PLAIN is preferred because it carries any
// password byte unchanged; LOGIN is the fallback, and go-imap sends
// passwords it cannot quote as literals.
func (c *Conn) Login(ctx context.Context, user, password string) error {
	c.guard.redact(password)
	done := c.arm(ctx)
	defer done()
	caps := c.cl.Caps()
	var err error
	switch {
	case caps.Has(imap.AuthCap(sasl.Plain)):
		err = c.cl.Authenticate(sasl.NewPlainClient("", user, password))
	case caps.Has(imap.CapLoginDisabled):
		return &Error{Kind: ErrTLS, Op: "login", Server: c.ep.Addr(),
			Text: "the server does not accept passwords on an unencrypted connection"}
	default:
		err = c.cl.Login(user, password).Wait()
	}
	if err != nil {
		e := c.fail(ctx, "login as "+user, err)
		var ie *Error
		if errors.As(e, &ie) && ie.Kind == ErrServer && ie.Code != imap.ResponseCodeUnavailable {
			ie.Kind = ErrAuth
		}
		return e
	}
	return c.settle(ctx, "login as "+user)
}

// settle waits out the CAPABILITY command go-imap sends by itself after a
// login whose OK does not carry the capabilities (Courier's does not,
// Dovecot's does). go-imap sends it from a goroutine of its own, a moment
// after the login's Wait has returned, so it could still be written while
// Append writes its own command on the connection: Courier received it
// inside an APPEND's literal, stored "T2 CAPABILITY" as the message's first
// line and answered BAD, and the retry took the broken message for the
// copy already there. The capabilities read in that moment were also the
// ones from before login. A NOOP's answer is read after the login's, by
// when go-imap has started asking; Caps then waits for the answer.
func (c *Conn) settle(ctx context.Context, op string) error {
	if err := c.cl.Noop().Wait(); err != nil {
		return c.fail(ctx, op, err)
	}
	// No answer is no error here: the next command meets the failure.
	c.cl.Caps()
	return nil
}

// Caps returns the capabilities, asking the server when they are unknown.
func (c *Conn) Caps(ctx context.Context) imap.CapSet {
	done := c.arm(ctx)
	defer done()
	return c.cl.Caps()
}

// Has reports whether the server advertises a capability.
func (c *Conn) Has(ctx context.Context, cp imap.Cap) bool { return c.Caps(ctx).Has(cp) }

// Namespace returns the personal namespace prefix and hierarchy delimiter.
func (c *Conn) Namespace(ctx context.Context) (prefix string, delim rune, err error) {
	if c.Has(ctx, imap.CapNamespace) {
		done := c.arm(ctx)
		ns, err := c.cl.Namespace().Wait()
		done()
		if err != nil {
			return "", 0, c.fail(ctx, "namespace", err)
		}
		if len(ns.Personal) > 0 {
			return ns.Personal[0].Prefix, ns.Personal[0].Delim, nil
		}
	}
	done := c.arm(ctx)
	defer done()
	data, err := c.cl.List("", "", nil).Collect()
	if err != nil {
		return "", 0, c.fail(ctx, "list", err)
	}
	if len(data) > 0 {
		delim = data[0].Delim
	}
	return "", delim, nil
}

// Mailbox is one LIST entry.
type Mailbox struct {
	Name       string // decoded to UTF-8 by go-imap
	Delim      rune
	Attrs      []imap.MailboxAttr
	Subscribed bool
}

// NoSelect reports whether the mailbox only exists as a parent.
func (m Mailbox) NoSelect() bool {
	return m.HasAttr(imap.MailboxAttrNoSelect) || m.HasAttr(imap.MailboxAttrNonExistent)
}

// HasAttr reports whether the mailbox carries attr (case-insensitive).
func (m Mailbox) HasAttr(attr imap.MailboxAttr) bool {
	for _, a := range m.Attrs {
		if strings.EqualFold(string(a), string(attr)) {
			return true
		}
	}
	return false
}

// ErrTooManyMailboxes means LIST returned more mailboxes than the caller
// takes; the rest of the reply was not read.
type ErrTooManyMailboxes struct{ Max int }

func (e ErrTooManyMailboxes) Error() string {
	return fmt.Sprintf("the server lists more than %d folders", e.Max)
}

// List returns every mailbox with special-use attributes and subscription
// state where the server can tell them. More than max mailboxes (when max
// is positive) fail with ErrTooManyMailboxes, and the connection is
// dropped rather than the rest of the list read.
func (c *Conn) List(ctx context.Context, max int) ([]Mailbox, error) {
	caps := c.Caps(ctx)
	opts := &imap.ListOptions{}
	if caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	ext := caps.Has(imap.CapListExtended)
	if ext {
		opts.ReturnSubscribed = true
	}
	done := c.arm(ctx)
	defer done()
	cmd := c.cl.List("", "*", opts)
	var out []Mailbox
	for {
		d := cmd.Next()
		if d == nil {
			break
		}
		c.touch()
		if max > 0 && len(out) >= max {
			c.abort(cmd.Close)
			return nil, ErrTooManyMailboxes{Max: max}
		}
		m := Mailbox{Name: d.Mailbox, Delim: d.Delim, Attrs: d.Attrs}
		m.Subscribed = !ext || m.HasAttr(imap.MailboxAttrSubscribed)
		out = append(out, m)
	}
	if err := cmd.Close(); err != nil {
		return nil, c.fail(ctx, "list folders", err)
	}
	return out, nil
}

// Status asks for a mailbox's counters; options the server lacks are
// dropped rather than sent. Counters a server leaves out of its reply
// (MESSAGES, UIDNEXT, UIDVALIDITY) are read with EXAMINE instead, so that a
// requested counter is never nil.
func (c *Conn) Status(ctx context.Context, name string, opts imap.StatusOptions) (*imap.StatusData, error) {
	opts = c.statusOptions(ctx, opts)
	done := c.arm(ctx)
	st, err := c.cl.Status(name, &opts).Wait()
	done()
	if err != nil {
		return nil, c.fail(ctx, fmt.Sprintf("status of %q", name), err)
	}
	return c.completeStatus(ctx, name, st, opts)
}

// StatusMany is Status of several mailboxes, their STATUS commands sent
// at once: a distant server costs one round trip for all instead of one
// each (replies name their mailbox). The answers are in the order of
// names, as many as succeeded; after the first that fails, the others are
// not waited for and the error stands for them too: the caller goes on
// one at a time.
func (c *Conn) StatusMany(ctx context.Context, names []string, opts imap.StatusOptions) ([]*imap.StatusData, error) {
	opts = c.statusOptions(ctx, opts)
	done := c.arm(ctx)
	cmds := make([]*imapclient.StatusCommand, len(names))
	for i, name := range names {
		cmds[i] = c.cl.Status(name, &opts)
	}
	out := make([]*imap.StatusData, 0, len(names))
	for i, cmd := range cmds {
		st, err := cmd.Wait()
		if err != nil {
			done()
			return out, c.fail(ctx, fmt.Sprintf("status of %q", names[i]), err)
		}
		c.touch()
		out = append(out, st)
	}
	done()
	for i, st := range out {
		var err error
		if out[i], err = c.completeStatus(ctx, names[i], st, opts); err != nil {
			return out[:i], err
		}
	}
	return out, nil
}

// statusOptions drops the options the server lacks.
func (c *Conn) statusOptions(ctx context.Context, opts imap.StatusOptions) imap.StatusOptions {
	caps := c.Caps(ctx)
	if !caps.Has(imap.CapCondStore) {
		opts.HighestModSeq = false
	}
	if !caps.Has(imap.CapStatusSize) && !caps.Has(imap.CapIMAP4rev2) {
		opts.Size = false
	}
	return opts
}

// completeStatus reads the counters a STATUS reply left out with EXAMINE.
func (c *Conn) completeStatus(ctx context.Context, name string, st *imap.StatusData, opts imap.StatusOptions) (*imap.StatusData, error) {
	if (opts.NumMessages && st.NumMessages == nil) || (opts.UIDNext && st.UIDNext == 0) ||
		(opts.UIDValidity && st.UIDValidity == 0) {
		ex, err := c.ExamineStatus(ctx, name)
		if err != nil {
			return nil, err
		}
		if st.NumMessages == nil {
			st.NumMessages = ex.NumMessages
		}
		if st.UIDNext == 0 {
			st.UIDNext = ex.UIDNext
		}
		if st.UIDValidity == 0 {
			st.UIDValidity = ex.UIDValidity
		}
	}
	return st, nil
}

// ExamineStatus reads a mailbox's counters by opening it read-only: the
// fallback for servers whose STATUS replies are incomplete or unreadable.
// It leaves the mailbox selected.
func (c *Conn) ExamineStatus(ctx context.Context, name string) (*imap.StatusData, error) {
	sel, err := c.Examine(ctx, name)
	if err != nil {
		return nil, err
	}
	n := sel.NumMessages
	return &imap.StatusData{Mailbox: name, NumMessages: &n, UIDNext: sel.UIDNext,
		UIDValidity: sel.UIDValidity, HighestModSeq: sel.HighestModSeq}, nil
}

// Examine opens a mailbox read-only: the source is never modified.
func (c *Conn) Examine(ctx context.Context, name string) (*imap.SelectData, error) {
	return c.sel(ctx, name, true)
}

// Select opens a mailbox read-write (destination only).
func (c *Conn) Select(ctx context.Context, name string) (*imap.SelectData, error) {
	return c.sel(ctx, name, false)
}

func (c *Conn) sel(ctx context.Context, name string, ro bool) (*imap.SelectData, error) {
	opts := c.selectOptions(ctx, ro)
	done := c.arm(ctx)
	defer done()
	d, err := c.cl.Select(name, opts).Wait()
	return d, c.fail(ctx, fmt.Sprintf("open folder %q", name), err)
}

// selectOptions are a SELECT's or EXAMINE's options; an EXAMINE's are kept
// for the ones sent ahead (SendBodies).
func (c *Conn) selectOptions(ctx context.Context, ro bool) *imap.SelectOptions {
	opts := &imap.SelectOptions{ReadOnly: ro, CondStore: c.Has(ctx, imap.CapCondStore)}
	if ro {
		c.mu.Lock()
		c.examineOpts = opts
		c.mu.Unlock()
	}
	return opts
}

// Create makes a mailbox; one that already exists is not an error. With
// use set and a server that offers CREATE-SPECIAL-USE (RFC 6154), the
// mailbox is marked with that role, so that mail clients and later runs
// find it as the Sent or Junk folder.
func (c *Conn) Create(ctx context.Context, name string, use imap.MailboxAttr) error {
	var opts *imap.CreateOptions
	if use != "" && c.Has(ctx, imap.CapCreateSpecialUse) {
		opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{use}}
	}
	done := c.arm(ctx)
	defer done()
	err := c.cl.Create(name, opts).Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAlreadyExists ||
		strings.Contains(strings.ToLower(ie.Text), "exists")) {
		return nil
	}
	if errors.As(err, &ie) && opts != nil && ie.Code == "USEATTR" {
		// The server cannot give this folder the role (it may have one
		// for it already); a plain folder holds the mail as well.
		err = c.cl.Create(name, nil).Wait()
	}
	return c.fail(ctx, fmt.Sprintf("create folder %q", name), err)
}

// Subscribe marks a mailbox as subscribed.
func (c *Conn) Subscribe(ctx context.Context, name string) error {
	done := c.arm(ctx)
	defer done()
	return c.fail(ctx, fmt.Sprintf("subscribe %q", name), c.cl.Subscribe(name).Wait())
}

// MessageMeta is what the engine needs of a message without its body.
type MessageMeta struct {
	UID    imap.UID
	Flags  []imap.Flag
	Size   int64
	Date   time.Time // INTERNALDATE
	ModSeq uint64
	Header []byte // selected header fields, when asked for
}

// FetchMeta reads UID, FLAGS, RFC822.SIZE, INTERNALDATE (and MODSEQ under CONDSTORE) of
// the messages in uids of the selected mailbox; with headerFields also those
// header fields. A nil uids means all messages.
func (c *Conn) FetchMeta(ctx context.Context, uids []imap.UID, headerFields []string) ([]MessageMeta, error) {
	return c.fetchMeta(ctx, uids, headerFields, 0)
}

// FetchChanged is FetchMeta of the messages of the selected mailbox whose
// MODSEQ is above since (CONDSTORE's CHANGEDSINCE): those that arrived or
// whose flags changed.
func (c *Conn) FetchChanged(ctx context.Context, since uint64) ([]MessageMeta, error) {
	return c.fetchMeta(ctx, nil, nil, since)
}

// UIDs lists the UIDs of the selected mailbox: UID SEARCH ALL, in ESEARCH's
// compact form where the server offers it, which costs both sides far
// less than a FETCH of every message.
func (c *Conn) UIDs(ctx context.Context) ([]imap.UID, error) {
	var opts *imap.SearchOptions
	if c.Has(ctx, imap.CapESearch) {
		opts = &imap.SearchOptions{ReturnAll: true}
	}
	done := c.arm(ctx)
	defer done()
	data, err := c.cl.UIDSearch(&imap.SearchCriteria{}, opts).Wait()
	if err != nil {
		return nil, c.fail(ctx, "list messages", err)
	}
	set, ok := data.All.(imap.UIDSet)
	if !ok {
		return nil, nil
	}
	uids, ok := set.Nums()
	if !ok {
		return nil, &Error{Kind: ErrProtocol, Op: "list messages", Server: c.ep.Addr(), Err: errProtocol,
			Text: "the server answered SEARCH with an open range"}
	}
	return uids, nil
}

func (c *Conn) fetchMeta(ctx context.Context, uids []imap.UID, headerFields []string, since uint64) ([]MessageMeta, error) {
	opts := c.metaOptions(ctx, headerFields, since)
	var out []MessageMeta
	err := c.forBatches(uids, func(set imap.UIDSet) error {
		done := c.arm(ctx)
		defer done()
		var err error
		out, err = collectMeta(c, c.cl.Fetch(set, opts), out)
		return err
	})
	if err != nil {
		return nil, c.fail(ctx, "fetch message list", err)
	}
	return out, nil
}

func (c *Conn) metaOptions(ctx context.Context, headerFields []string, since uint64) *imap.FetchOptions {
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		ModSeq: c.Has(ctx, imap.CapCondStore), ChangedSince: since}
	if headerFields != nil {
		opts.BodySection = []*imap.FetchItemBodySection{{
			Specifier: imap.PartSpecifierHeader, HeaderFields: headerFields, Peek: true}}
	}
	return opts
}

// collectMeta appends the messages of a metadata FETCH's reply to out.
func collectMeta(c *Conn, cmd *imapclient.FetchCommand, out []MessageMeta) ([]MessageMeta, error) {
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		c.touch()
		buf, err := msg.Collect()
		if err != nil {
			cmd.Close()
			return out, err
		}
		m := MessageMeta{UID: buf.UID, Flags: buf.Flags, Size: buf.RFC822Size, Date: buf.InternalDate, ModSeq: buf.ModSeq}
		for _, b := range buf.BodySection {
			m.Header = b.Bytes
		}
		out = append(out, m)
	}
	return out, cmd.Close()
}

// ExamineMeta opens a mailbox read-only, as Examine, and lists its
// messages, as FetchMeta of every message (since 0) or FetchChanged (since
// above 0), with the UID FETCH sent behind the EXAMINE rather than after
// its answer: one round trip per folder instead of two, which from an old
// server 30 ms away is 6 s of an account of 200 folders. The server runs
// them in order, as the EXAMINE changes what the FETCH reads; one that
// fails leaves no folder open, and the FETCH finds none. A mailbox found
// empty gives no messages, whatever the FETCH answered (some servers
// refuse 1:* in an empty one).
func (c *Conn) ExamineMeta(ctx context.Context, name string, since uint64) (*imap.SelectData, []MessageMeta, error) {
	opts := c.selectOptions(ctx, true)
	fopts := c.metaOptions(ctx, nil, since)
	done := c.arm(ctx)
	defer done()
	sel := c.cl.Select(name, opts)
	cmd := c.cl.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, fopts)
	d, err := sel.Wait()
	if err != nil {
		_ = cmd.Close()
		return nil, nil, c.fail(ctx, fmt.Sprintf("open folder %q", name), err)
	}
	out, err := collectMeta(c, cmd, nil)
	if d.NumMessages == 0 && !c.Dead() {
		return d, nil, nil
	}
	if err != nil {
		return nil, nil, c.fail(ctx, "fetch message list", err)
	}
	return d, out, nil
}

// batch bounds the length of a UID set on one command line.
const batch = 500

func (c *Conn) forBatches(uids []imap.UID, fn func(imap.UIDSet) error) error {
	if uids == nil {
		return fn(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}})
	}
	for i := 0; i < len(uids); i += batch {
		var set imap.UIDSet
		set.AddNum(uids[i:min(i+batch, len(uids))]...)
		if err := fn(set); err != nil {
			return err
		}
	}
	return nil
}

// Message is one fetched message's metadata; its body went to the sink.
type Message struct {
	UID          imap.UID
	Flags        []imap.Flag
	InternalDate time.Time
	Size         int64
}

// BodyFetch is a UID FETCH of message bodies, with the EXAMINE of their
// folder before it when one was asked for, that is on its way to the
// server; ReadBodies reads its reply. Sending the next chunk's before this
// one's reply is read spares a round trip per chunk, which is most of a
// copy's time from a server 20 ms away. A server may run the two at the
// same time and interleave their replies (Dovecot does), and go-imap hands
// each message to the command that asked for its UID and waits until it is
// read: each reply needs its own reader, and the UID sets of fetches on
// their way together must not overlap.
type BodyFetch struct {
	c      *Conn
	folder string
	sel    *imapclient.SelectCommand // nil when no EXAMINE was sent, or once answered
	cmd    *imapclient.FetchCommand
	set    imap.UIDSet
	over   bool // the reply was read or thrown away
}

var bodyOptions = &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
	BodySection: []*imap.FetchItemBodySection{{Peek: true}}}

// SendBodies sends the UID FETCH of uids' bodies without waiting for an
// answer, after an EXAMINE of folder unless folder is "". Commands sent
// before it may still be unanswered.
// ok is false, and nothing is sent, when the EXAMINE cannot go ahead of
// them: this connection has not opened a folder yet (its options need
// the capabilities, which may take a question to the server that cannot
// be answered while earlier replies wait), or the name would need a
// literal, which waits for the server's go-ahead.
func (c *Conn) SendBodies(folder string, uids []imap.UID) (f *BodyFetch, ok bool) {
	var sel *imapclient.SelectCommand
	if folder != "" {
		c.mu.Lock()
		opts := c.examineOpts
		c.mu.Unlock()
		if opts == nil || strings.ContainsFunc(folder, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, false
		}
		sel = c.cl.Select(folder, opts)
	}
	var set imap.UIDSet
	set.AddNum(uids...)
	// Bodies are literals of any size, the sink bounds them; the bound
	// stays lifted while any body fetch is on its way, as its reply may
	// already be flowing while the one before it is read.
	c.mu.Lock()
	c.bodies++
	c.guard.setLiteralMax(math.MaxInt64)
	c.mu.Unlock()
	return &BodyFetch{c: c, folder: folder, sel: sel, cmd: c.cl.Fetch(set, bodyOptions), set: set}, true
}

// end marks the reply consumed.
func (f *BodyFetch) end() {
	if f.over {
		return
	}
	f.over = true
	c := f.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodies--; c.bodies == 0 {
		c.guard.setLiteralMax(maxSmallLiteral)
	}
}

// Asks reports whether the fetch asks for uid.
func (f *BodyFetch) Asks(uid imap.UID) bool { return f.set.Contains(uid) }

// Opened waits for the answer to the EXAMINE sent before the fetch; it
// returns nil, nil when none was sent or it was answered already.
func (f *BodyFetch) Opened(ctx context.Context) (*imap.SelectData, error) {
	if f.sel == nil {
		return nil, nil
	}
	done := f.c.arm(ctx)
	defer done()
	d, err := f.sel.Wait()
	f.sel = nil
	return d, f.c.fail(ctx, fmt.Sprintf("open folder %q", f.folder), err)
}

// Discard reads the rest of the reply and throws it away.
func (f *BodyFetch) Discard(ctx context.Context) {
	if f.over {
		return
	}
	defer f.end()
	done := f.c.arm(ctx)
	defer done()
	if f.sel != nil {
		_, _ = f.sel.Wait()
		f.sel = nil
	}
	_ = f.cmd.Close()
}

// ReadBodies reads the reply of a fetch: the full bodies (BODY.PEEK[], so
// \Seen is never set). For each message, sink consumes the body literal
// and returns what it made of it; it is given the metadata that came
// before the body (the UID, if the server sent it first) and the literal's
// size, so it can refuse a body before reading it. Then each receives the
// metadata with that value. An error from sink or each stops the fetch and
// closes the connection (draining a large fetch would take as long as
// reading it). An EXAMINE sent before the fetch that failed fails it.
func ReadBodies[B any](ctx context.Context, f *BodyFetch,
	sink func(m Message, r io.Reader, size int64) (B, error), each func(Message, B) error) error {
	if _, err := f.Opened(ctx); err != nil {
		f.Discard(ctx)
		return err
	}
	defer f.end()
	c, cmd := f.c, f.cmd
	done := c.arm(ctx)
	defer done()
	err := func() error {
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			c.touch()
			var m Message
			var body B
			var haveBody bool
			for {
				item := msg.Next()
				if item == nil {
					break
				}
				c.touch()
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					m.UID = it.UID
				case imapclient.FetchItemDataFlags:
					m.Flags = it.Flags
				case imapclient.FetchItemDataInternalDate:
					m.InternalDate = it.Time
				case imapclient.FetchItemDataRFC822Size:
					m.Size = it.Size
				case imapclient.FetchItemDataBodySection:
					var r io.Reader = eofReader{}
					var size int64
					tr := &touchReader{r: it.Literal, c: c}
					if it.Literal != nil {
						r, size = tr, it.Literal.Size()
					}
					b, err := sink(m, r, size)
					if err != nil {
						if tr.err != nil && tr.err != io.EOF {
							// go-imap's reader took the stream back when
							// the literal failed; reading it again here
							// would race with it, and nothing waits.
							c.drop()
							c.cl.Close()
							return err
						}
						c.abort(cmd.Close)
						return err
					}
					body, haveBody = b, true
				}
			}
			if !haveBody {
				c.abort(cmd.Close)
				return fmt.Errorf("server sent no body for UID %d", m.UID)
			}
			if err := each(m, body); err != nil {
				c.abort(cmd.Close)
				return err
			}
		}
		return cmd.Close()
	}()
	return c.fail(ctx, "fetch messages", err)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// touchReader keeps the watchdog quiet while a large literal flows, and
// remembers how reading it ended.
type touchReader struct {
	r   io.Reader
	c   *Conn
	err error
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.c.touch()
	}
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// Store adds or removes flags on uids of the selected mailbox, silently.
func (c *Conn) Store(ctx context.Context, uids []imap.UID, op imap.StoreFlagsOp, flags []imap.Flag) error {
	if len(uids) == 0 || len(flags) == 0 {
		return nil
	}
	err := c.forBatches(uids, func(set imap.UIDSet) error {
		done := c.arm(ctx)
		defer done()
		return c.cl.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close()
	})
	return c.fail(ctx, "update flags", err)
}

// Logout ends the session politely and closes the connection.
func (c *Conn) Logout(ctx context.Context) {
	if !c.Dead() {
		done := c.arm(ctx)
		_ = c.cl.Logout().Wait()
		done()
	}
	c.cl.Close()
}

// Close drops the connection at once.
func (c *Conn) Close() { c.cl.Close() }

// drop closes the socket under go-imap: the command waiting for a reply
// fails and go-imap's reader ends. Unlike Client.Close it does not wait
// for that reader, which may itself be waiting for the caller to consume
// a FETCH item: the watchdog and cancellation must never block.
func (c *Conn) drop() {
	// go-imap learns of it when its reader fails, a moment later; the
	// connection is dead from now on.
	c.dropped.Store(true)
	c.guard.Conn.Close()
}

// abort leaves a command in the middle of its reply (a refused body, too
// many folders): the socket is closed first, so that draining the rest
// (drain, the command's Close) ends at once instead of reading it all,
// then the client is closed.
func (c *Conn) abort(drain func() error) {
	c.drop()
	_ = drain()
	c.cl.Close()
}

// Quota returns the storage used and allowed in the INBOX's quota root, in
// bytes; ok is false when the server has no QUOTA extension or no storage
// limit.
func (c *Conn) Quota(ctx context.Context) (used, limit int64, ok bool, err error) {
	if !c.Has(ctx, imap.CapQuota) {
		return 0, 0, false, nil
	}
	done := c.arm(ctx)
	defer done()
	roots, err := c.cl.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		return 0, 0, false, c.fail(ctx, "read quota", err)
	}
	for _, r := range roots {
		// RFC 9208: STORAGE is counted in units of 1024 octets.
		if s, found := r.Resources[imap.QuotaResourceStorage]; found && s.Limit > 0 {
			return s.Usage * 1024, s.Limit * 1024, true, nil
		}
	}
	return 0, 0, false, nil
}

// AppendLimit is the largest message the server accepts (APPENDLIMIT), or
// 0 when it does not say.
func (c *Conn) AppendLimit(ctx context.Context) int64 {
	if l, ok := c.Caps(ctx).AppendLimit(); ok && l != nil {
		return int64(*l)
	}
	return 0
}
