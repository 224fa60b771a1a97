package engine

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/semaphore"
)

// maxInMemory is the largest body held in memory; larger ones go to a
// temporary file so that memory does not grow with message size.
const maxInMemory = 16 << 20

// headerLimit bounds how much of a body is searched for the header block.
const headerLimit = 64 << 10

// body is a spooled message body that can be read more than once (a retry
// on a fresh connection sends it again).
type body struct {
	mem  []byte
	file *os.File
	size int64
	// reserved is the share of the memory budget this body holds.
	reserved int64
	budget   *semaphore.Weighted
}

// spool reads a body of the announced size from r: into memory when
// inMemory, else into an unlinked temporary file in dir.
func spool(r io.Reader, size int64, inMemory bool, dir string) (*body, error) {
	if inMemory {
		// Exactly sized: a pool of reused buffers would keep every small
		// message at the capacity of the largest one it ever held.
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read message body: %w", err)
		}
		return &body{mem: buf, size: size}, nil
	}
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

// reader returns a fresh reader over the whole body.
func (b *body) reader() io.Reader {
	if b.mem != nil {
		return bytes.NewReader(b.mem)
	}
	return io.NewSectionReader(b.file, 0, b.size)
}

// header returns the header block (up to the first empty line).
func (b *body) header() []byte {
	var head []byte
	if b.mem != nil {
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

// release returns the memory or removes the file.
func (b *body) release() {
	b.mem = nil
	if b.reserved > 0 {
		b.budget.Release(b.reserved)
		b.reserved = 0
	}
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
}
