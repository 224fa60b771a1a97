// Package slots counts things that must stay under a limit — copies from
// one old server at a time, failed logins in a window — as leases: each
// slot lapses at a time of its own unless its holder renews it, so that the
// slots of a process that died come back by themselves. Memory counts in
// one process; the store counts in the database that all servers share.
package slots

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Limit allows at most Max unlapsed slots of Key at a time.
type Limit struct {
	Key string
	Max int
}

// Slots takes, renews and frees slots.
type Slots interface {
	// Take takes one slot of each limit's key, lapsing at until, when
	// every key has fewer than its Max unlapsed slots; else it takes none
	// and says how long until enough of them lapse (wait > 0, ids nil).
	Take(ctx context.Context, limits []Limit, holder string, until time.Time) (ids []int64, wait time.Duration, err error)
	// Hold moves the lapse of slots to until (a holder still at work);
	// held is false when any of them had lapsed already, and may have
	// been taken by another.
	Hold(ctx context.Context, ids []int64, until time.Time) (held bool, err error)
	// Free gives slots back before they lapse.
	Free(ctx context.Context, ids []int64) error
	// FreeKey gives back every slot of a key, whoever holds it.
	FreeKey(ctx context.Context, key string) error
}

// Wait is how long until a key with the given lapse times has fewer than
// max of them left after now (0: it has already). Both implementations
// decide with it.
func Wait(lapses []time.Time, max int, now time.Time) time.Duration {
	live := lapses[:0:0]
	for _, l := range lapses {
		if l.After(now) {
			live = append(live, l)
		}
	}
	if len(live) < max {
		return 0
	}
	slices.SortFunc(live, func(a, b time.Time) int { return a.Compare(b) })
	// Room comes when all but max-1 of them have lapsed.
	return live[len(live)-max].Sub(now)
}

// Memory is Slots in this process alone: for a service whose database no
// other process shares, and for the command line.
type Memory struct {
	mu    sync.Mutex
	next  int64
	slots map[int64]slot
	byKey map[string][]int64
	now   func() time.Time
}

type slot struct {
	key   string
	lapse time.Time
}

// NewMemory makes an empty Memory.
func NewMemory() *Memory {
	return &Memory{slots: map[int64]slot{}, byKey: map[string][]int64{}, now: time.Now}
}

// live drops a key's lapsed slots and returns the lapse times of the rest.
func (m *Memory) live(key string, now time.Time) []time.Time {
	ids := m.byKey[key][:0]
	var lapses []time.Time
	for _, id := range m.byKey[key] {
		s, ok := m.slots[id]
		if !ok {
			continue
		}
		if !s.lapse.After(now) {
			delete(m.slots, id)
			continue
		}
		ids = append(ids, id)
		lapses = append(lapses, s.lapse)
	}
	if len(ids) == 0 {
		delete(m.byKey, key)
	} else {
		m.byKey[key] = ids
	}
	return lapses
}

// Take implements Slots.
func (m *Memory) Take(_ context.Context, limits []Limit, _ string, until time.Time) ([]int64, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.slots) > 100_000 {
		// Keys that are never taken again must not keep their lapsed
		// slots for ever (a spray of logins).
		for key := range m.byKey {
			m.live(key, now)
		}
	}
	var wait time.Duration
	for _, l := range limits {
		wait = max(wait, Wait(m.live(l.Key, now), l.Max, now))
	}
	if wait > 0 {
		return nil, wait, nil
	}
	ids := make([]int64, len(limits))
	for i, l := range limits {
		m.next++
		ids[i] = m.next
		m.slots[m.next] = slot{l.Key, until}
		m.byKey[l.Key] = append(m.byKey[l.Key], m.next)
	}
	return ids, 0, nil
}

// Hold implements Slots.
func (m *Memory) Hold(_ context.Context, ids []int64, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	held := true
	for _, id := range ids {
		s, ok := m.slots[id]
		if !ok || !s.lapse.After(now) {
			held = false
			continue
		}
		s.lapse = until
		m.slots[id] = s
	}
	return held, nil
}

// Free implements Slots.
func (m *Memory) Free(_ context.Context, ids []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.slots, id)
	}
	return nil
}

// FreeKey implements Slots.
func (m *Memory) FreeKey(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.byKey[key] {
		delete(m.slots, id)
	}
	delete(m.byKey, key)
	return nil
}
