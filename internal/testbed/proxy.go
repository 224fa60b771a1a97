package testbed

import (
	"bytes"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Proxy is a fault-injecting TCP proxy on loopback. It forwards to a
// target and, when the client sends a chosen byte pattern, cuts the
// connection or stops relaying the server's answers. Use it with a
// plaintext endpoint: under TLS it cannot see the pattern.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	rules []*proxyRule
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

type proxyRule struct {
	pattern []byte
	times   int // how often the rule may still fire; <0 = always
	skip    int // occurrences of pattern still to let through first
	stall   bool
	nth     bool // StallOnNth: matched per command line, see there
}

// StartProxy listens on a free loopback port and forwards to target; it is
// closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// CutOn closes the connection when the client sends pattern, at most times
// times (times < 0: every time).
func (p *Proxy) CutOn(pattern []byte, times int) { p.add(&proxyRule{pattern: pattern, times: times}) }

// StallOn stops relaying the server's answers (while keeping the
// connection open) once the client has sent pattern, at most times times.
func (p *Proxy) StallOn(pattern []byte, times int) {
	p.add(&proxyRule{pattern: pattern, times: times, stall: true})
}

// StallOnNth stops relaying the server's answers on the connection whose
// command line holds pattern for the nth time (counted over all
// connections), once: as soon as the answers to that connection's earlier
// commands are complete. What was asked before goes through, so that a
// test can stop a copy part-way whatever its speed and however many
// commands the client sends ahead of their answers.
func (p *Proxy) StallOnNth(pattern []byte, n int) {
	p.add(&proxyRule{pattern: pattern, times: 1, skip: n - 1, stall: true, nth: true})
}

func (p *Proxy) add(r *proxyRule) {
	p.mu.Lock()
	p.rules = append(p.rules, r)
	p.mu.Unlock()
}

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		stalled := make(chan struct{})
		var once sync.Once
		stall := func() { once.Do(func() { close(stalled) }) }
		// For StallOnNth: the tags of this connection's commands not yet
		// answered, and once it fired, those to wait for.
		var tagMu sync.Mutex
		var open []string
		var waitFor map[string]bool
		closeBoth := func() {
			client.Close()
			server.Close()
			p.track(client, false)
			p.track(server, false)
		}
		p.wg.Go(func() {
			// server -> client, until stalled
			buf := make([]byte, 32<<10)
			var lines lineReader
			for {
				n, err := server.Read(buf)
				select {
				case <-stalled:
					// Keep reading so the server is not blocked, relay nothing.
					if err != nil {
						return
					}
					continue
				default:
				}
				out := buf[:n]
				// Up to the end of the answer the stall waits for.
				lines.scan(out, func(end int, line []byte) bool {
					tagMu.Lock()
					defer tagMu.Unlock()
					tag, _, _ := bytes.Cut(line, []byte(" "))
					if i := slices.Index(open, string(tag)); i >= 0 {
						open = slices.Delete(open, i, i+1)
					}
					if waitFor != nil {
						delete(waitFor, string(tag))
						if len(waitFor) == 0 {
							out = out[:end]
							return false
						}
					}
					return true
				})
				if len(out) > 0 {
					if _, werr := client.Write(out); werr != nil {
						closeBoth()
						return
					}
				}
				if len(out) < n {
					stall()
					continue
				}
				if err != nil {
					closeBoth()
					return
				}
			}
		})
		p.wg.Go(func() {
			// client -> server, watching for the patterns
			buf := make([]byte, 32<<10)
			var tail []byte
			var lines lineReader
			for {
				n, err := client.Read(buf)
				if n > 0 {
					window := append(tail, buf[:n]...)
					if r := p.match(window); r != nil {
						if r.stall {
							stall()
						} else {
							closeBoth()
							return
						}
					}
					lines.scan(buf[:n], func(_ int, line []byte) bool {
						tag, _, _ := bytes.Cut(line, []byte(" "))
						tagMu.Lock()
						defer tagMu.Unlock()
						if p.matchNth(line) {
							waitFor = map[string]bool{}
							for _, t := range open {
								waitFor[t] = true
							}
							if len(open) == 0 {
								stall()
							}
						}
						open = append(open, string(tag))
						return true
					})
					if _, werr := server.Write(buf[:n]); werr != nil {
						closeBoth()
						return
					}
					keep := min(len(window), p.longest())
					tail = append(tail[:0], window[len(window)-keep:]...)
				}
				if err != nil {
					if !errors.Is(err, io.EOF) {
						closeBoth()
					}
					server.Close()
					return
				}
			}
		})
	}
}

// matchNth says whether a command line fires a StallOnNth rule, using
// its turn.
func (p *Proxy) matchNth(line []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.nth && r.times != 0 && bytes.Contains(line, r.pattern) {
			if r.skip > 0 {
				r.skip--
				continue
			}
			r.times--
			return true
		}
	}
	return false
}

// lineReader splits an IMAP stream into its lines, skipping the literals
// they announce ({n} at a line's end).
type lineReader struct {
	line    []byte // the start of the line being read (at most lineKeep bytes)
	tail    []byte // its last bytes, to find a literal's size
	literal int64  // literal bytes still to skip
}

// scan calls f with each line that ends in data (its first bytes) and the
// offset in data just after it; f returning false stops the scan.
func (l *lineReader) scan(data []byte, f func(end int, line []byte) bool) {
	for i := 0; i < len(data); {
		if l.literal > 0 {
			k := int(min(l.literal, int64(len(data)-i)))
			l.literal -= int64(k)
			i += k
			continue
		}
		j := bytes.IndexByte(data[i:], '\n')
		piece := data[i:]
		if j >= 0 {
			piece = data[i : i+j+1]
		}
		if room := lineKeep - len(l.line); room > 0 {
			l.line = append(l.line, piece[:min(room, len(piece))]...)
		}
		l.tail = append(l.tail, piece...)
		if len(l.tail) > 32 {
			l.tail = append(l.tail[:0], l.tail[len(l.tail)-32:]...)
		}
		i += len(piece)
		if j < 0 {
			return
		}
		if m := literalAtEnd.FindSubmatch(l.tail); m != nil {
			l.literal, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
		line := l.line
		l.line, l.tail = l.line[:0], l.tail[:0]
		if !f(i, line) {
			return
		}
	}
}

// lineKeep is how much of a line the proxy looks at: a whole command line
// (a UID FETCH's set of scattered UIDs runs long before BODY.PEEK[]), the
// tag of a server's.
const lineKeep = 8 << 10

var literalAtEnd = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)

// match returns the first rule whose pattern occurs in window and that may
// still fire, using one of its turns.
func (p *Proxy) match(window []byte) *proxyRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if !r.nth && r.times != 0 && bytes.Contains(window, r.pattern) {
			if r.skip > 0 {
				r.skip--
				continue
			}
			if r.times > 0 {
				r.times--
			}
			return r
		}
	}
	return nil
}

func (p *Proxy) longest() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.rules {
		n = max(n, len(r.pattern)-1)
	}
	return n
}
