package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// matrixServer is one IMAP server of the cross-server matrix and what it
// legitimately does differently from Dovecot.
type matrixServer struct {
	name  string
	user  string // a login this server accepts
	start func(t *testing.T) testbed.Server
	// holdable trims the matrix corpus to what the server can hold when
	// it is the source (a test loads it there; a migration cannot change
	// what an old server holds).
	holdable func(*testbed.Corpus) *testbed.Corpus
	// verify relaxes the comparison where the server rewrites what it
	// stores; the same normalisation is applied to both sides.
	verify testbed.VerifyOptions
	// As a destination, the report must say that the server rewrote
	// messages (another size) or dropped keywords.
	rewrites, dropsKeywords bool
}

func startServer[S testbed.Server](start func() (S, error)) func(t *testing.T) testbed.Server {
	return func(t *testing.T) testbed.Server {
		return testbed.StartServerT(t, start)
	}
}

func matrixServers() []matrixServer {
	dotSeparator := func(c *testbed.Corpus) *testbed.Corpus { return c.Without(testbed.FolderDotLeaf) }
	return []matrixServer{
		{
			name: "cyrus", user: "jana", start: startServer(testbed.StartCyrus),
			holdable: dotSeparator,
			// Debian's munge8bit: 8-bit header bytes are stored as 'X',
			// also on APPEND.
			verify: testbed.VerifyOptions{Body: mungeHeader8bit},
		},
		{
			name: "courier", user: "jana@old.test", start: startServer(testbed.StartCourier),
			holdable: dotSeparator,
			// Courier stores Maildir files with LF line ends: a bare CR is
			// lost and a missing final line end is added.
			verify:   testbed.VerifyOptions{Body: func(b []byte) []byte { return finalLineEnd(withoutBareCR(b)) }},
			rewrites: true,
		},
		{
			name: "mailutils", user: "jana@old.test", start: startServer(testbed.StartMailutils),
			// imap4d refuses keywords ("BAD APPEND Unrecognized flag"; no
			// \* in PERMANENTFLAGS), and shows its mbox headers in BODY[].
			holdable:      func(c *testbed.Corpus) *testbed.Corpus { return withoutKeywords(withoutParents(c)) },
			verify:        testbed.VerifyOptions{Body: func(b []byte) []byte { return finalLineEnd(withoutMboxHeaders(b)) }, Flags: systemFlagsOnly},
			dropsKeywords: true,
		},
		{
			name: "dovecot-mbox", user: "jana@old.test",
			start: startServer(func() (testbed.DovecotServer, error) {
				return testbed.StartDovecotServer(testbed.DovecotOptions{Mbox: true})
			}),
			holdable: withoutParents,
			// mbox adds a final line end, and one more after an empty body.
			verify:   testbed.VerifyOptions{Body: finalLineEnd},
			rewrites: true,
		},
		{
			name: "dovecot-INBOX-dot", user: "jana@old.test",
			start: startServer(func() (testbed.DovecotServer, error) {
				return testbed.StartDovecotServer(testbed.DovecotOptions{Separator: ".", Prefix: "INBOX."})
			}),
			holdable: dotSeparator,
		},
	}
}

// TestServers migrates a corpus between Dovecot and each other server, in
// both directions, and checks the initial copy, a re-run, a re-run with a
// fresh ledger, an incremental run, that the source is untouched, and that
// every folder's report adds up.
func TestServers(t *testing.T) {
	for _, s := range matrixServers() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			t.Run("as destination", func(t *testing.T) {
				t.Parallel()
				src := testbed.StartServerT(t, func() (testbed.DovecotServer, error) {
					return testbed.StartDovecotServer(testbed.DovecotOptions{})
				})
				dst := s.start(t)
				r := runMatrix(t, src, srcUser, dst, s.user, nil, s.verify)
				checkRoleCreated(t, dst, s.user, r, "Junk", imap.MailboxAttrJunk)
				rewritten, dropped := 0, 0
				for _, f := range r.Folders {
					rewritten += f.Rewritten
					dropped += len(f.KeywordsDropped)
				}
				if s.rewrites && rewritten == 0 {
					t.Errorf("the report does not say that %s rewrote messages", s.name)
				}
				if s.dropsKeywords && dropped == 0 {
					t.Errorf("the report does not say that %s dropped keywords", s.name)
				}
			})
			t.Run("as source", func(t *testing.T) {
				t.Parallel()
				dst := testbed.StartServerT(t, func() (testbed.DovecotServer, error) {
					return testbed.StartDovecotServer(testbed.DovecotOptions{})
				})
				runMatrix(t, s.start(t), s.user, dst, dstUser, s.holdable, s.verify)
			})
		})
	}
}

const matrixPass = `matrix "heslo" \ ž`

// runMatrix runs the checks and returns the initial copy's report.
func runMatrix(t *testing.T, src testbed.Server, srcLogin string, dst testbed.Server, dstLogin string,
	holdable func(*testbed.Corpus) *testbed.Corpus, vopts testbed.VerifyOptions) *engine.Report {
	ctx := context.Background()
	start := time.Now()
	for _, u := range []struct {
		s     testbed.Server
		login string
	}{{src, srcLogin}, {dst, dstLogin}} {
		if err := u.s.AddUser(u.login, matrixPass); err != nil {
			t.Fatalf("%s: %v", u.s.Name(), err)
		}
	}
	login := func(s testbed.Server, user string) *imapclient.Client {
		t.Helper()
		c, err := s.Login(user, matrixPass)
		if err != nil {
			t.Fatalf("%s: %v", s.Name(), err)
		}
		t.Cleanup(func() { _ = c.Logout().Wait(); _ = c.Close() })
		return c
	}
	corpus := matrixCorpus()
	if holdable != nil {
		corpus = holdable(corpus)
	}
	if err := corpus.Load(ctx, login(src, srcLogin)); err != nil {
		t.Fatalf("load the corpus into %s: %v\n%s", src.Name(), err, src.LogTail(20))
	}
	acct := engine.Account{Source: matrixEndpoint(t, src), SourceUser: srcLogin, SourcePassword: matrixPass,
		Dest: matrixEndpoint(t, dst), DestUser: dstLogin, DestPassword: matrixPass}
	ledger := func() *store.DB {
		led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { led.Close() })
		return led
	}
	led := ledger()
	var logMu sync.Mutex
	var engineLog []string
	run := func(what string, led *store.DB) *engine.Report {
		t.Helper()
		r, err := engine.Run(ctx, acct, led, engine.Options{
			Conn: imapconn.Options{Timeout: 20 * time.Second},
			// Arenas of 64 KiB: the folders come in several chunks,
			// asked for while the one before is read, from every server.
			Memory: engine.NewMemory(256 << 10),
			Logf: func(format string, args ...any) {
				logMu.Lock()
				engineLog = append(engineLog, what+": "+fmt.Sprintf(format, args...))
				logMu.Unlock()
			},
		})
		if err != nil {
			t.Errorf("%s: run: %v (failure %+v)", what, err, r.Failure)
		}
		checkReportAddsUp(t, what, r)
		return r
	}
	verify := func(what string, r *engine.Report) {
		t.Helper()
		err := testbed.VerifyWith(ctx, login(src, srcLogin), login(dst, dstLogin), mapping(r), vopts)
		if err != nil {
			t.Errorf("%s: destination differs from source:\n%v", what, err)
		}
	}
	snapshot := func() map[string]testbed.FolderState {
		t.Helper()
		snap, err := testbed.Snapshot(ctx, login(src, srcLogin))
		if err != nil {
			t.Fatal(err)
		}
		// Mailutils gives an empty mbox a new UIDVALIDITY (the time) at
		// every SELECT or EXAMINE: nothing a client did.
		for name, st := range snap {
			if st.Messages == 0 {
				st.UIDValidity = 0
				snap[name] = st
			}
		}
		return snap
	}
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("engine log:\n%s", strings.Join(engineLog, "\n"))
			logMu.Unlock()
			t.Logf("%s log tail:\n%s", src.Name(), src.LogTail(15))
			t.Logf("%s log tail:\n%s", dst.Name(), dst.LogTail(15))
		}
	}()

	before := snapshot()
	// (a) The initial copy: every message with its flags and date.
	r := run("initial copy", led)
	initial := r
	if r.Totals.Copied != len(corpus.Messages) || r.Totals.AlreadyPresent != 0 {
		t.Errorf("initial copy: copied %d, already present %d; want %d, 0", r.Totals.Copied, r.Totals.AlreadyPresent, len(corpus.Messages))
	}
	verify("initial copy", r)

	// (b) A re-run copies nothing.
	r = run("re-run", led)
	if r.Totals.Copied != 0 {
		t.Errorf("re-run copied %d, want 0", r.Totals.Copied)
	}
	// (c) Nor does one with a new, empty ledger: what is there is found.
	r = run("re-run with a fresh ledger", ledger())
	if r.Totals.Copied != 0 || r.Totals.AlreadyPresent != len(corpus.Messages) {
		t.Errorf("re-run with a fresh ledger: copied %d, already present %d; want 0, %d", r.Totals.Copied, r.Totals.AlreadyPresent, len(corpus.Messages))
	}
	verify("re-run with a fresh ledger", r)

	// (e) The source is untouched by all of that.
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the source changed during the migration:\nbefore %+v\nafter  %+v", before, after)
	}

	// (d) New mail on the source is copied on the next run, and nothing else.
	more := corpus.More(99, 3)
	for i := range more.Messages {
		more.Messages[i].Folder = []string{"INBOX", "Spam", "Newsletters"}[i]
	}
	if holdable != nil {
		more = holdable(more)
	}
	if err := more.Load(ctx, login(src, srcLogin)); err != nil {
		t.Fatalf("load 3 more into %s: %v", src.Name(), err)
	}
	before = snapshot()
	r = run("incremental", led)
	if r.Totals.Copied != len(more.Messages) {
		t.Errorf("incremental: copied %d, want the %d new", r.Totals.Copied, len(more.Messages))
	}
	verify("incremental", r)
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the source changed during the incremental run:\nbefore %+v\nafter  %+v", before, after)
	}
	t.Logf("%s -> %s: %d messages, all runs in %s", src.Name(), dst.Name(), len(corpus.Messages), time.Since(start).Round(time.Millisecond))
	return initial
}

// checkRoleCreated checks that a special folder the destination lacked was
// created with its role, where the server offers CREATE-SPECIAL-USE, so
// that mail clients and later runs find it by its role.
func checkRoleCreated(t *testing.T, dst testbed.Server, user string, r *engine.Report, source string, role imap.MailboxAttr) {
	t.Helper()
	c, err := dst.Login(user, matrixPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps().Has(imap.CapCreateSpecialUse) {
		return
	}
	dest := ""
	for _, f := range r.Folders {
		if f.Source == source {
			dest = f.Dest
		}
	}
	list, err := c.List("", dest, &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil || len(list) != 1 {
		t.Fatalf("LIST %q: %v %+v", dest, err, list)
	}
	if !slices.Contains(list[0].Attrs, role) {
		t.Errorf("%s on %s has %v, want %s (CREATE-SPECIAL-USE)", dest, dst.Name(), list[0].Attrs, role)
	}
}

// checkReportAddsUp is check (f): per folder, every source message is
// accounted for once.
func checkReportAddsUp(t *testing.T, what string, r *engine.Report) {
	t.Helper()
	if r == nil {
		return
	}
	for _, f := range r.Folders {
		if got := f.Copied + f.AlreadyPresent + len(f.Skipped) + len(f.Failed); got != f.SourceMessages {
			t.Errorf("%s: folder %q -> %q: %d source messages but %d copied + %d present + %d skipped + %d failed",
				what, f.Source, f.Dest, f.SourceMessages, f.Copied, f.AlreadyPresent, len(f.Skipped), len(f.Failed))
		}
		for _, m := range f.Failed {
			t.Logf("%s: %q failed: %+v", what, f.Source, m)
		}
	}
}

func matrixEndpoint(t *testing.T, s testbed.Server) imapconn.Endpoint {
	e := s.Endpoint()
	if !e.TLS {
		return imapconn.Endpoint{Host: e.Host, Port: e.Port, Security: imapconn.Plain}
	}
	pool, err := imapconn.LoadCAFile(e.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return imapconn.Endpoint{Host: e.Host, Port: e.Port, Security: imapconn.TLS, RootCAs: pool}
}

// matrixCorpus is a small corpus (about 50 messages) with what trips
// servers up: an empty Junk (the \Junk folder on Dovecot) beside a Spam
// with mail, raw 8-bit header bytes, a message without a final CRLF, a
// bare CR, two different messages sharing a Message-ID (from
// GenerateCorpus) and a folder with mail that has subfolders (Archiv).
func matrixCorpus() *testbed.Corpus {
	c := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: 21, Messages: 40, AttachmentMax: 20 << 10})
	c.Folders = append(c.Folders, "Junk", "Spam")
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	add := func(folder, subject, body string, flags ...imap.Flag) {
		head := fmt.Sprintf("Date: %s\r\nFrom: Matrix <matrix@example.cz>\r\nTo: jana@example.cz\r\nSubject: %s\r\nMessage-ID: <%d.matrix@example.cz>\r\n\r\n",
			date.Format(time.RFC1123Z), subject, len(c.Messages))
		c.Messages = append(c.Messages, testbed.Message{Folder: folder, Body: []byte(head + body), Flags: flags, InternalDate: date})
		date = date.Add(time.Hour)
	}
	for i := range 3 {
		add("Spam", fmt.Sprintf("Výhra %d", i), "Vyhráli jste!\r\n", imap.FlagSeen)
	}
	add("INBOX", "No final CRLF", "the last line has no line break")
	add("INBOX", "Bare CR", "one line\rstill the same line\r\n", imap.FlagFlagged)
	add("Archiv", "In a folder with subfolders", "Archiv holds mail and Archiv/2023.\r\n", imap.FlagSeen)
	add("Archiv", "Second in Archiv", "text\r\n", imap.FlagAnswered)
	return c
}

// withoutBareCR drops every CR that does not start a CRLF.
func withoutBareCR(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i, c := range b {
		if c != '\r' || (i+1 < len(b) && b[i+1] == '\n') {
			out = append(out, c)
		}
	}
	return out
}

// finalLineEnd ends a message with exactly one CRLF, however many line
// ends (or none) it had.
func finalLineEnd(b []byte) []byte {
	return append(bytes.TrimRight(b, "\r\n"), '\r', '\n')
}

// withoutMboxHeaders removes the header fields Mailutils keeps its state in.
func withoutMboxHeaders(b []byte) []byte {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return b
	}
	var out [][]byte
	for _, l := range bytes.Split(head, []byte("\r\n")) {
		name, _, _ := bytes.Cut(l, []byte(":"))
		switch strings.ToLower(string(name)) {
		case "x-imapbase", "x-uid", "status", "x-status":
			continue
		}
		out = append(out, l)
	}
	return append(append(bytes.Join(out, []byte("\r\n")), "\r\n\r\n"...), body...)
}

func withoutMessages(c *testbed.Corpus, drop func(testbed.Message) bool) *testbed.Corpus {
	out := &testbed.Corpus{Folders: c.Folders}
	for _, m := range c.Messages {
		if !drop(m) {
			out.Messages = append(out.Messages, m)
		}
	}
	return out
}

// withoutParents drops the folders that have subfolders, with their mail,
// for mbox servers: there a folder is a file holding mail or a directory
// holding folders, which creating the subfolders makes.
func withoutParents(c *testbed.Corpus) *testbed.Corpus {
	parent := func(f string) bool {
		return slices.ContainsFunc(c.Folders, func(g string) bool { return strings.HasPrefix(g, f+"/") })
	}
	out := withoutMessages(c, func(m testbed.Message) bool { return parent(m.Folder) })
	out.Folders = slices.DeleteFunc(slices.Clone(c.Folders), parent)
	return out
}

func withoutKeywords(c *testbed.Corpus) *testbed.Corpus {
	out := &testbed.Corpus{Folders: c.Folders}
	for _, m := range c.Messages {
		m.Flags = slices.DeleteFunc(slices.Clone(m.Flags), func(f imap.Flag) bool { return !strings.HasPrefix(string(f), `\`) })
		out.Messages = append(out.Messages, m)
	}
	return out
}

func systemFlagsOnly(flags []imap.Flag) []imap.Flag {
	return slices.DeleteFunc(flags, func(f imap.Flag) bool { return !strings.HasPrefix(string(f), `\`) })
}

// mungeHeader8bit does what Cyrus's munge8bit does to a message: every
// 8-bit byte in the header becomes 'X'.
func mungeHeader8bit(body []byte) []byte {
	end := bytes.Index(body, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(body)
	}
	out := bytes.Clone(body)
	for i := range end {
		if out[i] >= 0x80 {
			out[i] = 'X'
		}
	}
	return out
}
