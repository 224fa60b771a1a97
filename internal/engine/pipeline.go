package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

// folderWork is one folder's copy on its way through the pipeline.
type folderWork struct {
	plan           FolderPlan
	fr             *FolderReport
	st             *imap.StatusData
	uidValidity    uint32 // source
	dstUIDValidity uint32
	filter         flagFilter
	sizes          map[imap.UID]int64
	started        time.Time
	gm             *gmailWork // a Gmail destination folder's messages

	// Owned by the collector.
	sent, received int
	fed, finished  bool
	batch          []Entry
	retry          []imap.UID
	copied         []copiedMsg // this run's copies, for verify
}

// copiedMsg is what the destination should now hold of one copy.
type copiedMsg struct {
	dst   imap.UID
	size  int64
	date  time.Time
	flags []imap.Flag // as given to the destination
}

// source is the folder the work's messages are read from.
func (w *folderWork) source() string {
	if w.gm != nil {
		return w.gm.source
	}
	return w.plan.Source
}

// extra are the flags a message gets beyond its own (a Gmail label's).
func (w *folderWork) extra(uid imap.UID) []imap.Flag {
	if w.gm == nil {
		return nil
	}
	return w.gm.extra[uid]
}

// flags are the flags to give the destination's copy of a source message.
func (w *folderWork) flags(uid imap.UID, flags []imap.Flag) []imap.Flag {
	if x := w.extra(uid); len(x) > 0 {
		flags = append(slices.Clone(flags), x...)
	}
	return w.filter.apply(flags)
}

// reset prepares a work for another pass (the retry).
func (w *folderWork) reset() {
	w.sent, w.received, w.fed, w.finished, w.retry = 0, 0, false, false, nil
}

// job is one message on its way from the source to the destination.
type job struct {
	work *folderWork
	msg  imapconn.Message
	body *body
}

type outcome int

const (
	copied  outcome = iota
	skipped         // too big for the destination
	retry           // failed; worth another attempt
	fatal           // the account cannot go on (over quota, login refused)
	dropped         // not attempted: the run was stopped
	fed             // marker: every message of the folder was queued
	missed          // not fetched: the source did not send it (result.lost)
)

type result struct {
	job    *job
	work   *folderWork
	out    outcome
	dstUID imap.UID
	err    error
	sent   int // with fed: how many jobs the folder has
	lost   *fetchLost
}

// pipeline is one account's copy machinery: the caller fetches folder after
// folder on the source connection (feed), a pool of appenders empties the
// queue on their own destination connections, a batch of one folder's
// messages per APPEND, and a collector records the outcomes in the ledger
// and the report. The queue holds at most a few chunks, which bounds
// memory.
type pipeline struct {
	m        *migration
	ctx      context.Context
	cancel   context.CancelCauseFunc
	mayRetry bool
	full     atomic.Bool // a batch was refused for the quota
	// room is what the destination's quota still takes, as read before
	// the copy, less what was appended since (MaxInt64 when it is not
	// known). A server checks a batch against its usage at the start of
	// the transaction, blind to what other connections are appending, so
	// batches in parallel would overshoot the quota by megabytes (Dovecot
	// let 7 MB into a 4 MB quota); one that does not fit goes one message
	// at a time, and the server stops at the message that does not fit.
	room atomic.Int64
	// tight is held shared by the APPENDs that fit in the room and alone by
	// one that does not: that one waits until the others are stored, so
	// that the server checks it against all of them.
	tight sync.RWMutex

	chunks  chan []*job
	results chan result
	done    chan struct{}

	// Owned by the collector until done is closed.
	err     error
	works   []*folderWork
	retries []*folderWork
}

// startPipeline starts the appenders and the collector. The first pass
// appends batches where the destination offers MULTIAPPEND; the retry pass
// (mayRetry false) one message at a time.
func (m *migration) startPipeline(parent context.Context, mayRetry bool) *pipeline {
	ctx, cancel := context.WithCancelCause(parent)
	p := &pipeline{m: m, ctx: ctx, cancel: cancel, mayRetry: mayRetry,
		chunks: make(chan []*job, 1), results: make(chan result, chunkMessages), done: make(chan struct{})}
	batch := 1
	if m.multiAppend && mayRetry {
		batch = chunkMessages
	}
	p.room.Store(math.MaxInt64)
	if sp := m.rep.Space; sp != nil && sp.Limit > 0 {
		p.room.Store(max(0, sp.Limit-sp.Used))
	}
	in := make(chan []*job)
	var wg sync.WaitGroup
	for range m.opt.AppendWorkers {
		wg.Go(func() { p.appender(in) })
	}
	go func() {
		interleave(p.chunks, in, m.opt.AppendWorkers, batch)
		close(in)
		wg.Wait()
		close(p.results)
	}()
	go p.collect()
	return p
}

// interleave passes the jobs of up to width chunks on at once, in batches
// of at most batch jobs taken from the chunks in turn, so that parallel
// appenders get messages of different folders. A chunk holds one
// folder's messages, so a batch does too.
func interleave(chunks <-chan []*job, out chan<- []*job, width, batch int) {
	var open [][]*job
	more := true
	for more || len(open) > 0 {
		// Take in what is ready without waiting, unless nothing is open.
		for more && len(open) < width {
			var c []*job
			if len(open) == 0 {
				c, more = <-chunks
			} else {
				select {
				case c, more = <-chunks:
				default:
				}
				if c == nil && more {
					break
				}
			}
			if len(c) > 0 {
				open = append(open, c)
			}
		}
		next := open[:0]
		for _, c := range open {
			k := min(batch, len(c))
			out <- c[:k:k]
			if len(c) > k {
				next = append(next, c[k:])
			}
		}
		open = next
	}
}

// feed fetches the folders' messages chunk by chunk, taking the folders in
// turn: appends into one mailbox contend for its lock on the server, so the
// appenders do better working on several at once. Up to chunksInFlight
// chunks are asked for at once, so that the server's work and the way
// there and back overlap with the reading: from a server 20 ms away a
// chunk read in 10 ms would otherwise wait 20 ms for its first byte. It
// returns only account-level errors; messages the source cannot deliver
// even after reconnecting are recorded as failed.
func (p *pipeline) feed(works []*folderWork, uids [][]imap.UID) error {
	const maxReconnects = 2
	m := p.m
	var ring []*cursor
	for i, w := range works {
		if len(uids[i]) == 0 {
			p.results <- result{work: w, out: fed}
			continue
		}
		ring = append(ring, &cursor{w: w, uids: uids[i]})
	}
	turn := 0 // where the next pick starts in the ring
	// selected is the folder open on the source once the commands sent
	// are done; "" when not known.
	selected := ""
	var inflight []*chunk // asked for, in the order they were
	// dropAll throws away the chunks on their way and returns the first
	// failure among them.
	dropAll := func() error {
		var first error
		for _, ch := range inflight {
			ch.discard()
			if first == nil {
				first = ch.err
			}
			ch.cur.asked = 0
		}
		if len(inflight) > 0 {
			inflight, selected = nil, ""
		}
		return first
	}
	defer dropAll()
	done := func(c *cursor, lost *fetchLost) {
		i := slices.Index(ring, c)
		ring = slices.Delete(ring, i, i+1)
		if turn > i {
			turn--
		}
		if turn >= len(ring) {
			turn = 0
		}
		p.results <- result{work: c.w, out: fed, sent: c.sent, lost: lost}
	}
	// alone: after a failure the next chunk goes on its own, so that what
	// happens to it is its own doing.
	alone := false
	for len(ring) > 0 {
		var c *cursor
		err := p.ctx.Err()
		for err == nil && len(inflight) < chunksInFlight && !(alone && len(inflight) > 0) {
			next, chunkUIDs := p.pick(ring, &turn, inflight)
			if next == nil {
				break
			}
			first, open := len(inflight) == 0, selected != next.w.source()
			if first && open {
				// Nothing to overlap with: opened on its own, which
				// also lets the EXAMINEs after it go ahead (SendBodies).
				if err = m.examine(p.ctx, next.w); err != nil {
					c = next
					break
				}
				selected, open = next.w.source(), false
			}
			ch, err2 := m.sendChunk(p.ctx, next, chunkUIDs, open, first)
			if err2 != nil {
				err, c = err2, next
				break
			}
			if ch == nil {
				break // the memory is taken: the chunks before go first
			}
			next.asked += len(chunkUIDs)
			selected = next.w.source()
			inflight = append(inflight, ch)
		}
		var ch *chunk // handed over
		var missing []imap.UID
		// The first failure of the chunks asked for after this one: they
		// may have ended the connection under it (a throttling BYE, a body
		// refused), which says nothing of this one.
		var aheadErr error
		if err == nil {
			ch, inflight = inflight[0], inflight[1:]
			c = ch.cur
			missing, err = m.handOver(p.ctx, ch, p.chunks)
			c.asked -= len(ch.uids)
		}
		alone = err != nil
		if err != nil {
			aheadErr = dropAll()
		}
		// reconnect replaces the source connection; the folder must be
		// opened again on the new one.
		reconnect := func() error {
			selected = ""
			return m.reconnectSource(p.ctx)
		}
		var big errOversized
		var reset errFolderReset
		_, throttled := imapconn.ThrottleWait(err)
		if _, aheadThrottled := imapconn.ThrottleWait(aheadErr); imapconn.KindOf(err) == imapconn.ErrConnLost &&
			!errors.Is(err, imapconn.ErrTokenExpired) && (aheadThrottled || errors.Is(aheadErr, imapconn.ErrTokenExpired)) {
			// A chunk asked for after this one ended the connection
			// under it (a throttling BYE, an expired token): that is
			// what happened, not this folder's failure.
			err, throttled = aheadErr, aheadThrottled
		}
		switch {
		case err == nil:
		case p.ctx.Err() != nil:
			return context.Cause(p.ctx)
		case throttled:
			// Not the folder's fault: wait as asked, on a new
			// connection if the server closed this one, and go on
			// where the chunk was. A refused EXAMINE left no folder
			// open.
			selected = ""
			if err := m.backOff(p.ctx, &SideError{SideSource, m.acct.SourceUser, err}); err != nil {
				return err
			}
			if m.src.Dead() {
				if err := reconnect(); err != nil {
					return err
				}
			}
			continue
		case imapconn.KindOf(err) == imapconn.ErrTooBig:
			// The old server refuses to hand out a message as too
			// large (Exchange's own size limit): one at a time finds
			// it, it is reported, and the rest of the folder is copied.
			if m.src.Dead() {
				if err := reconnect(); err != nil {
					return err
				}
			}
			if !c.single {
				c.single = true
			} else {
				p.results <- result{work: c.w, out: missed, lost: &fetchLost{uids: c.uids[:1], err: err}}
				c.uids, c.single = c.uids[1:], false
				if len(c.uids) == 0 {
					done(c, nil)
				}
			}
			m.logf("%s: %v", c.w.plan.Source, err)
			continue
		case errors.As(err, &big):
			// The connection was dropped mid-literal: refuse that one
			// message, then go on with the rest on a new connection.
			if big.uid == 0 {
				c.single = true
			} else {
				p.results <- result{work: c.w, out: missed, lost: &fetchLost{uids: []imap.UID{big.uid}, err: big}}
				c.uids = slices.DeleteFunc(c.uids, func(u imap.UID) bool { return u == big.uid })
				if len(c.uids) == 0 {
					done(c, nil)
				}
			}
			m.logf("%s: %v", c.w.plan.Source, big)
			if err := reconnect(); err != nil {
				return err
			}
			continue
		case errors.As(err, &reset):
			selected = ""
			done(c, &fetchLost{uids: c.uids, err: err})
			continue
		case errors.Is(err, imapconn.ErrTokenExpired) && c.renewals < maxRenewals:
			// Not a failure: the session outlived its access token.
			// The ledger and the chunks already queued tell what
			// was fetched, so the folder goes on after them.
			c.renewals++
			m.logf("%s: the old server ended the session because the access token expired; signing in again", c.w.plan.Source)
			if err := reconnect(); err != nil {
				return err
			}
			continue
		case c.reconnects >= maxReconnects || imapconn.KindOf(err) == imapconn.ErrProtocol:
			// Another try would get the same: the rest of the folder
			// is reported, the other folders go on.
			done(c, &fetchLost{uids: c.uids, err: err})
			if m.src.Dead() {
				if err := reconnect(); err != nil {
					return err
				}
			}
			continue
		default:
			// With a chunk behind it failing too, the connection may have
			// been ended by that one: the next try goes alone and counts.
			if aheadErr == nil {
				c.reconnects++
			}
			m.logf("%s: source connection failed (%v); reconnecting", c.w.plan.Source, err)
			if err := reconnect(); err != nil {
				return err
			}
			continue
		}
		if len(missing) > 0 {
			p.results <- result{work: c.w, out: missed, lost: &fetchLost{uids: missing, err: errNotSent}}
		}
		c.sent += len(ch.got)
		c.uids = c.uids[len(ch.uids):]
		c.renewals = 0
		if len(c.uids) == 0 {
			done(c, nil)
		}
	}
	return nil
}

// cursor is where feed is in one folder.
type cursor struct {
	w          *folderWork
	uids       []imap.UID // not yet handed over
	asked      int        // how many of uids are on their way
	sent       int
	reconnects int
	renewals   int  // sessions in a row ended for an expired token
	single     bool // fetch one message at a time (to find a bad one)
}

// chunksInFlight is how many chunks are asked for at once: the one read
// and those behind it.
const chunksInFlight = 3

// aheadLooks bounds how many folders pick considers.
const aheadLooks = 8

// pick chooses the chunk to ask for next and its cursor: the next folder
// in turn whose chunk asks for no UID that another folder's chunk on its
// way asks for, as go-imap hands a FETCH reply to the first command asking
// for its UID, and a message of one folder the server sent twice must not
// be taken for one of another's. Else the folder of the last chunk asked
// for goes on. A folder fetched one message at a time has nothing behind
// it and nothing before.
func (p *pipeline) pick(ring []*cursor, turn *int, inflight []*chunk) (*cursor, []imap.UID) {
	if n := len(inflight); n > 0 && inflight[n-1].cur.single {
		return nil, nil
	}
	try := func(c *cursor) []imap.UID {
		rest := c.uids[c.asked:]
		if len(rest) == 0 || (c.single && len(inflight) > 0) {
			return nil
		}
		uids := p.m.chunkOf(c.w, rest, c.single)
		for _, ch := range inflight {
			if ch.cur != c && slices.ContainsFunc(uids, ch.f.Asks) {
				return nil
			}
		}
		return uids
	}
	if len(inflight) == 0 {
		// A folder looking for the message the server refuses goes first,
		// as it has to go alone.
		for _, c := range ring {
			if c.single {
				return c, try(c)
			}
		}
	}
	for k := range min(len(ring), aheadLooks) {
		i := (*turn + k) % len(ring)
		if uids := try(ring[i]); uids != nil {
			*turn = (i + 1) % len(ring)
			return ring[i], uids
		}
	}
	if n := len(inflight); n > 0 {
		c := inflight[n-1].cur
		if uids := try(c); uids != nil {
			return c, uids
		}
	}
	return nil, nil
}

// finish waits until everything queued is appended and recorded and
// returns the first account-level failure.
func (p *pipeline) finish() error {
	close(p.chunks)
	<-p.done
	p.cancel(nil)
	return p.err
}

func (p *pipeline) collect() {
	defer close(p.done)
	for r := range p.results {
		p.take(r)
	}
	// After a stop, folders still in flight keep what was copied.
	for _, w := range p.works {
		if !w.finished {
			p.flush(w)
		}
	}
}

// take records one result. A panic stops the run with an internal error,
// but the results keep being drained, so that no appender blocks.
func (p *pipeline) take(r result) {
	defer func() {
		if v := recover(); v != nil {
			p.m.logf("internal error while recording: %v\n%s", v, debug.Stack())
			if p.err == nil {
				p.err = &InternalError{Value: fmt.Sprint(v)}
				p.cancel(p.err)
			}
		}
	}()
	w := r.work
	switch r.out {
	case fed:
		w.fed, w.sent = true, r.sent
		p.works = append(p.works, w)
		p.lost(w, r.lost)
	case missed:
		p.lost(w, r.lost)
	default:
		w.received++
		defer r.job.body.release()
		p.record(r)
	}
	if w.fed && w.received == w.sent && !w.finished {
		p.finalize(w)
	}
}

// lost records source messages that were not fetched, with the reason.
func (p *pipeline) lost(w *folderWork, l *fetchLost) {
	if l == nil {
		return
	}
	m := p.m
	var reason i18n.Message
	var big errOversized
	switch {
	case errors.As(l.err, &big):
		reason = big.message()
	case errors.Is(l.err, errNotSent):
		reason = catalog.M("reason.not_sent")
	case imapconn.KindOf(l.err) == imapconn.ErrTooBig:
		reason = catalog.M("reason.source_too_big", errText(l.err))
	default:
		reason = catalog.M("reason.unreadable", errText(l.err))
	}
	for _, uid := range l.uids {
		w.fr.Failed = append(w.fr.Failed, MessageIssue{UID: uint32(uid), Size: w.sizes[uid], Reason: reason})
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
	}
}

func (p *pipeline) record(r result) {
	m, w, j := p.m, r.work, r.job
	switch r.out {
	case copied:
		flags := w.flags(j.msg.UID, j.msg.Flags)
		w.batch = append(w.batch, Entry{SrcUID: j.msg.UID, DstUID: r.dstUID,
			Identity: IdentityOf(j.body.header()), Flags: flags})
		w.fr.Copied++
		w.fr.BytesCopied += j.body.size
		if r.dstUID != 0 {
			w.copied = append(w.copied, copiedMsg{dst: r.dstUID, size: j.body.size, date: j.msg.InternalDate,
				flags: flags})
		}
		for _, k := range w.filter.dropped(append(slices.Clone(j.msg.Flags), w.extra(j.msg.UID)...)) {
			if !slices.Contains(w.fr.KeywordsDropped, k) && len(w.fr.KeywordsDropped) < maxListed {
				w.fr.KeywordsDropped = append(w.fr.KeywordsDropped, k)
			}
		}
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		m.opt.Progress.add(&m.opt.Progress.bytesDone, j.body.size)
		if len(w.batch) >= ledgerBatch {
			p.flush(w)
		}
	case skipped:
		w.fr.Skipped = append(w.fr.Skipped, issue(j, catalog.M("reason.refused_as_big", errText(r.err))))
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		m.logf("%s: skipped UID %d: %v", w.plan.Source, j.msg.UID, r.err)
	case retry:
		if p.mayRetry {
			w.retry = append(w.retry, j.msg.UID)
			return
		}
		w.fr.Failed = append(w.fr.Failed, issue(j, catalog.M("reason.refused", errText(r.err))))
		m.opt.Progress.add(&m.opt.Progress.msgsDone, 1)
		m.logf("%s: failed UID %d: %v", w.plan.Source, j.msg.UID, r.err)
	case fatal:
		if p.err == nil {
			p.err = r.err
			p.cancel(r.err)
		}
	}
}

// flush writes a folder's pending ledger entries. The write must happen
// even after a stop: those messages are on the destination.
func (p *pipeline) flush(w *folderWork) {
	if len(w.batch) == 0 {
		return
	}
	err := p.m.record(context.WithoutCancel(p.ctx), w, w.batch)
	if err != nil && p.err == nil {
		p.err = err
		p.cancel(err)
	}
	w.batch = w.batch[:0]
}

// finalize closes a folder whose every message has an outcome.
func (p *pipeline) finalize(w *folderWork) {
	w.finished = true
	p.flush(w)
	m := p.m
	if p.mayRetry {
		m.opt.Progress.add(&m.opt.Progress.foldersDone, 1)
	}
	switch {
	case len(w.retry) > 0:
		slices.Sort(w.retry)
		p.retries = append(p.retries, w)
	case p.err == nil && p.ctx.Err() == nil:
		if err := m.saveFolder(p.ctx, w); err != nil && p.err == nil {
			p.err = err
			p.cancel(err)
		}
	}
	m.logf("%s -> %s: %d copied, %d already present in %s", w.plan.Source, w.plan.Dest,
		w.fr.Copied, w.fr.AlreadyPresent, time.Since(w.started).Round(time.Millisecond))
}

// issue describes a message for the report by its subject and date.
func issue(j *job, reason i18n.Message) MessageIssue {
	subj, _ := new(mime.WordDecoder).DecodeHeader(headerValue(j.body.header(), "Subject"))
	return MessageIssue{UID: uint32(j.msg.UID), Subject: subj, Date: j.msg.InternalDate,
		Size: j.body.size, Reason: reason}
}
