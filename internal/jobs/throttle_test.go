package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/slots"
	"mailmigrate/internal/store"
)

// An old server that asks for a long pause (Exchange's "Request is
// throttled. Suggested Backoff Time: ...") gives the worker back: the task
// waits queued, saying when it goes on, its job is snoozed until then, the
// copies from that server are fewer for a while; the next run finishes.
func TestThrottledTaskSnoozes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		b := newBench(t, st, Config{SourceHostLimit: 3})
		b.holdQueue()
		until := time.Now().Add(90 * time.Second).Truncate(time.Second)
		runs := 0
		b.r.run = func(ctx context.Context, a engine.Account, _ engine.Ledger, opt engine.Options) (*engine.Report, error) {
			runs++
			if opt.MaxThrottleWait != throttleInline {
				t.Errorf("the engine waits out throttling up to %v in the run, want %v", opt.MaxThrottleWait, throttleInline)
			}
			if runs > 1 {
				return &engine.Report{Status: engine.StatusDone}, nil
			}
			opt.Throttled(until)
			err := &engine.ThrottledError{Until: until, Err: &engine.SideError{Side: engine.SideSource, User: a.SourceUser,
				Err: &imapconn.Error{Kind: imapconn.ErrThrottled, Text: "Request is throttled. Suggested Backoff Time: 90000 milliseconds"}}}
			return &engine.Report{Status: engine.StatusFailed, Failure: engine.Explain(err)}, err
		}
		task := b.submit()
		err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1))
		var snooze *river.JobSnoozeError
		if !errors.As(err, &snooze) || snooze.Duration < 80*time.Second || snooze.Duration > 91*time.Second {
			t.Fatalf("work: %v, want a snooze of about 90 s", err)
		}
		got := b.task(task.ID)
		if got.State != store.StateQueued || got.Failure == nil || got.Failure.Kind != "throttled" {
			t.Fatalf("task %s, failure %+v; want queued with the throttling note", got.State, got.Failure)
		}
		for lang, want := range map[i18n.Lang]string{i18n.English: "continues at " + until.Format("15:04"),
			i18n.Czech: "pokračuje v " + i18n.New(i18n.Czech).Clock(until)} {
			if msg := got.Failure.Localize(i18n.New(lang)).Message; !strings.Contains(msg, want) {
				t.Errorf("%s: %q, want %q in it", lang, msg, want)
			}
		}
		// One of the server's three copies is taken for a while.
		server := b.r.failed.Server(ctx, "imap.old.test", 993)
		var held [][]int64
		for range 3 {
			ids, _, err := b.r.slots.Take(ctx, []slots.Limit{{Key: sourceSlot(server), Max: 3}}, "test", time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if ids != nil {
				held = append(held, ids)
			}
		}
		if len(held) != 2 {
			t.Errorf("%d copies from the throttling server may run, want 2 of 3", len(held))
		}
		for _, ids := range held {
			b.r.slots.Free(ctx, ids)
		}
		// The penalties stop at limit-1: one copy always may go on.
		for range 5 {
			b.r.slowDown(ctx, server, until)
		}
		ids, _, _ := b.r.slots.Take(ctx, []slots.Limit{{Key: sourceSlot(server), Max: 3}}, "test", time.Now().Add(time.Minute))
		if ids == nil {
			t.Fatal("no copy from the throttling server may run")
		}
		b.r.slots.Free(ctx, ids)

		if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(b.task(task.ID), 1)); err != nil {
			t.Fatalf("second run: %v", err)
		}
		if got := b.task(task.ID); got.State != store.StateDone || got.Failure != nil {
			t.Errorf("after the wait: %s, failure %+v; want done", got.State, got.Failure)
		}
	})
}
