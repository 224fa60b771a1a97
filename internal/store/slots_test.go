package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailmigrate/internal/slots"
)

// forEachSlots runs a test over the slots of this process and of both
// databases: they must count alike.
func forEachSlots(t *testing.T, f func(t *testing.T, s slots.Slots)) {
	t.Run("memory", func(t *testing.T) { f(t, slots.NewMemory()) })
	forEachStore(t, func(t *testing.T, s *DB) { f(t, s.Slots()) })
}

func TestSlots(t *testing.T) {
	forEachSlots(t, func(t *testing.T, s slots.Slots) {
		ctx := context.Background()
		later := time.Now().Add(time.Hour)
		host := []slots.Limit{{Key: "host a", Max: 2}}
		a, wait, err := s.Take(ctx, host, "test", later)
		if err != nil || wait != 0 || len(a) != 1 {
			t.Fatalf("first slot: %v %v %v", a, wait, err)
		}
		b, _, _ := s.Take(ctx, host, "test", time.Now().Add(30*time.Minute))
		if len(b) != 1 {
			t.Fatal("second slot refused")
		}
		if ids, wait, err := s.Take(ctx, host, "test", later); ids != nil || err != nil || wait < 29*time.Minute || wait > 30*time.Minute {
			t.Fatalf("third slot of 2: %v, wait %v, %v; want refused until the earlier lapse (30 min)", ids, wait, err)
		}
		// Another key counts alone; a refusal of one limit takes none.
		if ids, _, _ := s.Take(ctx, []slots.Limit{{Key: "host b", Max: 1}, {Key: "host a", Max: 2}}, "test", later); ids != nil {
			t.Fatal("took slots while one limit was full")
		}
		if ids, _, _ := s.Take(ctx, []slots.Limit{{Key: "host b", Max: 1}}, "test", later); len(ids) != 1 {
			t.Fatal("host b: the refused take above kept a slot")
		}
		if err := s.Free(ctx, b); err != nil {
			t.Fatal(err)
		}
		c, _, _ := s.Take(ctx, host, "test", later)
		if len(c) != 1 {
			t.Fatal("a freed slot did not come back")
		}
		// A slot that lapses makes room; one renewed before does not.
		if held, err := s.Hold(ctx, c, time.Now().Add(-time.Second)); !held || err != nil {
			t.Fatal(held, err)
		}
		if held, err := s.Hold(ctx, a, later); !held || err != nil {
			t.Fatal(held, err)
		}
		if held, err := s.Hold(ctx, c, later); held || err != nil {
			t.Fatalf("renewing a lapsed slot: held %v, %v", held, err)
		}
		d, _, _ := s.Take(ctx, host, "test", later)
		if len(d) != 1 {
			t.Fatal("a lapsed slot did not come back")
		}
		if ids, _, _ := s.Take(ctx, host, "test", later); ids != nil {
			t.Fatal("a renewed slot lapsed")
		}
		if err := s.FreeKey(ctx, "host a"); err != nil {
			t.Fatal(err)
		}
		if ids, _, _ := s.Take(ctx, host, "test", later); len(ids) != 1 {
			t.Fatal("FreeKey left slots")
		}
	})
}

// Takers at the same moment, as on several servers, never exceed a limit.
func TestSlotsConcurrent(t *testing.T) {
	forEachSlots(t, func(t *testing.T, s slots.Slots) {
		ctx := context.Background()
		var took atomic.Int32
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				ids, _, err := s.Take(ctx, []slots.Limit{{Key: "login x", Max: 3}, {Key: "host x", Max: 5}}, "test", time.Now().Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				if ids != nil {
					took.Add(1)
				}
			})
		}
		wg.Wait()
		if took.Load() != 3 {
			t.Fatalf("%d takers got a slot of a limit of 3", took.Load())
		}
	})
}

func TestFreeAndSweepSlots(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		sl := s.Slots()
		for _, k := range []string{"source a", "source b", "login a"} {
			if _, _, err := sl.Take(ctx, []slots.Limit{{Key: k, Max: 1}}, "test", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := sl.Take(ctx, []slots.Limit{{Key: "login b", Max: 1}}, "test", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.FreeSlots(ctx, "source "); err != nil {
			t.Fatal(err)
		}
		if err := s.SweepSlots(ctx); err != nil {
			t.Fatal(err)
		}
		var keys []string
		rows, err := s.query(ctx, `SELECT key FROM slot`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			rows.Scan(&k)
			keys = append(keys, k)
		}
		rows.Close()
		if len(keys) != 1 || keys[0] != "login a" {
			t.Fatalf("slots left: %q, want only the unlapsed login a", keys)
		}
		if s.FreeSlots(ctx, "") == nil {
			t.Fatal("an empty prefix would free every slot")
		}
	})
}

// One machine at a time does what only one may; another takes over once
// the first one's claim has lapsed.
func TestClaimMachine(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		claim := func(machine string, lapse time.Duration, want string) {
			t.Helper()
			if other, err := s.ClaimMachine(ctx, "passwd-file", machine, lapse); err != nil || other != want {
				t.Fatalf("%s claims: held by %q, %v; want %q", machine, other, err, want)
			}
		}
		claim("a", time.Hour, "")
		claim("a", 50*time.Millisecond, "") // renewed, shorter
		claim("b", time.Hour, "a")
		time.Sleep(60 * time.Millisecond)
		claim("b", time.Hour, "")
		claim("a", time.Hour, "b")
	})
}

// Failure counts grow within the window, start again after it, and are
// forgotten on Clear and Sweep.
func TestBackoffs(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		b := s.Backoffs()
		t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		window := time.Hour
		for i := range 3 {
			if err := b.Fail(ctx, []string{"pair", "addr"}, t0.Add(time.Duration(i)*time.Minute), t0.Add(-window)); err != nil {
				t.Fatal(err)
			}
		}
		if n, last, err := b.Failures(ctx, "pair", t0.Add(-window)); n != 3 || !last.Equal(t0.Add(2*time.Minute)) || err != nil {
			t.Fatalf("failures: %d, last %v, %v", n, last, err)
		}
		later := t0.Add(2 * window)
		if n, _, _ := b.Failures(ctx, "pair", later.Add(-window)); n != 0 {
			t.Errorf("failures outside the window still count: %d", n)
		}
		b.Fail(ctx, []string{"pair"}, later, later.Add(-window))
		if n, _, _ := b.Failures(ctx, "pair", later.Add(-window)); n != 1 {
			t.Errorf("a failure after the window counts %d, want 1", n)
		}
		b.Clear(ctx, "pair")
		if n, _, _ := b.Failures(ctx, "pair", t0.Add(-window)); n != 0 {
			t.Errorf("cleared failures count %d", n)
		}
		b.Sweep(ctx, later)
		if n, _, _ := b.Failures(ctx, "addr", t0.Add(-window)); n != 0 {
			t.Errorf("swept failures count %d", n)
		}
	})
}
