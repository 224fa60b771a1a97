// Package engine copies mail accounts from a source IMAP server to a
// destination IMAP server: folders mapped, every message exactly once with
// its flags and date, the source never modified. It knows nothing of the
// web, jobs or the command line.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/imapconn"
)

// Account is one source login to copy into one destination login.
type Account struct {
	Source         imapconn.Endpoint
	SourceUser     string
	SourcePassword string
	Dest           imapconn.Endpoint
	DestUser       string
	DestPassword   string
}

// Key names the account pair in the ledger. Passwords are not part of it.
func (a Account) Key() string {
	return strings.ToLower(a.Source.Addr()) + "/" + a.SourceUser + " -> " +
		strings.ToLower(a.Dest.Addr()) + "/" + a.DestUser
}

// Options tune a run.
type Options struct {
	Conn imapconn.Options
	// AppendWorkers is the number of destination connections that append in
	// parallel; each waits a round trip per large message, so a few hide
	// the latency. Default 4.
	AppendWorkers int
	// TempDir holds spooled large messages. Default os.TempDir().
	TempDir string
	// Progress, if set, is updated as the run goes.
	Progress *Progress
	// Logf, if set, receives one line per notable event (no secrets).
	Logf func(format string, args ...any)
}

// chunkBytes bounds the bodies fetched by one FETCH command; the next chunk
// is fetched while the previous one is appended.
const chunkBytes = 8 << 20

// chunkMessages bounds the messages of one FETCH command.
const chunkMessages = 250

// ledgerBatch is how many entries are written per ledger transaction.
const ledgerBatch = 200

// Run migrates one account. The report is always returned; err is the
// account-level failure, if any (its explanation is in the report).
func Run(ctx context.Context, a Account, led Ledger, opt Options) (*Report, error) {
	if opt.AppendWorkers <= 0 {
		opt.AppendWorkers = 4
	}
	if opt.TempDir == "" {
		opt.TempDir = os.TempDir()
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.Progress == nil {
		opt.Progress = new(Progress)
	}
	m := &migration{acct: a, key: a.Key(), led: led, opt: opt,
		pool: make(chan *imapconn.Conn, opt.AppendWorkers),
		rep: &Report{Source: a.Source.String(), SourceUser: a.SourceUser,
			Dest: a.Dest.String(), DestUser: a.DestUser, Started: time.Now()}}
	err := m.run(ctx)
	m.close()
	r := m.rep
	r.Finished = time.Now()
	r.total()
	switch {
	case err == nil && r.Totals.Failed+r.Totals.Skipped == 0:
		r.Status = StatusDone
	case err == nil:
		r.Status = StatusWarnings
	case errors.Is(err, imapconn.ErrOverQuota):
		r.Status, r.Failure = StatusOverQuota, Explain(err)
	default:
		r.Status, r.Failure = StatusFailed, Explain(err)
	}
	opt.Progress.add(&opt.Progress.accountsDone, 1)
	return r, err
}

// Check logs in to both servers and lists the source folders, copying
// nothing: the pre-flight test of a migration.
func Check(ctx context.Context, a Account, opt Options) (*Report, error) {
	m := &migration{acct: a, opt: opt, rep: &Report{Source: a.Source.String(),
		SourceUser: a.SourceUser, Dest: a.Dest.String(), DestUser: a.DestUser, Started: time.Now()}}
	err := m.connect(ctx)
	if err == nil {
		for _, p := range PlanFolders(m.srcLayout, m.dstLayout) {
			fr := FolderReport{Source: p.Source, Dest: p.Dest, Role: p.Role, Note: p.Note}
			st, serr := m.src.Status(ctx, p.Source, imap.StatusOptions{NumMessages: true})
			if serr != nil {
				err = &SideError{SideSource, a.SourceUser, serr}
				break
			}
			fr.SourceMessages = int(*st.NumMessages)
			m.rep.Folders = append(m.rep.Folders, fr)
		}
	}
	m.close()
	m.rep.Finished = time.Now()
	m.rep.total()
	m.rep.Status = StatusDone
	if err != nil {
		m.rep.Status, m.rep.Failure = StatusFailed, Explain(err)
	}
	return m.rep, err
}

type migration struct {
	acct Account
	key  string
	led  Ledger
	opt  Options
	rep  *Report

	src, dst             *imapconn.Conn // control connections
	pool                 chan *imapconn.Conn
	srcLayout, dstLayout Layout
	dstFolders           map[string]bool
	subscribed           map[string]bool
}

func (m *migration) logf(format string, args ...any) { m.opt.Logf(format, args...) }

func (m *migration) dial(ctx context.Context, side Side) (*imapconn.Conn, error) {
	ep, user, pass := m.acct.Source, m.acct.SourceUser, m.acct.SourcePassword
	if side == SideDest {
		ep, user, pass = m.acct.Dest, m.acct.DestUser, m.acct.DestPassword
	}
	c, err := imapconn.Dial(ctx, ep, m.opt.Conn)
	if err != nil {
		return nil, &SideError{side, user, err}
	}
	if err := c.Login(ctx, user, pass); err != nil {
		c.Close()
		return nil, &SideError{side, user, err}
	}
	return c, nil
}

func (m *migration) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*imapconn.Conn{m.src, m.dst} {
		if c != nil {
			c.Logout(ctx)
		}
	}
	for {
		select {
		case c := <-m.pool:
			c.Logout(ctx)
		default:
			return
		}
	}
}

// connect logs in to both sides and reads their folder layouts.
func (m *migration) connect(ctx context.Context) error {
	var err error
	if m.src, err = m.dial(ctx, SideSource); err != nil {
		return err
	}
	if m.dst, err = m.dial(ctx, SideDest); err != nil {
		return err
	}
	read := func(c *imapconn.Conn, side Side, user string) (Layout, error) {
		var l Layout
		var err error
		if l.Prefix, l.Delim, err = c.Namespace(ctx); err != nil {
			return l, &SideError{side, user, err}
		}
		if l.Mailboxes, err = c.List(ctx); err != nil {
			return l, &SideError{side, user, err}
		}
		return l, nil
	}
	if m.srcLayout, err = read(m.src, SideSource, m.acct.SourceUser); err != nil {
		return err
	}
	if m.dstLayout, err = read(m.dst, SideDest, m.acct.DestUser); err != nil {
		return err
	}
	m.dstFolders, m.subscribed = map[string]bool{}, map[string]bool{}
	for _, mb := range m.dstLayout.Mailboxes {
		if !mb.NoSelect() {
			m.dstFolders[mb.Name] = true
		}
		if mb.Subscribed {
			m.subscribed[mb.Name] = true
		}
	}
	return nil
}

func (m *migration) run(ctx context.Context) error {
	if err := m.connect(ctx); err != nil {
		return err
	}
	plans := PlanFolders(m.srcLayout, m.dstLayout)
	m.opt.Progress.add(&m.opt.Progress.foldersTotal, int64(len(plans)))
	// Totals first, so that progress has a denominator from the start.
	stats := make([]*imap.StatusData, len(plans))
	for i, p := range plans {
		st, err := m.src.Status(ctx, p.Source, imap.StatusOptions{NumMessages: true,
			UIDNext: true, UIDValidity: true, HighestModSeq: true, Size: true})
		if err != nil {
			return &SideError{SideSource, m.acct.SourceUser, err}
		}
		stats[i] = st
		m.opt.Progress.add(&m.opt.Progress.msgsTotal, int64(*st.NumMessages))
		if st.Size != nil {
			m.opt.Progress.add(&m.opt.Progress.bytesTotal, *st.Size)
		}
	}
	for i, p := range plans {
		m.rep.Folders = append(m.rep.Folders, FolderReport{Source: p.Source, Dest: p.Dest,
			Role: p.Role, Note: p.Note, SourceMessages: int(*stats[i].NumMessages)})
		fr := &m.rep.Folders[len(m.rep.Folders)-1]
		err := m.folder(ctx, p, stats[i], fr)
		m.opt.Progress.add(&m.opt.Progress.foldersDone, 1)
		if err != nil {
			return err
		}
	}
	return nil
}

// folder brings one source folder up to date on the destination.
func (m *migration) folder(ctx context.Context, p FolderPlan, st *imap.StatusData, fr *FolderReport) error {
	srcErr := func(err error) error { return &SideError{SideSource, m.acct.SourceUser, err} }
	dstErr := func(err error) error { return &SideError{SideDest, m.acct.DestUser, err} }
	prev, havePrev, err := m.led.Folder(ctx, m.key, p.Source)
	if err != nil {
		return err
	}
	modseq := st.HighestModSeq
	// Nothing new, nothing expunged, no flag changed (HIGHESTMODSEQ): the
	// re-run costs one STATUS per folder.
	if havePrev && m.dstFolders[p.Dest] && prev.DstFolder == p.Dest &&
		prev.SrcUIDValidity == st.UIDValidity && prev.SrcUIDNext == uint32(st.UIDNext) &&
		prev.SrcMessages == *st.NumMessages && modseq != 0 && prev.SrcHighestModSeq == modseq {
		fr.Unchanged = true
		fr.AlreadyPresent = int(*st.NumMessages)
		m.opt.Progress.add(&m.opt.Progress.msgsDone, int64(*st.NumMessages))
		if st.Size != nil {
			m.opt.Progress.add(&m.opt.Progress.bytesDone, *st.Size)
		}
		return nil
	}
	if !m.dstFolders[p.Dest] {
		if err := m.dst.Create(ctx, p.Dest); err != nil {
			return dstErr(err)
		}
		m.dstFolders[p.Dest] = true
	}
	if p.Subscribed && !m.subscribed[p.Dest] {
		if err := m.dst.Subscribe(ctx, p.Dest); err != nil {
			return dstErr(err)
		}
		m.subscribed[p.Dest] = true
	}
	sel, err := m.src.Examine(ctx, p.Source)
	if err != nil {
		return srcErr(err)
	}
	var srcMsgs []imapconn.MessageMeta
	if sel.NumMessages > 0 {
		if srcMsgs, err = m.src.FetchMeta(ctx, nil, nil); err != nil {
			return srcErr(err)
		}
	}
	dsel, err := m.dst.Select(ctx, p.Dest)
	if err != nil {
		return dstErr(err)
	}
	filter := newFlagFilter(dsel.PermanentFlags)
	if havePrev && (prev.DstFolder != p.Dest || prev.DstUIDValidity != dsel.UIDValidity) {
		// The destination folder is another one now, or was recreated: its
		// old UIDs mean nothing; content matching takes over.
		if err := m.led.Forget(ctx, m.key, p.Source); err != nil {
			return err
		}
	}
	entries, err := m.led.Entries(ctx, m.key, p.Source, sel.UIDValidity)
	if err != nil {
		return err
	}
	sizes := map[imap.UID]int64{}
	var newUIDs []imap.UID
	var flagChanged []Entry
	for _, msg := range srcMsgs {
		sizes[msg.UID] = msg.Size
		e, ok := entries[msg.UID]
		if !ok {
			newUIDs = append(newUIDs, msg.UID)
			continue
		}
		fr.AlreadyPresent++
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		m.opt.Progress.add(&m.opt.Progress.bytesDone, msg.Size)
		if want := filter.apply(msg.Flags); e.DstUID != 0 && flagKey(want) != flagKey(e.Flags) {
			add, rem := flagDelta(e.Flags, want)
			e.Flags = want
			flagChanged = append(flagChanged, e)
			if err := m.storeFlags(ctx, e.DstUID, add, rem); err != nil {
				return dstErr(err)
			}
		}
	}
	if len(flagChanged) > 0 {
		if err := m.led.Record(ctx, m.key, p.Source, sel.UIDValidity, flagChanged); err != nil {
			return err
		}
		fr.FlagsUpdated = len(flagChanged)
	}
	if len(newUIDs) > 0 && dsel.NumMessages > 0 {
		if newUIDs, err = m.adopt(ctx, p, sel.UIDValidity, newUIDs, filter, fr); err != nil {
			return err
		}
	}
	if len(newUIDs) > 0 {
		retry, err := m.copy(ctx, p, sel.UIDValidity, newUIDs, sizes, filter, fr, true)
		if err == nil && len(retry) > 0 {
			// A message whose APPEND failed may still have arrived (the
			// answer was lost): match before trying it once more.
			m.logf("%s: retrying %d message(s) on fresh connections", p.Source, len(retry))
			if retry, err = m.adopt(ctx, p, sel.UIDValidity, retry, filter, fr); err == nil && len(retry) > 0 {
				_, err = m.copy(ctx, p, sel.UIDValidity, retry, sizes, filter, fr, false)
			}
		}
		if err != nil {
			return err
		}
	}
	if len(fr.Failed) == 0 && len(fr.Skipped) == 0 {
		err := m.led.SaveFolder(ctx, m.key, FolderState{SrcFolder: p.Source, DstFolder: p.Dest,
			SrcUIDValidity: st.UIDValidity, SrcUIDNext: uint32(st.UIDNext),
			SrcHighestModSeq: modseq, SrcMessages: *st.NumMessages, DstUIDValidity: dsel.UIDValidity})
		if err != nil {
			return err
		}
	}
	return nil
}

// storeFlags applies a three-way flag delta to one destination message.
func (m *migration) storeFlags(ctx context.Context, uid imap.UID, add, rem []imap.Flag) error {
	if err := m.dst.Store(ctx, []imap.UID{uid}, imap.StoreFlagsAdd, add); err != nil {
		return err
	}
	return m.dst.Store(ctx, []imap.UID{uid}, imap.StoreFlagsDel, rem)
}

// adopt matches source messages the ledger does not know against
// destination messages the ledger does not know, by content identity, as
// multisets. Matches are recorded as copied; the rest is returned.
func (m *migration) adopt(ctx context.Context, p FolderPlan, uidValidity uint32,
	uids []imap.UID, filter flagFilter, fr *FolderReport) ([]imap.UID, error) {
	entries, err := m.led.Entries(ctx, m.key, p.Source, uidValidity)
	if err != nil {
		return nil, err
	}
	known := map[imap.UID]bool{}
	for _, e := range entries {
		known[e.DstUID] = true
	}
	// Select afresh: a mailbox view only learns of messages other
	// connections appended when the server syncs it, which some servers do
	// after, not before, the next FETCH.
	if _, err := m.dst.Select(ctx, p.Dest); err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	all, err := m.dst.FetchMeta(ctx, nil, nil)
	if err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	var cand []imap.UID
	for _, d := range all {
		if !known[d.UID] {
			cand = append(cand, d.UID)
		}
	}
	if len(cand) == 0 {
		return uids, nil
	}
	dmeta, err := m.dst.FetchMeta(ctx, cand, IdentityFields)
	if err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	pool := map[Identity][]imap.UID{}
	for _, d := range dmeta {
		id := IdentityOf(d.Header, d.Size)
		pool[id] = append(pool[id], d.UID)
	}
	smeta, err := m.src.FetchMeta(ctx, uids, IdentityFields)
	if err != nil {
		return nil, &SideError{SideSource, m.acct.SourceUser, err}
	}
	var adopted []Entry
	var rest []imap.UID
	for _, s := range smeta {
		id := IdentityOf(s.Header, s.Size)
		if d := pool[id]; len(d) > 0 {
			adopted = append(adopted, Entry{SrcUID: s.UID, DstUID: d[0], Identity: id, Flags: filter.apply(s.Flags)})
			pool[id] = d[1:]
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			m.opt.Progress.add(&m.opt.Progress.bytesDone, s.Size)
			continue
		}
		rest = append(rest, s.UID)
	}
	if len(adopted) > 0 {
		if err := m.led.Record(ctx, m.key, p.Source, uidValidity, adopted); err != nil {
			return nil, err
		}
		fr.AlreadyPresent += len(adopted)
		m.logf("%s: %d message(s) already on the destination", p.Source, len(adopted))
	}
	return rest, nil
}

// job is one message on its way from the source to the destination.
type job struct {
	msg  imapconn.Message
	body *body
}

type outcome int

const (
	copied outcome = iota
	skipped
	retry
	failed
	fatal
)

type result struct {
	job    *job
	out    outcome
	dstUID imap.UID
	err    error
}

// copy streams uids from the source and appends them with parallel
// destination connections. With mayRetry, messages that failed for a
// reason other than size are returned for another attempt; without, they
// are recorded as failed.
func (m *migration) copy(ctx context.Context, p FolderPlan, uidValidity uint32, uids []imap.UID,
	sizes map[imap.UID]int64, filter flagFilter, fr *FolderReport, mayRetry bool) ([]imap.UID, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan []*job, 1)
	results := make(chan result, chunkMessages)
	in := make(chan *job)
	var wg sync.WaitGroup
	for range m.opt.AppendWorkers {
		wg.Go(func() { m.appender(ctx, p.Dest, filter, in, results) })
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	go func() {
		for chunk := range jobs {
			for _, j := range chunk {
				in <- j
			}
		}
		close(in)
	}()
	fetchDone := make(chan error, 1)
	go func() {
		defer close(jobs)
		fetchDone <- m.fetch(ctx, p.Source, uidValidity, uids, sizes, jobs)
	}()

	var batch []Entry
	var retryUIDs []imap.UID
	var accountErr error
	flush := func() {
		if len(batch) == 0 || accountErr != nil {
			return
		}
		if err := m.led.Record(context.WithoutCancel(ctx), m.key, p.Source, uidValidity, batch); err != nil {
			accountErr = err
			cancel(err)
		}
		batch = batch[:0]
	}
	issue := func(j *job, reason string) MessageIssue {
		h := j.body.header()
		subj, _ := new(mime.WordDecoder).DecodeHeader(headerValue(h, "Subject"))
		return MessageIssue{UID: uint32(j.msg.UID), Subject: subj, Date: j.msg.InternalDate,
			Size: j.body.size, Reason: reason}
	}
	for r := range results {
		switch r.out {
		case copied:
			batch = append(batch, Entry{SrcUID: r.job.msg.UID, DstUID: r.dstUID,
				Identity: IdentityOf(r.job.body.header(), r.job.msg.Size),
				Flags:    filter.apply(r.job.msg.Flags)})
			fr.Copied++
			fr.BytesCopied += r.job.body.size
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			m.opt.Progress.add(&m.opt.Progress.bytesDone, r.job.body.size)
			if len(batch) >= ledgerBatch {
				flush()
			}
		case skipped:
			fr.Skipped = append(fr.Skipped, issue(r.job, "larger than the destination accepts: "+errText(r.err)))
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			m.logf("%s: skipped UID %d: %v", p.Source, r.job.msg.UID, r.err)
		case retry:
			if mayRetry {
				retryUIDs = append(retryUIDs, r.job.msg.UID)
			} else {
				fr.Failed = append(fr.Failed, issue(r.job, errText(r.err)))
				m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
				m.logf("%s: failed UID %d: %v", p.Source, r.job.msg.UID, r.err)
			}
		case fatal:
			if accountErr == nil {
				accountErr = r.err
				cancel(r.err)
			}
		}
		r.job.body.release()
	}
	flush()
	ferr := <-fetchDone
	if accountErr != nil {
		return nil, accountErr
	}
	if ferr != nil {
		var lost fetchLost
		if !errors.As(ferr, &lost) {
			return nil, ferr
		}
		for _, uid := range lost.uids {
			fr.Failed = append(fr.Failed, MessageIssue{UID: uint32(uid), Size: sizes[uid],
				Reason: "could not be read from the source server: " + errText(lost.err)})
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		}
	}
	slices.Sort(retryUIDs)
	return retryUIDs, nil
}

func errText(err error) string {
	var ie *imapconn.Error
	if errors.As(err, &ie) && ie.Text != "" {
		return ie.Text
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// fetchLost reports source messages that could not be read even after
// reconnecting; the folder goes on without them.
type fetchLost struct {
	uids []imap.UID
	err  error
}

func (f fetchLost) Error() string {
	return fmt.Sprintf("%d message(s) unreadable: %v", len(f.uids), f.err)
}

// fetch reads the bodies of uids in chunks bounded in bytes and count and
// hands each chunk over whole. A chunk is handed over only after its FETCH
// has completed, because go-imap times a response out if its reader is not
// consumed, and appending may take longer than that.
func (m *migration) fetch(ctx context.Context, folder string, uidValidity uint32,
	uids []imap.UID, sizes map[imap.UID]int64, out chan<- []*job) error {
	const maxReconnects = 2
	reconnects := 0
	for len(uids) > 0 {
		n, total := 0, int64(0)
		for n < len(uids) && n < chunkMessages && (n == 0 || total+sizes[uids[n]] <= chunkBytes) {
			total += sizes[uids[n]]
			n++
		}
		chunk := uids[:n]
		var got []*job
		err := imapconn.FetchBodies(ctx, m.src, chunk,
			func(r io.Reader, size int64) (*body, error) { return spool(r, size, m.opt.TempDir) },
			func(msg imapconn.Message, b *body) error {
				got = append(got, &job{msg: msg, body: b})
				return nil
			})
		if err != nil {
			for _, j := range got {
				j.body.release()
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if reconnects >= maxReconnects {
				return fetchLost{uids: uids, err: err}
			}
			reconnects++
			m.logf("%s: source connection failed (%v); reconnecting", folder, err)
			if rerr := m.reconnectSource(ctx, folder, uidValidity); rerr != nil {
				return rerr
			}
			continue
		}
		select {
		case out <- got:
		case <-ctx.Done():
			for _, j := range got {
				j.body.release()
			}
			return context.Cause(ctx)
		}
		uids = uids[n:]
	}
	return nil
}

func (m *migration) reconnectSource(ctx context.Context, folder string, uidValidity uint32) error {
	m.src.Close()
	c, err := m.dial(ctx, SideSource)
	if err != nil {
		return err
	}
	m.src = c
	sel, err := c.Examine(ctx, folder)
	if err != nil {
		return &SideError{SideSource, m.acct.SourceUser, err}
	}
	if sel.UIDValidity != uidValidity {
		return &SideError{SideSource, m.acct.SourceUser,
			fmt.Errorf("folder %q was reset on the source during the copy (UIDVALIDITY changed); run again", folder)}
	}
	return nil
}

// appender appends jobs on its own destination connection, taken from and
// returned to the account's pool.
func (m *migration) appender(ctx context.Context, mailbox string, filter flagFilter,
	in <-chan *job, results chan<- result) {
	var conn *imapconn.Conn
	select {
	case conn = <-m.pool:
	default:
	}
	defer func() {
		if conn != nil && !conn.Dead() {
			m.pool <- conn
		} else if conn != nil {
			conn.Close()
		}
	}()
	for j := range in {
		if ctx.Err() != nil {
			j.body.release()
			continue
		}
		if conn == nil || conn.Dead() {
			c, err := m.dial(ctx, SideDest)
			if err != nil {
				results <- result{job: j, out: fatal, err: err}
				continue
			}
			conn = c
		}
		uid, _, err := conn.Append(ctx, mailbox, j.body.size, filter.apply(j.msg.Flags), j.msg.InternalDate, j.body.reader())
		switch {
		case err == nil:
			results <- result{job: j, out: copied, dstUID: uid}
		case ctx.Err() != nil:
			j.body.release()
		case errors.Is(err, imapconn.ErrTooBig):
			results <- result{job: j, out: skipped, err: err}
		case errors.Is(err, imapconn.ErrOverQuota):
			results <- result{job: j, out: fatal, err: &SideError{SideDest, m.acct.DestUser, err}}
		default:
			// Another attempt goes over a fresh connection.
			conn.Close()
			conn = nil
			results <- result{job: j, out: retry, err: err}
		}
	}
}
