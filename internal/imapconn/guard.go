package imapconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxLine bounds a server's response line, not counting the literals in it.
// go-imap reads a whole line into memory whatever its length, so without a
// bound a server sending bytes without a line ending fills the memory. Real
// servers stay far below: a FETCH line with a long flag list or a LIST line
// is a few kilobytes.
const MaxLine = 1 << 20

// maxSmallLiteral bounds the literals go-imap buffers in memory (strings in
// LIST, STATUS or header fields fetched as metadata). Message bodies are
// streamed and bounded by the engine instead (see Conn.bodyLimit).
const maxSmallLiteral = 4 << 20

// errProtocol marks a reply the client cannot use; the guard's text says
// what the server sent.
var errProtocol = errors.New("the server's reply does not follow the IMAP protocol")

// guard sits between the network and go-imap's decoder. It bounds what a
// hostile or broken server can make the client hold (line length, literal
// sizes) and remembers the start of the last lines received, so that an
// unparsable reply can be quoted to the customer in the server's own words.
type guard struct {
	net.Conn

	mu sync.Mutex
	// literalMax bounds the next literals; set per command (bodies or
	// small metadata).
	literalMax  int64
	literalLeft int64
	lineLen     int
	cur         []byte   // the start of the line being read
	last        [][]byte // the starts of the last complete lines, newest last
	tail        []byte   // the last bytes of the line, to find a literal's size
	err         error    // why the guard cut the connection
	secrets     []string

	// What was read from the connection and not yet handed out.
	buf     []byte
	r, w    int
	readErr error
}

const (
	keepLine  = 200 // bytes of a line kept for quoting
	keepLines = 2   // complete lines kept
)

func newGuard(c net.Conn) *guard {
	return &guard{Conn: c, literalMax: maxSmallLiteral}
}

// Read passes the server's bytes on and watches them: it counts the length
// of the line outside literals and the announced size of each literal. It
// hands out at most one line per call (literals in large pieces), so that
// go-imap's buffer never runs ahead of the line it parses, and a line it
// cannot parse is the last line the guard saw.
func (g *guard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if g.r == g.w {
		if g.readErr != nil {
			return 0, g.readErr
		}
		if g.buf == nil {
			g.buf = make([]byte, 32<<10)
		}
		// Not under the lock: problem() may be asked meanwhile.
		g.mu.Unlock()
		n, err := g.Conn.Read(g.buf)
		g.mu.Lock()
		g.r, g.w, g.readErr = 0, n, err
		if n == 0 {
			return 0, err
		}
	}
	avail := g.buf[g.r:g.w]
	if g.literalLeft > 0 {
		k := int(min(int64(len(p)), int64(len(avail)), g.literalLeft))
		copy(p, avail[:k])
		g.r += k
		g.literalLeft -= int64(k)
		return k, nil
	}
	n := 0
	for n < len(p) && n < len(avail) {
		b := avail[n]
		n++
		g.lineLen++
		if len(g.cur) < keepLine {
			g.cur = append(g.cur, b)
		}
		if len(g.tail) >= 32 {
			g.tail = append(g.tail[:0], g.tail[16:]...)
		}
		g.tail = append(g.tail, b)
		if b == '\n' {
			if size, ok := literalSize(g.tail); ok {
				if size > g.literalMax {
					g.err = fmt.Errorf("%w: it announced %d bytes of data where at most %d are expected", errProtocol, size, g.literalMax)
					return 0, g.err
				}
				g.literalLeft = size
			} else {
				if len(g.last) == keepLines {
					g.last = append(g.last[:0], g.last[1:]...)
				}
				g.last = append(g.last, append([]byte(nil), g.cur...))
				g.cur = g.cur[:0]
			}
			g.lineLen, g.tail = 0, g.tail[:0]
			break
		}
		if g.lineLen > MaxLine {
			g.err = fmt.Errorf("%w: it sent a line longer than %d bytes", errProtocol, MaxLine)
			return 0, g.err
		}
	}
	copy(p, avail[:n])
	g.r += n
	return n, nil
}

// literalSize finds "{N}\r\n", "{N+}\r\n" or "~{N}\r\n" at the end of a line.
func literalSize(tail []byte) (int64, bool) {
	t := bytes.TrimSuffix(bytes.TrimSuffix(tail, []byte("\n")), []byte("\r"))
	if len(t) < 3 || t[len(t)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(t, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(t[open+1:len(t)-1], []byte("+"))
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// setLiteralMax sets the bound for literals of the commands that follow.
func (g *guard) setLiteralMax(n int64) {
	g.mu.Lock()
	g.literalMax = n
	g.mu.Unlock()
}

// redact keeps s (a password) out of quoted server lines, should a server
// ever echo it.
func (g *guard) redact(s string) {
	if s == "" {
		return
	}
	g.mu.Lock()
	g.secrets = append(g.secrets, s)
	g.mu.Unlock()
}

// problem returns why the guard cut the connection (nil if it did not),
// and the server's last words, printable and without secrets: the line
// being read, else the last complete one (Read hands out one line at a
// time, so that is the one go-imap was parsing).
func (g *guard) problem() (error, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	line := g.cur
	if len(line) == 0 && len(g.last) > 0 {
		line = g.last[len(g.last)-1]
	}
	s := printable(string(line))
	for _, sec := range g.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	if len(line) == keepLine {
		s += "…"
	}
	return g.err, s
}

// parseFailure reports whether go-imap gave up on a reply it could not
// decode (its errors are plain strings, so they are recognised by their
// start).
func parseFailure(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.HasPrefix(s, "in response") || strings.HasPrefix(s, "in continue-req") ||
		strings.HasPrefix(s, "imapclient: panic") || strings.Contains(s, "imapwire:")
}

// startTLS upgrades a fresh connection before go-imap sees it, so that the
// guard can sit on the decrypted stream (go-imap's own STARTTLS would
// put TLS between the guard and the decoder). go-imap then reads a replayed
// greeting without capabilities: those sent before TLS must not be trusted.
func startTLS(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	raw.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReaderSize(raw, 4096)
	greeting, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	switch {
	case hasPrefixFold(greeting, "* OK"):
	case hasPrefixFold(greeting, "* PREAUTH"):
		return nil, &Error{Kind: ErrTLS, Op: "STARTTLS", Text: "the server logged us in before encryption (PREAUTH)"}
	default:
		return nil, &Error{Kind: ErrConnect, Op: "read greeting", Text: printable(greeting)}
	}
	if _, err := io.WriteString(raw, "S0 STARTTLS\r\n"); err != nil {
		return nil, err
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		if hasPrefixFold(line, "* ") {
			continue
		}
		if !hasPrefixFold(line, "S0 OK") {
			return nil, &Error{Kind: ErrTLS, Op: "STARTTLS",
				Text: "the server does not offer encryption (STARTTLS): " + printable(line)}
		}
		break
	}
	if br.Buffered() > 0 {
		// Bytes sent before the handshake could be injected by anyone on
		// the path (CVE-2011-0411-style); nothing may follow the OK.
		return nil, &Error{Kind: ErrTLS, Op: "STARTTLS", Text: "the server sent data before encryption started"}
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader("* OK encrypted\r\n"), tc)}, nil
}

// replayConn reads r (a replayed greeting, then the connection).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: a line longer than %d bytes before encryption", errProtocol, br.Size())
	}
	return string(line), err
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func printable(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
}
