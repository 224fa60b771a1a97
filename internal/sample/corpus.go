package sample

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// CorpusOptions configures GenerateCorpus.
type CorpusOptions struct {
	Seed     uint64
	Messages int   // approximate total number of messages (default 120)
	Huge     int64 // if > 0, add one message of about this many bytes (e.g. 20<<20) to a folder
	// AttachmentPercent is the share of random messages with attachments
	// (0 = 30); AttachmentMax the largest raw attachment in bytes (0 =
	// 300 KiB). Attachment sizes are log-uniform from 200 B up to it.
	AttachmentPercent int
	AttachmentMax     int
}

// Message is one corpus message.
type Message struct {
	Folder       string // folder path with "/" as separator, UTF-8, e.g. "Archiv/2023", "INBOX"
	Body         []byte // full RFC 5322 message, CRLF line endings
	Flags        []imap.Flag
	InternalDate time.Time // second precision, with a zone
}

// Corpus is a deterministic set of folders and messages.
type Corpus struct {
	Folders  []string // every folder path incl. "INBOX", parents before children
	Messages []Message
	opts     CorpusOptions
}

// Keywords used by the corpus besides the system flags.
const (
	KeywordForwarded imap.Flag = "$Forwarded"
	KeywordLabel1    imap.Flag = "$Label1"
	KeywordProjekt   imap.Flag = "Projekt"
)

// Folder paths with a role in the corpus; tests refer to them by name.
const (
	FolderSentCZ    = "Odeslaná pošta" // a Czech "Sent" that is not the server's special-use Sent
	FolderTrashCZ   = "Koš"
	FolderDotLeaf   = "Projekty/v1.2" // its leaf holds the separator of a "." server
	FolderClientA   = "Projekty/Klient A"
	FolderArchive   = "Archiv/2023"
	FolderDrafts    = "Drafts"
	FolderAmpersand = "Projekty/Klient A/Smlouvy & faktury" // "&" needs escaping in modified UTF-7
)

// corpusFolders is the fixed folder tree, parents before children.
var corpusFolders = []string{
	"INBOX",
	FolderDrafts,
	FolderSentCZ,
	FolderTrashCZ,
	"Archiv",
	FolderArchive,
	"Archiv/2024",
	"Projekty",
	FolderClientA,
	FolderAmpersand,
	FolderDotLeaf,
	"Newsletters",
	"Účty",
	"Účty/Doklady 2019",
}

// SharedMessageID is the Message-ID carried by two different corpus
// messages, so code that deduplicates by Message-ID alone loses one.
const SharedMessageID = "<shared-7f3a@corpus.mailmigrate.test>"

// baseDate anchors INTERNALDATEs; a fixed date keeps corpora reproducible.
var baseDate = time.Date(2005, time.January, 1, 0, 0, 0, 0, time.UTC)

const corpusSpan = 20 * 365 * 24 * time.Hour

// Distinct second PCG words keep GenerateCorpus and More on separate
// streams even for equal seeds.
const (
	streamCorpus = 0x6d61696c6d696772 // "mailmigr"
	streamMore   = 0x6d6f72656d6f7265 // "moremore"
)

// GenerateCorpus returns a corpus that exercises what a migration must
// preserve: nested and non-ASCII folder names, 8-bit and encoded-word
// headers, MIME attachments, missing and shared Message-IDs, byte-identical
// twins, an empty body, sizes from a few hundred bytes to ~1 MB, every
// system flag plus keywords, and dates over 20 years. The same options
// always give a byte-identical corpus.
func GenerateCorpus(opts CorpusOptions) *Corpus {
	total := opts.Messages
	if total <= 0 {
		total = 120
	}
	g := newCorpusGen(opts, rand.New(rand.NewPCG(opts.Seed, streamCorpus)), fmt.Sprintf("s%d", opts.Seed))
	c := &Corpus{Folders: slices.Clone(corpusFolders), opts: opts}

	add := func(m Message) { c.Messages = append(c.Messages, m) }

	// The special cases come first so that their properties hold whatever
	// the random part does; the random part fills up to the total.
	add(g.message(msgSpec{folder: "INBOX", subject: "Prázdná zpráva", emptyBody: true, flags: []imap.Flag{imap.FlagSeen}}))
	add(g.message(msgSpec{folder: FolderClientA, subject: "Smlouva – první verze", messageID: SharedMessageID,
		flags: []imap.Flag{imap.FlagSeen, imap.FlagFlagged, KeywordProjekt}}))
	add(g.message(msgSpec{folder: FolderClientA, subject: "Re: úplně jiná věc", messageID: SharedMessageID,
		flags: []imap.Flag{imap.FlagAnswered, KeywordLabel1}}))
	twin := g.message(msgSpec{folder: "INBOX", subject: "Stejná zpráva dvakrát", flags: []imap.Flag{imap.FlagSeen}})
	add(twin)
	twin.Flags = slices.Clone(twin.Flags)
	twin.Body = slices.Clone(twin.Body)
	add(twin)
	add(g.message(msgSpec{folder: FolderSentCZ, subject: "Příliš žluťoučký kůň úpěl ďábelské ódy", header8bit: true,
		flags: []imap.Flag{imap.FlagSeen, KeywordForwarded}}))
	add(g.message(msgSpec{folder: FolderTrashCZ, subject: "Smazáno: nabídka – „speciální“ cena €",
		flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted}}))
	add(g.message(msgSpec{folder: FolderDrafts, subject: "Koncept odpovědi", noMessageID: true,
		flags: []imap.Flag{imap.FlagDraft}}))
	add(g.message(msgSpec{folder: FolderDotLeaf, subject: "Release notes v1.2", attachments: []int{2 << 10},
		flags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged}}))
	add(g.message(msgSpec{folder: FolderAmpersand, subject: "Faktura 2023/117", attachments: []int{40 << 10},
		flags: []imap.Flag{KeywordProjekt}}))
	add(g.message(msgSpec{folder: FolderArchive, subject: "Velká příloha (1 MB)", totalSize: 1 << 20,
		flags: []imap.Flag{imap.FlagSeen, KeywordLabel1}}))
	if opts.Huge > 0 {
		add(g.message(msgSpec{folder: "Archiv", subject: "Obří příloha", totalSize: int(opts.Huge),
			flags: []imap.Flag{imap.FlagSeen}}))
	}

	for len(c.Messages) < total {
		add(g.randomMessage(c.Folders))
	}
	return c
}

// More returns a new corpus of n extra messages (different seed stream)
// for incremental tests, in the folders of c.
func (c *Corpus) More(seed uint64, n int) *Corpus {
	g := newCorpusGen(c.opts, rand.New(rand.NewPCG(seed, streamMore)), fmt.Sprintf("m%d", seed))
	m := &Corpus{Folders: slices.Clone(c.Folders), opts: c.opts}
	for range n {
		m.Messages = append(m.Messages, g.randomMessage(c.Folders))
	}
	return m
}

// Without returns a copy of c without the given folders, their subfolders
// and their messages; e.g. Without(FolderDotLeaf) for a server whose
// separator is ".".
func (c *Corpus) Without(folders ...string) *Corpus {
	drop := func(f string) bool {
		for _, x := range folders {
			if f == x || strings.HasPrefix(f, x+"/") {
				return true
			}
		}
		return false
	}
	out := &Corpus{}
	for _, f := range c.Folders {
		if !drop(f) {
			out.Folders = append(out.Folders, f)
		}
	}
	for _, m := range c.Messages {
		if !drop(m.Folder) {
			out.Messages = append(out.Messages, m)
		}
	}
	return out
}

type corpusGen struct {
	r         *rand.Rand
	idPrefix  string // makes X-Corpus-ID unique across seeds and streams
	seq       int
	attachPct int
	attachMax int
}

func newCorpusGen(opts CorpusOptions, r *rand.Rand, idPrefix string) *corpusGen {
	g := &corpusGen{r: r, idPrefix: idPrefix, attachPct: 30, attachMax: 300 << 10}
	if opts.AttachmentPercent > 0 {
		g.attachPct = opts.AttachmentPercent
	}
	if opts.AttachmentMax > 0 {
		g.attachMax = opts.AttachmentMax
	}
	return g
}

type msgSpec struct {
	folder      string
	subject     string
	flags       []imap.Flag
	messageID   string // "" = generate one, unless noMessageID
	noMessageID bool
	emptyBody   bool
	header8bit  bool  // raw UTF-8 in Subject/From/To; otherwise non-ASCII gets RFC 2047 encoded-words
	attachments []int // raw sizes of base64 attachments; non-empty = multipart/mixed
	textSize    int   // approximate text size; 0 = random
	totalSize   int   // if > 0: one attachment sized so the message is about this big
	quotedPrint bool  // text part quoted-printable instead of 8bit
}

var (
	firstNames = []string{"Jana", "Petr", "Jiří", "Zuzana", "Tomáš", "Alice", "Bob", "Łukasz", "Søren", "Åsa", "Markéta", "Oldřich", "Carol", "Dave"}
	lastNames  = []string{"Nováková", "Svoboda", "Dvořák", "Černá", "Smith", "Müller", "Kowalski", "Jensen", "Procházka", "Horák", "Jones"}
	domains    = []string{"example.com", "example.cz", "example.org", "firma.example", "klient-a.example"}
	subjWords  = []string{"faktura", "smlouva", "schůzka", "report", "meeting", "invoice", "návrh", "projekt", "Q3", "update",
		"přehled", "rozpočet", "termín", "dotaz", "objednávka", "reminder", "plán", "draft", "výsledky", "cesta"}
	bodyWords = []string{"dobrý", "den", "posílám", "v", "příloze", "dokument", "k", "projektu", "prosím", "o", "kontrolu",
		"the", "meeting", "is", "moved", "to", "Thursday", "please", "confirm", "s", "pozdravem", "díky", "za", "rychlou",
		"odpověď", "budget", "approved", "€", "Kč", "částka", "činí", "ťuk", "ďábel", "naïve", "café", "straße", "report",
		"attached", "see", "below", "ok", "ano", "ne", "možná", "zítra", "včera", "—", "„uvozovky“", "šťastný"}
	attachTypes = []struct{ ctype, ext, magic string }{
		{"application/pdf", "pdf", "%PDF-1.4\n"},
		{"image/png", "png", "\x89PNG\r\n\x1a\n"},
		{"application/zip", "zip", "PK\x03\x04"},
		{"application/octet-stream", "bin", "\x00\x01\x02\x03"},
	}
	zones = []*time.Location{
		time.UTC,
		time.FixedZone("CET", 3600),
		time.FixedZone("CEST", 7200),
		time.FixedZone("EST", -5*3600),
		time.FixedZone("IST", 5*3600+1800),
		time.FixedZone("NPT", 5*3600+2700),
		time.FixedZone("HST", -10*3600),
	}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// logUniform returns an int in [lo, hi] with sizes spread evenly over
// orders of magnitude, like real mailboxes.
func (g *corpusGen) logUniform(lo, hi int) int {
	v := math.Exp(math.Log(float64(lo)) + g.r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo))))
	return min(max(int(v), lo), hi)
}

func (g *corpusGen) date() time.Time {
	d := time.Duration(g.r.Int64N(int64(corpusSpan/time.Second))) * time.Second
	return baseDate.Add(d).In(pick(g.r, zones))
}

func (g *corpusGen) person() (name, addr string) {
	first, last := pick(g.r, firstNames), pick(g.r, lastNames)
	local := strings.ToLower(asciiFold(first) + "." + asciiFold(last))
	return first + " " + last, local + "@" + pick(g.r, domains)
}

// asciiFold maps the letters used in the name lists to ASCII for e-mail
// local parts.
func asciiFold(s string) string {
	r := strings.NewReplacer("á", "a", "č", "c", "ď", "d", "é", "e", "ě", "e", "í", "i", "ň", "n", "ó", "o", "ř", "r",
		"š", "s", "ť", "t", "ú", "u", "ů", "u", "ý", "y", "ž", "z", "Č", "C", "Ř", "R", "Š", "S", "Ž", "Z",
		"Ł", "L", "ł", "l", "ø", "o", "Ø", "O", "Å", "A", "å", "a", "ü", "u", "Ü", "U")
	return r.Replace(s)
}

func (g *corpusGen) subject() string {
	n := 2 + g.r.IntN(5)
	words := make([]string, n)
	for i := range words {
		words[i] = pick(g.r, subjWords)
	}
	s := strings.Join(words, " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// text returns roughly n bytes of wrapped prose with CRLF line endings.
func (g *corpusGen) text(n int) string {
	var b, line strings.Builder
	for b.Len()+line.Len() < n {
		w := pick(g.r, bodyWords)
		if line.Len()+len(w)+1 > 72 {
			b.WriteString(line.String())
			b.WriteString("\r\n")
			line.Reset()
			if g.r.IntN(8) == 0 {
				b.WriteString("\r\n") // paragraph break
			}
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	b.WriteString(line.String())
	b.WriteString("\r\n")
	return b.String()
}

// binary returns n bytes that look like a file: a magic number and noise.
func (g *corpusGen) binary(n int, magic string) []byte {
	buf := make([]byte, (n+7)/8*8)
	for i := 0; i < len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], g.r.Uint64())
	}
	buf = buf[:n]
	copy(buf, magic)
	return buf
}

func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/76*2 + 2)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	return b.Bytes()
}

func (g *corpusGen) messageID() string {
	return fmt.Sprintf("<%016x.%s@corpus.mailmigrate.test>", g.r.Uint64(), g.idPrefix)
}

// randomMessage draws a message of random shape into one of folders.
func (g *corpusGen) randomMessage(folders []string) Message {
	// INBOX gets about a third of the mail, as in real accounts.
	folder := "INBOX"
	if g.r.IntN(3) != 0 {
		folder = pick(g.r, folders)
	}
	s := msgSpec{folder: folder, subject: g.subject()}
	if g.r.IntN(10) == 0 {
		s.noMessageID = true
	}
	s.header8bit = g.r.IntN(10) == 0
	if g.r.IntN(100) < g.attachPct {
		for range 1 + g.r.IntN(2) {
			s.attachments = append(s.attachments, g.logUniform(200, g.attachMax))
		}
	}
	s.quotedPrint = g.r.IntN(4) == 0

	chance := func(pct int) bool { return g.r.IntN(100) < pct }
	if chance(70) {
		s.flags = append(s.flags, imap.FlagSeen)
	}
	if chance(15) {
		s.flags = append(s.flags, imap.FlagAnswered)
	}
	if chance(10) {
		s.flags = append(s.flags, imap.FlagFlagged)
	}
	if chance(3) {
		s.flags = append(s.flags, imap.FlagDeleted)
	}
	if folder == FolderDrafts || chance(2) {
		s.flags = append(s.flags, imap.FlagDraft)
	}
	if chance(5) {
		s.flags = append(s.flags, KeywordForwarded)
	}
	if chance(5) {
		s.flags = append(s.flags, KeywordLabel1)
	}
	if strings.HasPrefix(folder, "Projekty") && chance(40) {
		s.flags = append(s.flags, KeywordProjekt)
	}
	return g.message(s)
}

// message renders a spec into a Message. Every random draw happens in a
// fixed order, which is what makes corpora reproducible.
func (g *corpusGen) message(s msgSpec) Message {
	g.seq++
	date := g.date()
	fromName, fromAddr := g.person()
	toName, toAddr := g.person()

	encodeHeader := func(v string) string {
		if s.header8bit || !needsEncoding(v) {
			return v
		}
		if g.r.IntN(2) == 0 {
			return mime.QEncoding.Encode("utf-8", v)
		}
		return mime.BEncoding.Encode("utf-8", v)
	}
	address := func(name, addr string) string {
		if needsEncoding(name) && !s.header8bit {
			return encodeHeader(name) + " <" + addr + ">"
		}
		return `"` + name + `" <` + addr + ">"
	}

	var h strings.Builder
	hdr := func(k, v string) { h.WriteString(k + ": " + v + "\r\n") }
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("From", address(fromName, fromAddr))
	hdr("To", address(toName, toAddr))
	hdr("Subject", encodeHeader(s.subject))
	switch {
	case s.messageID != "":
		hdr("Message-ID", s.messageID)
	case !s.noMessageID:
		hdr("Message-ID", g.messageID())
	}
	hdr("X-Corpus-ID", fmt.Sprintf("%s-%d", g.idPrefix, g.seq))
	hdr("MIME-Version", "1.0")

	if s.emptyBody {
		hdr("Content-Type", "text/plain; charset=utf-8")
		h.WriteString("\r\n")
		return g.finish(s, date, []byte(h.String()))
	}

	textSize := s.textSize
	if textSize == 0 {
		textSize = g.logUniform(60, 24<<10)
	}
	text := g.text(textSize)
	textHeader, textBody := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n", text
	if s.quotedPrint {
		var qp bytes.Buffer
		w := quotedprintable.NewWriter(&qp)
		_, _ = w.Write([]byte(text)) // a bytes.Buffer cannot fail
		_ = w.Close()
		textHeader = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
		textBody = qp.String()
	}

	attachments := s.attachments
	if s.totalSize > 0 {
		// Base64 turns 57 raw bytes into a 78-byte line.
		raw := max(s.totalSize-len(textBody)-h.Len()-400, 1024) * 57 / 78
		attachments = append(slices.Clone(attachments), raw)
	}
	if len(attachments) == 0 {
		h.WriteString(textHeader)
		h.WriteString("\r\n")
		h.WriteString(textBody)
		return g.finish(s, date, []byte(h.String()))
	}

	boundary := fmt.Sprintf("=_mm_%012x", g.r.Uint64()>>16)
	hdr("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary}))
	var b bytes.Buffer
	b.WriteString(h.String())
	b.WriteString("\r\nThis is a multi-part message in MIME format.\r\n")
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString(textHeader + "\r\n" + textBody)
	for i, size := range attachments {
		at := pick(g.r, attachTypes)
		name := fmt.Sprintf("příloha-%d.%s", i+1, at.ext)
		if g.r.IntN(2) == 0 {
			name = fmt.Sprintf("attachment-%d.%s", g.r.IntN(1000), at.ext)
		}
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + at.ctype + "\r\n")
		b.WriteString("Content-Transfer-Encoding: base64\r\n")
		b.WriteString("Content-Disposition: " + mime.FormatMediaType("attachment", map[string]string{"filename": name}) + "\r\n\r\n")
		b.Write(base64Lines(g.binary(size, at.magic)))
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return g.finish(s, date, b.Bytes())
}

func (g *corpusGen) finish(s msgSpec, date time.Time, body []byte) Message {
	return Message{Folder: s.folder, Body: body, Flags: slices.Clone(s.flags), InternalDate: date}
}

func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// Load creates the folders on a logged-in client (converting "/" paths to
// the server's separator, which it learns from LIST; a leaf that contains
// the server's separator is an error) and APPENDs every message with its
// flags and internal date. Flags the server refuses are an error.
//
// When the server announces a personal namespace prefix (NAMESPACE, e.g.
// "INBOX."), folders other than INBOX are created under it. Folders that
// already exist are used as they are. Cancelling ctx closes cl, since
// imapclient cannot abort a command any other way.
func (c *Corpus) Load(ctx context.Context, cl *imapclient.Client) error {
	defer context.AfterFunc(ctx, func() { cl.Close() })()

	names, err := ServerFolderNames(cl, c.Folders)
	if err != nil {
		return fmt.Errorf("load corpus: %w", err)
	}
	existing, err := cl.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("load corpus: list: %w", err)
	}
	have := make(map[string]bool)
	for _, l := range existing {
		have[l.Mailbox] = true
	}
	for _, f := range c.Folders {
		name := names[f]
		if have[name] || strings.EqualFold(name, "INBOX") {
			continue
		}
		if err := cl.Create(name, nil).Wait(); err != nil {
			var ie *imap.Error
			if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
				return fmt.Errorf("load corpus: create %q: %w", name, ctxErr(ctx, err))
			}
		}
		have[name] = true
	}
	for i, m := range c.Messages {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("load corpus: %w", err)
		}
		name, ok := names[m.Folder]
		if !ok {
			return fmt.Errorf("load corpus: message %d is in folder %q, which is not in Folders", i, m.Folder)
		}
		if err := Append(cl, name, m); err != nil {
			return fmt.Errorf("load corpus: message %d (%d bytes) to %q: %w", i, len(m.Body), name, ctxErr(ctx, err))
		}
	}
	return nil
}

// Append puts one message into a mailbox with its flags and date; the
// server's tagged answer explains a refused literal best.
func Append(cl *imapclient.Client, mailbox string, m Message) error {
	cmd := cl.Append(mailbox, int64(len(m.Body)), &imap.AppendOptions{Flags: m.Flags, Time: m.InternalDate})
	_, werr := cmd.Write(m.Body)
	cerr := cmd.Close()
	// The tagged answer explains a failed write better (the server may
	// have refused the literal), so prefer it.
	if _, err := cmd.Wait(); err != nil {
		return err
	}
	return errors.Join(werr, cerr)
}

// ServerFolderNames maps corpus folder paths ("/"-separated) to the names
// the server behind cl uses: its hierarchy separator (from LIST "" "") and
// its personal namespace prefix (from NAMESPACE, if supported). A path
// component that contains the server's separator is an error, since it
// cannot be expressed on that server.
func ServerFolderNames(cl *imapclient.Client, folders []string) (map[string]string, error) {
	root, err := cl.List("", "", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list hierarchy separator: %w", err)
	}
	var delim rune
	if len(root) > 0 {
		delim = root[0].Delim
	}
	prefix := ""
	if cl.Caps().Has(imap.CapNamespace) {
		ns, err := cl.Namespace().Wait()
		if err != nil {
			return nil, fmt.Errorf("namespace: %w", err)
		}
		if len(ns.Personal) > 0 {
			prefix = ns.Personal[0].Prefix
		}
	}
	out := make(map[string]string, len(folders))
	for _, f := range folders {
		if strings.EqualFold(f, "INBOX") {
			out[f] = "INBOX"
			continue
		}
		parts := strings.Split(f, "/")
		if delim == 0 && len(parts) > 1 {
			return nil, fmt.Errorf("folder %q: server has no hierarchy separator", f)
		}
		for _, p := range parts {
			if delim != 0 && strings.ContainsRune(p, delim) {
				return nil, fmt.Errorf("folder %q: name %q contains the server's separator %q", f, p, delim)
			}
		}
		out[f] = prefix + strings.Join(parts, string(delim))
	}
	return out, nil
}

// ctxErr prefers the context's error: a cancelled ctx closes the client,
// and "use of closed network connection" would hide why.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
