package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/engine"
)

// Folder implements engine.Ledger.
func (l *DB) Folder(ctx context.Context, account, srcFolder string) (engine.FolderState, bool, error) {
	st := engine.FolderState{SrcFolder: srcFolder}
	err := l.queryRow(ctx, `SELECT dst_folder, src_uidvalidity, src_uidnext,
		src_highestmodseq, src_messages, dst_uidvalidity FROM ledger_folder
		WHERE account = ? AND src_folder = ? AND complete = 1`, account, srcFolder).
		Scan(&st.DstFolder, &st.SrcUIDValidity, &st.SrcUIDNext, &st.SrcHighestModSeq,
			&st.SrcMessages, &st.DstUIDValidity)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read ledger folder %q: %w", srcFolder, err)
	}
	return st, true, nil
}

// SaveFolder implements engine.Ledger.
func (l *DB) SaveFolder(ctx context.Context, account string, st engine.FolderState) error {
	_, err := l.exec(ctx, `INSERT INTO ledger_folder (account, src_folder, dst_folder,
		src_uidvalidity, src_uidnext, src_highestmodseq, src_messages, dst_uidvalidity, complete)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (account, src_folder) DO UPDATE SET dst_folder = excluded.dst_folder,
		src_uidvalidity = excluded.src_uidvalidity, src_uidnext = excluded.src_uidnext,
		src_highestmodseq = excluded.src_highestmodseq, src_messages = excluded.src_messages,
		dst_uidvalidity = excluded.dst_uidvalidity, complete = 1`,
		account, st.SrcFolder, st.DstFolder, st.SrcUIDValidity, st.SrcUIDNext,
		st.SrcHighestModSeq, st.SrcMessages, st.DstUIDValidity)
	if err != nil {
		return fmt.Errorf("save ledger folder %q: %w", st.SrcFolder, err)
	}
	return nil
}

// Entries implements engine.Ledger.
func (l *DB) Entries(ctx context.Context, account, srcFolder string, uidValidity uint32) (map[imap.UID]engine.Entry, error) {
	out := map[imap.UID]engine.Entry{}
	err := l.entries(ctx, account, srcFolder, uidValidity, func(key int64, e engine.Entry) {
		e.SrcUID = imap.UID(key)
		out[e.SrcUID] = e
	})
	return out, err
}

// IDEntries implements engine.Ledger: the entries are those of a folder
// key under UIDVALIDITY 0, which IMAP never gives (RFC 3501: a non-zero
// number), with the id's bits as the source UID.
func (l *DB) IDEntries(ctx context.Context, account, key string) (map[uint64]engine.Entry, error) {
	out := map[uint64]engine.Entry{}
	err := l.entries(ctx, account, key, 0, func(id int64, e engine.Entry) {
		e.ID = uint64(id)
		out[e.ID] = e
	})
	return out, err
}

// entries reads the entries of (srcFolder, uidValidity), each with its
// src_uid.
func (l *DB) entries(ctx context.Context, account, srcFolder string, uidValidity uint32, add func(key int64, e engine.Entry)) error {
	rows, err := l.query(ctx, `SELECT m.src_uid, m.dst_uid, m.identity, m.flags
		FROM ledger_message m JOIN ledger_folder f ON f.id = m.folder_id
		WHERE f.account = ? AND f.src_folder = ? AND m.src_uidvalidity = ?`,
		account, srcFolder, uidValidity)
	if err != nil {
		return fmt.Errorf("read ledger of %q: %w", srcFolder, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e engine.Entry
		var key int64
		var id []byte
		var flags string
		if err := rows.Scan(&key, &e.DstUID, &id, &flags); err != nil {
			return fmt.Errorf("read ledger of %q: %w", srcFolder, err)
		}
		copy(e.Identity[:], id)
		for _, f := range strings.Fields(flags) {
			e.Flags = append(e.Flags, imap.Flag(f))
		}
		add(key, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read ledger of %q: %w", srcFolder, err)
	}
	return nil
}

// RecordIDs implements engine.Ledger.
func (l *DB) RecordIDs(ctx context.Context, account, key string, entries []engine.Entry) error {
	return l.record(ctx, account, key, 0, entries, func(e engine.Entry) int64 { return int64(e.ID) })
}

// Record implements engine.Ledger.
func (l *DB) Record(ctx context.Context, account, srcFolder string, uidValidity uint32, entries []engine.Entry) error {
	return l.record(ctx, account, srcFolder, uidValidity, entries, func(e engine.Entry) int64 { return int64(e.SrcUID) })
}

// record writes entries under (srcFolder, uidValidity) with src_uid key(e).
func (l *DB) record(ctx context.Context, account, srcFolder string, uidValidity uint32, entries []engine.Entry, key func(engine.Entry) int64) error {
	if len(entries) == 0 {
		return nil
	}
	// Prepared before the transaction: SQLite's one connection is the
	// transaction's until it ends.
	var full *sql.Stmt
	if len(entries) >= recordRows {
		var err error
		if full, err = l.recordStmt(ctx); err != nil {
			return fmt.Errorf("record copied messages: %w", err)
		}
	}
	t, err := l.begin(ctx)
	if err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	defer t.rollback()
	var folderID int64
	err = t.queryRow(ctx, `INSERT INTO ledger_folder (account, src_folder) VALUES (?, ?)
		ON CONFLICT (account, src_folder) DO UPDATE SET account = excluded.account
		RETURNING id`, account, srcFolder).Scan(&folderID)
	if err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	// Many rows per statement: one a message cost PostgreSQL a round trip
	// and a statement each, a fifth of the service's statements.
	for batch := range slices.Chunk(latest(entries, key), recordRows) {
		args := make([]any, 0, 6*len(batch))
		for _, e := range batch {
			flags := make([]string, len(e.Flags))
			for i, f := range e.Flags {
				flags[i] = string(f)
			}
			args = append(args, folderID, uidValidity, key(e), e.DstUID, e.Identity[:], strings.Join(flags, " "))
		}
		if len(batch) == recordRows {
			if _, err := t.tx.StmtContext(ctx, full).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("record copied messages: %w", err)
			}
			continue
		}
		if _, err := t.exec(ctx, recordQuery(len(batch)), args...); err != nil {
			return fmt.Errorf("record copied messages: %w", err)
		}
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("record copied messages: %w", err)
	}
	return nil
}

// recordRows is how many entries one INSERT writes: 600 parameters, far
// below SQLite's and PostgreSQL's limits.
const recordRows = 100

// recordQuery is the ledger's INSERT of n entries.
func recordQuery(n int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO ledger_message
		(folder_id, src_uidvalidity, src_uid, dst_uid, identity, flags) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?)")
	}
	q.WriteString(` ON CONFLICT (folder_id, src_uidvalidity, src_uid) DO UPDATE SET dst_uid = excluded.dst_uid,
		identity = excluded.identity, flags = excluded.flags`)
	return q.String()
}

// recordStmt is the INSERT of recordRows entries, prepared at its first use.
func (l *DB) recordStmt(ctx context.Context) (*sql.Stmt, error) {
	l.recordFull.once.Do(func() {
		l.recordFull.stmt, l.recordFull.err = l.db.PrepareContext(context.WithoutCancel(ctx), l.dialect.rebind(recordQuery(recordRows)))
	})
	return l.recordFull.stmt, l.recordFull.err
}

// latest keeps the last of entries with the same key (source UID or id):
// one INSERT may not change a row twice (PostgreSQL refuses it), as one
// per entry could.
func latest(entries []engine.Entry, key func(engine.Entry) int64) []engine.Entry {
	at := make(map[int64]int, len(entries))
	out := make([]engine.Entry, 0, len(entries))
	for _, e := range entries {
		if i, ok := at[key(e)]; ok {
			out[i] = e
			continue
		}
		at[key(e)] = len(out)
		out = append(out, e)
	}
	return out
}

// Forget implements engine.Ledger.
func (l *DB) Forget(ctx context.Context, account, srcFolder string) error {
	_, err := l.exec(ctx, `DELETE FROM ledger_message WHERE folder_id IN
		(SELECT id FROM ledger_folder WHERE account = ? AND src_folder = ?)`, account, srcFolder)
	if err == nil {
		_, err = l.exec(ctx, `UPDATE ledger_folder SET complete = 0
			WHERE account = ? AND src_folder = ?`, account, srcFolder)
	}
	if err != nil {
		return fmt.Errorf("reset ledger of %q: %w", srcFolder, err)
	}
	return nil
}

// Destinations implements engine.Ledger.
func (l *DB) Destinations(ctx context.Context, account string) (map[string]string, error) {
	rows, err := l.query(ctx, `SELECT src_folder, dst_folder FROM ledger_folder
		WHERE account = ? AND dst_folder <> ''`, account)
	if err != nil {
		return nil, fmt.Errorf("read folder plan: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var src, dst string
		if err := rows.Scan(&src, &dst); err != nil {
			return nil, fmt.Errorf("read folder plan: %w", err)
		}
		out[src] = dst
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read folder plan: %w", err)
	}
	return out, nil
}

// Remember implements engine.Ledger. A folder that now goes elsewhere is
// no longer complete: its state described the old destination.
func (l *DB) Remember(ctx context.Context, account, srcFolder, dstFolder string) error {
	_, err := l.exec(ctx, `INSERT INTO ledger_folder (account, src_folder, dst_folder) VALUES (?, ?, ?)
		ON CONFLICT (account, src_folder) DO UPDATE SET dst_folder = excluded.dst_folder,
		complete = CASE WHEN ledger_folder.dst_folder = excluded.dst_folder THEN ledger_folder.complete ELSE 0 END`,
		account, srcFolder, dstFolder)
	if err != nil {
		return fmt.Errorf("remember folder %q: %w", srcFolder, err)
	}
	return nil
}
