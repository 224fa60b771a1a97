package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// destRun migrates a well-behaved hostile source into a hostile
// destination that misbehaves on APPEND.
type destRun struct {
	t        *testing.T
	src, dst *testbed.Hostile
	acct     engine.Account
	led      *store.DB
}

const destTotal = 18

func newDestRun(t *testing.T, caps []string, answers map[string]string, faults ...testbed.AppendFault) *destRun {
	t.Helper()
	src := testbed.StartHostile(t, testbed.HostileConfig{User: srcUser, Password: srcPass, Folders: []testbed.HostileFolder{
		{Name: "INBOX", UIDValidity: 11, Subscribed: true, Messages: hostileMessages("INBOX", 12)},
		{Name: "Archiv 2019", UIDValidity: 12, Subscribed: true, Messages: hostileMessages("Archiv 2019", 6)},
	}})
	dst := testbed.StartHostile(t, testbed.HostileConfig{User: dstUser, Password: dstPass,
		Folders: []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 21}}, Caps: caps, Answers: answers, AppendFaults: faults})
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return &destRun{t: t, src: src, dst: dst, led: led, acct: engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: src.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourcePassword: srcPass,
		Dest: imapconn.Endpoint{Host: "127.0.0.1", Port: dst.Port, Security: imapconn.Plain}, DestUser: dstUser, DestPassword: dstPass}}
}

func (d *destRun) run(opt engine.Options) (*engine.Report, error) {
	d.t.Helper()
	opt.Conn.Timeout = 5 * time.Second
	opt.TempDir = d.t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := engine.Run(ctx, d.acct, d.led, opt)
	for _, f := range r.Folders {
		if got := f.Copied + f.AlreadyPresent + len(f.Skipped) + len(f.Failed); err == nil && got != f.SourceMessages {
			d.t.Errorf("%q: %d on the source, but %d copied + %d present + %d skipped + %d failed",
				f.Source, f.SourceMessages, f.Copied, f.AlreadyPresent, len(f.Skipped), len(f.Failed))
		}
	}
	return r, err
}

var messageIDPattern = regexp.MustCompile(`Message-ID: <([^>]+)>`)

// held returns the Message-IDs the destination holds, failing the test on
// a duplicate.
func (d *destRun) held() map[string]bool {
	d.t.Helper()
	ids := map[string]bool{}
	for _, folder := range []string{"INBOX", "Archiv 2019"} {
		for _, m := range d.dst.Messages(folder) {
			id := messageIDPattern.FindStringSubmatch(string(m.Body))[1]
			if ids[id] {
				d.t.Errorf("%s is on the destination twice", id)
			}
			ids[id] = true
		}
	}
	return ids
}

// appends counts the APPEND commands the destination received.
func (d *destRun) appends() int {
	n := 0
	for _, c := range d.dst.Commands() {
		if strings.HasPrefix(c, "APPEND ") {
			n++
		}
	}
	return n
}

var allCaps = []string{"MULTIAPPEND", "LITERAL+", "UIDPLUS"}

// What the destination does with APPEND: batches where it offers
// MULTIAPPEND, single messages where it does not, and exactly once
// whatever fails (RFC 3502: a batch is stored whole or not at all).
func TestDestinationAppend(t *testing.T) {
	inbox5 := []byte("<5.INBOX@old.test>")
	for _, tc := range []struct {
		name    string
		caps    []string
		faults  []testbed.AppendFault
		answers map[string]string
		opt     engine.Options
		appends func(int) bool // how many APPEND commands are right
		check   func(*testing.T, *destRun, *engine.Report, error)
	}{{
		name: "one batch per folder", caps: allCaps,
		appends: func(n int) bool { return n == 2 },
	}, {
		name: "one message per APPEND without MULTIAPPEND", caps: []string{"LITERAL+", "UIDPLUS"},
		appends: func(n int) bool { return n == destTotal },
	}, {
		name: "synchronising literals", caps: []string{"MULTIAPPEND", "UIDPLUS"},
		appends: func(n int) bool { return n == 2 },
	}, {
		name: "no APPENDUID", caps: allCaps, faults: []testbed.AppendFault{{Match: []byte("@old.test"), NoAppendUID: true}},
	}, {
		// The refused message is the one reported; its neighbours in the
		// batch are copied.
		name: "a message refused mid-batch", caps: allCaps,
		faults: []testbed.AppendFault{{Match: inbox5, Reply: "NO Message refused by policy"}},
		check: func(t *testing.T, d *destRun, r *engine.Report, err error) {
			f := folderReport(t, r, "INBOX")
			if err != nil || len(f.Failed) != 1 || f.Failed[0].UID != 5 || !strings.Contains(f.Failed[0].Reason.String(), "refused by policy") {
				t.Fatalf("err %v, INBOX failed %+v; want UID 5 refused by policy", err, f.Failed)
			}
			if held := d.held(); len(held) != destTotal-1 || held["5.INBOX@old.test"] {
				t.Errorf("destination holds %d messages (UID 5: %v), want the %d others", len(held), held["5.INBOX@old.test"], destTotal-1)
			}
		},
	}, {
		name: "too big mid-batch", caps: allCaps,
		faults: []testbed.AppendFault{{Match: inbox5, Reply: "NO [TOOBIG] Message too large"}},
		check: func(t *testing.T, d *destRun, r *engine.Report, err error) {
			f := folderReport(t, r, "INBOX")
			if err != nil || len(f.Skipped) != 1 || f.Skipped[0].UID != 5 || r.Totals.Copied != destTotal-1 {
				t.Fatalf("err %v, INBOX skipped %+v, copied %d; want UID 5 skipped", err, f.Skipped, r.Totals.Copied)
			}
		},
	}, {
		// The messages before the one that does not fit are copied; the
		// account stops at that one.
		name: "over quota mid-batch", caps: allCaps, opt: engine.Options{AppendWorkers: 1},
		faults: []testbed.AppendFault{{Match: inbox5, Reply: "NO [OVERQUOTA] Quota exceeded"}},
		check: func(t *testing.T, d *destRun, r *engine.Report, err error) {
			if r.Status != engine.StatusOverQuota || r.Failure == nil || r.Failure.Side != engine.SideDest {
				t.Fatalf("status %s, failure %+v; want over quota on the destination", r.Status, r.Failure)
			}
			held := d.held()
			for i := 1; i <= 4; i++ {
				if !held[fmt.Sprintf("%d.INBOX@old.test", i)] {
					t.Errorf("INBOX %d, before the one over quota, was not copied", i)
				}
			}
			if held["5.INBOX@old.test"] {
				t.Error("the message over quota is on the destination")
			}
		},
	}, {
		// The quota is advice before the copy: a destination that cannot
		// tell it (Dovecot while it sets up a new mailbox) is copied into
		// without the space check, and its words are not taken for a full
		// mailbox.
		name: "quota cannot be read", caps: append([]string{"QUOTA"}, allCaps...),
		answers: map[string]string{"GETQUOTAROOT": "NO Internal quota calculation error (0.004 + 0.000 + 0.003 secs)."},
		check: func(t *testing.T, d *destRun, r *engine.Report, err error) {
			if err != nil || r.Status != engine.StatusDone || r.Totals.Copied != destTotal || r.Space != nil {
				t.Fatalf("err %v, status %s, copied %d, space %+v; want all %d copied without a space check", err, r.Status, r.Totals.Copied, r.Space, destTotal)
			}
			if !slices.ContainsFunc(d.dst.Commands(), func(c string) bool { return strings.HasPrefix(c, "GETQUOTAROOT") }) {
				t.Error("the quota was never asked for")
			}
		},
	}, {
		name: "connection cut mid-batch", caps: allCaps,
		faults: []testbed.AppendFault{{Match: inbox5, Cut: true, Times: 1}},
	}, {
		// Stored, then the answer is lost: matching again finds the batch
		// there, so nothing is sent twice.
		name: "answer lost after the batch was stored", caps: allCaps,
		faults: []testbed.AppendFault{{Match: inbox5, LoseAnswer: true, Times: 1}},
		check: func(t *testing.T, d *destRun, r *engine.Report, err error) {
			if err != nil || r.Totals.Copied+r.Totals.AlreadyPresent != destTotal || folderReport(t, r, "INBOX").AlreadyPresent != 12 {
				t.Fatalf("err %v, copied %d, present %d (INBOX %d); want the stored batch found there",
					err, r.Totals.Copied, r.Totals.AlreadyPresent, folderReport(t, r, "INBOX").AlreadyPresent)
			}
			if len(d.held()) != destTotal {
				t.Errorf("destination holds %d messages, want %d", len(d.held()), destTotal)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDestRun(t, tc.caps, tc.answers, tc.faults...)
			r, err := d.run(tc.opt)
			if tc.check != nil {
				tc.check(t, d, r, err)
				return
			}
			if err != nil || r.Status != engine.StatusDone || r.Totals.Copied != destTotal {
				t.Fatalf("err %v, status %s, copied %d; want all %d", err, r.Status, r.Totals.Copied, destTotal)
			}
			if held := d.held(); len(held) != destTotal {
				t.Errorf("destination holds %d messages, want %d", len(held), destTotal)
			}
			if tc.appends != nil && !tc.appends(d.appends()) {
				t.Errorf("%d APPEND commands", d.appends())
			}
			// The ledger knows every copy: a re-run sends nothing.
			before := d.appends()
			r2, err := d.run(engine.Options{})
			if err != nil || r2.Totals.Copied != 0 || d.appends() != before {
				t.Errorf("re-run: err %v, copied %d, %d more APPENDs", err, r2.Totals.Copied, d.appends()-before)
			}
		})
	}
}

// TestRefusedFolder: a folder the destination will not create is reported
// message by message, the other folders are copied, and the progress
// counts the folder once.
func TestRefusedFolder(t *testing.T) {
	src := testbed.StartHostile(t, testbed.HostileConfig{User: srcUser, Password: srcPass, Folders: []testbed.HostileFolder{
		{Name: "INBOX", UIDValidity: 11, Messages: hostileMessages("INBOX", 12)},
		{Name: "Files", UIDValidity: 12, Messages: hostileMessages("Files", 6)},
	}})
	dst := testbed.StartHostile(t, testbed.HostileConfig{User: dstUser, Password: dstPass,
		Folders:       []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 21}},
		CreateRefused: map[string]string{"Files": "NO Folder name is reserved"}})
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	d := &destRun{t: t, src: src, dst: dst, led: led, acct: engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: src.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourcePassword: srcPass,
		Dest: imapconn.Endpoint{Host: "127.0.0.1", Port: dst.Port, Security: imapconn.Plain}, DestUser: dstUser, DestPassword: dstPass}}
	progress := new(engine.Progress)
	r, err := d.run(engine.Options{Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != engine.StatusWarnings {
		t.Errorf("status %s, want warnings", r.Status)
	}
	for _, f := range r.Folders {
		switch f.Source {
		case "INBOX":
			if f.Copied != 12 {
				t.Errorf("INBOX: %d copied, want 12", f.Copied)
			}
		case "Files":
			if len(f.Failed) != 6 || !strings.Contains(f.Failed[0].Reason.String(), "reserved") {
				t.Errorf("Files: failed %+v, want its 6 messages with the server's reason", f.Failed)
			}
		}
	}
	if n := len(dst.Messages("INBOX")); n != 12 {
		t.Errorf("destination INBOX has %d messages, want 12", n)
	}
	if s := progress.Snapshot(); s.FoldersDone != s.FoldersTotal || s.FoldersTotal != 2 {
		t.Errorf("progress: %d of %d folders done, want 2 of 2", s.FoldersDone, s.FoldersTotal)
	}
}
