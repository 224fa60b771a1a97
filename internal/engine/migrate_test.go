package engine_test

import (
	"context"
	"errors"
	"mailmigrate/internal/i18n"
	"net"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

const (
	srcUser = "jana@old.test"
	srcPass = `zdroj "heslo" \ {ž}`
	dstUser = "jana@new.test"
	dstPass = "cíl heslo"
)

// bed is a Dovecot (or two) with a source and a destination account, a
// ledger file and a corpus loaded into the source.
type bed struct {
	t        *testing.T
	src, dst *testbed.Dovecot
	acct     engine.Account
	led      *store.DB
	corpus   *testbed.Corpus
}

func endpoint(t testing.TB, d *testbed.Dovecot) imapconn.Endpoint {
	pool, err := imapconn.LoadCAFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return imapconn.Endpoint{Host: d.Host, Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool}
}

func newBed(t *testing.T, srcOpts, dstOpts *testbed.DovecotOptions, corpus testbed.CorpusOptions) *bed {
	t.Helper()
	b := &bed{t: t}
	b.src = testbed.StartDovecotT(t, *srcOpts)
	b.dst = b.src
	if dstOpts != nil {
		b.dst = testbed.StartDovecotT(t, *dstOpts)
	}
	if err := b.src.AddUser(srcUser, srcPass, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.dst.AddUser(dstUser, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	b.acct = engine.Account{Source: endpoint(t, b.src), SourceUser: srcUser, SourcePassword: srcPass,
		Dest: endpoint(t, b.dst), DestUser: dstUser, DestPassword: dstPass}
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	b.led = led
	b.corpus = testbed.GenerateCorpus(corpus)
	if srcOpts.Separator == "." {
		b.corpus = b.corpus.Without(testbed.FolderDotLeaf)
	}
	if err := b.corpus.Load(context.Background(), b.srcClient()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bed) srcClient() *imapclient.Client { return b.src.LoginT(b.t, srcUser, srcPass) }
func (b *bed) dstClient() *imapclient.Client { return b.dst.LoginT(b.t, dstUser, dstPass) }

func (b *bed) run(opt engine.Options) (*engine.Report, error) {
	b.t.Helper()
	if opt.Conn.Timeout == 0 {
		opt.Conn.Timeout = 20 * time.Second
	}
	return engine.Run(context.Background(), b.acct, b.led, opt)
}

func (b *bed) mustRun() *engine.Report {
	b.t.Helper()
	r, err := b.run(engine.Options{})
	if err != nil {
		b.t.Fatalf("run: %v (%+v)", err, r.Failure)
	}
	return r
}

func mapping(r *engine.Report) map[string]string {
	m := map[string]string{}
	for _, f := range r.Folders {
		m[f.Source] = f.Dest
	}
	return m
}

func (b *bed) verify(r *engine.Report) {
	b.t.Helper()
	if err := testbed.Verify(context.Background(), b.srcClient(), b.dstClient(), mapping(r)); err != nil {
		b.t.Fatalf("destination differs from source:\n%v", err)
	}
}

func TestMigrateCorpus(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 1, Messages: 150})
	ctx := context.Background()
	src := b.srcClient()
	for _, f := range []string{"Projekty/Klient A", "Účty"} {
		if err := src.Subscribe(f).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	before, err := testbed.Snapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var progress engine.Progress
	r, err := b.run(engine.Options{Progress: &progress})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if r.Status != engine.StatusDone {
		t.Fatalf("status %s, failure %+v", r.Status, r.Failure)
	}
	if r.Totals.Copied != len(b.corpus.Messages) || r.Totals.AlreadyPresent != 0 {
		t.Errorf("copied %d, present %d; want %d, 0", r.Totals.Copied, r.Totals.AlreadyPresent, len(b.corpus.Messages))
	}
	// Dovecot keeps everything as it was given: nothing to remark.
	for _, f := range r.Folders {
		if rm := f.Remarks(i18n.New(i18n.English)); len(rm) > 0 && f.Note.IsZero() {
			t.Errorf("%s: remarks %q", f.Source, rm)
		}
	}
	b.verify(r)

	after, err := testbed.Snapshot(ctx, b.srcClient())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the source changed during the migration:\nbefore %+v\nafter  %+v", before, after)
	}

	// Special folders land in the destination's own, by name table.
	m := mapping(r)
	for src, want := range map[string]string{"Odeslaná pošta": "Sent", "Koš": "Trash", "Archiv/2023": "Archive/2023",
		"Drafts": "Drafts", "INBOX": "INBOX", "Projekty/v1.2": "Projekty/v1.2"} {
		if m[src] != want {
			t.Errorf("%q mapped to %q, want %q", src, m[src], want)
		}
	}

	// Subscriptions follow the source.
	subs, err := b.dstClient().List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	subscribed := map[string]bool{}
	for _, s := range subs {
		subscribed[s.Mailbox] = true
	}
	for folder, want := range map[string]bool{"Projekty/Klient A": true, "Účty": true, "Newsletters": false, "Účty/Doklady 2019": false} {
		if subscribed[folder] != want {
			t.Errorf("destination %q subscribed = %v, want %v as on the source", folder, subscribed[folder], want)
		}
	}

	s := progress.Snapshot()
	if s.MessagesDone != s.MessagesTotal || s.MessagesTotal != int64(len(b.corpus.Messages)) || s.FoldersDone != s.FoldersTotal {
		t.Errorf("progress at the end: %+v", s)
	}

	// An immediate re-run copies nothing and touches nothing.
	r2 := b.mustRun()
	if r2.Totals.Copied != 0 || r2.Totals.AlreadyPresent != len(b.corpus.Messages) {
		t.Errorf("re-run copied %d, present %d", r2.Totals.Copied, r2.Totals.AlreadyPresent)
	}
	for _, f := range r2.Folders {
		if !f.Unchanged {
			t.Errorf("re-run did not take the fast path for %q", f.Source)
		}
	}
	b.verify(r2)

	// New mail on the source is copied on the next run, and nothing else.
	more := b.corpus.More(77, 9)
	if err := more.Load(ctx, b.srcClient()); err != nil {
		t.Fatal(err)
	}
	r3 := b.mustRun()
	if r3.Totals.Copied != 9 || r3.Totals.AlreadyPresent != len(b.corpus.Messages) {
		t.Errorf("after 9 new messages: copied %d, present %d", r3.Totals.Copied, r3.Totals.AlreadyPresent)
	}
	b.verify(r3)
}

// Syncing into a mailbox that already holds part of the mail copies only
// the missing messages, even without a ledger.
func TestSyncIntoPartlyFilledDestination(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 2, Messages: 80})
	// A third of the messages, including one of the two that share a
	// Message-ID and one without any, are already on the destination.
	pre := &testbed.Corpus{Folders: b.corpus.Folders}
	var sharedSeen, noIDSeen bool
	ids := map[string]int{}
	for _, m := range b.corpus.Messages {
		ids[messageID(m.Body)]++
	}
	for i, m := range b.corpus.Messages {
		id := messageID(m.Body)
		switch {
		case id != "" && ids[id] > 1 && !sharedSeen && !strings.Contains(string(m.Body), "identical"):
			sharedSeen = true
		case id == "" && !noIDSeen:
			noIDSeen = true
		case i%3 != 0:
			continue
		}
		pre.Messages = append(pre.Messages, m)
	}
	dst := b.dstClient()
	// The destination's own names for the special folders.
	r0, err := engine.Check(context.Background(), b.acct, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := mapping(r0)
	for i := range pre.Messages {
		pre.Messages[i].Folder = m[pre.Messages[i].Folder]
	}
	pre.Folders = nil
	seen := map[string]bool{}
	for _, msg := range pre.Messages {
		if !seen[msg.Folder] {
			seen[msg.Folder] = true
			pre.Folders = append(pre.Folders, msg.Folder)
		}
	}
	if err := pre.Load(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	r := b.mustRun()
	if r.Totals.AlreadyPresent != len(pre.Messages) || r.Totals.Copied != len(b.corpus.Messages)-len(pre.Messages) {
		t.Errorf("present %d copied %d; want %d and %d", r.Totals.AlreadyPresent, r.Totals.Copied,
			len(pre.Messages), len(b.corpus.Messages)-len(pre.Messages))
	}
	b.verify(r)
}

func messageID(body []byte) string {
	head, _, _ := strings.Cut(string(body), "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// A flag changed on the source reaches the destination; a flag the user
// changed on the destination is not reverted.
func TestThreeWayFlags(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 3, Messages: 30})
	b.mustRun()
	src, dst := b.srcClient(), b.dstClient()
	if _, err := src.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store := func(c *imapclient.Client, seq uint32, op imap.StoreFlagsOp, f ...imap.Flag) {
		t.Helper()
		if err := c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: op, Silent: true, Flags: f}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	flagsOf := func(c *imapclient.Client, seq uint32) string {
		t.Helper()
		msgs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("fetch flags: %v", err)
		}
		var s []string
		for _, f := range msgs[0].Flags {
			if !strings.EqualFold(string(f), `\Recent`) {
				s = append(s, strings.ToLower(string(f)))
			}
		}
		return strings.Join(sortStrings(s), " ")
	}
	// Parallel appends do not keep the order: find the destination copies
	// of source messages 1 and 2 by content.
	seqOf := bodySeqs(t, dst)
	srcBodies := bodies(t, src)
	d1, d2 := seqOf[string(srcBodies[0])], seqOf[string(srcBodies[1])]
	if d1 == 0 || d2 == 0 {
		t.Fatal("source messages 1 and 2 not found on the destination")
	}
	// On the source, message 1 gets \Flagged and $Label1 and loses the rest.
	store(src, 1, imap.StoreFlagsSet, imap.FlagFlagged, "$Label1")
	// On the destination the user marks message 2 \Answered and a custom
	// keyword, and message 1 "Projekt".
	store(dst, d2, imap.StoreFlagsAdd, imap.FlagAnswered, "Mine")
	store(dst, d1, imap.StoreFlagsAdd, "Projekt")
	want2 := flagsOf(dst, d2)
	r := b.mustRun()
	if r.Totals.FlagsUpdated != 1 || r.Totals.Copied != 0 {
		t.Errorf("flags updated %d, copied %d; want 1 and 0", r.Totals.FlagsUpdated, r.Totals.Copied)
	}
	if got := flagsOf(dst, d1); got != "$label1 \\flagged projekt" {
		t.Errorf("destination message 1 flags %q, want the source's change plus the user's Projekt", got)
	}
	if got := flagsOf(dst, d2); got != want2 {
		t.Errorf("destination message 2 flags %q, want the user's %q kept", got, want2)
	}
	// Once more: nothing to do.
	if r := b.mustRun(); r.Totals.FlagsUpdated != 0 {
		t.Errorf("third run updated %d flags", r.Totals.FlagsUpdated)
	}
}

// bodies returns the bodies of the selected mailbox in sequence order.
func bodies(t *testing.T, c *imapclient.Client) [][]byte {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}},
		&imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		for _, b := range m.BodySection {
			out[i] = b.Bytes
		}
	}
	return out
}

// bodySeqs maps each body of the selected mailbox to its sequence number.
func bodySeqs(t *testing.T, c *imapclient.Client) map[string]uint32 {
	m := map[string]uint32{}
	for i, b := range bodies(t, c) {
		m[string(b)] = uint32(i + 1)
	}
	return m
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// Different layouts: a "/" source into an "INBOX." prefixed "." server and
// back.
func TestSeparatorsAndPrefixes(t *testing.T) {
	t.Run("slash to INBOX-dot", func(t *testing.T) {
		b := newBed(t, &testbed.DovecotOptions{}, &testbed.DovecotOptions{Separator: ".", Prefix: "INBOX."},
			testbed.CorpusOptions{Seed: 4, Messages: 40})
		r := b.mustRun()
		m := mapping(r)
		if got := m["Projekty/v1.2"]; got != "INBOX.Projekty.v1․2" {
			t.Errorf("Projekty/v1.2 -> %q", got)
		}
		if got := m["Archiv/2023"]; !strings.HasPrefix(got, "INBOX.") || !strings.HasSuffix(got, ".2023") {
			t.Errorf("Archiv/2023 -> %q", got)
		}
		b.verify(r)
		if r := b.mustRun(); r.Totals.Copied != 0 {
			t.Errorf("re-run copied %d", r.Totals.Copied)
		}
	})
	t.Run("dot to slash", func(t *testing.T) {
		b := newBed(t, &testbed.DovecotOptions{Separator: "."}, &testbed.DovecotOptions{},
			testbed.CorpusOptions{Seed: 5, Messages: 40})
		r := b.mustRun()
		if got := mapping(r)["Archiv.2023"]; got != "Archive/2023" {
			t.Errorf("Archiv.2023 -> %q", got)
		}
		b.verify(r)
	})
}

// Over quota stops the account with what was copied kept; after the quota
// is raised, the next run copies only the rest.
func TestOverQuotaThenResume(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 6, Messages: 200})
	var total int64
	for _, m := range b.corpus.Messages {
		total += int64(len(m.Body))
	}
	if err := b.dst.SetQuota(dstUser, total/2); err != nil {
		t.Fatal(err)
	}
	r, err := b.run(engine.Options{})
	if !errors.Is(err, imapconn.ErrOverQuota) || r.Status != engine.StatusOverQuota {
		t.Fatalf("err %v status %s; want over quota", err, r.Status)
	}
	if r.Failure == nil || !strings.Contains(r.Failure.Text.String(), "quota") || r.Failure.Side != engine.SideDest ||
		!strings.Contains(r.Failure.Text.String(), "more is needed") {
		t.Errorf("failure %+v, want an over-quota explanation about the destination with what is missing", r.Failure)
	}
	// The shortfall was known before the copy began.
	if r.Space == nil || r.Space.Shortfall <= 0 || r.Space.Limit == 0 || !strings.Contains(r.Space.Warning().String(), "more space is needed") {
		t.Errorf("space check %+v", r.Space)
	}
	chk, err := engine.Check(context.Background(), b.acct, engine.Options{})
	if err != nil || chk.Space == nil || chk.Space.ToCopy < total || chk.Space.Shortfall <= 0 {
		t.Errorf("check's space %+v, %v", chk.Space, err)
	}
	first := r.Totals.Copied
	if first == 0 || first >= len(b.corpus.Messages) {
		t.Fatalf("copied %d of %d before the quota stopped it", first, len(b.corpus.Messages))
	}
	// Batches in parallel must not carry the mailbox past its quota: the
	// server checks each against what was stored when it began.
	if r.Totals.BytesCopied > total/2 {
		t.Errorf("copied %d bytes into a quota of %d", r.Totals.BytesCopied, total/2)
	}
	if err := b.dst.SetQuota(dstUser, 0); err != nil {
		t.Fatal(err)
	}
	r2 := b.mustRun()
	// An APPEND in flight when the account stopped may have landed without
	// its answer; the resume finds it there instead of copying it again.
	if r2.Totals.Copied+r2.Totals.AlreadyPresent != len(b.corpus.Messages) || r2.Totals.Copied > len(b.corpus.Messages)-first {
		t.Errorf("resume copied %d, found %d present; %d were copied before", r2.Totals.Copied, r2.Totals.AlreadyPresent, first)
	}
	b.verify(r2)
}

// A message larger than the destination accepts is skipped and listed; the
// rest is copied.
func TestTooBigSkipped(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, &testbed.DovecotOptions{MaxMailSize: 256 << 10},
		testbed.CorpusOptions{Seed: 7, Messages: 60})
	big := 0
	for _, m := range b.corpus.Messages {
		if len(m.Body) > 256<<10 {
			big++
		}
	}
	if big == 0 {
		t.Fatal("corpus has no message over 256 KiB")
	}
	r, err := b.run(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != engine.StatusWarnings || r.Totals.Skipped != big || r.Totals.Copied != len(b.corpus.Messages)-big {
		t.Fatalf("status %s skipped %d copied %d; want warnings, %d, %d", r.Status, r.Totals.Skipped, r.Totals.Copied,
			big, len(b.corpus.Messages)-big)
	}
	checkSkipped := func(r *engine.Report) {
		t.Helper()
		for _, f := range r.Folders {
			for _, s := range f.Skipped {
				if s.Size <= 256<<10 || s.Reason.IsZero() || s.Date.IsZero() {
					t.Errorf("skipped entry %+v lacks size, reason or date", s)
				}
			}
		}
	}
	checkSkipped(r)
	// With the hosting's limit configured, the same messages are listed
	// before the copy, naming the limit, instead of being refused one by one.
	b2 := newBed(t, &testbed.DovecotOptions{}, &testbed.DovecotOptions{MaxMailSize: 256 << 10},
		testbed.CorpusOptions{Seed: 7, Messages: 60})
	r, err = b2.run(engine.Options{MaxMessageSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Skipped != big || !strings.Contains(firstSkipped(r).Reason.String(), "256.0 KB") {
		t.Fatalf("with the configured limit: skipped %d (%+v), want %d listed before the copy", r.Totals.Skipped, firstSkipped(r), big)
	}
	checkSkipped(r)
}

func firstSkipped(r *engine.Report) engine.MessageIssue {
	for _, f := range r.Folders {
		if len(f.Skipped) > 0 {
			return f.Skipped[0]
		}
	}
	return engine.MessageIssue{}
}

func TestAccountFailuresAreTyped(t *testing.T) {
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	if err := d.AddUser(dstUser, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	good := endpoint(t, d)
	closed := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	noCA := good
	noCA.RootCAs = nil
	starttls := good
	starttls.Port, starttls.Security = d.IMAPPort, imapconn.StartTLS
	tests := []struct {
		name   string
		src    imapconn.Endpoint
		user   string
		pass   string
		kind   imapconn.Kind
		side   engine.Side
		phrase string
	}{
		{"wrong password", good, dstUser, "wrong", imapconn.ErrAuth, engine.SideSource, "full address"},
		{"login without domain", good, "jana", dstPass, imapconn.ErrAuth, engine.SideSource, "mailbox@domain.tld"},
		{"closed port", imapconn.Endpoint{Host: "127.0.0.1", Port: closed, Security: imapconn.TLS}, dstUser, dstPass, imapconn.ErrConnect, engine.SideSource, "port"},
		{"unresolvable", imapconn.Endpoint{Host: "no-such-host.invalid", Port: 993, Security: imapconn.TLS}, dstUser, dstPass, imapconn.ErrResolve, engine.SideSource, "DNS"},
		{"untrusted certificate", noCA, dstUser, dstPass, imapconn.ErrTLS, engine.SideSource, "certificate"},
		{"silent server", imapconn.Endpoint{Host: "127.0.0.1", Port: silent.Addr().(*net.TCPAddr).Port, Security: imapconn.Plain}, dstUser, dstPass, imapconn.ErrTimeout, engine.SideSource, "stopped answering"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := engine.Account{Source: tc.src, SourceUser: tc.user, SourcePassword: tc.pass,
				Dest: good, DestUser: dstUser, DestPassword: dstPass}
			start := time.Now()
			r, err := engine.Check(context.Background(), a, engine.Options{Conn: imapconn.Options{Timeout: time.Second, DialTimeout: 2 * time.Second}})
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if r.Failure == nil || r.Failure.Side != tc.side || !strings.Contains(r.Failure.Text.String(), tc.phrase) {
				t.Errorf("failure %+v, want side %s and %q in the message", r.Failure, tc.side, tc.phrase)
			}
			for _, secret := range []string{dstPass, "wrong"} {
				if strings.Contains(r.Failure.Text.String()+r.Failure.Detail+err.Error(), secret) {
					t.Errorf("a password appears in the failure: %+v", r.Failure)
				}
			}
		})
	}
	// STARTTLS works, and the destination side is named when it fails.
	a := engine.Account{Source: starttls, SourceUser: dstUser, SourcePassword: dstPass,
		Dest: good, DestUser: dstUser, DestPassword: "bad"}
	r, err := engine.Check(context.Background(), a, engine.Options{})
	if !errors.Is(err, imapconn.ErrAuth) || r.Failure.Side != engine.SideDest {
		t.Errorf("STARTTLS source + bad destination password: err %v failure %+v", err, r.Failure)
	}
}

// A 50 MB message goes through a spool file, not through memory.
func TestLargeMessageMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large message")
	}
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 8, Messages: 5, Huge: 50 << 20})
	b.corpus = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	r := b.mustRun()
	close(stop)
	<-done
	runtime.ReadMemStats(&after)
	if r.Totals.BytesCopied < 50<<20 {
		t.Fatalf("copied only %d bytes", r.Totals.BytesCopied)
	}
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("heap in use grew by at most %.1f MB; %.1f MB allocated in all", float64(grew)/(1<<20), float64(allocated)/(1<<20))
	if grew > 25<<20 {
		t.Errorf("heap grew by %.1f MB for a 50 MB message", float64(grew)/(1<<20))
	}
	b.verify(r)
}

// A message whose APPEND breaks the connection is retried once on a fresh
// connection; one that keeps failing is recorded and the rest goes on; a
// destination that stops answering mid-APPEND is timed out, not waited for.
func TestMessageFailuresRetriedThenRecorded(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 9, Messages: 40})
	var all [][]byte
	for _, m := range b.corpus.Messages {
		all = append(all, m.Body)
	}
	// Message-IDs found in exactly one message, as patterns the proxy reacts to.
	var unique [][]byte
	for _, m := range b.corpus.Messages {
		id := []byte(messageID(m.Body))
		if len(id) == 0 {
			continue
		}
		n := 0
		for _, body := range all {
			n += strings.Count(string(body), string(id))
		}
		if n == 1 {
			unique = append(unique, id)
		}
	}
	if len(unique) < 3 {
		t.Fatal("corpus has fewer than 3 unique Message-IDs")
	}
	proxy := testbed.StartProxy(t, b.dst.IMAPAddr())
	proxy.CutOn(unique[0], 1)  // fails once, then goes through
	proxy.CutOn(unique[1], -1) // fails every time
	proxy.StallOn(unique[2], 1)
	direct := b.acct.Dest
	b.acct.Dest = imapconn.Endpoint{Host: "127.0.0.1", Port: proxy.Port(), Security: imapconn.Plain}
	start := time.Now()
	r, err := b.run(engine.Options{Conn: imapconn.Options{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %s with a stalled server", time.Since(start))
	}
	// The stalled APPEND reached the server before the answer was lost: the
	// retry finds it there ("already present") instead of appending twice.
	if r.Status != engine.StatusWarnings || r.Totals.Failed != 1 || r.Totals.Copied+r.Totals.AlreadyPresent != len(all)-1 {
		t.Fatalf("status %s, failed %d, copied %d, present %d; want warnings, 1, %d in all",
			r.Status, r.Totals.Failed, r.Totals.Copied, r.Totals.AlreadyPresent, len(all)-1)
	}
	for _, f := range r.Folders {
		for _, m := range f.Failed {
			if m.Subject == "" || m.Reason.IsZero() {
				t.Errorf("failed message listed without subject or reason: %+v", m)
			}
		}
	}
	// Straight to the server, the one that failed is copied, nothing else.
	b.acct.Dest = direct
	r2 := b.mustRun()
	if r2.Totals.Copied != 1 {
		t.Errorf("second run copied %d, want the 1 that failed", r2.Totals.Copied)
	}
	b.verify(r2)
}

// appendLimited announces an APPENDLIMIT (RFC 7889).
type appendLimited struct {
	imapserver.Session
	limit uint32
}

func (a appendLimited) AppendLimit() uint32 { return a.limit }

// A destination that announces APPENDLIMIT gets no message over it: those
// are listed as skipped before the copy starts.
func TestAppendLimitListedBeforeCopy(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 10, Messages: 40})
	const limit = 200 << 10
	port := testbed.StartMemServer(t, dstUser, dstPass, func(s imapserver.Session) imapserver.Session {
		return appendLimited{s, limit}
	})
	b.acct.Dest = imapconn.Endpoint{Host: "127.0.0.1", Port: port, Security: imapconn.Plain}
	big := 0
	for _, m := range b.corpus.Messages {
		if len(m.Body) > limit {
			big++
		}
	}
	r, err := b.run(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if big == 0 || r.Totals.Skipped != big || r.Totals.Copied != len(b.corpus.Messages)-big {
		t.Fatalf("skipped %d copied %d; want %d and %d", r.Totals.Skipped, r.Totals.Copied, big, len(b.corpus.Messages)-big)
	}
	for _, f := range r.Folders {
		for _, s := range f.Skipped {
			if !strings.Contains(s.Reason.String(), "200.0 KB") || s.Size <= limit {
				t.Errorf("skipped %+v", s)
			}
		}
	}
}

// createRefusing refuses to create any folder whose name contains refuse,
// as a server does with names it cannot store.
type createRefusing struct {
	imapserver.Session
	refuse string
}

func (c createRefusing) Create(name string, opts *imap.CreateOptions) error {
	if strings.Contains(name, c.refuse) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox name not allowed here"}
	}
	return c.Session.Create(name, opts)
}

// A folder the destination refuses under every name is reported, each of
// its messages as failed, while every other folder is copied.
func TestFolderThatCannotBeCreated(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 11, Messages: 60})
	port := testbed.StartMemServer(t, dstUser, dstPass, func(s imapserver.Session) imapserver.Session {
		return createRefusing{s, "Klient A"}
	})
	b.acct.Dest = imapconn.Endpoint{Host: "127.0.0.1", Port: port, Security: imapconn.Plain}
	r, err := b.run(engine.Options{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	refused, copied := 0, 0
	for _, f := range r.Folders {
		if f.SourceMessages != f.Copied+f.AlreadyPresent+len(f.Skipped)+len(f.Failed) {
			t.Errorf("%s: %d source messages, %d+%d+%d+%d accounted for", f.Source, f.SourceMessages,
				f.Copied, f.AlreadyPresent, len(f.Skipped), len(f.Failed))
		}
		if strings.Contains(f.Source, "Klient A") {
			refused += f.SourceMessages
			for _, m := range f.Failed {
				if !strings.Contains(m.Reason.String(), "refused to create") || !strings.Contains(m.Reason.String(), "not allowed") {
					t.Errorf("%s: reason %q", f.Source, m.Reason.String())
				}
			}
			if f.Copied != 0 || len(f.Failed) != f.SourceMessages {
				t.Errorf("%s: copied %d, failed %d of %d", f.Source, f.Copied, len(f.Failed), f.SourceMessages)
			}
			continue
		}
		copied += f.Copied
		if f.Copied != f.SourceMessages {
			t.Errorf("%s: copied %d of %d", f.Source, f.Copied, f.SourceMessages)
		}
	}
	if refused == 0 || copied == 0 || r.Status != engine.StatusWarnings {
		t.Errorf("refused %d, copied %d, status %s; want both and done with warnings", refused, copied, r.Status)
	}
}

// panicLedger stands for a defect met in the middle of a run: the ledger
// panics in one of its methods.
type panicLedger struct {
	engine.Ledger
	in string
}

func (l panicLedger) Destinations(ctx context.Context, account string) (map[string]string, error) {
	if l.in == "Destinations" {
		panic("ledger defect")
	}
	return l.Ledger.Destinations(ctx, account)
}

func (l panicLedger) Record(ctx context.Context, account, folder string, uidValidity uint32, e []engine.Entry) error {
	if l.in == "Record" {
		panic("ledger defect")
	}
	return l.Ledger.Record(ctx, account, folder, uidValidity, e)
}

// A panic, in the run itself or in the copy pipeline's goroutines, ends the
// account with an internal failure and leaves no connection open.
func TestPanicBecomesFailure(t *testing.T) {
	for _, in := range []string{"Destinations", "Record"} {
		t.Run(in, func(t *testing.T) {
			b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 12, Messages: 30})
			before := runtime.NumGoroutine()
			r, err := engine.Run(context.Background(), b.acct, panicLedger{b.led, in},
				engine.Options{Conn: imapconn.Options{Timeout: 10 * time.Second}})
			var ie *engine.InternalError
			if !errors.As(err, &ie) || r.Failure == nil || r.Failure.Kind != engine.KindInternal {
				t.Fatalf("err %v, failure %+v; want an internal failure", err, r.Failure)
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before+2 {
				t.Errorf("%d goroutines left running (before: %d)", n, before)
			}
		})
	}
}

// Accounts copied at the same time share one small memory: chunks wait
// for a free arena, a message larger than an arena borrows several, one
// larger than all of them goes through a file, and nothing waits forever.
func TestSharedMemory(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 11, Messages: 80,
		AttachmentPercent: 30, AttachmentMax: 600 << 10, Huge: 3 << 20})
	const second = "eva@new.test"
	if err := b.dst.AddUser(second, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	mem := engine.NewMemory(1 << 20) // four arenas of 256 KiB
	accounts := []engine.Account{b.acct, b.acct}
	accounts[1].DestUser = second
	reports := make([]*engine.Report, len(accounts))
	errs := make([]error, len(accounts))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan int)
	for i, a := range accounts {
		go func() {
			reports[i], errs[i] = engine.Run(ctx, a, b.led, engine.Options{Memory: mem, TempDir: t.TempDir(),
				Conn: imapconn.Options{Timeout: 20 * time.Second}})
			done <- i
		}()
	}
	for range accounts {
		<-done
	}
	for i, r := range reports {
		if errs[i] != nil || r.Totals.Copied != len(b.corpus.Messages) {
			t.Fatalf("account %d: copied %d of %d: %v", i, r.Totals.Copied, len(b.corpus.Messages), errs[i])
		}
	}
	b.verify(reports[0])
	if err := testbed.Verify(context.Background(), b.srcClient(), b.dst.LoginT(t, second, dstPass), mapping(reports[1])); err != nil {
		t.Fatalf("second account differs from the source:\n%v", err)
	}
}

// A run that stopped mid-copy may have its last APPEND written by the
// server after it is gone. The next run waits until the destination's
// counts stay the same, so that such a message, landing a second into the
// run, is found there rather than copied again.
func TestLateAppendOfStoppedRun(t *testing.T) {
	b := newBed(t, &testbed.DovecotOptions{}, nil, testbed.CorpusOptions{Seed: 14, Messages: 60})
	var late *testbed.Message
	for i, m := range b.corpus.Messages {
		if m.Folder == "INBOX" && len(m.Body) > 256<<10 {
			late = &b.corpus.Messages[i]
			break
		}
	}
	if late == nil {
		t.Fatal("corpus has no INBOX message over 256 KiB")
	}
	// The first run leaves INBOX without a complete pass: its large
	// messages are skipped.
	if r, err := b.run(engine.Options{MaxMessageSize: 256 << 10}); err != nil || r.Totals.Skipped == 0 {
		t.Fatalf("first run: %v, %d skipped", err, r.Totals.Skipped)
	}
	// The stopped run's APPEND of one of them lands a second into the next.
	landed := make(chan error, 1)
	time.AfterFunc(time.Second, func() {
		c := b.dstClient()
		cmd := c.Append("INBOX", int64(len(late.Body)), &imap.AppendOptions{Flags: late.Flags, Time: late.InternalDate})
		if _, err := cmd.Write(late.Body); err != nil {
			landed <- err
			return
		}
		if err := cmd.Close(); err != nil {
			landed <- err
			return
		}
		_, err := cmd.Wait()
		landed <- err
	})
	start := time.Now()
	r := b.mustRun()
	if err := <-landed; err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("the run took %s: it did not wait for the stopped run's messages", time.Since(start))
	}
	if inbox := folderReport(t, r, "INBOX"); inbox.AlreadyPresent == 0 {
		t.Errorf("INBOX: %+v; want the late message found on the destination", inbox)
	}
	b.verify(r)
}
