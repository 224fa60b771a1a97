package testbed

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// findMessage returns the UID of the first message in folder whose body
// contains marker.
func findMessage(t *testing.T, c *imapclient.Client, folder, marker string) imap.UID {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uids, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Corpus-ID", Value: marker}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	all := uids.AllUIDs()
	if len(all) == 0 {
		t.Fatalf("no message with X-Corpus-ID %s in %s", marker, folder)
	}
	return all[0]
}

// storeFlags selects folder read-write (Verify and Snapshot leave some
// other folder examined) and changes flags of one message.
func storeFlags(t *testing.T, c *imapclient.Client, folder string, uid imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("store flags in %s: %v", folder, err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{})
	ctx := context.Background()
	for _, u := range []string{"src", "dst"} {
		if err := d.AddUser(u, "pw", 0); err != nil {
			t.Fatal(err)
		}
	}
	src, dst := d.LoginT(t, "src", "pw"), d.LoginT(t, "dst", "pw")
	corpus := GenerateCorpus(CorpusOptions{Seed: 11, Messages: 60})
	for _, c := range []*imapclient.Client{src, dst} {
		if err := corpus.Load(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	mapping := map[string]string{}
	for _, f := range corpus.Folders {
		mapping[f] = f
	}

	before, err := Snapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < len(corpus.Folders) {
		t.Fatalf("snapshot has %d folders, corpus %d", len(before), len(corpus.Folders))
	}
	if st := before["INBOX"]; st.Messages == 0 || len(st.UIDs) != int(st.Messages) || st.UIDValidity == 0 || st.UIDNext <= uint32(st.UIDs[len(st.UIDs)-1]) {
		t.Fatalf("implausible INBOX snapshot: %+v", st)
	}
	if err := Verify(ctx, src, dst, mapping); err != nil {
		t.Fatalf("identical loads differ: %v", err)
	}
	dstBefore, err := Snapshot(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	// Both sides unchanged by Verify (no \Seen from reading bodies).
	after, err := Snapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("Verify changed the source:\nbefore %+v\nafter  %+v", before, after)
	}

	// One flag changed on the destination. The special messages come first
	// in a fixed order, so their X-Corpus-IDs are known: "s11-5" is the one
	// with 8-bit headers, in Odeslaná pošta, flags \Seen $Forwarded.
	uid := findMessage(t, dst, FolderSentCZ, "s11-5")
	storeFlags(t, dst, FolderSentCZ, uid, imap.StoreFlagsDel, KeywordForwarded)
	err = Verify(ctx, src, dst, mapping)
	t.Logf("after a flag change:\n%v", err)
	if err == nil || !strings.Contains(err.Error(), `"Odeslaná pošta" -> "Odeslaná pošta": differs`) ||
		!strings.Contains(err.Error(), "flags [$forwarded \\seen] vs [\\seen]") ||
		!strings.Contains(err.Error(), "Příliš žluťoučký kůň") || !strings.HasPrefix(err.Error(), "verify: 1 difference") {
		t.Fatalf("Verify after a flag change: %v", err)
	}
	// Flags on the source side must not be affected by STORE on dst.
	if snap, err := Snapshot(ctx, src); err != nil || !reflect.DeepEqual(before, snap) {
		t.Fatalf("source changed: %v", err)
	}
	storeFlags(t, dst, FolderSentCZ, uid, imap.StoreFlagsAdd, KeywordForwarded)
	if err := Verify(ctx, src, dst, mapping); err != nil {
		t.Fatalf("after restoring the flag: %v", err)
	}

	// Keyword case is ignored: some servers fold it.
	uid = findMessage(t, dst, FolderClientA, "s11-2")
	storeFlags(t, dst, FolderClientA, uid, imap.StoreFlagsDel, KeywordProjekt)
	storeFlags(t, dst, FolderClientA, uid, imap.StoreFlagsAdd, "projekt")
	if err := Verify(ctx, src, dst, mapping); err != nil {
		t.Fatalf("keyword case change counted as a difference: %v", err)
	}

	// One of the byte-identical twins goes missing: the multiset differs
	// even though an identical message is still there.
	uid = findMessage(t, dst, "INBOX", "s11-4")
	storeFlags(t, dst, "INBOX", uid, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := dst.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
	err = Verify(ctx, src, dst, mapping)
	t.Logf("after expunging a twin:\n%v", err)
	if err == nil || !strings.Contains(err.Error(), `"INBOX" -> "INBOX": missing in destination: UID`) ||
		!strings.Contains(err.Error(), "Stejná zpráva dvakrát") {
		t.Fatalf("Verify after expunging one twin: %v", err)
	}

	// An extra message and a missing destination folder are reported too,
	// all in one error.
	if err := appendMessage(dst, "Archiv", Message{Body: []byte("Subject: extra\r\n\r\nhello\r\n")}); err != nil {
		t.Fatal(err)
	}
	mapping["Koš"] = "Does/Not/Exist"
	err = Verify(ctx, src, dst, mapping)
	t.Logf("several differences:\n%v", err)
	for _, want := range []string{
		`"Archiv" -> "Archiv": extra in destination: UID`,
		`"Koš" -> "Does/Not/Exist": cannot read destination folder`,
		`"INBOX" -> "INBOX": missing in destination`,
		"verify: 3 difference(s)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Verify: want %q in %v", want, err)
		}
	}

	// Several source folders onto one destination: the destination must
	// hold their union. src's Archiv/2024 + Newsletters against dst's
	// Archiv/2024 alone misses the newsletters.
	if err := Verify(ctx, src, dst, map[string]string{"Archiv/2024": "Archiv/2024", "Newsletters": "Archiv/2024"}); err == nil ||
		!strings.Contains(err.Error(), `"Archiv/2024" + "Newsletters" -> "Archiv/2024": missing in destination`) {
		t.Errorf("many-to-one mapping: %v", err)
	}

	if snap, err := Snapshot(ctx, src); err != nil || !reflect.DeepEqual(before, snap) {
		t.Fatalf("source changed during the test: %v", err)
	}
	// The destination's remaining folders are as Verify found them.
	dstAfter, err := Snapshot(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dstBefore[FolderDotLeaf], dstAfter[FolderDotLeaf]) {
		t.Errorf("destination folder changed by Verify")
	}
}

func TestVerifyReportCap(t *testing.T) {
	t.Parallel()
	var src []msgInfo
	for i := range 80 {
		src = append(src, msgInfo{uid: imap.UID(i + 1), sum: [32]byte{byte(i)}})
	}
	diffs := compareFolder(src, nil)
	if len(diffs) != 80 {
		t.Fatalf("%d diffs, want 80", len(diffs))
	}
	err := diffError(diffs)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 1+maxDiffLines+1 || !strings.HasPrefix(lines[0], "verify: 80 difference(s)") ||
		lines[len(lines)-1] != "  ... and 30 more" {
		t.Errorf("report of 80 differences has %d lines: first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if diffError(nil) != nil {
		t.Error("no differences gave an error")
	}
}

func TestCompareFolderDates(t *testing.T) {
	t.Parallel()
	at := time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC)
	m := func(uid imap.UID, date time.Time, flags ...imap.Flag) msgInfo {
		return msgInfo{uid: uid, sum: [32]byte{1}, date: date, flags: normalizeFlags(flags, true), subject: "s"}
	}
	// The same instant written in another zone is equal.
	if d := compareFolder([]msgInfo{m(1, at, imap.FlagSeen, `\Recent`)},
		[]msgInfo{m(7, at.In(time.FixedZone("", -7*3600)), `\SEEN`)}); len(d) != 0 {
		t.Errorf("equal messages reported: %v", d)
	}
	d := compareFolder([]msgInfo{m(1, at)}, []msgInfo{m(2, at.Add(time.Second))})
	if len(d) != 1 || !strings.Contains(d[0], "INTERNALDATE 2010-05-06T07:08:09Z vs 2010-05-06T07:08:10Z") {
		t.Errorf("date difference reported as %v", d)
	}
}
