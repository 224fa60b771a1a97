package engine

import "sync/atomic"

// Progress counts work as it happens; a display reads it with Snapshot
// while the engine runs. One Progress may be shared by many accounts.
type Progress struct {
	accountsTotal, accountsDone atomic.Int64
	foldersTotal, foldersDone   atomic.Int64
	msgsTotal, msgsDone         atomic.Int64
	bytesTotal, bytesDone       atomic.Int64
}

// ProgressSnapshot is a consistent-enough copy of the counters.
type ProgressSnapshot struct {
	AccountsTotal, AccountsDone int64
	FoldersTotal, FoldersDone   int64
	MessagesTotal, MessagesDone int64
	BytesTotal, BytesDone       int64
}

// Snapshot reads the counters.
func (p *Progress) Snapshot() ProgressSnapshot {
	if p == nil {
		return ProgressSnapshot{}
	}
	return ProgressSnapshot{
		AccountsTotal: p.accountsTotal.Load(), AccountsDone: p.accountsDone.Load(),
		FoldersTotal: p.foldersTotal.Load(), FoldersDone: p.foldersDone.Load(),
		MessagesTotal: p.msgsTotal.Load(), MessagesDone: p.msgsDone.Load(),
		BytesTotal: p.bytesTotal.Load(), BytesDone: p.bytesDone.Load(),
	}
}

// AddAccounts announces n accounts to come (bulk runs).
func (p *Progress) AddAccounts(n int) {
	if p != nil {
		p.accountsTotal.Add(int64(n))
	}
}

func (p *Progress) add(c *atomic.Int64, n int64) { c.Add(n) }
