package engine

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// memLimit is the largest body held in memory; larger ones go to a
// temporary file so that memory does not grow with message size.
const memLimit = 1 << 20

// headerLimit bounds how much of a body is searched for the header block.
const headerLimit = 64 << 10

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// body is a spooled message body that can be read more than once (a retry
// on a fresh connection sends it again).
type body struct {
	mem  *bytes.Buffer
	file *os.File
	size int64
}

// spool reads a body of the announced size from r.
func spool(r io.Reader, size int64, dir string) (*body, error) {
	if size <= memLimit {
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		buf.Grow(int(size))
		n, err := io.Copy(buf, r)
		if err != nil {
			bufPool.Put(buf)
			return nil, fmt.Errorf("read message body: %w", err)
		}
		return &body{mem: buf, size: n}, nil
	}
	f, err := os.CreateTemp(dir, "mailmigrate-body-*")
	if err != nil {
		return nil, fmt.Errorf("spool large message: %w", err)
	}
	// Unlinked at once: the file vanishes with the process, even on SIGKILL.
	os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return &body{file: f, size: n}, nil
}

// reader returns a fresh reader over the whole body.
func (b *body) reader() io.Reader {
	if b.mem != nil {
		return bytes.NewReader(b.mem.Bytes())
	}
	return io.NewSectionReader(b.file, 0, b.size)
}

// header returns the header block (up to the first empty line).
func (b *body) header() []byte {
	var head []byte
	if b.mem != nil {
		head = b.mem.Bytes()
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

// release returns the memory or removes the file.
func (b *body) release() {
	if b.mem != nil {
		if b.mem.Cap() <= 2*memLimit {
			bufPool.Put(b.mem)
		}
		b.mem = nil
	}
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
}
