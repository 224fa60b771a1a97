package sample

import (
	"bytes"
	"crypto/sha256"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

func corpusEqual(a, b *Corpus) bool {
	if !slices.Equal(a.Folders, b.Folders) || len(a.Messages) != len(b.Messages) {
		return false
	}
	for i := range a.Messages {
		x, y := a.Messages[i], b.Messages[i]
		_, xo := x.InternalDate.Zone()
		_, yo := y.InternalDate.Zone()
		if x.Folder != y.Folder || !bytes.Equal(x.Body, y.Body) || !slices.Equal(x.Flags, y.Flags) ||
			!x.InternalDate.Equal(y.InternalDate) || xo != yo {
			return false
		}
	}
	return true
}

func TestCorpusDeterministic(t *testing.T) {
	t.Parallel()
	a := GenerateCorpus(CorpusOptions{Seed: 42})
	b := GenerateCorpus(CorpusOptions{Seed: 42})
	if !corpusEqual(a, b) {
		t.Fatal("two corpora from the same seed differ")
	}
	if corpusEqual(a, GenerateCorpus(CorpusOptions{Seed: 43})) {
		t.Fatal("corpora from different seeds are equal")
	}
	if len(a.Messages) != 120 {
		t.Errorf("default corpus has %d messages, want 120", len(a.Messages))
	}

	m1, m2 := a.More(7, 15), b.More(7, 15)
	if !corpusEqual(m1, m2) {
		t.Fatal("More with the same seed differs")
	}
	if len(m1.Messages) != 15 || !slices.Equal(m1.Folders, a.Folders) {
		t.Fatalf("More: %d messages in folders %v", len(m1.Messages), m1.Folders)
	}
	// More must add new messages, not repeat the base corpus: even with the
	// base seed, its stream is a different one.
	base := map[[32]byte]bool{}
	for _, m := range a.Messages {
		base[sha256.Sum256(m.Body)] = true
	}
	for _, m := range a.More(42, 15).Messages {
		if base[sha256.Sum256(m.Body)] {
			t.Fatalf("More(42) repeats a message of the base corpus")
		}
	}
}

// TestCorpusProperties asserts every property the corpus promises, so a
// change in the generator cannot silently drop a case.
func TestCorpusProperties(t *testing.T) {
	t.Parallel()
	c := GenerateCorpus(CorpusOptions{Seed: 1, Huge: 3 << 20})

	folderIdx := map[string]int{}
	for i, f := range c.Folders {
		folderIdx[f] = i
		if i := strings.LastIndex(f, "/"); i >= 0 {
			if _, ok := folderIdx[f[:i]]; !ok {
				t.Errorf("folder %q comes before its parent or has none", f)
			}
		}
	}
	for _, f := range []string{"INBOX", "Drafts", "Odeslaná pošta", "Koš", "Archiv/2023", "Projekty/Klient A", "Projekty/v1.2"} {
		if _, ok := folderIdx[f]; !ok {
			t.Errorf("folder %q missing", f)
		}
	}
	perFolder := map[string]int{}
	for _, m := range c.Messages {
		if _, ok := folderIdx[m.Folder]; !ok {
			t.Errorf("message in unknown folder %q", m.Folder)
		}
		perFolder[m.Folder]++
	}
	if perFolder["Projekty/v1.2"] == 0 || perFolder["Odeslaná pošta"] == 0 || perFolder["Koš"] == 0 {
		t.Errorf("special folders without messages: %v", perFolder)
	}

	var (
		minSize, maxSize         = int(^uint(0) >> 1), 0
		sizes                    []int
		noMsgID, multipartBase64 int
		raw8bit, encodedWord     int
		emptyBody                int
		sharedID                 [][]byte
		flags                    = map[imap.Flag]int{}
		minDate, maxDate         time.Time
		twins                    int
		seen                     = map[string]int{} // folder + body hash
	)
	for i, m := range c.Messages {
		body := m.Body
		sizes = append(sizes, len(body))
		minSize, maxSize = min(minSize, len(body)), max(maxSize, len(body))

		// CRLF only: every LF has a CR before it and every CR an LF after.
		if bytes.Count(body, []byte("\n")) != bytes.Count(body, []byte("\r\n")) ||
			bytes.Count(body, []byte("\r")) != bytes.Count(body, []byte("\r\n")) {
			t.Errorf("message %d has bare CR or LF", i)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("message %d does not parse: %v", i, err)
		}
		hdrEnd := bytes.Index(body, []byte("\r\n\r\n")) + 4
		header := body[:hdrEnd]
		if len(body) == hdrEnd {
			emptyBody++
		}
		switch id := msg.Header.Get("Message-ID"); id {
		case "":
			noMsgID++
		case SharedMessageID:
			sharedID = append(sharedID, body)
		}
		if !utf8.Valid(header) {
			t.Errorf("message %d: header is not UTF-8", i)
		}
		if subj := msg.Header.Get("Subject"); needsEncoding(subj) {
			raw8bit++
		} else if strings.Contains(subj, "=?utf-8?") {
			encodedWord++
			if _, err := new(mime.WordDecoder).DecodeHeader(subj); err != nil {
				t.Errorf("message %d: bad encoded-word subject %q: %v", i, subj, err)
			}
		}
		mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if mt == "multipart/mixed" {
			mr := multipart.NewReader(msg.Body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("message %d: multipart: %v", i, err)
				}
				if p.Header.Get("Content-Transfer-Encoding") == "base64" {
					multipartBase64++
				}
			}
		}
		for _, f := range m.Flags {
			flags[f]++
		}
		if m.InternalDate.Nanosecond() != 0 {
			t.Errorf("message %d: INTERNALDATE %v has sub-second precision", i, m.InternalDate)
		}
		if minDate.IsZero() || m.InternalDate.Before(minDate) {
			minDate = m.InternalDate
		}
		if m.InternalDate.After(maxDate) {
			maxDate = m.InternalDate
		}
		key := m.Folder + "\x00" + string(body)
		seen[key]++
		if seen[key] == 2 {
			twins++
		}
	}

	if minSize > 1000 {
		t.Errorf("smallest message is %d bytes, want a few hundred", minSize)
	}
	slices.Sort(sizes)
	if big := sizes[len(sizes)-2]; big < 900<<10 || big > 1200<<10 {
		t.Errorf("second-largest message is %d bytes, want ~1 MB", big)
	}
	if maxSize < 2900<<10 || maxSize > 3200<<10 {
		t.Errorf("huge message is %d bytes, want ~3 MB", maxSize)
	}
	if noMsgID < 2 {
		t.Errorf("%d messages without Message-ID, want several", noMsgID)
	}
	if len(sharedID) != 2 || bytes.Equal(sharedID[0], sharedID[1]) {
		t.Errorf("want 2 different messages with Message-ID %s, got %d", SharedMessageID, len(sharedID))
	}
	if twins < 1 {
		t.Error("no byte-identical message twice in one folder")
	}
	if emptyBody < 1 {
		t.Error("no message with an empty body")
	}
	if raw8bit < 1 || encodedWord < 1 {
		t.Errorf("raw 8-bit subjects: %d, encoded-word subjects: %d; want both", raw8bit, encodedWord)
	}
	if multipartBase64 < 3 {
		t.Errorf("%d base64 attachment parts, want several", multipartBase64)
	}
	for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagDeleted,
		KeywordForwarded, KeywordLabel1, KeywordProjekt} {
		if flags[f] == 0 {
			t.Errorf("no message has flag %s", f)
		}
	}
	if span := maxDate.Sub(minDate); span < 15*365*24*time.Hour {
		t.Errorf("INTERNALDATEs span only %v", span)
	}
	if minDate.Before(baseDate) || maxDate.After(baseDate.Add(corpusSpan)) {
		t.Errorf("INTERNALDATEs %v..%v outside the 20 years from %v", minDate, maxDate, baseDate)
	}
}
