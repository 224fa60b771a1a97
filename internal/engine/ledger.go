package engine

import (
	"context"

	"github.com/emersion/go-imap/v2"
)

// Ledger is the durable record of what was copied, so that a re-run copies
// only what is new and a crash never leads to a duplicate. Entries are keyed
// by account, source folder, source UIDVALIDITY and source UID; a new
// UIDVALIDITY on the source therefore makes old entries invisible, and the
// engine falls back to matching by content identity.
type Ledger interface {
	// Folder returns the state saved after the last complete pass.
	Folder(ctx context.Context, account, srcFolder string) (FolderState, bool, error)
	// SaveFolder records the state after a complete pass.
	SaveFolder(ctx context.Context, account string, st FolderState) error
	// Entries returns the copied messages of a source folder generation.
	Entries(ctx context.Context, account, srcFolder string, srcUIDValidity uint32) (map[imap.UID]Entry, error)
	// Record inserts or replaces entries in one transaction.
	Record(ctx context.Context, account, srcFolder string, srcUIDValidity uint32, entries []Entry) error
	// Forget drops every entry of a source folder (the destination folder
	// was recreated, so its UIDs mean nothing any more).
	Forget(ctx context.Context, account, srcFolder string) error
	// Destinations returns where each source folder of the account was
	// copied to, so that later runs follow the same plan.
	Destinations(ctx context.Context, account string) (map[string]string, error)
	// Remember records where a source folder goes, before anything is
	// copied into it.
	Remember(ctx context.Context, account, srcFolder, dstFolder string) error
	// IDEntries returns the copied messages recorded under key (used like
	// a source folder's name) by the id the source gives a message for its
	// whole life, whatever its folders (Gmail's X-GM-MSGID), instead of by
	// UID; Entry.SrcUID is 0 in them.
	IDEntries(ctx context.Context, account, key string) (map[uint64]Entry, error)
	// RecordIDs inserts or replaces such entries (by Entry.ID) in one
	// transaction.
	RecordIDs(ctx context.Context, account, key string, entries []Entry) error
}

// FolderState is what the ledger remembers of a folder pair.
type FolderState struct {
	SrcFolder        string
	DstFolder        string
	SrcUIDValidity   uint32
	SrcUIDNext       uint32
	SrcHighestModSeq uint64
	SrcMessages      uint32
	DstUIDValidity   uint32
}

// Entry is one copied (or adopted) message.
type Entry struct {
	SrcUID   imap.UID
	ID       uint64   // the source's own id of the message (Ledger.IDEntries), else 0
	DstUID   imap.UID // 0 when the destination did not report it (no UIDPLUS)
	Identity Identity
	// Flags are the flags the destination was given (at copy or at the
	// last flag sync): the base of the three-way flag merge.
	Flags []imap.Flag
}
