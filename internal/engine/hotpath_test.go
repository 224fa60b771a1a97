package engine

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// The per-message work of the engine, outside the servers.

func BenchmarkSpool(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10, 4 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		for _, inMemory := range []bool{true, false} {
			b.Run(fmt.Sprintf("%dKiB/memory=%v", size>>10, inMemory), func(b *testing.B) {
				b.SetBytes(int64(size))
				dir := b.TempDir()
				for b.Loop() {
					var body *body
					var err error
					if inMemory {
						body, err = spoolInto(bytes.NewReader(data), make([]byte, size))
					} else {
						body, err = spoolFile(bytes.NewReader(data), dir)
					}
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, body.reader())
					body.release()
				}
			})
		}
	}
}

func BenchmarkIdentity(b *testing.B) {
	header := []byte("Return-Path: <a@x.cz>\r\nReceived: from a by b; Mon, 1 Jan 2024 10:00:00 +0100\r\n" +
		"Message-ID: <1234567890.abc@x.cz>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nFrom: Jana Nováková <a@x.cz>\r\n" +
		"To: Petr <b@y.cz>, Eva <c@y.cz>\r\nCc: d@y.cz\r\nSubject: =?utf-8?q?Faktura_za_leden?=\r\n  a dalsi\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n")
	b.SetBytes(int64(len(header)))
	for b.Loop() {
		IdentityOf(header)
	}
}

func BenchmarkFlagFilter(b *testing.B) {
	f := newFlagFilter([]imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, imap.FlagWildcard})
	flags := []imap.Flag{imap.FlagSeen, `\Recent`, "$Forwarded", imap.FlagFlagged}
	for b.Loop() {
		f.apply(flags)
	}
}

// A bulk run keeps about eight appending connections however many
// accounts run at once, never fewer than one per account.
func TestAppendWorkersFor(t *testing.T) {
	for _, c := range []struct{ accounts, want int }{
		{0, 4}, {1, 4}, {2, 4}, {3, 3}, {4, 2}, {7, 2}, {8, 1}, {20, 1}, {500, 1},
	} {
		if got := AppendWorkersFor(c.accounts); got != c.want {
			t.Errorf("AppendWorkersFor(%d) = %d, want %d", c.accounts, got, c.want)
		}
	}
}
