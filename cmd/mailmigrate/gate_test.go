package main

import (
	"context"
	"testing"
	"time"
)

// After a throttled answer no account starts before the wait the server
// asked for, and one fewer runs at once until twice that wait has passed;
// one always may run.
func TestGateSlowsDownForAThrottlingServer(t *testing.T) {
	ctx := context.Background()
	g := newGate(3)
	for range 3 {
		if err := g.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	until := start.Add(100 * time.Millisecond)
	g.slowDown(until)
	g.release()
	g.release()
	g.release()

	// Two may start again once the wait has passed, not before.
	for range 2 {
		if err := g.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if at := time.Now(); at.Before(until) {
		t.Errorf("an account started %v after the throttled answer, before the %v asked for", at.Sub(start), until.Sub(start))
	}
	// The third waits for the penalty to lapse (twice the wait).
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// The penalty lapses 200ms after the throttled answer, less the moment
	// slowDown took to be called; without it the third would have started
	// with the other two, at 100ms.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("three ran at once again after %v; the penalty lasts 200ms", took)
	}

	// However often the server throttles, one account may always run.
	g = newGate(2)
	for range 5 {
		g.slowDown(time.Now().Add(time.Millisecond))
	}
	if g.penalties != 1 {
		t.Errorf("%d penalties with a limit of 2", g.penalties)
	}
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}

	// A cancelled run stops waiting.
	g = newGate(1)
	g.acquire(ctx)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := g.acquire(cctx); err == nil {
		t.Error("acquire of a full gate returned without a place")
	}
}
