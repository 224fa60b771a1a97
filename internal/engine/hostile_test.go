package engine_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// hostileMessages makes n small messages with distinct Message-IDs,
// subjects and sizes, UIDs 1..n.
func hostileMessages(folder string, n int) []testbed.HostileMessage {
	var out []testbed.HostileMessage
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("Message-ID: <%d.%s@old.test>\r\nDate: Mon, 4 Mar 2019 05:06:%02d +0100\r\n"+
			"From: Jana <jana@old.test>\r\nTo: petr@old.test\r\nSubject: %s %d\r\n\r\n%s\r\n",
			i, strings.ReplaceAll(folder, " ", "-"), i, folder, i, strings.Repeat("obsah ", 20*i))
		out = append(out, testbed.HostileMessage{UID: uint32(i), Flags: []string{`\Seen`},
			InternalDate: time.Date(2019, 3, 4, 5, 6, i, 0, time.UTC), Body: []byte(body)})
	}
	return out
}

// hostileAccount is a small source: INBOX, a folder whose name has a space
// (which STATUS must quote) and a Sent folder, 3 messages each.
func hostileAccount() testbed.HostileConfig {
	return testbed.HostileConfig{User: srcUser, Password: srcPass, Folders: []testbed.HostileFolder{
		{Name: "INBOX", UIDValidity: 11, Subscribed: true, Messages: hostileMessages("INBOX", 3)},
		{Name: "Archiv 2019", UIDValidity: 12, Subscribed: true, Messages: hostileMessages("Archiv 2019", 3)},
		{Name: "Odeslané", UIDValidity: 13, SpecialUse: `\Sent`, Messages: hostileMessages("Odeslané", 3)},
	}}
}

const hostileTotal = 9

// hostileRun is one engine.Run against a hostile source and what it left.
type hostileRun struct {
	rep      *engine.Report
	err      error
	panicked any
	elapsed  time.Duration
	heapGrew int64 // peak heap in use over the start, bytes
	leaked   string
	src      *testbed.Hostile
	dstUser  string
	before   map[string]uint32 // destination folders and message counts before the run
	after    map[string]uint32
}

var hostileUsers atomic.Int32

// runHostile migrates cfg's account into a fresh destination mailbox on dst
// and measures the run.
func runHostile(t *testing.T, dst *testbed.Dovecot, cfg testbed.HostileConfig, opt engine.Options) *hostileRun {
	t.Helper()
	r := &hostileRun{src: testbed.StartHostile(t, cfg), dstUser: fmt.Sprintf("hostile%d@new.test", hostileUsers.Add(1))}
	if err := dst.AddUser(r.dstUser, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	r.before = destFolders(t, dst, r.dstUser)
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	acct := engine.Account{
		Source: imapconn.Endpoint{Host: "127.0.0.1", Port: r.src.Port, Security: imapconn.Plain}, SourceUser: srcUser, SourcePassword: srcPass,
		Dest: endpoint(t, dst), DestUser: r.dstUser, DestPassword: dstPass}
	if opt.Conn.Timeout == 0 {
		opt.Conn.Timeout = 10 * time.Second
	}
	opt.TempDir = t.TempDir()

	runtime.GC()
	goroutines, sockets := runtime.NumGoroutine(), countSockets(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start := ms.HeapInuse
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	func() {
		defer func() { r.panicked = recover() }()
		r.rep, r.err = engine.Run(ctx, acct, led, opt)
	}()
	r.elapsed = time.Since(began)
	close(stop)
	<-sampled
	r.heapGrew = int64(peak.Load()) - int64(start)

	// Closed connections take a moment to be reaped on both ends.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		g, s, open := runtime.NumGoroutine(), countSockets(t), r.src.Open()
		if g <= goroutines+2 && s <= sockets && open == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.leaked = fmt.Sprintf("%d goroutine(s) (%d before), %d socket(s) (%d before), %d source connection(s) still open",
				g, goroutines, s, sockets, open)
			break
		}
	}
	r.after = destFolders(t, dst, r.dstUser)
	return r
}

// countSockets counts this process's open sockets.
func countSockets(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// destFolders lists the destination mailbox's folders with their message
// counts.
func destFolders(t *testing.T, dst *testbed.Dovecot, user string) map[string]uint32 {
	t.Helper()
	c := dst.LoginT(t, user, dstPass)
	defer func() {
		c.Logout().Wait()
		c.Close()
	}()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, l := range list {
		st, err := c.Status(l.Mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		out[l.Mailbox] = *st.NumMessages
	}
	return out
}

func (r *hostileRun) status() string {
	switch {
	case r.panicked != nil:
		return fmt.Sprintf("panic (%v)", r.panicked)
	case r.rep == nil:
		return "no report"
	}
	return string(r.rep.Status)
}

// copiedToDest is how many messages the run added to the destination.
func (r *hostileRun) copiedToDest() int {
	n := 0
	for name, c := range r.after {
		n += int(c) - int(r.before[name])
	}
	return n
}

// checkCommon asserts what holds whatever the source does: no panic
// escapes, nothing is left open, the source is never written to, and when
// the run finishes every listed message is accounted for.
func (r *hostileRun) checkCommon(t *testing.T) {
	t.Helper()
	if r.panicked != nil {
		t.Errorf("engine.Run panicked: %v", r.panicked)
	}
	if r.leaked != "" {
		t.Errorf("left open after Run returned: %s", r.leaked)
	}
	if w := r.src.Writes(); len(w) > 0 {
		t.Errorf("the source received write commands: %q", w)
	}
	if r.rep == nil {
		t.FailNow()
	}
	if r.err != nil {
		return
	}
	for _, f := range r.rep.Folders {
		if got := f.Copied + f.AlreadyPresent + len(f.Skipped) + len(f.Failed); got != f.SourceMessages {
			t.Errorf("%q: %d on the source, but %d copied + %d present + %d skipped + %d failed",
				f.Source, f.SourceMessages, f.Copied, f.AlreadyPresent, len(f.Skipped), len(f.Failed))
		}
		for _, m := range append(f.Skipped, f.Failed...) {
			if m.Reason.IsZero() {
				t.Errorf("%q: UID %d listed without a reason", f.Source, m.UID)
			}
		}
	}
}

// wantComplete asserts a run that copied the whole account.
func (r *hostileRun) wantComplete(t *testing.T) {
	t.Helper()
	if r.err != nil || r.rep.Status != engine.StatusDone {
		t.Fatalf("run: %v, status %s, failure %+v", r.err, r.rep.Status, r.rep.Failure)
	}
	if r.rep.Totals.Copied != hostileTotal || r.copiedToDest() != hostileTotal {
		t.Errorf("copied %d, destination got %d; want %d", r.rep.Totals.Copied, r.copiedToDest(), hostileTotal)
	}
}

// wantProtocolFailure asserts an account failure that blames the source's
// protocol, not the network, and promises nothing from running again.
func (r *hostileRun) wantProtocolFailure(t *testing.T) {
	t.Helper()
	if r.err == nil || r.rep.Failure == nil {
		t.Fatalf("run succeeded (status %s), want a protocol failure", r.rep.Status)
	}
	f := r.rep.Failure
	if f.Kind != "protocol" || f.Side != engine.SideSource {
		t.Errorf("failure kind %q side %q, want protocol on the source: %+v", f.Kind, f.Side, f)
	}
	if strings.Contains(strings.ToLower(f.Message), "again") {
		t.Errorf("the failure suggests that running again helps: %q", f.Message)
	}
}

func folderReport(t *testing.T, r *engine.Report, name string) engine.FolderReport {
	t.Helper()
	for _, f := range r.Folders {
		if f.Source == name {
			return f
		}
	}
	t.Fatalf("no report for folder %q", name)
	return engine.FolderReport{}
}

func issueFor(f engine.FolderReport, uid uint32) *engine.MessageIssue {
	for _, m := range append(f.Failed, f.Skipped...) {
		if m.UID == uid {
			return &m
		}
	}
	return nil
}

// hostileCase is one misbehaviour of the source and what the engine must
// make of it.
type hostileCase struct {
	name  string
	cfg   func(*testbed.HostileConfig)
	opt   engine.Options
	check func(*testing.T, *hostileRun)
}

func hostileCases() []hostileCase {
	return []hostileCase{{
		name:  "well behaved",
		check: func(t *testing.T, r *hostileRun) { r.wantComplete(t) },
	}, {
		// Counts come from EXAMINE instead.
		name:  "STATUS without MESSAGES",
		cfg:   func(c *testbed.HostileConfig) { c.StatusOmit = []string{"MESSAGES"} },
		check: func(t *testing.T, r *hostileRun) { r.wantComplete(t) },
	}, {
		name:  "STATUS without UIDNEXT",
		cfg:   func(c *testbed.HostileConfig) { c.StatusOmit = []string{"UIDNEXT"} },
		check: func(t *testing.T, r *hostileRun) { r.wantComplete(t) },
	}, {
		name:  "STATUS without UIDVALIDITY",
		cfg:   func(c *testbed.HostileConfig) { c.StatusOmit = []string{"UIDVALIDITY"} },
		check: func(t *testing.T, r *hostileRun) { r.wantComplete(t) },
	}, {
		// GNU Mailutils: * STATUS Archiv 2019 (MESSAGES 3 ...)
		name: "STATUS with an unquoted name",
		cfg:  func(c *testbed.HostileConfig) { c.StatusUnquoted = true },
		check: func(t *testing.T, r *hostileRun) {
			if r.err == nil {
				r.wantComplete(t)
				return
			}
			r.wantProtocolFailure(t)
			if !strings.Contains(r.rep.Failure.Detail, "Archiv 2019") {
				t.Errorf("the failure does not quote the server: %q", r.rep.Failure.Detail)
			}
		},
	}, {
		// RFC822.SIZE says 1,000 bytes, the literal is 200 MiB.
		name: "body larger than announced",
		cfg: func(c *testbed.HostileConfig) {
			m := &c.Folders[0].Messages[1]
			m.Body = append(m.Body[:len(m.Body)-2], strings.Repeat("x", 1000-len(m.Body))+"\r\n"...)
			m.LiteralSize = 200 << 20
		},
		opt: engine.Options{MaxMessageSize: 10 << 20},
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil {
				t.Fatalf("run: %v (%+v)", r.err, r.rep.Failure)
			}
			inbox := folderReport(t, r.rep, "INBOX")
			m := issueFor(inbox, 2)
			if m == nil || len(inbox.Failed) != 1 || !strings.Contains(strings.ToLower(m.Reason.String()), "size") {
				t.Errorf("INBOX failed %+v skipped %+v; want UID 2 failed for its size", inbox.Failed, inbox.Skipped)
			}
			if r.rep.Totals.Copied != hostileTotal-1 || r.copiedToDest() != hostileTotal-1 {
				t.Errorf("copied %d, destination got %d; want all %d others", r.rep.Totals.Copied, r.copiedToDest(), hostileTotal-1)
			}
			if r.heapGrew > 64<<20 {
				t.Errorf("heap grew by %d MiB", r.heapGrew>>20)
			}
			if sent := r.src.BytesSent(); sent > 32<<20 {
				t.Errorf("read %d MiB of the 200 MiB literal", sent>>20)
			}
		},
	}, {
		name: "endless line in LIST",
		cfg:  func(c *testbed.HostileConfig) { c.LongLineOn = "LIST" },
		check: func(t *testing.T, r *hostileRun) {
			r.wantProtocolFailure(t)
			r.wantBounded(t)
		},
	}, {
		name: "endless line in FETCH",
		cfg:  func(c *testbed.HostileConfig) { c.LongLineOn = "UID FETCH" },
		check: func(t *testing.T, r *hostileRun) {
			r.wantProtocolFailure(t)
			r.wantBounded(t)
		},
	}, {
		name: "message expunged before its body is fetched",
		cfg:  func(c *testbed.HostileConfig) { c.Folders[1].Messages[1].Vanish = true },
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil {
				t.Fatalf("run: %v (%+v)", r.err, r.rep.Failure)
			}
			if issueFor(folderReport(t, r.rep, "Archiv 2019"), 2) == nil {
				t.Errorf("the vanished UID 2 is not in the report: %+v", folderReport(t, r.rep, "Archiv 2019"))
			}
			if r.rep.Totals.Copied != hostileTotal-1 || r.copiedToDest() != hostileTotal-1 {
				t.Errorf("copied %d, destination got %d; want %d", r.rep.Totals.Copied, r.copiedToDest(), hostileTotal-1)
			}
		},
	}, {
		name: "UIDVALIDITY changes during the copy",
		cfg:  func(c *testbed.HostileConfig) { c.Folders[1].NewUIDValidity = 99 },
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil {
				t.Fatalf("run: %v (%+v)", r.err, r.rep.Failure)
			}
			f := folderReport(t, r.rep, "Archiv 2019")
			if f.Copied+len(f.Failed)+len(f.Skipped) != 3 {
				t.Errorf("Archiv 2019: %+v; want every message copied or reported", f)
			}
			if got := r.after["Archiv 2019"]; int(got) > f.Copied {
				t.Errorf("destination Archiv 2019 has %d messages, %d copied", got, f.Copied)
			}
		},
	}, {
		name: "unparsable reply to UID FETCH",
		cfg:  func(c *testbed.HostileConfig) { c.GarbageOn = "UID FETCH" },
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil {
				r.wantProtocolFailure(t)
			}
		},
	}, {
		name: "unparsable reply to STATUS",
		cfg:  func(c *testbed.HostileConfig) { c.GarbageOn, c.GarbageLine = "STATUS", `* QUOTA "ROOT" (STORAGE)` },
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil {
				r.wantProtocolFailure(t)
			}
		},
	}, {
		name: "server silent mid-literal",
		cfg:  func(c *testbed.HostileConfig) { c.Folders[0].Messages[2].StallAfter = 100 },
		opt:  engine.Options{Conn: imapconn.Options{Timeout: 2 * time.Second}},
		check: func(t *testing.T, r *hostileRun) {
			if r.elapsed > 30*time.Second {
				t.Errorf("took %s with a 2 s timeout", r.elapsed)
			}
			if r.err != nil {
				return
			}
			if issueFor(folderReport(t, r.rep, "INBOX"), 3) == nil {
				t.Errorf("the stalled UID 3 is not in the report")
			}
		},
	}, {
		// Refused before anything is created on the destination.
		name: "100,000 folders",
		cfg:  func(c *testbed.HostileConfig) { c.ExtraFolders = 100_000 },
		opt:  engine.Options{MaxFolders: 1000},
		check: func(t *testing.T, r *hostileRun) {
			if r.err == nil || r.rep.Failure == nil || r.rep.Failure.Kind != "too_many_folders" {
				t.Fatalf("run: %v, failure %+v; want too_many_folders", r.err, r.rep.Failure)
			}
			if before, after := slices.Sorted(maps.Keys(r.before)), slices.Sorted(maps.Keys(r.after)); !slices.Equal(before, after) {
				t.Errorf("destination folders went from %q to %d folders", before, len(after))
			}
			if r.elapsed > 30*time.Second {
				t.Errorf("took %s to refuse", r.elapsed)
			}
		},
	}}
}

// What a hostile or broken source server does must not crash, hang, leak,
// or lose mail silently.
func TestHostileSource(t *testing.T) {
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			cfg := hostileAccount()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			r := runHostile(t, dst, cfg, c.opt)
			t.Logf("%s in %s: err %v, heap +%d MiB, %d bytes sent by the source, %d connection(s)",
				r.status(), r.elapsed.Round(time.Millisecond), r.err, r.heapGrew>>20, r.src.BytesSent(), r.src.Opened())
			r.checkCommon(t)
			c.check(t, r)
		})
	}
}

// wantBounded asserts that a runaway reply was cut off early: little
// memory, little of it read, and no waiting for a timeout.
func (r *hostileRun) wantBounded(t *testing.T) {
	t.Helper()
	if r.heapGrew > 64<<20 {
		t.Errorf("heap grew by %d MiB", r.heapGrew>>20)
	}
	if sent := r.src.BytesSent(); sent > 32<<20 {
		t.Errorf("read %d MiB of the 64 MiB line", sent>>20)
	}
	if r.elapsed > 8*time.Second {
		t.Errorf("took %s: the line was waited out, not refused", r.elapsed)
	}
}

// Chunks are asked for while the one before is still read. What goes wrong
// in a chunk on its way, a body larger than announced (which ends the
// connection), a message gone, a folder recreated (seen at an EXAMINE sent
// ahead), costs that chunk's folder only what it must: every other message
// is copied exactly once.
func TestReadAhead(t *testing.T) {
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	const n = 100 // per folder: up to 12 KiB each, a dozen chunks of 64 KiB
	account := func() testbed.HostileConfig {
		return testbed.HostileConfig{User: srcUser, Password: srcPass, Folders: []testbed.HostileFolder{
			{Name: "INBOX", UIDValidity: 11, Subscribed: true, Messages: hostileMessages("INBOX", n)},
			{Name: "Archiv 2019", UIDValidity: 12, Subscribed: true, Messages: hostileMessages("Archiv 2019", n)},
		}}
	}
	// allBut asserts INBOX's UID uid alone failed and everything else
	// arrived.
	allBut := func(t *testing.T, r *hostileRun, uid uint32) {
		t.Helper()
		inbox := folderReport(t, r.rep, "INBOX")
		if r.err != nil || len(inbox.Failed) != 1 || issueFor(inbox, uid) == nil {
			t.Fatalf("run: %v; INBOX failed %+v, want UID %d alone", r.err, inbox.Failed, uid)
		}
		if r.rep.Totals.Copied != 2*n-1 || r.copiedToDest() != 2*n-1 {
			t.Errorf("copied %d, destination got %d; want %d", r.rep.Totals.Copied, r.copiedToDest(), 2*n-1)
		}
	}
	for _, c := range []struct {
		name  string
		cfg   func(*testbed.HostileConfig)
		check func(*testing.T, *hostileRun)
	}{{
		name: "well behaved",
		check: func(t *testing.T, r *hostileRun) {
			if r.err != nil || r.rep.Totals.Copied != 2*n || r.copiedToDest() != 2*n {
				t.Fatalf("run: %v; copied %d, destination got %d, want %d", r.err, r.rep.Totals.Copied, r.copiedToDest(), 2*n)
			}
		},
	}, {
		name: "body larger than announced",
		cfg: func(c *testbed.HostileConfig) {
			m := &c.Folders[0].Messages[59]
			m.LiteralSize = 200 << 20
		},
		check: func(t *testing.T, r *hostileRun) {
			allBut(t, r, 60)
			if sent := r.src.BytesSent(); sent > 32<<20 {
				t.Errorf("read %d MiB of the 200 MiB literal", sent>>20)
			}
		},
	}, {
		name:  "message gone",
		cfg:   func(c *testbed.HostileConfig) { c.Folders[0].Messages[69].Vanish = true },
		check: func(t *testing.T, r *hostileRun) { allBut(t, r, 70) },
	}, {
		name: "folder recreated",
		cfg:  func(c *testbed.HostileConfig) { c.Folders[1].NewUIDValidity = 99 },
		check: func(t *testing.T, r *hostileRun) {
			f := folderReport(t, r.rep, "Archiv 2019")
			if r.err != nil || f.Copied+len(f.Failed) != n || f.Copied == n {
				t.Fatalf("run: %v; Archiv 2019 %+v, want the messages after the change reported", r.err, f)
			}
			if got := r.after["Archiv 2019"]; int(got) != f.Copied {
				t.Errorf("destination Archiv 2019 has %d messages, %d copied", got, f.Copied)
			}
			if inbox := folderReport(t, r.rep, "INBOX"); inbox.Copied != n {
				t.Errorf("INBOX copied %d of %d", inbox.Copied, n)
			}
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := account()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			r := runHostile(t, dst, cfg, engine.Options{Memory: engine.NewMemory(256 << 10)})
			r.checkCommon(t)
			c.check(t, r)
		})
	}
}
