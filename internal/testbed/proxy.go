package testbed

import (
	"bytes"
	"errors"
	"io"
	"net"
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

// StallOnNth is StallOn for the nth time the client sends pattern
// (counted over all connections), once: what comes before goes through,
// so that a test can stop a copy part-way whatever its speed.
func (p *Proxy) StallOnNth(pattern []byte, n int) {
	p.add(&proxyRule{pattern: pattern, times: 1, skip: n - 1, stall: true})
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
		closeBoth := func() {
			client.Close()
			server.Close()
			p.track(client, false)
			p.track(server, false)
		}
		p.wg.Go(func() {
			// server -> client, until stalled
			buf := make([]byte, 32<<10)
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
				if n > 0 {
					if _, werr := client.Write(buf[:n]); werr != nil {
						closeBoth()
						return
					}
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
			for {
				n, err := client.Read(buf)
				if n > 0 {
					window := append(tail, buf[:n]...)
					if r := p.match(window); r != nil {
						if r.stall {
							once.Do(func() { close(stalled) })
						} else {
							closeBoth()
							return
						}
					}
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

// match returns the first rule whose pattern occurs in window and that may
// still fire, using one of its turns.
func (p *Proxy) match(window []byte) *proxyRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.times != 0 && bytes.Contains(window, r.pattern) {
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
