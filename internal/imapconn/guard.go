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
	slow        bool // a tagged OK carried [THROTTLED]

	// What was read from the connection and not yet handed out.
	buf     []byte
	r, w    int
	readErr error

	// A command imapconn writes itself (see Conn.Append) takes its own
	// replies: lines starting with divertTag, and continuation requests,
	// go to diverted instead of go-imap, which knows nothing of the
	// command. divLine holds such a line until its end arrives.
	divertTag    []byte
	diverted     chan []byte
	divertStop   chan struct{}
	divLine      []byte
	afterLiteral bool // the rest of a line after a literal: never a new response
	// divertFetch also diverts untagged FETCH responses (see
	// Conn.FetchGmail: go-imap gives up on items it does not know).
	divertFetch bool
	divLit      int64 // bytes of a literal in divLine still to come
	divSeg      int   // where the part of divLine after its last literal starts
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
	for {
		if g.err != nil {
			return 0, g.err
		}
		if g.literalLeft > 0 && g.r == g.w && g.readErr == nil && len(p) >= directRead {
			// A message body goes from the connection straight into the
			// caller's buffer: one copy of every body fewer.
			k := int(min(int64(len(p)), g.literalLeft))
			g.mu.Unlock()
			n, err := g.Conn.Read(p[:k])
			g.mu.Lock()
			g.literalLeft -= int64(n)
			g.afterLiteral = g.literalLeft == 0
			if n > 0 {
				g.readErr = err
				return n, nil
			}
			return 0, err
		}
		if g.r == g.w {
			if g.readErr != nil {
				return 0, g.readErr
			}
			if err := g.fill(); err != nil && g.r == g.w {
				return 0, err
			}
		}
		avail := g.buf[g.r:g.w]
		if g.literalLeft > 0 {
			k := int(min(int64(len(p)), int64(len(avail)), g.literalLeft))
			copy(p, avail[:k])
			g.r += k
			g.literalLeft -= int64(k)
			g.afterLiteral = g.literalLeft == 0
			return k, nil
		}
		if g.divertTag != nil && (g.divLine != nil || (g.lineLen == 0 && !g.afterLiteral)) {
			switch g.divert1() {
			case divertMore:
				if g.err == nil && g.readErr != nil {
					return 0, g.readErr
				}
				if g.err == nil {
					g.fill() // an error is kept in readErr
				}
				continue
			case divertTaken:
				continue
			}
		}
		return g.pass(p, avail)
	}
}

// directRead is the smallest read that bypasses the guard's buffer for
// literal data (go-imap's bufio reads bodies in pieces of this size or
// larger).
const directRead = 4 << 10

// fill reads more from the connection behind what is buffered. The lock
// is released meanwhile, so that problem() can be asked.
func (g *guard) fill() error {
	if g.buf == nil {
		g.buf = make([]byte, 32<<10)
	}
	if g.r > 0 {
		g.w = copy(g.buf, g.buf[g.r:g.w])
		g.r = 0
	}
	buf := g.buf[g.w:]
	g.mu.Unlock()
	n, err := g.Conn.Read(buf)
	g.mu.Lock()
	g.w += n
	g.readErr = err
	return err
}

// pass hands go-imap the available bytes up to the end of the line.
func (g *guard) pass(p, avail []byte) (int, error) {
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
			g.afterLiteral = false
			if size, ok := literalSize(g.tail); ok {
				if size > g.literalMax {
					g.err = fmt.Errorf("%w: it announced %d bytes of data where at most %d are expected", errProtocol, size, g.literalMax)
					return 0, g.err
				}
				g.literalLeft = size
			} else {
				g.keep(g.cur)
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

// keep remembers the start of a complete line for quoting, in the buffer
// of the oldest one: every line passes here.
func (g *guard) keep(line []byte) {
	if throttledOK(line) {
		g.slow = true
	}
	if len(line) > keepLine {
		line = line[:keepLine]
	}
	var buf []byte
	if len(g.last) == keepLines {
		buf = g.last[0][:0]
		g.last = append(g.last[:0], g.last[1:]...)
	}
	g.last = append(g.last, append(buf, line...))
}

const (
	divertNo    = iota // the line is go-imap's
	divertMore         // undecided or incomplete: more bytes are needed
	divertTaken        // a diverted line was consumed
)

// divert1 looks at the line starting at g.r: a continuation request, the
// diverted command's tagged reply or (with divertFetch) an untagged FETCH
// response is consumed, literals and all (the whole bounded by MaxLine),
// and sent on once complete; anything else is left for go-imap.
func (g *guard) divert1() int {
	avail := g.buf[g.r:g.w]
	if g.divLine == nil {
		if d := g.divertStart(avail); d != divertTaken {
			return d
		}
		g.divLine, g.divLit, g.divSeg = []byte{}, 0, 0
	}
	for {
		if g.divLit > 0 {
			k := int(min(int64(len(avail)), g.divLit))
			g.divLine = append(g.divLine, avail[:k]...)
			g.r += k
			avail = avail[k:]
			if g.divLit -= int64(k); g.divLit > 0 {
				return divertMore
			}
			g.divSeg = len(g.divLine)
		}
		end := bytes.IndexByte(avail, '\n')
		if end < 0 {
			if len(g.divLine)+len(avail) > MaxLine {
				g.err = fmt.Errorf("%w: it sent a line longer than %d bytes", errProtocol, MaxLine)
				return divertMore
			}
			g.divLine = append(g.divLine, avail...)
			g.r = g.w
			return divertMore
		}
		g.divLine = append(g.divLine, avail[:end+1]...)
		g.r += end + 1
		avail = avail[end+1:]
		// Only FETCH data carries literals; a tagged reply ends at its line.
		size, ok := literalSize(g.divLine[g.divSeg:])
		if !ok || g.divLine[0] != '*' {
			break
		}
		if int64(len(g.divLine))+size > MaxLine {
			g.err = fmt.Errorf("%w: it sent a line longer than %d bytes", errProtocol, MaxLine)
			return divertMore
		}
		g.divLit, g.divSeg = size, len(g.divLine)
	}
	line := g.divLine
	g.divLine = nil
	g.keep(line)
	ch, stop := g.diverted, g.divertStop
	g.mu.Unlock()
	select {
	case ch <- line:
	case <-stop:
	}
	g.mu.Lock()
	return divertTaken
}

// divertStart decides whether the line starting with avail is diverted
// (divertTaken), is go-imap's (divertNo), or needs more bytes to tell.
func (g *guard) divertStart(avail []byte) int {
	tag := g.divertTag
	n := min(len(avail), len(tag))
	switch {
	case len(avail) == 0:
		return divertMore
	case avail[0] == '+':
		return divertTaken
	case g.divertFetch && avail[0] == '*':
		return untaggedFetch(avail)
	case !bytes.Equal(avail[:n], tag[:n]):
		return divertNo
	case n < len(tag):
		return divertMore
	}
	return divertTaken
}

// untaggedFetch tells whether a line starts "* <number> FETCH ".
func untaggedFetch(avail []byte) int {
	const word = " FETCH "
	switch {
	case len(avail) < 2:
		return divertMore
	case avail[1] != ' ':
		return divertNo
	}
	i := 2
	digits := 0
	for ; i < len(avail) && avail[i] >= '0' && avail[i] <= '9'; i++ {
		if digits++; digits > 10 {
			return divertNo
		}
	}
	if i == len(avail) {
		return divertMore
	}
	if digits == 0 {
		return divertNo
	}
	rest := avail[i:]
	n := min(len(rest), len(word))
	if !bytes.EqualFold(rest[:n], []byte(word[:n])) {
		return divertNo
	}
	if n < len(word) {
		return divertMore
	}
	return divertTaken
}

// divert sends the replies of the command tagged tag (its continuation
// requests and its tagged reply) to the returned channel instead of go-imap,
// until undivert. go-imap must have no command of its own in flight.
func (g *guard) divert(tag string, fetches bool) <-chan []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.divertTag = []byte(tag + " ")
	g.divertFetch = fetches
	g.diverted = make(chan []byte, 4)
	g.divertStop = make(chan struct{})
	return g.diverted
}

// undivert gives the following lines back to go-imap.
func (g *guard) undivert() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.divertStop)
	g.divertTag, g.diverted, g.divertStop, g.divLine, g.divertFetch = nil, nil, nil, nil, false
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

// throttledOK tells a tagged OK with the response code [THROTTLED]: the
// command was carried out, and the server asks for fewer of them.
func throttledOK(line []byte) bool {
	tag, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tag) == 0 || tag[0] == '*' || tag[0] == '+' || len(rest) < 3 ||
		!bytes.EqualFold(rest[:3], []byte("OK ")) {
		return false
	}
	code, _, _ := bytes.Cut(bytes.TrimLeft(rest[3:], " "), []byte("]"))
	return bytes.EqualFold(code, []byte("[THROTTLED"))
}

// bye returns the text of the last complete line when it was an untagged
// BYE: why the server hung up in the middle of a command.
func (g *guard) bye() (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.last) == 0 {
		return "", false
	}
	line := g.quote(g.last[len(g.last)-1])
	if !hasPrefixFold(line, "* BYE") {
		return "", false
	}
	return strings.TrimSpace(line[len("* BYE"):]), true
}

// slowedDown tells, once, whether a tagged OK since the last call asked
// for fewer commands.
func (g *guard) slowedDown() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.slow
	g.slow = false
	return s
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
	s := g.quote(line)
	if len(line) == keepLine {
		s += "…"
	}
	return g.err, s
}

// quote makes a server line printable and takes the secrets out; g.mu
// is held.
func (g *guard) quote(line []byte) string {
	s := printable(string(line))
	for _, sec := range g.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
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
	wr := newWire(raw)
	tc := tls.Client(wr, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return &replayConn{Conn: encrypted{tc, wr}, r: io.MultiReader(strings.NewReader("* OK encrypted\r\n"), tc)}, nil
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
