package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// headerLimit bounds how much of a body is searched for the header block.
const headerLimit = 64 << 10

// arenas is an account's memory for message bodies: a fixed number of
// buffers, each filled by one FETCH chunk and reused once every body in it
// is recorded. Bodies thus cost no allocation, no zeroing and no page
// faults however many are copied (an exactly sized buffer per message took
// 15 % of the tool's CPU time in a profile), and memory stays at the budget: a
// body larger than one arena borrows as many arenas, giving up their
// buffers for its own; one larger than all of them goes through an
// unlinked temporary file.
type arenas struct {
	size int64 // bytes per arena
	free chan *arena
	many sync.Mutex // one taker of several arenas at a time
}

// Memory is the memory for message bodies (Options.Memory): accounts
// migrated in one process at the same time can share one.
type Memory struct{ arenas *arenas }

// NewMemory makes a memory of budget bytes, in arenas of one FETCH chunk
// (4 MiB, less in a small budget: at least four arenas).
func NewMemory(budget int64) *Memory {
	return &Memory{newArenas(budget, max(64<<10, min(chunkBytes, budget/4)))}
}

func newArenas(budget, size int64) *arenas {
	n := max(1, budget/size)
	a := &arenas{size: size, free: make(chan *arena, n)}
	for range n {
		a.free <- &arena{pool: a}
	}
	return a
}

// take waits for k free arenas; with wait false it returns nil at once
// unless they are free. Takers of several arenas go one at a time: two
// holding some and each waiting for the rest would wait forever.
func (p *arenas) take(ctx context.Context, k int, wait bool) ([]*arena, error) {
	if k > 1 {
		if !wait && !p.many.TryLock() {
			return nil, nil
		} else if wait {
			p.many.Lock()
		}
		defer p.many.Unlock()
	}
	got := make([]*arena, 0, k)
	for len(got) < k {
		if !wait {
			select {
			case a := <-p.free:
				got = append(got, a)
				continue
			default:
				p.give(got)
				return nil, nil
			}
		}
		select {
		case a := <-p.free:
			got = append(got, a)
		case <-ctx.Done():
			p.give(got)
			return nil, context.Cause(ctx)
		}
	}
	return got, nil
}

// give returns arenas taken and not used.
func (p *arenas) give(got []*arena) {
	for _, a := range got {
		p.free <- a
	}
}

// arena is one buffer of bodies. Each body in it holds a reference, and so
// does the chunk being fetched into it; the last to let go frees it.
type arena struct {
	pool *arenas
	buf  []byte // allocated on first use
	used int64
	refs atomic.Int32
}

// fill prepares a taken arena for a chunk, holding the chunk's reference.
func (a *arena) fill() {
	if a.buf == nil {
		a.buf = make([]byte, a.pool.size)
	}
	a.used = 0
	a.refs.Store(1)
}

// alloc returns size bytes of the arena, or nil when they do not fit.
func (a *arena) alloc(size int64) []byte {
	if a.used+size > int64(len(a.buf)) {
		return nil
	}
	b := a.buf[a.used : a.used+size : a.used+size]
	a.used += size
	a.refs.Add(1)
	return b
}

func (a *arena) release() {
	if a.refs.Add(-1) == 0 {
		a.pool.free <- a
	}
}

// body is a spooled message body that can be read more than once (a retry
// on a fresh connection sends it again).
type body struct {
	mem   []byte
	file  *os.File
	size  int64
	arena *arena   // mem is a piece of it
	loan  []*arena // arenas whose budget mem took
}

// spoolInto reads a body of size bytes from r into mem, which is exactly
// that long.
func spoolInto(r io.Reader, mem []byte) (*body, error) {
	if _, err := io.ReadFull(r, mem); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return &body{mem: mem, size: int64(len(mem))}, nil
}

// spoolFile reads a body from r into an unlinked temporary file in dir.
func spoolFile(r io.Reader, dir string) (*body, error) {
	f, err := os.CreateTemp(dir, "mailmigrate-body-*")
	if err != nil {
		return nil, fmt.Errorf("spool large message: %w", err)
	}
	// Unlinked at once: the file vanishes with the process, even on SIGKILL.
	os.Remove(f.Name())
	n, err := io.CopyBuffer(f, r, make([]byte, 256<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return &body{file: f, size: n}, nil
}

// reader returns a fresh reader over the whole body; in memory it is an
// io.WriterTo, which sends the body without another copy.
func (b *body) reader() io.Reader {
	if b.file == nil {
		return bytes.NewReader(b.mem)
	}
	return io.NewSectionReader(b.file, 0, b.size)
}

// header returns the header block (up to the first empty line).
func (b *body) header() []byte {
	var head []byte
	if b.file == nil {
		head = b.mem
		if len(head) > headerLimit {
			head = head[:headerLimit]
		}
	} else {
		head = make([]byte, min(headerLimit, b.size))
		n, _ := b.file.ReadAt(head, 0)
		head = head[:n]
	}
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		return head[:i+2]
	}
	if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		return head[:i+1]
	}
	return head
}

// release gives the memory back or removes the file.
func (b *body) release() {
	b.mem = nil
	if b.arena != nil {
		b.arena.release()
		b.arena = nil
	}
	for _, a := range b.loan {
		a.pool.free <- a
	}
	b.loan = nil
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
}
