package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mailmigrate/internal/slots"
)

// Slots are the limits that hold across every server sharing the
// database: copies at once from one old server, failed logins. A slot
// lapses at its time unless renewed, so a server that died gives its
// slots back by itself. Times are the servers' clocks: keep them in sync
// (NTP), or a slot lapses early or late by the difference.
func (l *DB) Slots() slots.Slots { return dbSlots{l} }

type dbSlots struct{ l *DB }

// Take implements slots.Slots.
func (s dbSlots) Take(ctx context.Context, limits []slots.Limit, holder string, until time.Time) ([]int64, time.Duration, error) {
	tx, err := s.l.begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("take a slot: %w", err)
	}
	defer tx.rollback()
	// One taker at a time: two servers counting together would both see
	// room for one.
	if err := tx.lock(ctx, lockSlots); err != nil {
		return nil, 0, fmt.Errorf("take a slot: %w", err)
	}
	now := time.Now()
	var wait time.Duration
	for _, lim := range limits {
		if _, err := tx.exec(ctx, `DELETE FROM slot WHERE key = ? AND lapses <= ?`, lim.Key, unix(now)); err != nil {
			return nil, 0, fmt.Errorf("take a slot of %s: %w", lim.Key, err)
		}
		rows, err := tx.query(ctx, `SELECT lapses FROM slot WHERE key = ?`, lim.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("take a slot of %s: %w", lim.Key, err)
		}
		var lapses []time.Time
		for rows.Next() {
			var ms int64
			if err := rows.Scan(&ms); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("take a slot of %s: %w", lim.Key, err)
			}
			lapses = append(lapses, fromUnix(ms))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("take a slot of %s: %w", lim.Key, err)
		}
		wait = max(wait, slots.Wait(lapses, lim.Max, now))
	}
	if wait > 0 {
		return nil, wait, nil
	}
	ids := make([]int64, len(limits))
	for i, lim := range limits {
		err := tx.queryRow(ctx, `INSERT INTO slot (key, holder, lapses) VALUES (?, ?, ?) RETURNING id`,
			lim.Key, holder, unix(until)).Scan(&ids[i])
		if err != nil {
			return nil, 0, fmt.Errorf("take a slot of %s: %w", lim.Key, err)
		}
	}
	if err := tx.commit(); err != nil {
		return nil, 0, fmt.Errorf("take a slot: %w", err)
	}
	return ids, 0, nil
}

// idList is "?, ?, …" for n ids and the ids as arguments.
func idList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", "), args
}

// Hold implements slots.Slots.
func (s dbSlots) Hold(ctx context.Context, ids []int64, until time.Time) (bool, error) {
	if len(ids) == 0 {
		return true, nil
	}
	in, args := idList(ids)
	res, err := s.l.exec(ctx, `UPDATE slot SET lapses = ? WHERE lapses > ? AND id IN (`+in+`)`,
		append([]any{unix(until), unix(time.Now())}, args...)...)
	if err != nil {
		return false, fmt.Errorf("renew slots: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("renew slots: %w", err)
	}
	return n == int64(len(ids)), nil
}

// Free implements slots.Slots.
func (s dbSlots) Free(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	in, args := idList(ids)
	if _, err := s.l.exec(ctx, `DELETE FROM slot WHERE id IN (`+in+`)`, args...); err != nil {
		return fmt.Errorf("free slots: %w", err)
	}
	return nil
}

// FreeKey implements slots.Slots.
func (s dbSlots) FreeKey(ctx context.Context, key string) error {
	if _, err := s.l.exec(ctx, `DELETE FROM slot WHERE key = ?`, key); err != nil {
		return fmt.Errorf("free the slots of %s: %w", key, err)
	}
	return nil
}

// FreeSlots gives back every slot whose key begins with prefix: for a
// server that alone uses its database, at start, the slots its previous
// run held when it was killed.
func (l *DB) FreeSlots(ctx context.Context, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("free slots: no key prefix given")
	}
	if _, err := l.exec(ctx, `DELETE FROM slot WHERE substr(key, 1, ?) = ?`, len(prefix), prefix); err != nil {
		return fmt.Errorf("free slots: %w", err)
	}
	return nil
}

// SweepSlots deletes lapsed slots of keys no one takes any more.
func (l *DB) SweepSlots(ctx context.Context) error {
	if _, err := l.exec(ctx, `DELETE FROM slot WHERE lapses <= ?`, unix(time.Now())); err != nil {
		return fmt.Errorf("delete lapsed slots: %w", err)
	}
	return nil
}

// ClaimMachine makes machine the one that does what (something only one
// machine may do) until lapse from now, unless another machine's claim has
// not lapsed yet: then it returns that machine. The holder renews its
// claim by claiming again; when its servers stop, another machine may
// claim once the claim has lapsed.
func (l *DB) ClaimMachine(ctx context.Context, what, machine string, lapse time.Duration) (other string, err error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", what, err)
	}
	defer tx.rollback()
	if err := tx.lock(ctx, lockSlots); err != nil {
		return "", fmt.Errorf("claim %s: %w", what, err)
	}
	name := "machine " + what
	now := time.Now()
	var value string
	err = tx.queryRow(ctx, `SELECT value FROM setting WHERE name = ?`, name).Scan(&value)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("claim %s: %w", what, err)
	}
	if holder, until, ok := strings.Cut(value, "\n"); ok && holder != machine {
		if ms, err := strconv.ParseInt(until, 10, 64); err == nil && fromUnix(ms).After(now) {
			return holder, nil
		}
	}
	value = machine + "\n" + strconv.FormatInt(unix(now.Add(lapse)), 10)
	if _, err := tx.exec(ctx, `INSERT INTO setting (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return "", fmt.Errorf("claim %s: %w", what, err)
	}
	return "", tx.commit()
}
