package main

import (
	"io"
	"net"
	"time"
)

// delayProxy stands between the bench and the source server as the
// distance to a remote old provider would: every piece of data waits
// delay in each direction (a round trip costs twice that), while the
// bandwidth stays the machine's. Loopback has no latency of its own and
// netem is not at hand.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
}

func startDelayProxy(target string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, delay: delay}
	go p.serve()
	return p, nil
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) close() { p.ln.Close() }

func (p *delayProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			go p.pipe(u, c)
			p.pipe(c, u)
		}()
	}
}

// pipe copies src to dst, each piece delay after it was read.
func (p *delayProxy) pipe(dst, src net.Conn) {
	type piece struct {
		b  []byte
		at time.Time
	}
	// Up to 64 MiB in flight: more than any window the bench opens.
	pieces := make(chan piece, 1024)
	go func() {
		defer dst.Close()
		for pc := range pieces {
			time.Sleep(time.Until(pc.at))
			if _, err := dst.Write(pc.b); err != nil {
				for range pieces {
				}
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pieces <- piece{append([]byte(nil), buf[:n]...), time.Now().Add(p.delay)}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			close(pieces)
			return
		}
	}
}
