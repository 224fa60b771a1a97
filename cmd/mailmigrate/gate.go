package main

import (
	"context"
	"sync"
	"time"
)

// gate lets the accounts of a bulk run start, at most limit at once. All
// of them read from one old server, so when it throttles one of them the
// others back off too (as the service's penalty slots do): no account
// starts before the wait the server asked for has passed, and one account
// fewer runs at once until that wait has passed twice over. At least one
// always may run.
type gate struct {
	limit int

	mu        sync.Mutex
	running   int
	penalties int
	holdUntil time.Time
	changed   chan struct{} // closed and replaced at every change
}

func newGate(limit int) *gate {
	return &gate{limit: max(limit, 1), changed: make(chan struct{})}
}

// acquire waits for a place to start an account.
func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		wait := time.Until(g.holdUntil)
		if wait <= 0 && g.running < g.limit-g.penalties {
			g.running++
			g.mu.Unlock()
			return nil
		}
		changed := g.changed
		g.mu.Unlock()
		var t *time.Timer
		var timeout <-chan time.Time
		if wait > 0 {
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
}

// release gives back an account's place.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	g.notify()
}

// slowDown is told that the old server asked to wait until until.
func (g *gate) slowDown(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.holdUntil) {
		g.holdUntil = until
	}
	if g.penalties >= g.limit-1 {
		return
	}
	g.penalties++
	time.AfterFunc(2*max(0, time.Until(until)), func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.penalties--
		g.notify()
	})
}

func (g *gate) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}
