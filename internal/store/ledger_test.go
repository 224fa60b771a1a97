package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/engine"
)

func TestLedger(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open opener) {
		l, err := open()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		const acct, folder = "a -> b", "Odeslaná pošta"
		if _, ok, err := l.Folder(ctx, acct, folder); ok || err != nil {
			t.Fatalf("empty ledger has folder state: %v %v", ok, err)
		}
		entries := []engine.Entry{
			{SrcUID: 1, DstUID: 10, Identity: engine.Identity{1}, Flags: []imap.Flag{imap.FlagSeen, "$Label1"}},
			{SrcUID: 2, DstUID: 11, Identity: engine.Identity{2}},
		}
		if err := l.Record(ctx, acct, folder, 7, entries); err != nil {
			t.Fatal(err)
		}
		// Entries recorded without a complete pass do not make a folder state.
		if _, ok, _ := l.Folder(ctx, acct, folder); ok {
			t.Error("folder state exists before SaveFolder")
		}
		st := engine.FolderState{SrcFolder: folder, DstFolder: "Sent", SrcUIDValidity: 7, SrcUIDNext: 3,
			SrcHighestModSeq: 99, SrcMessages: 2, DstUIDValidity: 5}
		if err := l.SaveFolder(ctx, acct, st); err != nil {
			t.Fatal(err)
		}
		l.Close()

		// Everything survives reopening.
		if l, err = open(); err != nil {
			t.Fatal(err)
		}
		got, ok, err := l.Folder(ctx, acct, folder)
		if !ok || err != nil || got != st {
			t.Fatalf("folder state %+v %v %v, want %+v", got, ok, err, st)
		}
		es, err := l.Entries(ctx, acct, folder, 7)
		if err != nil || len(es) != 2 || es[1].DstUID != 10 || es[1].Identity != (engine.Identity{1}) ||
			len(es[1].Flags) != 2 || es[1].Flags[1] != "$Label1" {
			t.Fatalf("entries %+v, %v", es, err)
		}
		// Another UIDVALIDITY is another generation of the folder.
		if es, _ := l.Entries(ctx, acct, folder, 8); len(es) != 0 {
			t.Errorf("entries of UIDVALIDITY 8: %+v", es)
		}
		// Re-recording replaces (flag sync).
		if err := l.Record(ctx, acct, folder, 7, []engine.Entry{{SrcUID: 2, DstUID: 11, Flags: []imap.Flag{imap.FlagFlagged}}}); err != nil {
			t.Fatal(err)
		}
		if es, _ := l.Entries(ctx, acct, folder, 7); len(es[2].Flags) != 1 || es[2].Flags[0] != imap.FlagFlagged {
			t.Errorf("after update: %+v", es[2])
		}
		// Another account sees nothing.
		if es, _ := l.Entries(ctx, "other", folder, 7); len(es) != 0 {
			t.Errorf("other account sees %d entries", len(es))
		}
		if err := l.Forget(ctx, acct, folder); err != nil {
			t.Fatal(err)
		}
		if es, _ := l.Entries(ctx, acct, folder, 7); len(es) != 0 {
			t.Errorf("entries after Forget: %d", len(es))
		}
		if _, ok, _ := l.Folder(ctx, acct, folder); ok {
			t.Error("folder state after Forget")
		}
	})
}

// TestRecordMany writes more entries than one statement takes, one source
// UID twice (the later wins), in the same transaction.
func TestRecordMany(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open opener) {
		l, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		const n = 2*recordRows + 17
		var entries []engine.Entry
		for i := range n {
			entries = append(entries, engine.Entry{SrcUID: imap.UID(i + 1), DstUID: imap.UID(1000 + i),
				Identity: engine.Identity{byte(i), byte(i >> 8)}, Flags: []imap.Flag{imap.FlagSeen}})
		}
		// The same message again among the first statement's rows, as a
		// copy whose flags changed before its entry was written.
		entries = slices.Insert(entries, 10, engine.Entry{SrcUID: 5, DstUID: 1004, Identity: engine.Identity{4}, Flags: []imap.Flag{imap.FlagAnswered}})
		if err := l.Record(ctx, "a -> b", "INBOX", 3, entries); err != nil {
			t.Fatal(err)
		}
		got, err := l.Entries(ctx, "a -> b", "INBOX", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d entries, want %d", len(got), n)
		}
		for i := range n {
			e := got[imap.UID(i+1)]
			want := []imap.Flag{imap.FlagSeen}
			if i+1 == 5 {
				want = []imap.Flag{imap.FlagAnswered}
			}
			if e.DstUID != imap.UID(1000+i) || e.Identity != (engine.Identity{byte(i), byte(i >> 8)}) || len(e.Flags) != 1 || e.Flags[0] != want[0] {
				t.Fatalf("entry %d: %+v", i+1, e)
			}
		}
	})
}

// Entries keyed by a message's 64-bit id (Gmail's X-GM-MSGID), all bits
// of it, apart from the UID entries of any folder.
func TestLedgerIDs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open opener) {
		l, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		const acct, key = "a -> b", "X-GM-MSGID INBOX"
		ids := []uint64{1, 1<<63 + 5, 1<<64 - 1}
		var entries []engine.Entry
		for i, id := range ids {
			entries = append(entries, engine.Entry{ID: id, DstUID: imap.UID(10 + i), Identity: engine.Identity{byte(i)},
				Flags: []imap.Flag{imap.FlagSeen}})
		}
		// The first id twice in one call: the later entry wins.
		entries = append([]engine.Entry{{ID: 1, DstUID: 10, Flags: []imap.Flag{imap.FlagAnswered}}}, entries...)
		if err := l.RecordIDs(ctx, acct, key, entries); err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, acct, key, 7, []engine.Entry{{SrcUID: 1, DstUID: 99}}); err != nil {
			t.Fatal(err)
		}
		got, err := l.IDEntries(ctx, acct, key)
		if err != nil || len(got) != len(ids) {
			t.Fatalf("entries %+v, %v", got, err)
		}
		for i, id := range ids {
			if e := got[id]; e.ID != id || e.DstUID != imap.UID(10+i) || e.Identity != (engine.Identity{byte(i)}) || len(e.Flags) != 1 {
				t.Errorf("id %d: %+v", id, e)
			}
		}
		if es, _ := l.Entries(ctx, acct, key, 7); len(es) != 1 || es[1].DstUID != 99 {
			t.Errorf("UID entries beside them: %+v", es)
		}
		if es, _ := l.IDEntries(ctx, acct, "X-GM-MSGID Sent"); len(es) != 0 {
			t.Errorf("another key sees %+v", es)
		}
	})
}

// BenchmarkRecord is the ledger write of one batch of copied messages.
func BenchmarkRecord(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([]engine.Entry, 200)
	uid := imap.UID(0)
	for b.Loop() {
		for i := range batch {
			uid++
			batch[i] = engine.Entry{SrcUID: uid, DstUID: uid, Identity: engine.Identity{byte(uid)},
				Flags: []imap.Flag{imap.FlagSeen}}
		}
		if err := l.Record(context.Background(), "a -> b", "INBOX", 1, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}
