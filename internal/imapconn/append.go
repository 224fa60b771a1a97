package imapconn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// AppendMessage is one message of an APPEND command.
type AppendMessage struct {
	Flags []imap.Flag
	Date  time.Time // INTERNALDATE; zero leaves it to the server
	Size  int64
	Body  io.Reader // exactly Size bytes; an io.WriterTo is written without a copy
}

// MultiAppend reports whether the server stores several messages with one
// APPEND command (RFC 3502).
func (c *Conn) MultiAppend(ctx context.Context) bool { return c.Has(ctx, imap.CapMultiAppend) }

// ErrAppendBatch refuses an APPEND of several messages to a server without
// MULTIAPPEND.
var ErrAppendBatch = errors.New("the server stores one message per APPEND command (no MULTIAPPEND)")

// Append stores msgs in mailbox with one APPEND command: several messages
// only where the server offers MULTIAPPEND, which stores all of them or
// none, in one transaction. It returns the UIDs the messages got, in their
// order, when the server reports them (UIDPLUS: APPENDUID), else nil.
// Literals are non-synchronising where the server offers LITERAL+ (or
// LITERAL- and the message is small), so that a batch goes out without a
// round trip per message. After a refusal (NO) that arrived while
// non-synchronising data was still being sent, the connection is closed:
// where the server stopped reading it is unknown.
//
// go-imap v2 cannot send this command: its client writes one message per
// APPEND, waits for a continuation request before every literal over 4 KiB
// even with LITERAL+, and its parser of the tagged reply takes APPENDUID
// with one UID only (a set breaks the connection). So imapconn writes the
// command itself on the connection, between go-imap's commands, under its
// own tag, and the guard diverts the command's continuation requests and
// tagged reply from go-imap's reader to this function; untagged data the
// server sends meanwhile still goes to go-imap. Nothing of go-imap's may
// be written meanwhile: the caller runs no command of its own, and Login
// waits out the one go-imap sends by itself (see settle).
func (c *Conn) Append(ctx context.Context, mailbox string, msgs []AppendMessage) ([]imap.UID, error) {
	op := fmt.Sprintf("append to %q", mailbox)
	if len(msgs) == 0 {
		return nil, nil
	}
	caps := c.Caps(ctx)
	if len(msgs) > 1 && !caps.Has(imap.CapMultiAppend) {
		return nil, &Error{Kind: ErrOther, Op: op, Server: c.ep.Addr(), Err: ErrAppendBatch}
	}
	name, err := mailboxArg(mailbox, caps.Has(imap.CapIMAP4rev2))
	if err != nil {
		return nil, &Error{Kind: ErrOther, Op: op, Server: c.ep.Addr(), Err: err}
	}
	for _, m := range msgs {
		for _, f := range m.Flags {
			if !validFlag(string(f)) {
				return nil, &Error{Kind: ErrOther, Op: op, Server: c.ep.Addr(), Err: fmt.Errorf("invalid flag %q", f)}
			}
		}
	}
	if c.Dead() {
		return nil, &Error{Kind: ErrConnLost, Op: op, Server: c.ep.Addr(), Err: errClosed}
	}
	done := c.arm(ctx)
	defer done()
	c.tags++
	tag := "M" + strconv.Itoa(c.tags)
	replies := c.guard.divert(tag, false)
	defer c.guard.undivert()
	a := &appendCmd{c: c, tag: tag, replies: replies, op: op,
		plus: caps.Has(imap.CapLiteralPlus), minus: caps.Has(imap.CapLiteralMinus)}
	reply, err := a.send(name, msgs)
	if err != nil {
		c.drop()
		return nil, c.fail(ctx, op, err)
	}
	uids, err := a.result(reply, len(msgs), caps.Has(imap.CapUIDPlus))
	if err != nil {
		if a.unsynced {
			c.drop()
		}
		return nil, c.fail(ctx, op, err)
	}
	return uids, nil
}

var errClosed = errors.New("the connection is closed")

// appendCmd is one APPEND command on its way out.
type appendCmd struct {
	c           *Conn
	tag         string
	replies     <-chan []byte
	plus, minus bool // LITERAL+, LITERAL-
	op          string
	// unsynced: non-synchronising data went out, or a write failed, so
	// after a refusal the server's place in the command is unknown.
	unsynced bool
}

// send writes the command and returns the server's tagged reply line.
func (a *appendCmd) send(name string, msgs []AppendMessage) ([]byte, error) {
	if a.c.out == nil {
		// Small messages of a batch leave together; bodies larger than
		// the buffer are written from where they are.
		a.c.out = bufio.NewWriterSize(touchWriter{a.c.guard.Conn, a.c}, 32<<10)
	}
	bw := a.c.out
	bw.Reset(touchWriter{a.c.guard.Conn, a.c})
	bw.WriteString(a.tag + " APPEND " + name)
	for _, m := range msgs {
		bw.WriteByte(' ')
		if len(m.Flags) > 0 {
			bw.WriteByte('(')
			for i, f := range m.Flags {
				if i > 0 {
					bw.WriteByte(' ')
				}
				bw.WriteString(string(f))
			}
			bw.WriteString(") ")
		}
		if !m.Date.IsZero() {
			bw.WriteString(`"` + m.Date.Format(dateTimeLayout) + `" `)
		}
		nonSync := a.plus || (a.minus && m.Size <= 4096)
		bw.WriteString("{" + strconv.FormatInt(m.Size, 10))
		if nonSync {
			bw.WriteString("+}\r\n")
			a.unsynced = true
		} else {
			bw.WriteString("}\r\n")
			if err := bw.Flush(); err != nil {
				return a.failed(err)
			}
			line, err := a.wait()
			if err != nil {
				return nil, err
			}
			if line[0] != '+' {
				// Refused before the data: the command ends here.
				return line, nil
			}
		}
		if err := writeBody(bw, m); err != nil {
			return a.failed(err)
		}
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return a.failed(err)
	}
	for {
		line, err := a.wait()
		if err != nil || line[0] != '+' {
			return line, err
		}
		// A continuation request nobody asked for (the literals were
		// non-synchronising) needs no answer.
	}
}

// failed explains a write that failed: the server's own reply, when it
// refused the command and went away, says more than the broken pipe.
func (a *appendCmd) failed(err error) ([]byte, error) {
	a.unsynced = true
	for {
		select {
		case line := <-a.replies:
			if line[0] != '+' {
				return line, nil
			}
		default:
			return nil, err
		}
	}
}

// wait returns the next diverted line: a continuation request or the
// tagged reply.
func (a *appendCmd) wait() ([]byte, error) { return a.c.waitDiverted(a.replies) }

// waitDiverted returns the next line the guard diverted to replies.
func (c *Conn) waitDiverted(replies <-chan []byte) ([]byte, error) {
	select {
	case line := <-replies:
		return line, nil
	case <-c.cl.Closed():
		// A reply may have been diverted just before the end.
		select {
		case line := <-replies:
			return line, nil
		default:
			return nil, errClosed
		}
	}
}

// writeBody writes one message's literal data.
func writeBody(w *bufio.Writer, m AppendMessage) error {
	cw := &countWriter{w: w}
	var err error
	if wt, ok := m.Body.(io.WriterTo); ok {
		_, err = wt.WriteTo(cw)
	} else {
		_, err = io.Copy(cw, m.Body)
	}
	if err == nil && cw.n != m.Size {
		err = fmt.Errorf("message body is %d bytes, expected %d", cw.n, m.Size)
	}
	return err
}

// result reads the tagged reply: nil UIDs without APPENDUID, or when its
// set does not name one UID per message.
func (a *appendCmd) result(line []byte, n int, uidPlus bool) ([]imap.UID, error) {
	status, code, args, text, ok := parseTagged(line, a.tag)
	switch {
	case status == "NO" || status == "BAD":
		return nil, &imap.Error{Type: imap.StatusResponseType(status), Code: imap.ResponseCode(code), Text: text}
	case !ok || status != "OK":
		a.unsynced = true
		return nil, &Error{Kind: ErrProtocol, Op: a.op, Server: a.c.ep.Addr(), Err: errProtocol, Text: printable(string(line))}
	}
	if code != "APPENDUID" || !uidPlus {
		return nil, nil
	}
	_, set, _ := strings.Cut(args, " ")
	uids := uidSet(set)
	if len(uids) != n {
		return nil, nil
	}
	return uids, nil
}

// parseTagged splits "tag STATUS [CODE args] text" (the brackets being
// optional).
func parseTagged(line []byte, tag string) (status, code, args, text string, ok bool) {
	s := strings.TrimRight(string(line), "\r\n")
	s, ok = strings.CutPrefix(s, tag+" ")
	if !ok {
		return "", "", "", "", false
	}
	status, s, _ = strings.Cut(s, " ")
	status = strings.ToUpper(status)
	if rest, found := strings.CutPrefix(s, "["); found {
		inner, after, closed := strings.Cut(rest, "]")
		if !closed {
			return "", "", "", "", false
		}
		code, args, _ = strings.Cut(inner, " ")
		code = strings.ToUpper(code)
		s = strings.TrimPrefix(after, " ")
	}
	return status, code, args, s, true
}

// uidSet expands an APPENDUID set ("7", "7:9", "7,9:10") into its UIDs in
// order; nil if it does not parse.
func uidSet(s string) []imap.UID {
	var out []imap.UID
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return nil
			}
		}
		if b < a {
			a, b = b, a
		}
		if b-a > 1<<20 {
			return nil // more than any batch holds
		}
		for u := a; u <= b; u++ {
			out = append(out, imap.UID(u))
		}
	}
	return out
}

// dateTimeLayout is IMAP's date-time (RFC 3501), as go-imap writes it.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// mailboxArg writes a mailbox name as a quoted string, in modified UTF-7
// unless the server reads UTF-8 (IMAP4rev2), as go-imap does.
func mailboxArg(name string, utf8Names bool) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	if utf8Names {
		name = strings.ReplaceAll(name, "&", "&-")
	} else {
		name = EncodeUTF7(name)
	}
	if len(name) > 4096 || strings.ContainsAny(name, "\x00\r\n") {
		return "", fmt.Errorf("the folder name %q cannot be sent as a quoted string", name)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`, nil
}

// EncodeUTF7 encodes a mailbox name in modified UTF-7 (RFC 3501 5.1.3).
func EncodeUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteString("&" + utf7Encoding.EncodeToString(buf) + "-")
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = utf16.AppendRune(run, r)
		}
	}
	flush()
	return b.String()
}

// utf7Encoding is modified UTF-7's base64: ',' for '/', no padding.
var utf7Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// validFlag reports whether f can be sent as a flag (an atom, or a
// backslash and an atom).
func validFlag(f string) bool {
	a := strings.TrimPrefix(f, `\`)
	if a == "" {
		return false
	}
	for i := 0; i < len(a); i++ {
		switch ch := a[i]; {
		case ch <= ' ' || ch >= 0x7f, bytes.IndexByte([]byte(`(){%*"\]`), ch) >= 0:
			return false
		}
	}
	return true
}

// touchWriter tells the watchdog that the server takes what is sent: a
// long upload is progress, not silence.
type touchWriter struct {
	w io.Writer
	c *Conn
}

func (t touchWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if n > 0 {
		t.c.touch()
	}
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
