package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// IdentityFields are the header fields a message's identity is built from.
// Received is deliberately absent: servers add to it on delivery and it is
// the classic cause of re-run duplicates in header-based tools.
var IdentityFields = []string{"Message-ID", "Date", "From", "To", "Cc", "Subject"}

// Identity names a message's content without its body: a digest of the
// identity header fields. Two copies of one message share it; two
// different messages that merely share a Message-ID do not (their subject,
// date or sender differ), and those that share all of it are told apart by
// size (SameSize). Matching is by multiset, so a message present twice is
// copied twice.
//
// Servers change what they store: Cyrus replaces raw 8-bit bytes in
// headers with "X" (munge8bit), Courier adds a missing final line ending
// and rewrites bare CRs, others refold long lines. The digest therefore
// reads every byte above 127 as "X" and every run of white space (CR and LF
// included) as one space, and sizes are compared with a tolerance.
type Identity [16]byte

func (id Identity) String() string { return hex.EncodeToString(id[:]) }

// IdentityOf computes the identity from a header block (the full header or
// just the IdentityFields, as HEADER.FIELDS returns them).
func IdentityOf(header []byte) Identity {
	lines := identityLines(header)
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	var id Identity
	copy(id[:], h.Sum(nil))
	return id
}

// SameSize reports whether two RFC822.SIZEs can belong to one message
// stored by two servers: equal, or apart by what line-ending repairs add
// (a final CRLF, a CR made CRLF), at most 64 bytes plus 1 %.
func SameSize(a, b int64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 64+max(a, b)/100
}

func identityLines(header []byte) []string {
	var out []string
	for _, f := range headerFields(header) {
		for _, want := range IdentityFields {
			if strings.EqualFold(f.name, want) {
				out = append(out, strings.ToLower(want)+":"+strings.Join(strings.Fields(munge8bit(f.value)), " "))
			}
		}
	}
	return out
}

// munge8bit reads raw 8-bit bytes as Cyrus stores them.
func munge8bit(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 0x80 {
					b[j] = 'X'
				}
			}
			return string(b)
		}
	}
	return s
}

type headerField struct{ name, value string }

// headerFields splits a header block into unfolded fields. It stops at the
// first empty line and tolerates LF-only line ends and junk lines.
func headerFields(header []byte) []headerField {
	var fields []headerField
	for len(header) > 0 {
		var line []byte
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			line, header = header, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].value += " " + string(line)
			continue
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			if name := bytes.TrimSpace(line[:i]); len(name) > 0 {
				fields = append(fields, headerField{name: string(name), value: string(line[i+1:])})
			}
		}
	}
	return fields
}

// headerValue returns the first value of a field, unfolded and trimmed.
func headerValue(header []byte, name string) string {
	for _, f := range headerFields(header) {
		if strings.EqualFold(f.name, name) {
			return strings.Join(strings.Fields(f.value), " ")
		}
	}
	return ""
}
