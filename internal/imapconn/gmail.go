package imapconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// CapGmail is the capability of Gmail's IMAP extensions (X-GM-EXT-1):
// labels, message and thread ids.
const CapGmail imap.Cap = "X-GM-EXT-1"

// GmailMessage is what Gmail says of one message beyond IMAP: its id,
// the same in every folder and for the message's life, and its labels.
type GmailMessage struct {
	UID   imap.UID
	MsgID uint64 // X-GM-MSGID
	// Labels are the X-GM-LABELS: system labels as Gmail writes them
	// (`\Inbox`, `\Sent`, `\Draft`, `\Starred`, `\Important`, ...), user
	// labels decoded from modified UTF-7, levels separated by "/".
	Labels []string
}

// FetchGmail reads X-GM-MSGID and X-GM-LABELS of uids in the selected
// mailbox (nil: all of it) from a server with X-GM-EXT-1. Messages the
// server does not answer for (expunged meanwhile) are left out.
//
// go-imap v2 knows no X-GM-* items: its reader gives up on a FETCH
// response that carries one, and the connection with it. So, as with
// APPEND, imapconn writes the command itself under a tag of its own,
// and the guard diverts its untagged FETCH responses, literals included,
// with its tagged reply from go-imap's reader to this function. Only
// UID, X-GM-MSGID and X-GM-LABELS are asked for: flags, sizes and dates
// come through go-imap (FetchMeta), which parses them.
func (c *Conn) FetchGmail(ctx context.Context, uids []imap.UID) ([]GmailMessage, error) {
	const op = "fetch Gmail labels"
	var out []GmailMessage
	err := c.forBatches(uids, func(set imap.UIDSet) error {
		got, err := c.fetchGmail(ctx, set.String())
		out = append(out, got...)
		return err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, c.fail(ctx, op, err)
	}
	return out, nil
}

func (c *Conn) fetchGmail(ctx context.Context, set string) ([]GmailMessage, error) {
	const op = "fetch Gmail labels"
	if c.Dead() {
		return nil, &Error{Kind: ErrConnLost, Op: op, Server: c.ep.Addr(), Err: errClosed}
	}
	done := c.arm(ctx)
	defer done()
	c.tags++
	tag := "G" + strconv.Itoa(c.tags)
	replies := c.guard.divert(tag, true)
	defer c.guard.undivert()
	if c.out == nil {
		c.out = bufio.NewWriterSize(touchWriter{c.guard.Conn, c}, 32<<10)
	}
	c.out.Reset(touchWriter{c.guard.Conn, c})
	c.out.WriteString(tag + " UID FETCH " + set + " (UID X-GM-MSGID X-GM-LABELS)\r\n")
	if err := c.out.Flush(); err != nil {
		c.drop()
		return nil, err
	}
	var out []GmailMessage
	for {
		line, err := c.waitDiverted(replies)
		if err != nil {
			return nil, err
		}
		c.touch()
		switch line[0] {
		case '*':
			m, ok, err := parseGmailFetch(line)
			if err != nil {
				c.drop()
				return nil, &Error{Kind: ErrProtocol, Op: op, Server: c.ep.Addr(), Err: err, Text: quoteLine(line)}
			}
			if ok {
				out = append(out, m)
			}
		case '+':
			// Nothing was asked for; ignored as Append ignores it.
		default:
			status, code, _, text, ok := parseTagged(line, tag)
			switch {
			case ok && status == "OK":
				return out, nil
			case ok && (status == "NO" || status == "BAD"):
				return nil, &imap.Error{Type: imap.StatusResponseType(status), Code: imap.ResponseCode(code), Text: text}
			}
			c.drop()
			return nil, &Error{Kind: ErrProtocol, Op: op, Server: c.ep.Addr(), Err: errProtocol, Text: quoteLine(line)}
		}
	}
}

// quoteLine is the start of a server's line for an error, as the guard
// keeps lines for quoting.
func quoteLine(line []byte) string {
	if len(line) > keepLine {
		return printable(string(line[:keepLine])) + "…"
	}
	return printable(string(line))
}

// maxGmailDepth bounds the nesting of lists in a FETCH response.
const maxGmailDepth = 8

// parseGmailFetch reads one untagged FETCH response: "* n FETCH (UID u
// X-GM-MSGID id X-GM-LABELS (l ...) ...)", literals inline ("{n}\r\n"
// and n bytes). ok is false for a response without UID or X-GM-MSGID (a
// server's unsolicited flag update); other items are skipped. Labels are
// atoms, quoted strings or literals; NIL and an empty list mean none.
func parseGmailFetch(line []byte) (m GmailMessage, ok bool, err error) {
	p := &gmParser{b: line}
	if !p.word("* ") {
		return m, false, errors.New("not an untagged response")
	}
	if _, err := p.number(); err != nil {
		return m, false, err
	}
	if !p.word(" FETCH ") {
		return m, false, errors.New("not a FETCH response")
	}
	items, err := p.value(0)
	if err != nil {
		return m, false, err
	}
	p.eol()
	if p.i != len(p.b) {
		return m, false, fmt.Errorf("unexpected %q after the FETCH data", p.rest())
	}
	if !items.list {
		return m, false, errors.New("FETCH data is not a list")
	}
	var haveUID, haveID bool
	for i := 0; i+1 < len(items.items); i += 2 {
		name, v := items.items[i], items.items[i+1]
		if name.list || name.str {
			return m, false, errors.New("FETCH item name is not an atom")
		}
		switch strings.ToUpper(name.s) {
		case "UID":
			n, err := strconv.ParseUint(v.s, 10, 32)
			if err != nil || v.list || v.str || n == 0 {
				return m, false, fmt.Errorf("invalid UID %q", v.s)
			}
			m.UID, haveUID = imap.UID(n), true
		case "X-GM-MSGID":
			n, err := strconv.ParseUint(v.s, 10, 64)
			if err != nil || v.list || v.str {
				return m, false, fmt.Errorf("invalid X-GM-MSGID %q", v.s)
			}
			m.MsgID, haveID = n, true
		case "X-GM-LABELS":
			switch {
			case v.list:
				for _, l := range v.items {
					if l.list {
						return m, false, errors.New("a label is a list")
					}
					if !l.str && strings.EqualFold(l.s, "NIL") {
						continue
					}
					m.Labels = append(m.Labels, label(l.s))
				}
			case !v.str && strings.EqualFold(v.s, "NIL"):
			default:
				return m, false, errors.New("X-GM-LABELS is not a list")
			}
		}
	}
	if len(items.items)%2 != 0 {
		return m, false, errors.New("FETCH item without a value")
	}
	return m, haveUID && haveID, nil
}

// label decodes a user label from modified UTF-7; system labels and
// labels that are no valid modified UTF-7 stay as they are.
func label(s string) string {
	if strings.HasPrefix(s, `\`) {
		return s
	}
	if d, ok := decodeUTF7(s); ok {
		return d
	}
	return s
}

// gmNode is a parsed value: an atom (or number), a string, or a list.
type gmNode struct {
	s     string
	str   bool // a quoted string or literal, not an atom
	list  bool
	items []gmNode
}

type gmParser struct {
	b []byte
	i int
}

func (p *gmParser) rest() string {
	r := p.b[p.i:]
	if len(r) > 40 {
		r = r[:40]
	}
	return string(r)
}

func (p *gmParser) word(w string) bool {
	if len(p.b)-p.i < len(w) || !strings.EqualFold(string(p.b[p.i:p.i+len(w)]), w) {
		return false
	}
	p.i += len(w)
	return true
}

func (p *gmParser) number() (uint64, error) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return strconv.ParseUint(string(p.b[start:p.i]), 10, 64)
}

// eol consumes the line ending, if any.
func (p *gmParser) eol() {
	if !p.word("\r\n") {
		p.word("\n")
	}
}

// value reads an atom, a quoted string, a literal or a list.
func (p *gmParser) value(depth int) (gmNode, error) {
	if p.i >= len(p.b) {
		return gmNode{}, errors.New("the response ends in the middle")
	}
	switch c := p.b[p.i]; {
	case c == '(':
		if depth >= maxGmailDepth {
			return gmNode{}, errors.New("lists nested too deep")
		}
		p.i++
		n := gmNode{list: true}
		for {
			if p.i >= len(p.b) {
				return gmNode{}, errors.New("a list is not closed")
			}
			if p.b[p.i] == ')' {
				p.i++
				return n, nil
			}
			if len(n.items) > 0 {
				if p.b[p.i] != ' ' {
					return gmNode{}, fmt.Errorf("unexpected %q in a list", p.rest())
				}
				p.i++
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return gmNode{}, err
			}
			n.items = append(n.items, v)
		}
	case c == '"':
		return p.quoted()
	case c == '{' || c == '~':
		return p.literal()
	default:
		start := p.i
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == '[' {
				// BODY[...] names carry spaces and parentheses up to "]".
				for p.i < len(p.b) && p.b[p.i] != ']' {
					p.i++
				}
				continue
			}
			if c <= ' ' || c == '(' || c == ')' || c == '"' || c == '{' || c == 0x7f {
				break
			}
			p.i++
		}
		if p.i == start {
			return gmNode{}, fmt.Errorf("unexpected %q", p.rest())
		}
		return gmNode{s: string(p.b[start:p.i])}, nil
	}
}

func (p *gmParser) quoted() (gmNode, error) {
	p.i++ // the opening quote
	var b strings.Builder
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return gmNode{s: b.String(), str: true}, nil
		case '\\':
			if p.i >= len(p.b) {
				return gmNode{}, errors.New("a quoted string is not closed")
			}
			c = p.b[p.i]
			p.i++
		case '\r', '\n':
			return gmNode{}, errors.New("a line break in a quoted string")
		}
		b.WriteByte(c)
	}
	return gmNode{}, errors.New("a quoted string is not closed")
}

// literal reads "{n}\r\n" (or "~{n}", "{n+}") and n bytes.
func (p *gmParser) literal() (gmNode, error) {
	if p.b[p.i] == '~' {
		p.i++
	}
	if !p.word("{") {
		return gmNode{}, fmt.Errorf("unexpected %q", p.rest())
	}
	n, err := p.number()
	if err != nil {
		return gmNode{}, fmt.Errorf("invalid literal size: %w", err)
	}
	p.word("+")
	if !p.word("}\r\n") && !p.word("}\n") {
		return gmNode{}, errors.New("a literal's size is not followed by a line break")
	}
	if n > uint64(len(p.b)-p.i) {
		return gmNode{}, errors.New("the response ends in the middle of a literal")
	}
	s := string(p.b[p.i : p.i+int(n)])
	p.i += int(n)
	return gmNode{s: s, str: true}, nil
}

// decodeUTF7 decodes a mailbox name (or a Gmail label) from modified
// UTF-7 (RFC 3501 5.1.3); ok is false when s is not valid.
func decodeUTF7(s string) (string, bool) {
	if !strings.Contains(s, "&") {
		return s, true
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, '-')
		if j < 0 {
			return "", false
		}
		enc := s[:j]
		s = s[j+1:]
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := utf7Encoding.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == '\uFFFD' {
				return "", false
			}
			b.WriteRune(r)
		}
	}
	return b.String(), true
}
