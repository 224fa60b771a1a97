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
	"net/mail"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

// Account is one source login to copy into one destination login.
type Account struct {
	Source         imapconn.Endpoint
	SourceUser     string
	SourcePassword string
	// SourceToken, when set, signs in to the source with an OAuth2 access
	// token instead of SourcePassword. It is asked on every connection;
	// rejected is the token the server just refused or ended a session
	// for ("" when none), which it must not return again. An error that
	// has a SignInAgain() bool method saying true means the customer must
	// sign in with the provider again.
	SourceToken  func(ctx context.Context, rejected string) (string, error)
	Dest         imapconn.Endpoint
	DestUser     string
	DestPassword string
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
	// Appended, if set, hears how long each APPEND command took (one
	// message, or a batch with MULTIAPPEND), for a service's metrics.
	Appended func(took time.Duration)
	// SourceLogin, if set, hears how the login to the old server went
	// (nil: it worked) as soon as it is known, for a service that counts
	// login attempts while the copy goes on.
	SourceLogin func(err error)
	// MaxMessageSize, when set, is the largest message the destination
	// takes (the hosting's own limit); bigger ones are listed as skipped
	// before the copy, as with the server's APPENDLIMIT.
	MaxMessageSize int64
	// MemoryBudget bounds the message bodies held in memory at once;
	// bigger messages and any excess go through temporary files.
	// Default 16 MiB.
	MemoryBudget int64
	// Memory, if set, holds the bodies instead of a memory of
	// MemoryBudget bytes of the account's own: accounts copied at the same
	// time share it, and memory stays the same however many there are.
	Memory *Memory
	// MaxFolders is the most folders an account may have; a source with
	// more is refused before anything is created on the destination.
	// Default 5,000.
	MaxFolders int
	// MaxThrottleWait is the longest wait for a throttling old server
	// (Exchange's "Request is throttled", a connection cap) that the run
	// takes itself before going on; a longer one ends the run with a
	// *ThrottledError saying when to come back. Default 15 minutes.
	MaxThrottleWait time.Duration
	// Throttled, if set, hears every throttled answer of the old server
	// with the time the copy goes on.
	Throttled func(until time.Time)
	// GmailOnce copies each message of a Gmail source once, into the
	// first of its places (INBOX, Sent, Drafts, its user labels by name,
	// else Archive), with its other user labels as keywords, instead of
	// once into the folder of each label.
	GmailOnce bool
}

// AppendWorkersFor is Options.AppendWorkers for each of n accounts copied
// at the same time: 4 for one or two, fewer beyond, so that about eight
// connections append in all. Accounts at once already keep the
// destination busy; more connections each would only add logins, server
// processes and buffers (a bulk run of 20 accounts with 4 each took more
// time and CPU than with 1).
func AppendWorkersFor(n int) int {
	return min(4, max(1, (8+n-1)/max(n, 1)))
}

// DefaultMaxFolders is Options.MaxFolders when it is not set. Real
// mailboxes rarely have more than a few hundred folders.
const DefaultMaxFolders = 5000

// chunkBytes bounds the bodies fetched by one FETCH command; the next chunk
// is fetched while the previous one is appended.
const chunkBytes = 4 << 20

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
	if opt.MemoryBudget <= 0 {
		opt.MemoryBudget = 16 << 20
	}
	if opt.MaxFolders <= 0 {
		opt.MaxFolders = DefaultMaxFolders
	}
	if opt.MaxThrottleWait <= 0 {
		opt.MaxThrottleWait = DefaultMaxThrottleWait
	}
	if opt.Memory == nil {
		opt.Memory = NewMemory(opt.MemoryBudget)
	}
	m := &migration{acct: a, key: a.Key(), led: led, opt: opt, arenas: opt.Memory.arenas,
		pool: make(chan *imapconn.Conn, opt.AppendWorkers),
		rep: &Report{Source: a.Source.String(), SourceUser: a.SourceUser,
			Dest: a.Dest.String(), DestUser: a.DestUser, Started: time.Now()}}
	err := m.safely(func() error { return m.run(ctx) })
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
		if r.Space != nil {
			if rest := r.Space.ToCopy - r.Totals.BytesCopied; rest > 0 {
				r.Failure.Text = catalog.M("failure.over_quota.more", i18n.Size(rest))
			}
		}
	default:
		r.Status, r.Failure = StatusFailed, Explain(err)
	}
	opt.Progress.add(&opt.Progress.accountsDone, 1)
	return r, err
}

// Check logs in to both servers and lists the source folders, copying
// nothing: the pre-flight test of a migration.
func Check(ctx context.Context, a Account, opt Options) (*Report, error) {
	if opt.MaxFolders <= 0 {
		opt.MaxFolders = DefaultMaxFolders
	}
	if opt.MaxThrottleWait <= 0 {
		opt.MaxThrottleWait = DefaultMaxThrottleWait
	}
	m := &migration{acct: a, opt: opt, rep: &Report{Source: a.Source.String(),
		SourceUser: a.SourceUser, Dest: a.Dest.String(), DestUser: a.DestUser, Started: time.Now()}}
	err := m.safely(func() error { return m.check(ctx) })
	m.close()
	m.rep.Finished = time.Now()
	m.rep.total()
	m.rep.Status = StatusDone
	if err != nil {
		m.rep.Status, m.rep.Failure = StatusFailed, Explain(err)
	}
	return m.rep, err
}

func (m *migration) check(ctx context.Context) error {
	err := m.connect(ctx)
	if err == nil {
		if all, ok := m.gmailMode(ctx); ok {
			return m.checkGmail(ctx, all)
		}
		var size int64
		sized := true
		for _, p := range PlanFolders(m.srcLayout, m.dstLayout, nil) {
			fr := FolderReport{Source: p.Source, Dest: p.Dest, Role: p.Role, Note: p.Note}
			var st *imap.StatusData
			serr := m.fromSource(ctx, func(bool) (err error) {
				st, err = m.status(ctx, p.Source, imap.StatusOptions{NumMessages: true, Size: true})
				return err
			})
			if serr != nil {
				err = serr
				break
			}
			fr.SourceMessages = int(*st.NumMessages)
			if st.Size != nil {
				size += *st.Size
			} else {
				sized = false
			}
			m.rep.Folders = append(m.rep.Folders, fr)
		}
		if err == nil && sized {
			m.rep.SourceBytes = size
			// Into an empty mailbox all of it is to be copied; the run
			// itself compares only what is missing.
			err = m.checkSpace(ctx, size)
		}
	}
	return err
}

// safely runs fn and turns a panic into an account failure: a defect met
// with one mailbox (a reply no one foresaw) must not take the process or
// the job queue down, and the caller still closes every connection.
func (m *migration) safely(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			m.logf("internal error: %v\n%s", v, debug.Stack())
			err = &InternalError{Value: fmt.Sprint(v)}
		}
	}()
	return fn()
}

// statusOpts are the counters read of each source folder.
var statusOpts = imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true, Size: true}

// statuses reads the counters of the planned folders' sources: all STATUS
// commands at once (a distant server answers them in one round trip), and
// from the first that fails on, one at a time as status does, with its
// waits for a throttling server, its reconnects and its fallback to
// EXAMINE.
func (m *migration) statuses(ctx context.Context, plans []FolderPlan) ([]*imap.StatusData, error) {
	stats := make([]*imap.StatusData, 0, len(plans))
	if !m.noStatus {
		names := make([]string, len(plans))
		for i, p := range plans {
			names[i] = p.Source
		}
		got, err := m.src.StatusMany(ctx, names, statusOpts)
		stats = append(stats, got...)
		if err != nil {
			if _, throttled := imapconn.ThrottleWait(err); throttled {
				if err := m.backOff(ctx, err); err != nil {
					return nil, err
				}
			}
			// After a failure among commands sent together, what the
			// connection still holds is not known (a reply go-imap
			// cannot read, GNU Mailutils' unquoted names, ends it for all
			// of them): a new one, and one folder at a time from there.
			m.logf("reading the folders' counters together failed (%v); one at a time instead", err)
			if err := m.reconnectSource(ctx); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range plans[len(stats):] {
		st, err := m.status(ctx, p.Source, statusOpts)
		if err != nil {
			return nil, err
		}
		stats = append(stats, st)
	}
	return stats, nil
}

// status reads a source folder's counters, with EXAMINE instead of STATUS
// once the server's STATUS replies proved unreadable.
func (m *migration) status(ctx context.Context, name string, opts imap.StatusOptions) (*imap.StatusData, error) {
	if !m.noStatus {
		var st *imap.StatusData
		err := m.fromSource(ctx, func(bool) (err error) {
			st, err = m.src.Status(ctx, name, opts)
			return err
		})
		if err == nil {
			return st, nil
		}
		if imapconn.KindOf(err) != imapconn.ErrProtocol {
			return nil, &SideError{SideSource, m.acct.SourceUser, err}
		}
		m.logf("%s: the server's STATUS reply is unreadable (%v); counting with EXAMINE instead", name, err)
		m.noStatus = true
		if err := m.reconnectSource(ctx); err != nil {
			return nil, err
		}
	}
	var st *imap.StatusData
	err := m.fromSource(ctx, func(bool) (err error) {
		st, err = m.src.ExamineStatus(ctx, name)
		return err
	})
	if err != nil {
		return nil, &SideError{SideSource, m.acct.SourceUser, err}
	}
	return st, nil
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
	arenas               *arenas           // the memory budget for bodies
	multiAppend          bool              // the destination takes batches (MULTIAPPEND)
	appendLimit          int64             // the destination's APPENDLIMIT, 0 if unknown
	remembered           map[string]string // where the ledger says each folder went
	noStatus             bool              // the source's STATUS replies are unreadable
	srcToken             string            // the access token of the source connection
	singleWriter         bool              // the destination takes one writer per folder at a time
	created              map[string]string // planned destination -> the name it got ("" none)
	createErr            map[string]error  // why a planned destination got no name
	throttles            int               // throttled answers of the source so far
}

func (m *migration) logf(format string, args ...any) {
	if m.opt.Logf != nil {
		m.opt.Logf(format, args...)
	}
}

// dial connects to one side and logs in; rejected is the access token the
// source's last session ended for, if it did.
func (m *migration) dial(ctx context.Context, side Side, rejected string) (*imapconn.Conn, error) {
	ep, user, pass := m.acct.Source, m.acct.SourceUser, m.acct.SourcePassword
	if side == SideDest {
		ep, user, pass = m.acct.Dest, m.acct.DestUser, m.acct.DestPassword
	}
	c, err := imapconn.Dial(ctx, ep, m.opt.Conn)
	if err != nil {
		return nil, &SideError{side, user, err}
	}
	if side == SideSource && m.acct.SourceToken != nil {
		err = m.signIn(ctx, c, rejected)
	} else {
		err = c.Login(ctx, user, pass)
	}
	if side == SideSource && m.opt.SourceLogin != nil {
		m.opt.SourceLogin(err)
	}
	if err != nil {
		c.Close()
		return nil, &SideError{side, user, err}
	}
	return c, nil
}

// signIn logs in to the source with an access token. A token the server
// refuses may have expired by its clock before ours: one fresh token is
// tried before the refusal counts.
func (m *migration) signIn(ctx context.Context, c *imapconn.Conn, rejected string) error {
	tok, err := m.acct.SourceToken(ctx, rejected)
	if err != nil {
		return &SignInError{Err: err}
	}
	m.srcToken = tok
	err = c.LoginToken(ctx, m.acct.SourceUser, tok)
	if imapconn.KindOf(err) == imapconn.ErrAuth && !errors.Is(err, imapconn.ErrNoOAuth) && !c.Dead() {
		if tok, err = m.acct.SourceToken(ctx, tok); err != nil {
			return &SignInError{Err: err}
		}
		m.srcToken = tok
		err = c.LoginToken(ctx, m.acct.SourceUser, tok)
	}
	if imapconn.KindOf(err) == imapconn.ErrAuth {
		return &SignInError{Err: err}
	}
	return err
}

// maxRenewals bounds the sessions in a row that end for an expired token
// without a command getting through in between: a token source that hands
// out dead tokens must not keep the run reconnecting.
const maxRenewals = 3

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
	if m.src, err = m.dialSource(ctx, ""); err != nil {
		return err
	}
	if m.dst, err = m.dial(ctx, SideDest, ""); err != nil {
		return err
	}
	read := func(c *imapconn.Conn, side Side, user string) (Layout, error) {
		var l Layout
		var err error
		if l.Prefix, l.Delim, err = c.Namespace(ctx); err != nil {
			return l, &SideError{side, user, err}
		}
		if l.Mailboxes, err = c.List(ctx, m.opt.MaxFolders); err != nil {
			var many imapconn.ErrTooManyMailboxes
			if errors.As(err, &many) {
				return l, &TooManyFoldersError{Side: side, Max: m.opt.MaxFolders}
			}
			return l, &SideError{side, user, err}
		}
		return l, nil
	}
	err = m.fromSource(ctx, func(bool) (err error) {
		m.srcLayout, err = read(m.src, SideSource, m.acct.SourceUser)
		return err
	})
	if err != nil {
		return err
	}
	if m.dstLayout, err = read(m.dst, SideDest, m.acct.DestUser); err != nil {
		return err
	}
	if m.led != nil {
		if m.remembered, err = m.led.Destinations(ctx, m.key); err != nil {
			return err
		}
	}
	m.appendLimit = m.dst.AppendLimit(ctx)
	if l := m.opt.MaxMessageSize; l > 0 && (m.appendLimit == 0 || l < m.appendLimit) {
		m.appendLimit = l
	}
	m.dstFolders, m.subscribed = map[string]bool{}, map[string]bool{}
	m.created, m.createErr = map[string]string{}, map[string]error{}
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
	if m.opt.AppendWorkers > 1 && !m.dst.Has(ctx, imap.CapUIDPlus) {
		// Servers without UIDPLUS are the simple ones, and some lose
		// messages appended into one folder over several connections
		// (GNU Mailutils on mbox answers OK and keeps about a third).
		m.logf("the destination does not report the UIDs of appended messages (no UIDPLUS); appending over one connection")
		m.opt.AppendWorkers = 1
		m.singleWriter = true
	}
	m.multiAppend = m.dst.MultiAppend(ctx)
	if all, ok := m.gmailMode(ctx); ok {
		return m.runGmail(ctx, all)
	}
	plans := PlanFolders(m.srcLayout, m.dstLayout, m.remembered)
	if err := m.settle(ctx, plans); err != nil {
		return err
	}
	m.opt.Progress.add(&m.opt.Progress.foldersTotal, int64(len(plans)))
	// Totals first, so that progress has a denominator from the start.
	stats, err := m.statuses(ctx, plans)
	if err != nil {
		return err
	}
	for _, st := range stats {
		m.opt.Progress.add(&m.opt.Progress.msgsTotal, int64(*st.NumMessages))
		if st.Size != nil {
			m.opt.Progress.add(&m.opt.Progress.bytesTotal, *st.Size)
		}
	}
	// Every folder is prepared first (flags, messages already present),
	// then the copy takes the folders in turn, so that the appenders work
	// on several destination mailboxes at once and no folder boundary
	// leaves the destination idle.
	m.rep.Folders = make([]FolderReport, len(plans))
	return m.prepareAndCopy(ctx, len(plans), func(i int) (*folderWork, []imap.UID, error) {
		p := plans[i]
		m.rep.Folders[i] = FolderReport{Source: p.Source, Dest: p.Dest,
			Role: p.Role, Note: p.Note, SourceMessages: int(*stats[i].NumMessages)}
		return m.prepare(ctx, p, stats[i], &m.rep.Folders[i])
	})
}

// settleQuiet is how long the destination folders of a run that did not
// finish must keep their message counts before this run reads them, and
// settleMax bounds the wait.
const (
	settleQuiet = 2 * time.Second
	settleMax   = 30 * time.Second
)

// settle waits, after a run that stopped mid-copy (killed, crashed), until
// its last APPEND has landed: a server finishes a command whose data it
// has received even when the client is gone, and a MULTIAPPEND of a few
// megabytes can take it a second or more. Read before that, the messages
// it brings would not be found on the destination and would be copied a
// second time. A folder the ledger remembers (its copy was started)
// without a complete pass marks such a run; the counts of those folders
// are read until they stay the same for settleQuiet.
func (m *migration) settle(ctx context.Context, plans []FolderPlan) error {
	var names []string
	for _, p := range plans {
		dest, started := m.remembered[p.Source]
		if !started || !m.dstFolders[dest] || slices.Contains(names, dest) {
			continue
		}
		if _, complete, err := m.led.Folder(ctx, m.key, p.Source); err != nil {
			return err
		} else if !complete {
			names = append(names, dest)
		}
	}
	if len(names) == 0 {
		return nil
	}
	count := func() ([]uint32, error) {
		st, err := m.dst.StatusMany(ctx, names, imap.StatusOptions{NumMessages: true})
		if err != nil {
			return nil, err
		}
		n := make([]uint32, len(st))
		for i, s := range st {
			if s.NumMessages != nil {
				n[i] = *s.NumMessages
			}
		}
		return n, nil
	}
	// The wait is a precaution: a destination whose STATUS replies cannot
	// be read (GNU Mailutils' unquoted names) is read without it.
	skip := func(err error) error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		m.logf("the destination's folder counts cannot be read (%v); not waiting for the run that stopped", err)
		if m.dst.Dead() {
			return m.redialDest(ctx)
		}
		return nil
	}
	last, err := count()
	if err != nil {
		return skip(err)
	}
	for waited := time.Duration(0); waited < settleMax; waited += settleQuiet {
		t := time.NewTimer(settleQuiet)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
		now, err := count()
		if err != nil {
			return skip(err)
		}
		if slices.Equal(now, last) {
			return nil
		}
		m.logf("the destination is still receiving the messages of the run that stopped; waiting until it is done")
		last = now
	}
	return nil
}

// prepareAndCopy prepares n folders in turn, counts those left with
// nothing to copy as done, then copies the others' messages.
func (m *migration) prepareAndCopy(ctx context.Context, n int, prepare func(i int) (*folderWork, []imap.UID, error)) error {
	var works []*folderWork
	var uids [][]imap.UID
	for i := range n {
		w, u, err := prepare(i)
		if err != nil {
			return err
		}
		if w == nil {
			m.opt.Progress.add(&m.opt.Progress.foldersDone, 1)
			continue
		}
		works, uids = append(works, w), append(uids, u)
	}
	return m.copyWorks(ctx, works, uids)
}

// copyWorks copies the prepared works' messages, retries what failed and
// verifies what arrived.
func (m *migration) copyWorks(ctx context.Context, works []*folderWork, uids [][]imap.UID) error {
	if len(works) == 0 {
		return nil
	}
	var toCopy int64
	for i, w := range works {
		for _, uid := range uids[i] {
			toCopy += w.sizes[uid]
		}
	}
	if err := m.checkSpace(ctx, toCopy); err != nil {
		return err
	}
	pl := m.startPipeline(ctx, true)
	err := pl.feed(works, uids)
	if perr := pl.finish(); perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	if err := m.retry(ctx, pl.retries); err != nil {
		return err
	}
	return m.verify(ctx, works)
}

// verify reads back what the destination stored of this run's copies
// (where it told their UIDs): another size means the server rewrote the
// message, another date or fewer flags that it did not keep them. All are
// reported, not left for the customer to find.
func (m *migration) verify(ctx context.Context, works []*folderWork) error {
	for _, w := range works {
		if len(w.copied) == 0 {
			continue
		}
		want := make(map[imap.UID]copiedMsg, len(w.copied))
		uids := make([]imap.UID, 0, len(w.copied))
		for _, c := range w.copied {
			want[c.dst] = c
			uids = append(uids, c.dst)
		}
		if _, err := m.dst.Examine(ctx, w.plan.Dest); err != nil {
			return &SideError{SideDest, m.acct.DestUser, err}
		}
		got, err := m.dst.FetchMeta(ctx, uids, nil)
		if err != nil {
			return &SideError{SideDest, m.acct.DestUser, err}
		}
		for _, g := range got {
			c := want[g.UID]
			if g.Size != c.size {
				w.fr.Rewritten++
			}
			if !c.date.IsZero() && !g.Date.IsZero() && !g.Date.Equal(c.date) {
				w.fr.DatesNotKept++
			}
			if add, _ := flagDelta(g.Flags, c.flags); len(add) > 0 {
				w.fr.FlagsNotKept++
			}
		}
		w.copied = nil
	}
	return nil
}

// redialDest replaces the destination connection with a new one.
func (m *migration) redialDest(ctx context.Context) error {
	m.dst.Close()
	var err error
	m.dst, err = m.dial(ctx, SideDest, "")
	return err
}

// checkSpace compares what is to be copied with the destination's free
// quota and warns when it will not fit; the copy goes on and pauses when
// the mailbox is full, with what was copied kept.
func (m *migration) checkSpace(ctx context.Context, toCopy int64) error {
	used, limit, ok, err := m.dst.Quota(ctx)
	if imapconn.KindOf(err) == imapconn.ErrProtocol {
		// The quota is only advice before the copy; a server whose
		// QUOTA reply is unreadable is copied into without it.
		m.logf("the destination's quota reply is unreadable (%v); going on without the space check", err)
		return m.redialDest(ctx)
	}
	switch imapconn.KindOf(err) {
	case imapconn.ErrServer, imapconn.ErrOverQuota, imapconn.ErrTooBig:
		// A NO to GETQUOTAROOT says the server could not count, not that
		// the mailbox is full; the APPENDs will tell if it is.
		m.logf("the destination could not tell its quota (%v); going on without the space check", err)
		return nil
	}
	if err != nil {
		return &SideError{SideDest, m.acct.DestUser, err}
	}
	if !ok {
		return nil
	}
	m.rep.Space = &Space{ToCopy: toCopy, Used: used, Limit: limit, Shortfall: max(0, toCopy-(limit-used))}
	if w := m.rep.Space.Warning(); !w.IsZero() {
		m.logf("%s", w)
	}
	return nil
}

// retry gives messages whose APPEND failed one more chance on fresh
// connections. One whose answer was lost may have arrived after all, so each
// folder is first matched against the destination again.
func (m *migration) retry(ctx context.Context, works []*folderWork) error {
	if len(works) == 0 {
		return nil
	}
	var uids [][]imap.UID
	for _, w := range works {
		u := w.retry
		w.reset()
		m.logf("%s: retrying %d message(s) on fresh connections", w.plan.Source, len(u))
		if err := m.fromSource(ctx, func(bool) error { return m.examine(ctx, w) }); err != nil {
			return &SideError{SideSource, m.acct.SourceUser, err}
		}
		known, err := m.knownDst(ctx, w)
		if err != nil {
			return err
		}
		if u, err = m.adopt(ctx, w, u, known); err != nil {
			return err
		}
		uids = append(uids, u)
	}
	pl := m.startPipeline(ctx, false)
	err := pl.feed(works, uids)
	if perr := pl.finish(); perr != nil {
		return perr
	}
	return err
}

// prepare brings a folder's flags up to date, adopts messages already on
// the destination and returns the work of copying the rest (nil when there
// is nothing to copy).
func (m *migration) prepare(ctx context.Context, p FolderPlan, st *imap.StatusData, fr *FolderReport) (*folderWork, []imap.UID, error) {
	srcErr := func(err error) error { return &SideError{SideSource, m.acct.SourceUser, err} }
	dstErr := func(err error) error { return &SideError{SideDest, m.acct.DestUser, err} }
	prev, havePrev, err := m.led.Folder(ctx, m.key, p.Source)
	if err != nil {
		return nil, nil, err
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
		return nil, nil, nil
	}
	if p.NonMail && *st.NumMessages == 0 && !m.dstFolders[p.Dest] {
		fr.Note = catalog.M("note.not_mail")
		return nil, nil, nil
	}
	w := &folderWork{plan: p, fr: fr, st: st, started: time.Now(), sizes: map[imap.UID]int64{}}
	if !m.dstFolders[p.Dest] {
		dest, err := m.createFolder(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		if dest == "" {
			return nil, nil, m.failFolder(ctx, w)
		}
		if dest != p.Dest {
			fr.Note = catalog.M("note.created_as", p.Dest, dest)
			m.logf("%s: %s", p.Source, fr.Note)
			p.Dest, fr.Dest, w.plan.Dest = dest, dest, dest
		}
	}
	if old, ok := m.remembered[p.Source]; !ok || old != p.Dest {
		if ok {
			// The folder goes elsewhere now: the old UIDs mean nothing.
			if err := m.led.Forget(ctx, m.key, p.Source); err != nil {
				return nil, nil, err
			}
		}
		if err := m.led.Remember(ctx, m.key, p.Source, p.Dest); err != nil {
			return nil, nil, err
		}
		m.remembered[p.Source] = p.Dest
	}
	if err := m.subscribe(ctx, p); err != nil {
		return nil, nil, err
	}
	// The message list is asked for behind the EXAMINE, in the form
	// STATUS lets expect (only what changed, after a complete pass); the
	// EXAMINE's answer decides, and a wrong guess is asked again below.
	var since uint64
	if havePrev && prev.SrcUIDValidity == st.UIDValidity && prev.SrcHighestModSeq != 0 && st.HighestModSeq != 0 {
		since = prev.SrcHighestModSeq
	}
	var sel *imap.SelectData
	var srcMsgs []imapconn.MessageMeta
	listed := false
	if err := m.fromSource(ctx, func(bool) (err error) {
		if *st.NumMessages == 0 {
			sel, err = m.src.Examine(ctx, p.Source)
			return err
		}
		sel, srcMsgs, err = m.src.ExamineMeta(ctx, p.Source, since)
		listed = err == nil
		return err
	}); err != nil {
		return nil, nil, srcErr(err)
	}
	w.uidValidity = sel.UIDValidity
	dsel, err := m.dst.Select(ctx, p.Dest)
	if err != nil {
		return nil, nil, dstErr(err)
	}
	w.dstUIDValidity = dsel.UIDValidity
	w.filter = newFlagFilter(dsel.PermanentFlags)
	if havePrev && (prev.DstFolder != p.Dest || prev.DstUIDValidity != dsel.UIDValidity) {
		// The destination folder is another one now, or was recreated: its
		// old UIDs mean nothing; content matching takes over.
		if err := m.led.Forget(ctx, m.key, p.Source); err != nil {
			return nil, nil, err
		}
		havePrev = false
	}
	// After a complete pass every message up to the saved UIDNEXT is in
	// the ledger; what arrived since or had its flags changed carries a
	// higher MODSEQ (CONDSTORE). Only those are read then, not the whole
	// folder: an incremental run's cost follows the new mail.
	changedOnly := havePrev && prev.SrcUIDValidity == sel.UIDValidity && prev.SrcHighestModSeq != 0 && sel.HighestModSeq != 0
	if listed && (since != 0) != changedOnly {
		listed, srcMsgs = false, nil
	}
	if sel.NumMessages > 0 && !listed {
		err := m.fromSource(ctx, func(reopened bool) (err error) {
			if reopened {
				if err := m.examine(ctx, w); err != nil {
					return err
				}
			}
			if changedOnly {
				srcMsgs, err = m.src.FetchChanged(ctx, prev.SrcHighestModSeq)
			} else {
				srcMsgs, err = m.src.FetchMeta(ctx, nil, nil)
			}
			return err
		})
		if err != nil {
			return nil, nil, srcErr(err)
		}
	}
	// The report counts what the copy found, which may differ from STATUS
	// when mail arrived or went meanwhile.
	found := len(srcMsgs)
	if changedOnly {
		found = int(sel.NumMessages)
		for _, msg := range srcMsgs {
			if msg.UID >= sel.UIDNext {
				found++ // arrived after EXAMINE counted
			}
		}
	}
	m.opt.Progress.add(&m.opt.Progress.msgsTotal, int64(found-fr.SourceMessages))
	fr.SourceMessages = found
	entries, err := m.led.Entries(ctx, m.key, p.Source, sel.UIDValidity)
	if err != nil {
		return nil, nil, err
	}
	var newUIDs []imap.UID
	var flagChanged []Entry
	var newBytes int64
	for _, msg := range srcMsgs {
		e, ok := entries[msg.UID]
		if !ok {
			w.sizes[msg.UID] = msg.Size
			newUIDs = append(newUIDs, msg.UID)
			newBytes += msg.Size
			continue
		}
		if !changedOnly {
			fr.AlreadyPresent++
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			m.opt.Progress.add(&m.opt.Progress.bytesDone, msg.Size)
		}
		if want := w.flags(msg.UID, msg.Flags); e.DstUID != 0 && flagKey(want) != flagKey(e.Flags) {
			add, rem := flagDelta(e.Flags, want)
			e.Flags = want
			flagChanged = append(flagChanged, e)
			if err := m.storeFlags(ctx, e.DstUID, add, rem); err != nil {
				return nil, nil, dstErr(err)
			}
		}
	}
	if changedOnly {
		fr.AlreadyPresent = found - len(newUIDs)
		m.opt.Progress.add(&m.opt.Progress.msgsDone, int64(fr.AlreadyPresent))
		if st.Size != nil {
			m.opt.Progress.add(&m.opt.Progress.bytesDone, max(0, *st.Size-newBytes))
		}
	}
	if len(flagChanged) > 0 {
		if err := m.led.Record(ctx, m.key, p.Source, sel.UIDValidity, flagChanged); err != nil {
			return nil, nil, err
		}
		fr.FlagsUpdated = len(flagChanged)
	}
	if len(newUIDs) > 0 && dsel.NumMessages > 0 {
		if newUIDs, err = m.adopt(ctx, w, newUIDs, dstUIDs(entries)); err != nil {
			return nil, nil, err
		}
	}
	if newUIDs, err = m.skipTooBig(ctx, w, newUIDs); err != nil {
		return nil, nil, err
	}
	return m.readyToCopy(ctx, w, newUIDs)
}

// readyToCopy ends a folder's preparation: with nothing new to copy the
// folder is done and saved, else its work is returned.
func (m *migration) readyToCopy(ctx context.Context, w *folderWork, newUIDs []imap.UID) (*folderWork, []imap.UID, error) {
	if m.singleWriter {
		// An mbox server writes its view of a folder back when a session
		// leaves it; holding it open for writing while another connection
		// appends loses those messages (GNU Mailutils).
		if _, err := m.dst.Examine(ctx, w.plan.Dest); err != nil {
			return nil, nil, &SideError{SideDest, m.acct.DestUser, err}
		}
	}
	if len(newUIDs) == 0 {
		return nil, nil, m.saveFolder(ctx, w)
	}
	return w, newUIDs, nil
}

// subscribe subscribes a plan's destination folder where the source
// folder is subscribed.
func (m *migration) subscribe(ctx context.Context, p FolderPlan) error {
	if p.Subscribed && !m.subscribed[p.Dest] {
		if err := m.dst.Subscribe(ctx, p.Dest); err != nil {
			if m.dst.Dead() {
				return &SideError{SideDest, m.acct.DestUser, err}
			}
			// Mail matters more than the subscription: go on.
			m.logf("%s: could not subscribe %q: %v", p.Source, p.Dest, err)
		}
		m.subscribed[p.Dest] = true
	}
	return nil
}

// createFolder makes a plan's destination folder and returns its name.
// When the server refuses the name (a parent that cannot hold folders,
// such as an mbox file), the folder is made beside its parent, then at the
// top level; "" means no name worked and the folder cannot be copied.
// Account-level failures (connection, login, quota) are returned as errors.
func (m *migration) createFolder(ctx context.Context, p FolderPlan) (string, error) {
	if dest, ok := m.created[p.Dest]; ok {
		return dest, nil
	}
	names := []string{p.Dest}
	if path := m.dstLayout.path(p.Dest); len(path) >= 2 {
		sibling := append(slices.Clone(path[:len(path)-2]), path[len(path)-2]+" – "+path[len(path)-1])
		name, _ := m.dstLayout.name(sibling)
		names = append(names, name)
		if len(path) > 2 {
			name, _ := m.dstLayout.name([]string{strings.Join(path, " – ")})
			names = append(names, name)
		}
	}
	var firstErr error
	for i, name := range names {
		use := p.Use
		if i > 0 {
			use = ""
		}
		if m.dstFolders[name] {
			m.created[p.Dest] = name
			return name, nil
		}
		err := m.dst.Create(ctx, name, use)
		if err == nil {
			m.dstFolders[name] = true
			m.created[p.Dest] = name
			return name, nil
		}
		if imapconn.KindOf(err) != imapconn.ErrServer || m.dst.Dead() {
			return "", &SideError{SideDest, m.acct.DestUser, err}
		}
		m.logf("%s: the destination refused to create %q: %v", p.Source, name, err)
		if firstErr == nil {
			firstErr = err
		}
	}
	m.created[p.Dest] = ""
	m.createErr[p.Dest] = firstErr
	return "", nil
}

// failFolder reports every message of a folder that could not be created
// on the destination as failed, so that the report adds up; the other
// folders are copied.
func (m *migration) failFolder(ctx context.Context, w *folderWork) error {
	var msgs []imapconn.MessageMeta
	err := m.fromSource(ctx, func(bool) error {
		if _, err := m.src.Examine(ctx, w.plan.Source); err != nil {
			return err
		}
		var err error
		msgs, err = m.src.FetchMeta(ctx, nil, nil)
		return err
	})
	if err != nil {
		return &SideError{SideSource, m.acct.SourceUser, err}
	}
	reason := catalog.M("reason.folder_refused", w.plan.Dest, errText(m.createErr[w.plan.Dest]))
	m.opt.Progress.add(&m.opt.Progress.msgsTotal, int64(len(msgs)-w.fr.SourceMessages))
	w.fr.SourceMessages = len(msgs)
	for _, mm := range msgs {
		w.fr.Failed = append(w.fr.Failed, MessageIssue{UID: uint32(mm.UID), Size: mm.Size, Reason: reason})
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
	}
	// The folder is done: run counts it, as it counts every folder that
	// prepare leaves nothing to copy in.
	return nil
}

// skipTooBig lists, before copying, the messages larger than the
// destination accepts (APPENDLIMIT), and leaves them out.
func (m *migration) skipTooBig(ctx context.Context, w *folderWork, uids []imap.UID) ([]imap.UID, error) {
	if m.appendLimit <= 0 {
		return uids, nil
	}
	var big, rest []imap.UID
	for _, uid := range uids {
		if w.sizes[uid] > m.appendLimit {
			big = append(big, uid)
		} else {
			rest = append(rest, uid)
		}
	}
	if len(big) == 0 {
		return uids, nil
	}
	meta, err := m.srcMeta(ctx, w, big)
	if err != nil {
		return nil, &SideError{SideSource, m.acct.SourceUser, err}
	}
	for _, mm := range meta {
		subj, _ := new(mime.WordDecoder).DecodeHeader(headerValue(mm.Header, "Subject"))
		// The header's date, so that the customer can find the message.
		date, _ := mail.ParseDate(headerValue(mm.Header, "Date"))
		w.fr.Skipped = append(w.fr.Skipped, MessageIssue{UID: uint32(mm.UID), Subject: subj, Size: mm.Size, Date: date,
			Reason: catalog.M("reason.over_limit", i18n.Size(m.appendLimit))})
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
	}
	return rest, nil
}

// saveFolder records a complete pass, which lets the next run skip the
// folder while nothing changes.
func (m *migration) saveFolder(ctx context.Context, w *folderWork) error {
	if w.gm != nil {
		// Only the destination's generation: a Gmail folder is compared
		// with the ledger message by message on every run.
		return m.led.SaveFolder(ctx, m.key, FolderState{SrcFolder: w.gm.key, DstFolder: w.plan.Dest,
			DstUIDValidity: w.dstUIDValidity})
	}
	if len(w.fr.Failed) > 0 || len(w.fr.Skipped) > 0 {
		return nil
	}
	st := w.st
	return m.led.SaveFolder(ctx, m.key, FolderState{SrcFolder: w.plan.Source, DstFolder: w.plan.Dest,
		SrcUIDValidity: st.UIDValidity, SrcUIDNext: uint32(st.UIDNext), SrcHighestModSeq: st.HighestModSeq,
		SrcMessages: *st.NumMessages, DstUIDValidity: w.dstUIDValidity})
}

// storeFlags applies a three-way flag delta to one destination message.
func (m *migration) storeFlags(ctx context.Context, uid imap.UID, add, rem []imap.Flag) error {
	if err := m.dst.Store(ctx, []imap.UID{uid}, imap.StoreFlagsAdd, add); err != nil {
		return err
	}
	return m.dst.Store(ctx, []imap.UID{uid}, imap.StoreFlagsDel, rem)
}

// adopt matches source messages the ledger does not know against
// destination messages the ledger does not know (known are the UIDs of
// those it does), by content identity, as multisets. Matches are recorded
// as copied; the rest is returned.
func (m *migration) adopt(ctx context.Context, w *folderWork, uids []imap.UID, known map[imap.UID]bool) ([]imap.UID, error) {
	p, fr := w.plan, w.fr
	// Open afresh: a mailbox view only learns of messages other
	// connections appended when the server syncs it, which some servers do
	// after, not before, the next FETCH. Read-only, because it only reads.
	if _, err := m.dst.Examine(ctx, p.Dest); err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	all, err := m.dst.UIDs(ctx)
	if imapconn.KindOf(err) == imapconn.ErrServer && !m.dst.Dead() {
		// A server that refuses SEARCH lists its messages with FETCH.
		var meta []imapconn.MessageMeta
		meta, err = m.dst.FetchMeta(ctx, nil, nil)
		all = all[:0]
		for _, d := range meta {
			all = append(all, d.UID)
		}
	}
	if err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	var cand []imap.UID
	for _, uid := range all {
		if !known[uid] {
			cand = append(cand, uid)
		}
	}
	if len(cand) == 0 {
		return uids, nil
	}
	dmeta, err := m.dst.FetchMeta(ctx, cand, IdentityFields)
	if err != nil {
		return nil, &SideError{SideDest, m.acct.DestUser, err}
	}
	type sized struct {
		uid  imap.UID
		size int64
	}
	pool := map[Identity][]sized{}
	for _, d := range dmeta {
		id := IdentityOf(d.Header)
		pool[id] = append(pool[id], sized{d.UID, d.Size})
	}
	smeta, err := m.srcMeta(ctx, w, uids)
	if err != nil {
		return nil, &SideError{SideSource, m.acct.SourceUser, err}
	}
	// Exact sizes first, so that two messages told apart only by size
	// each find their own; then sizes a server's repairs explain.
	var adopted []Entry
	matched := make([]bool, len(smeta))
	for pass := range 2 {
		for i, s := range smeta {
			if matched[i] {
				continue
			}
			id := IdentityOf(s.Header)
			cands := pool[id]
			j := slices.IndexFunc(cands, func(c sized) bool {
				return c.size == s.Size || (pass == 1 && SameSize(c.size, s.Size))
			})
			if j < 0 {
				continue
			}
			if cands[j].size != s.Size {
				fr.Rewritten++
			}
			matched[i] = true
			adopted = append(adopted, Entry{SrcUID: s.UID, DstUID: cands[j].uid, Identity: id, Flags: w.flags(s.UID, s.Flags)})
			pool[id] = slices.Delete(cands, j, j+1)
			m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
			m.opt.Progress.add(&m.opt.Progress.bytesDone, s.Size)
		}
	}
	var rest []imap.UID
	for i, s := range smeta {
		if !matched[i] {
			rest = append(rest, s.UID)
		}
	}
	if len(adopted) > 0 {
		if err := m.record(ctx, w, adopted); err != nil {
			return nil, err
		}
		fr.AlreadyPresent += len(adopted)
		m.logf("%s: %d message(s) already on the destination", p.Source, len(adopted))
	}
	return rest, nil
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
// reconnecting, or that the server did not send; the folder goes on
// without them.
type fetchLost struct {
	uids []imap.UID
	err  error
}

func (f fetchLost) Error() string {
	return fmt.Sprintf("%d message(s) unreadable: %v", len(f.uids), f.err)
}

// errNotSent is why a message listed in the folder was not copied: the
// server answered the FETCH without it (deleted meanwhile, or broken on
// the server).
var errNotSent = errors.New("the old server did not send this message (it may have been deleted there during the copy); run the migration again to try once more")

// errOversized refuses a body bigger than the server announced (or than
// the destination takes): a broken or hostile server must not make us
// spool and send gigabytes.
type errOversized struct {
	uid             imap.UID // 0 when the server sent the body before the UID
	size, announced int64
	limit           int64 // the destination's limit, when that was the bound
}

func (e errOversized) Error() string { return e.message().String() }

// message is the report's reason for the message.
func (e errOversized) message() i18n.Message {
	if e.limit > 0 && e.size > e.limit && e.size <= e.announced+sizeSlack(e.announced) {
		return catalog.M("reason.too_big", i18n.Size(e.size), i18n.Size(e.limit))
	}
	return catalog.M("reason.size_mismatch", i18n.Size(e.size), i18n.Size(e.announced))
}

// sizeSlack is how much larger than announced a body may be: RFC822.SIZE
// must be exact, but some servers count line endings differently.
func sizeSlack(announced int64) int64 { return max(announced/10, 1<<20) }

// chunk is some of a folder's messages whose bodies were asked for: the
// first UIDs of what is left, bounded in bytes (an arena) and count, with
// the memory for them taken before asking, as once the server sends, the
// bodies must be read without pause. Its reply is read by its own
// goroutine (see imapconn.BodyFetch).
type chunk struct {
	cur     *cursor // whose folder it is
	uids    []imap.UID
	want    map[imap.UID]bool
	biggest int64
	ar      *arena   // the memory, or
	loan    []*arena // the budget of as many, for a message larger than an arena
	f       *imapconn.BodyFetch
	opened  bool // an EXAMINE of the folder went ahead of the fetch

	ready chan struct{} // closed when the reply is read
	got   []*job
	err   error
}

// chunkOf is the first uids of a chunk: one with single.
func (m *migration) chunkOf(w *folderWork, uids []imap.UID, single bool) []imap.UID {
	n, total := 0, int64(0)
	for n < len(uids) && n < chunkMessages && (n == 0 || total+w.sizes[uids[n]] <= m.arenas.size) && (n == 0 || !single) {
		total += w.sizes[uids[n]]
		n++
	}
	return uids[:n]
}

// sendChunk takes the memory for the chunk of uids, asks for it, after an
// EXAMINE of its folder with open, and starts reading the reply. With wait
// false it asks only if the memory is free at once and the EXAMINE can go
// ahead (see SendBodies), and returns nil otherwise.
func (m *migration) sendChunk(ctx context.Context, c *cursor, uids []imap.UID, open, wait bool) (*chunk, error) {
	w := c.w
	ch := &chunk{cur: c, uids: uids, want: make(map[imap.UID]bool, len(uids)), opened: open, ready: make(chan struct{})}
	var total int64
	for _, uid := range uids {
		ch.want[uid] = true
		ch.biggest = max(ch.biggest, w.sizes[uid])
		total += w.sizes[uid]
	}
	// One message larger than an arena borrows the budget of as many;
	// one larger than them all goes to a file.
	switch k := int((total + m.arenas.size - 1) / m.arenas.size); {
	case k > cap(m.arenas.free):
	case k > 1:
		loan, err := m.arenas.take(ctx, k, wait)
		if err != nil || loan == nil {
			return nil, err
		}
		for _, a := range loan {
			a.buf = nil
		}
		ch.loan = loan
	default:
		got, err := m.arenas.take(ctx, 1, wait)
		if err != nil || got == nil {
			return nil, err
		}
		ch.ar = got[0]
		ch.ar.fill()
	}
	folder := ""
	if open {
		folder = w.source()
	}
	f, ok := m.src.SendBodies(folder, uids)
	if !ok {
		ch.release()
		return nil, nil
	}
	ch.f = f
	go func() {
		defer close(ch.ready)
		defer ch.release()
		ch.got, ch.err = m.readChunk(ctx, ch)
	}()
	return ch, nil
}

// release gives the chunk's memory back; bodies read into it keep their
// arena until they are recorded.
func (ch *chunk) release() {
	if ch.ar != nil {
		ch.ar.release()
		ch.ar = nil
	}
	if ch.loan != nil {
		ch.loan[0].pool.give(ch.loan)
		ch.loan = nil
	}
}

// discard waits for a chunk whose turn will not come and throws it away.
func (ch *chunk) discard() {
	<-ch.ready
	for _, j := range ch.got {
		j.body.release()
	}
	ch.got = nil
}

// readChunk reads the reply to a chunk's fetch, after checking that the
// EXAMINE sent before it opened the folder that was planned.
func (m *migration) readChunk(ctx context.Context, ch *chunk) (got []*job, err error) {
	w, sizes := ch.cur.w, ch.cur.w.sizes
	if ch.opened {
		sel, err := ch.f.Opened(ctx)
		if err == nil && sel.UIDValidity != w.uidValidity {
			err = errFolderReset{w.source()}
		}
		if err != nil {
			ch.f.Discard(ctx)
			return nil, err
		}
	}
	err = imapconn.ReadBodies(ctx, ch.f,
		func(msg imapconn.Message, r io.Reader, size int64) (*body, error) {
			uid, announced := msg.UID, ch.biggest
			if uid == 0 && len(ch.uids) == 1 {
				uid = ch.uids[0]
			}
			if a, ok := sizes[uid]; ok && uid != 0 {
				announced = a
			}
			if size > announced+sizeSlack(announced) || (m.appendLimit > 0 && size > m.appendLimit) {
				return nil, errOversized{uid: uid, size: size, announced: announced, limit: m.appendLimit}
			}
			if ch.ar != nil {
				if mem := ch.ar.alloc(size); mem != nil {
					b, err := spoolInto(r, mem)
					if err != nil {
						ch.ar.release()
						return nil, err
					}
					b.arena = ch.ar
					return b, nil
				}
			}
			if ch.loan != nil && size <= int64(len(ch.loan))*m.arenas.size {
				b, err := spoolInto(r, make([]byte, size))
				if err == nil {
					b.loan, ch.loan = ch.loan, nil
				}
				return b, err
			}
			return spoolFile(r, m.opt.TempDir)
		},
		func(msg imapconn.Message, b *body) error {
			if !ch.want[msg.UID] {
				// Not asked for, or sent twice: never copy it.
				b.release()
				return nil
			}
			delete(ch.want, msg.UID)
			got = append(got, &job{work: w, msg: msg, body: b})
			return nil
		})
	if err != nil {
		for _, j := range got {
			j.body.release()
		}
		return nil, err
	}
	return got, nil
}

// handOver waits for a chunk's reply and hands its messages over; it
// returns which of the chunk the server did not send. A chunk is handed over only after
// its FETCH has completed, because go-imap times a response out if its
// reader is not consumed, and appending may take longer than that.
func (m *migration) handOver(ctx context.Context, ch *chunk, out chan<- []*job) (missing []imap.UID, err error) {
	<-ch.ready
	if ch.err != nil {
		return nil, ch.err
	}
	for _, uid := range ch.uids {
		if ch.want[uid] {
			missing = append(missing, uid)
		}
	}
	select {
	case out <- ch.got:
		return missing, nil
	case <-ctx.Done():
		ch.discard()
		return nil, context.Cause(ctx)
	}
}

// srcMeta reads the metadata and identity fields of messages of a work's
// folder, which the source connection has open.
func (m *migration) srcMeta(ctx context.Context, w *folderWork, uids []imap.UID) (meta []imapconn.MessageMeta, err error) {
	err = m.fromSource(ctx, func(reopened bool) error {
		if reopened {
			if err := m.examine(ctx, w); err != nil {
				return err
			}
		}
		meta, err = m.src.FetchMeta(ctx, uids, IdentityFields)
		return err
	})
	return meta, err
}

// reconnectSource replaces a broken source connection; when the server
// ended the session for an expired token, the new one signs in with
// another.
func (m *migration) reconnectSource(ctx context.Context) error {
	rejected := ""
	if m.src.TokenExpired() {
		rejected = m.srcToken
	}
	m.src.Close()
	c, err := m.dialSource(ctx, rejected)
	if err != nil {
		return err
	}
	m.src = c
	return nil
}

// errFolderReset means a source folder got a new UIDVALIDITY during the run:
// its UIDs no longer name the messages that were listed.
type errFolderReset struct{ folder string }

func (e errFolderReset) Error() string {
	return fmt.Sprintf("folder %q was reset on the source during the copy (UIDVALIDITY changed); run the migration again", e.folder)
}

// examine opens a work's source folder for fetching.
func (m *migration) examine(ctx context.Context, w *folderWork) error {
	sel, err := m.src.Examine(ctx, w.source())
	if err != nil {
		return err
	}
	if sel.UIDValidity != w.uidValidity {
		return errFolderReset{w.source()}
	}
	return nil
}

// appender appends batches on its own destination connection, taken from
// and returned to the account's pool.
func (p *pipeline) appender(in <-chan []*job) {
	var conn *imapconn.Conn
	select {
	case conn = <-p.m.pool:
	default:
	}
	defer func() {
		if conn != nil && !conn.Dead() {
			p.m.pool <- conn
		} else if conn != nil {
			conn.Close()
		}
	}()
	for b := range in {
		var rs []result
		rs, conn = p.appendBatch(conn, b)
		for _, r := range rs {
			p.results <- r
		}
	}
}

// appendBatch appends a batch of one folder's messages with one APPEND
// and says how each went; every job gets a result, a panic included, or
// the collector would wait for it forever. A batch stores all of its
// messages or none (RFC 3502): one that fails is retried after the
// folder is matched against the destination again, one message at a time,
// so that the message the server refuses (too big, over quota, broken) is
// the one reported, and its neighbours are copied.
func (p *pipeline) appendBatch(conn *imapconn.Conn, jobs []*job) (rs []result, next *imapconn.Conn) {
	m, ctx, w := p.m, p.ctx, jobs[0].work
	each := func(out outcome, err error) []result {
		rs := make([]result, len(jobs))
		for i, j := range jobs {
			rs[i] = result{job: j, work: w, out: out, err: err}
		}
		return rs
	}
	defer func() {
		if v := recover(); v != nil {
			m.logf("internal error while appending: %v\n%s", v, debug.Stack())
			if conn != nil {
				conn.Close()
			}
			rs, next = each(fatal, &InternalError{Value: fmt.Sprint(v)}), nil
		}
	}()
	if ctx.Err() != nil {
		return each(dropped, nil), conn
	}
	if len(jobs) > 1 && p.full.Load() {
		// The mailbox is full: the retry finds the message that does not
		// fit, one at a time, instead of every batch being sent in vain.
		return each(retry, imapconn.ErrOverQuota), conn
	}
	var size int64
	for _, j := range jobs {
		size += j.body.size
	}
	fits := p.room.Add(-size) >= 0
	if !fits && len(jobs) > 1 {
		// Not enough room left in the quota for the whole batch: one
		// message at a time, so that the server refuses the one that
		// does not fit (see pipeline.room).
		p.room.Add(size)
		for i, j := range jobs {
			var r []result
			r, conn = p.appendBatch(conn, []*job{j})
			rs = append(rs, r...)
			if r[0].out == fatal {
				for _, j := range jobs[i+1:] {
					rs = append(rs, result{job: j, work: w, out: dropped})
				}
				break
			}
		}
		return rs, conn
	}
	if conn == nil || conn.Dead() {
		c, err := m.dial(ctx, SideDest, "")
		if err != nil {
			return each(fatal, err), nil
		}
		conn = c
	}
	msgs := make([]imapconn.AppendMessage, len(jobs))
	for i, j := range jobs {
		msgs[i] = imapconn.AppendMessage{Flags: w.flags(j.msg.UID, j.msg.Flags), Date: j.msg.InternalDate,
			Size: j.body.size, Body: j.body.reader()}
	}
	if fits {
		p.tight.RLock()
		defer p.tight.RUnlock()
	} else {
		p.tight.Lock()
		defer p.tight.Unlock()
	}
	start := time.Now()
	uids, err := conn.Append(ctx, w.plan.Dest, msgs)
	if err != nil {
		p.room.Add(size) // nothing was stored (or it is found by matching)
	}
	switch {
	case err == nil:
		if m.opt.Appended != nil {
			m.opt.Appended(time.Since(start))
		}
		rs = each(copied, nil)
		if len(uids) == len(rs) {
			for i := range rs {
				rs[i].dstUID = uids[i]
			}
		}
		return rs, conn
	case ctx.Err() != nil:
		return each(dropped, nil), conn
	case len(jobs) > 1:
		if errors.Is(err, imapconn.ErrOverQuota) {
			p.full.Store(true)
		}
		m.logf("%s: a batch of %d message(s) failed (%v); they are tried again one at a time", w.plan.Source, len(jobs), err)
		conn.Close()
		return each(retry, err), nil
	case errors.Is(err, imapconn.ErrTooBig):
		return each(skipped, err), conn
	case errors.Is(err, imapconn.ErrOverQuota):
		return each(fatal, &SideError{SideDest, m.acct.DestUser, err}), conn
	default:
		// Another attempt goes over a fresh connection.
		conn.Close()
		return each(retry, err), nil
	}
}
