package imapconn

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
)

// wire buffers the TCP connection under TLS. crypto/tls reads and writes
// one record (at most 16 KiB) per system call; a copy moves hundreds of
// megabytes, and those calls (with the poller's wake-ups) were a third of
// the tool's CPU time. Reads now take whatever the kernel holds, and the
// records of one write above TLS leave in one system call: encrypted
// writes the wire while corked, and flushes once the write is done.
type wire struct {
	net.Conn
	r *bufio.Reader

	mu     sync.Mutex
	w      *bufio.Writer
	corked bool
}

func newWire(c net.Conn) *wire {
	return &wire{Conn: c, r: bufio.NewReaderSize(c, 32<<10), w: bufio.NewWriterSize(c, 32<<10)}
}

func (w *wire) Read(p []byte) (int, error) { return w.r.Read(p) }

// Write passes the bytes through, unless a write above TLS is in progress
// (the handshake, alerts and close_notify are never held back).
func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		if w.w.Buffered() > 0 {
			if err := w.w.Flush(); err != nil {
				return 0, err
			}
		}
		return w.Conn.Write(p)
	}
	return w.w.Write(p)
}

func (w *wire) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

func (w *wire) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	return w.w.Flush()
}

// encrypted is a TLS connection over a wire.
type encrypted struct {
	*tls.Conn
	wire *wire
}

func (e encrypted) Write(p []byte) (int, error) {
	e.wire.cork()
	n, err := e.Conn.Write(p)
	if ferr := e.wire.uncork(); err == nil {
		err = ferr
	}
	return n, err
}
