// The service benchmark (-service): many mailboxes from one old server
// submitted through the API of `mailmigrate serve`, on SQLite with one
// process and on PostgreSQL with one, two and three worker processes,
// against `mailmigrate migrate` with a bulk file at the same parallelism.
// Every setup copies into its own new domain on the same hosting Dovecot,
// so that each starts from empty mailboxes and none is favoured by the
// page cache of a previous run.

package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/testbed"
)

// serviceDefaults gives -service the size (200 mailboxes of 50
// messages, one round) unless the flags say otherwise: the defaults of
// the many-accounts phase would measure something else.
func (c *config) serviceDefaults() {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["accounts"] {
		c.accounts = 200
	}
	if !set["per-account"] {
		c.perAccount = 50
	}
	if !set["runs"] {
		c.runs = 1
	}
}

// setup is one way of running the bulk copy.
type setup struct {
	name     string
	cli      bool
	postgres bool
	workers  int // worker processes (PostgreSQL); 1 otherwise
	parallel int // tasks at once, in all processes together
}

// key names the setup for -setups: cli4, sqlite, pg2.
func (s setup) key() string {
	if s.cli {
		return fmt.Sprintf("cli%d", s.parallel)
	}
	return s.name
}

func (s setup) label() string {
	switch {
	case s.cli:
		return fmt.Sprintf("CLI --parallel %d", s.parallel)
	case s.postgres:
		return fmt.Sprintf("PostgreSQL, web + %d worker(s)", s.workers)
	}
	return "SQLite, 1 process"
}

// procMem is the memory of one process of a run.
type procMem struct {
	name       string
	tasks      int   // tasks it runs at once
	idle, peak int64 // VmRSS before the submission, VmHWM at the end
}

// svcRun is one measured run of a setup.
type svcRun struct {
	setup  setup
	wall   time.Duration // submission (or start) to the last mailbox's end
	submit time.Duration // the POST: the service logs in to both sides of every row first
	engine time.Duration // the engine's own time, summed over the mailboxes
	// handover is the median time a freed slot waits for its next task
	// to start; wrap the mean time a task takes beyond its engine run.
	handover, wrap time.Duration
	mmCPU          time.Duration // every mailmigrate process
	dbCPU          time.Duration // the PostgreSQL cluster
	dovecot        time.Duration // both Dovecots
	busy           time.Duration // the whole machine
	messages       int
	procs          []procMem
	verify         error
}

// srcAccount is a mailbox of the old server and what the hosting must
// end up with.
type srcAccount struct {
	user     string
	messages int
	folders  map[string]int // messages per corpus folder
}

type svcBench struct {
	*bed
	driver  *hosting.PasswdFile
	home    string
	pg      *testbed.Postgres
	env     []string // the secret key every serve process must share
	sources []srcAccount
	client  *http.Client
}

func (b *bed) service(ctx context.Context) error {
	cfg := b.cfg
	opts := testbed.DovecotOptions{MaxUserIPConnections: 100}
	var err error
	if b.src, err = testbed.StartDovecot(opts); err != nil {
		return err
	}
	defer b.src.Stop()
	// The service creates nothing here, but it reads and checks the
	// hosting's passwd-file, so the destination must be run from one.
	opts.SharedPasswdFile = true
	if b.dst, err = testbed.StartDovecot(opts); err != nil {
		return err
	}
	defer b.dst.Stop()
	s := &svcBench{bed: b, client: &http.Client{Timeout: 5 * time.Minute}}
	uid, gid := b.dst.MailOwner()
	s.home = filepath.Join(b.dst.Dir, "home", "%d", "%n")
	if s.driver, err = hosting.NewPasswdFile(hosting.PasswdFileConfig{Path: b.dst.PasswdFile, UID: strconv.Itoa(uid),
		GID: strconv.Itoa(gid), Home: s.home, Scheme: hosting.SchemeSHA512Crypt}); err != nil {
		return err
	}
	if s.pg, err = testbed.StartPostgres(); err != nil {
		return err
	}
	defer s.pg.Stop()
	key := make([]byte, 32)
	crand.Read(key)
	s.env = []string{"MAILMIGRATE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}
	if err := s.loadSources(ctx); err != nil {
		return err
	}

	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return err
		}
	}
	jobsPer := max(cfg.jobs, 1)
	var setups []setup
	// CLI and service alternate, so that a slow minute of the shared
	// machine does not land on one side only.
	for workers := 1; workers <= 3; workers++ {
		par := workers * jobsPer
		setups = append(setups, setup{name: "cli", cli: true, workers: 1, parallel: par})
		if workers == 1 {
			setups = append(setups, setup{name: "sqlite", workers: 1, parallel: par})
		}
		setups = append(setups, setup{name: fmt.Sprintf("pg%d", workers), postgres: true, workers: workers, parallel: par})
	}
	if cfg.setups != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(cfg.setups, ",") {
			keep[strings.TrimSpace(n)] = true
		}
		setups = slices.DeleteFunc(setups, func(st setup) bool { return !keep[st.key()] })
		if len(setups) == 0 {
			return fmt.Errorf("-setups %q: none of cli4 cli8 cli12 sqlite pg1 pg2 pg3 (with -jobs 4)", cfg.setups)
		}
	}
	// A first copy of every mailbox warms the servers for all that
	// follow: the setup that came first paid more of Dovecot's CPU for
	// the same copy (49 s against 38-45 s later; the old server's first
	// reader writes its index cache), and only it would pay.
	dests, err := s.mailboxes(ctx, "warm-up.test", len(s.sources))
	if err != nil {
		return err
	}
	warm, err := s.runCLI(setup{name: "cli", cli: true, workers: 1, parallel: 3 * jobsPer}, dests)
	if err != nil || warm.verify != nil {
		return fmt.Errorf("warm-up: %v %v", err, warm.verify)
	}
	logf("warm-up (CLI --parallel %d): %.2f s, Dovecot CPU %.2f s", 3*jobsPer, warm.wall.Seconds(), warm.dovecot.Seconds())
	var runs []svcRun
	for round := range cfg.runs {
		for _, st := range setups {
			domain := fmt.Sprintf("%s%d-r%d.test", st.name, st.parallel, round+1)
			dests, err := s.mailboxes(ctx, domain, len(s.sources))
			if err != nil {
				return err
			}
			logf("%s: load average %s", st.label(), loadAverage())
			var r svcRun
			if st.cli {
				r, err = s.runCLI(st, dests)
			} else {
				r, err = s.runService(ctx, st, domain, dests)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", st.label(), err)
			}
			logf("%s: %.2f s (submission %.2f s, handover %d ms, beyond the engine %d ms), %d messages, mailmigrate CPU %.2f s, database CPU %.2f s, Dovecot CPU %.2f s, machine %.2f s, verify %v",
				st.label(), r.wall.Seconds(), r.submit.Seconds(), r.handover.Milliseconds(), r.wrap.Milliseconds(), r.messages, r.mmCPU.Seconds(), r.dbCPU.Seconds(),
				r.dovecot.Seconds(), r.busy.Seconds(), okOr(r.verify))
			runs = append(runs, r)
		}
	}
	s.print(os.Stdout, setups, runs)
	for _, r := range runs {
		if r.verify != nil {
			return fmt.Errorf("%s: %w", r.setup.label(), r.verify)
		}
	}
	return nil
}

// loadSources fills the old server: one corpus per mailbox, each with its
// own seed, in the main benchmark's mix of sizes.
func (s *svcBench) loadSources(ctx context.Context) error {
	s.sources = make([]srcAccount, s.cfg.accounts)
	var total int
	var size int64
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range s.sources {
		a := srcAccount{user: fmt.Sprintf("u%03d@old.test", i), folders: map[string]int{}}
		if err := s.src.AddUser(a.user, password, 0); err != nil {
			return err
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: uint64(1000 + i), Messages: s.cfg.perAccount,
				AttachmentPercent: 10, AttachmentMax: 2816 << 10})
			for _, m := range c.Messages {
				a.folders[m.Folder]++
			}
			a.messages = len(c.Messages)
			_, err := load(ctx, s.src, a.user, c, 2)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("load %s: %w", a.user, err)
			}
			s.sources[i] = a
			total += a.messages
			size += corpusBytes(c)
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	logf("old server: %d mailboxes, %d messages, %.1f MB, loaded in %.1f s", len(s.sources), total, mb(size), time.Since(start).Seconds())
	return nil
}

// mailboxes creates a new domain's mailboxes in the hosting's passwd-file,
// one per source mailbox, before the run that copies into them.
func (s *svcBench) mailboxes(ctx context.Context, domain string, n int) ([]string, error) {
	dests := make([]string, n)
	errs := make([]error, len(dests))
	// Create waits for Dovecot's once-a-second look at the file; in
	// parallel the waits overlap.
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range dests {
		dests[i] = fmt.Sprintf("u%03d@%s", i, domain)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.driver.Create(ctx, dests[i], password, 0)
		})
	}
	wg.Wait()
	return dests, errors.Join(errs...)
}

// runCLI copies with `mailmigrate migrate --accounts` the first
// len(dests) mailboxes from the same old server over the same transport as the service: plain IMAP from the old
// server, TLS to the hosting.
func (s *svcBench) runCLI(st setup, dests []string) (svcRun, error) {
	r := svcRun{setup: st}
	tag := fmt.Sprintf("cli%d-%d", st.parallel, time.Now().UnixNano())
	lines := []string{"source_user,source_password,dest_user,dest_password"}
	for i, d := range dests {
		lines = append(lines, fmt.Sprintf("%s,%s,%s,%s", s.sources[i].user, password, d, password))
	}
	list := filepath.Join(s.dir, tag+".csv")
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return r, err
	}
	report := filepath.Join(s.dir, tag+".json")
	cmd := exec.Command(s.bin, "migrate", "--source", "imap://"+s.src.IMAPAddr(), "--allow-plaintext",
		"--dest", "imaps://"+s.dst.IMAPSAddr(), "--ca-file", s.dst.CAFile, "--accounts", list,
		"--parallel", strconv.Itoa(st.parallel), "--state", filepath.Join(s.dir, tag+".db"),
		"--report", report, "--quiet")
	if s.cfg.profile != "" {
		base := filepath.Join(s.cfg.profile, tag)
		cmd.Args = append(cmd.Args, "--cpuprofile", base+".cpu", "--memprofile", base+".mem")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before := s.snapshot(nil)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	err := cmd.Wait()
	r.wall = time.Since(start)
	after := s.snapshot(nil)
	peak := <-hwm
	if err != nil {
		return r, fmt.Errorf("mailmigrate: %v\n%s", err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.mmCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	r.dbCPU, r.dovecot, r.busy = after.db-before.db, after.dovecot-before.dovecot, after.busy-before.busy
	r.procs = []procMem{{name: "migrate", tasks: st.parallel, peak: peak}}
	data, err := os.ReadFile(report)
	if err != nil {
		return r, err
	}
	var rep struct{ Accounts []*engine.Report }
	if err := json.Unmarshal(data, &rep); err != nil {
		return r, err
	}
	reps := make([]taskReport, len(rep.Accounts))
	var spans []span
	for i, a := range rep.Accounts {
		spans = append(spans, span{a.Started, a.Finished})
		reps[i] = taskReport{Started: a.Started, Finished: a.Finished, Status: string(a.Status)}
		reps[i].Totals.Copied = a.Totals.Copied
		for _, f := range a.Folders {
			reps[i].Folders = append(reps[i].Folders, folderMap{Source: f.Source, Dest: f.Dest})
		}
	}
	r.engine, r.messages, r.verify = s.check(dests, reps)
	r.handover = handover(spans, st.parallel)
	return r, nil
}

// taskReport is the part of a mailbox's report the benchmark reads.
type taskReport struct {
	Status   string      `json:"status"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Folders  []folderMap `json:"folders"`
	Totals   struct {
		Copied int `json:"copied"`
	} `json:"totals"`
}

type folderMap struct {
	Source string `json:"source"`
	Dest   string `json:"destination"`
}

// check sums the engine's time and the copied messages of the reports and
// counts every folder of every destination mailbox against its corpus.
func (s *svcBench) check(dests []string, reps []taskReport) (engineTime time.Duration, copied int, verr error) {
	if len(reps) != len(dests) {
		return 0, 0, fmt.Errorf("%d reports for %d mailboxes", len(reps), len(dests))
	}
	var errs []error
	for i, rep := range reps {
		engineTime += rep.Finished.Sub(rep.Started)
		copied += rep.Totals.Copied
		if err := s.countFolders(s.sources[i], dests[i], rep); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more mailboxes", len(errs)-3))
	}
	return engineTime, copied, errors.Join(errs...)
}

func (s *svcBench) countFolders(a srcAccount, dest string, rep taskReport) error {
	if rep.Status != string(engine.StatusDone) || rep.Totals.Copied != a.messages {
		return fmt.Errorf("%s: %s, copied %d of %d", dest, rep.Status, rep.Totals.Copied, a.messages)
	}
	cl, err := s.dst.Login(dest, password)
	if err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	defer cl.Close()
	seen := 0
	for _, f := range rep.Folders {
		want, ok := a.folders[f.Source]
		if !ok {
			continue
		}
		seen += want
		st, err := cl.Status(f.Dest, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", dest, f.Dest, err)
		}
		if st.NumMessages == nil || int(*st.NumMessages) != want {
			return fmt.Errorf("%s: %s holds %v messages, want %d", dest, f.Dest, st.NumMessages, want)
		}
	}
	if seen != a.messages {
		return fmt.Errorf("%s: the report names folders with %d of the %d messages", dest, seen, a.messages)
	}
	return nil
}

// svcProc is one running `mailmigrate serve`.
type svcProc struct {
	name  string
	tasks int
	url   string // where /healthz answers
	cmd   *exec.Cmd
	// exited closes when the process has ended; the goroutine that
	// closes it is the one that waits for it.
	exited <-chan struct{}
	log    string
	idle   int64
}

// runService submits every mailbox in one migration through the API and
// waits until the last one is done.
func (s *svcBench) runService(ctx context.Context, st setup, domain string, dests []string) (svcRun, error) {
	r := svcRun{setup: st}
	dir := filepath.Join(s.dir, strings.TrimSuffix(domain, ".test"))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return r, err
	}
	port, err := freePort()
	if err != nil {
		return r, err
	}
	uid, gid := s.dst.MailOwner()
	conf := fmt.Sprintf(`listen = 127.0.0.1:%d
data_dir = %s
hosting.imap = imaps://%s
hosting.ca_file = %s
hosting.driver = passwd-file
hosting.passwd_file = %s
hosting.passwd_scheme = SHA512-CRYPT
hosting.uid = %d
hosting.gid = %d
hosting.home = %s
sources.allow_private = true
sources.allow_plaintext = true
sources.host_limit = %d
jobs.workers = %d
`, port, filepath.Join(dir, "data"), s.dst.IMAPSAddr(), s.dst.CAFile, s.dst.PasswdFile, uid, gid, s.home,
		st.parallel, st.parallel/st.workers)
	var dbName string
	if st.postgres {
		var dbURL string
		if dbName, dbURL, err = s.pg.CreateDatabase(ctx); err != nil {
			return r, err
		}
		defer s.pg.DropDatabase(context.Background(), dbName)
		conf += "database = " + dbURL + "\n"
	}
	confPath := filepath.Join(dir, "mailmigrate.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return r, err
	}
	admin := func(args ...string) (string, error) {
		cmd := exec.Command(s.bin, append([]string{"admin", "--config", confPath}, args...)...)
		cmd.Env = append(os.Environ(), s.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("admin %v: %v\n%s", args, err, out)
		}
		return string(out), nil
	}
	if _, err := admin("init", "--name", "Hosting"); err != nil {
		return r, err
	}
	if _, err := admin("customer", "add", "Bench"); err != nil {
		return r, err
	}
	if _, err := admin("domain", "add", "--customer", "Bench", domain); err != nil {
		return r, err
	}
	out, err := admin("token", "add", "--tenant", "Bench")
	if err != nil {
		return r, err
	}
	token := regexp.MustCompile(`mm_[A-Za-z0-9_-]{20,}`).FindString(out)
	if token == "" {
		return r, fmt.Errorf("no token in: %s", out)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var procs []*svcProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(p *svcProc, args ...string) error {
		procs = append(procs, p)
		return s.startProc(p, dir, confPath, args...)
	}
	if !st.postgres {
		if err := start(&svcProc{name: "all", tasks: st.parallel, url: base}); err != nil {
			return r, err
		}
	} else {
		// The web server first: it brings the schema up, which the
		// workers would otherwise wait for in turn.
		if err := start(&svcProc{name: "web", url: base}, "--role", "web"); err != nil {
			return r, err
		}
		for i := range st.workers {
			wp, err := freePort()
			if err != nil {
				return r, err
			}
			addr := fmt.Sprintf("127.0.0.1:%d", wp)
			if err := start(&svcProc{name: fmt.Sprintf("worker%d", i+1), tasks: st.parallel / st.workers, url: "http://" + addr},
				"--role", "worker", "--listen", addr); err != nil {
				return r, err
			}
		}
	}
	// Let start-up work (schema, River's leader election, the periodic
	// jobs run at start) settle, so that the idle memory is idle.
	time.Sleep(time.Second)
	for _, p := range procs {
		p.idle = procStatusBytes(p.cmd.Process.Pid, "VmRSS:")
	}

	var rows []map[string]string
	for i, a := range s.sources {
		rows = append(rows, map[string]string{"mailbox": dests[i], "hosting_password": password,
			"source_user": a.user, "source_password": password})
	}
	body := map[string]any{"source": map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}, "sync": rows}
	before := s.snapshot(procs)
	began := time.Now()
	var created struct {
		ID         int64             `json:"id"`
		NotStarted []json.RawMessage `json:"not_started"`
	}
	code, raw, err := s.call(token, "POST", base+"/api/v1/domains/"+domain+"/migrations", body, &created)
	r.submit = time.Since(began)
	if err != nil {
		return r, err
	}
	if code != http.StatusCreated || len(created.NotStarted) > 0 {
		return r, fmt.Errorf("submission: %d %s", code, raw)
	}
	type taskOut struct {
		ID       int64     `json:"id"`
		State    string    `json:"state"`
		Dest     string    `json:"destination"`
		Started  time.Time `json:"started"`
		Finished time.Time `json:"finished"`
	}
	var m struct {
		State string    `json:"state"`
		Tasks []taskOut `json:"tasks"`
	}
	// The wall time is taken from the tasks' own finish times, so the
	// poll can be as rare as a watching client's: every 100 ms the service
	// listed 200 tasks ten times a second, CPU that the CLI does not spend.
	deadline := time.Now().Add(time.Duration(len(dests)) * 5 * time.Second)
	for {
		time.Sleep(time.Second)
		if _, raw, err := s.call(token, "GET", fmt.Sprintf("%s/api/v1/migrations/%d", base, created.ID), nil, &m); err != nil {
			return r, fmt.Errorf("%w: %s", err, raw)
		}
		if m.State != "copying" && len(m.Tasks) == len(dests) {
			break
		}
		if time.Now().After(deadline) {
			var logs []string
			for _, p := range procs {
				logs = append(logs, p.name+":\n"+tail(p.log, 15))
			}
			counts := map[string]int{}
			for _, t := range m.Tasks {
				counts[t.State]++
			}
			return r, fmt.Errorf("not done after %s: %v\n%s", time.Since(began).Round(time.Second), counts, strings.Join(logs, "\n"))
		}
	}
	after := s.snapshot(procs)
	var last time.Time
	for _, t := range m.Tasks {
		if t.Finished.After(last) {
			last = t.Finished
		}
	}
	r.wall = last.Sub(began)
	r.mmCPU, r.dbCPU, r.dovecot, r.busy = after.mm-before.mm, after.db-before.db, after.dovecot-before.dovecot, after.busy-before.busy
	for _, p := range procs {
		r.procs = append(r.procs, procMem{name: p.name, tasks: p.tasks, idle: p.idle, peak: procStatusBytes(p.cmd.Process.Pid, "VmHWM:")})
	}

	// The tasks come in the order of the rows.
	reps := make([]taskReport, len(m.Tasks))
	for i, t := range m.Tasks {
		if t.Dest != dests[i] {
			return r, fmt.Errorf("task %d is %s, want %s", i, t.Dest, dests[i])
		}
		if _, raw, err := s.call(token, "GET", fmt.Sprintf("%s/api/v1/tasks/%d/report", base, t.ID), nil, &reps[i]); err != nil {
			return r, fmt.Errorf("report of %s (%s): %w: %s", t.Dest, t.State, err, raw)
		}
	}
	r.engine, r.messages, r.verify = s.check(dests, reps)
	var spans []span
	var wrap time.Duration
	for i, t := range m.Tasks {
		spans = append(spans, span{t.Started, t.Finished})
		wrap += t.Finished.Sub(t.Started) - reps[i].Finished.Sub(reps[i].Started)
	}
	r.handover, r.wrap = handover(spans, st.parallel), wrap/time.Duration(len(spans))
	return r, nil
}

// span is when a task ran.
type span struct{ start, end time.Time }

// handover is the median time from a slot's freeing to the start of the
// task that takes it. With at most parallel tasks at once, the start that
// comes (parallel+k)-th needs the k-th end before it: the gap between
// the two is what the slot stood idle.
func handover(spans []span, parallel int) time.Duration {
	var starts, ends []time.Time
	for _, s := range spans {
		starts, ends = append(starts, s.start), append(ends, s.end)
	}
	slices.SortFunc(starts, time.Time.Compare)
	slices.SortFunc(ends, time.Time.Compare)
	var gaps []time.Duration
	for k := 0; parallel+k < len(starts); k++ {
		gaps = append(gaps, max(0, starts[parallel+k].Sub(ends[k])))
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// startProc runs serve and waits until its /healthz answers.
func (s *svcBench) startProc(p *svcProc, dir, conf string, args ...string) error {
	p.log = filepath.Join(dir, p.name+".log")
	f, err := os.Create(p.log)
	if err != nil {
		return err
	}
	defer f.Close()
	if s.cfg.profile != "" {
		// One profile per process and setup; the server writes it when
		// it stops.
		base := filepath.Join(s.cfg.profile, filepath.Base(dir)+"-"+p.name)
		args = append(args, "--cpuprofile", base+".cpu", "--memprofile", base+".mem")
	}
	p.cmd = exec.Command(s.bin, append([]string{"serve", "--config", conf}, args...)...)
	p.cmd.Env = append(os.Environ(), s.env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// An interrupted benchmark must not leave servers behind that keep
	// polling a database that is gone.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	p.exited = exited
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited:\n%s", p.name, tail(p.log, 20))
		default:
		}
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not come up:\n%s", p.name, tail(p.log, 20))
}

func (p *svcProc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// call makes an API request and decodes a JSON answer into out.
func (s *svcBench) call(token, method, u string, body, out any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, string(data), fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, string(data), err
		}
	}
	return resp.StatusCode, string(data), nil
}

// cpuSnapshot is the CPU time used so far by the parties of a run.
type cpuSnapshot struct {
	mm, db, dovecot, busy time.Duration
}

func (s *svcBench) snapshot(procs []*svcProc) cpuSnapshot {
	table := procTable()
	var c cpuSnapshot
	for _, p := range procs {
		if st, ok := table[p.cmd.Process.Pid]; ok {
			c.mm += st.own
		}
	}
	// The postmaster of our cluster, not the machine's own PostgreSQL: it
	// is the postgres process started with our cluster's port.
	if u, err := url.Parse(s.pg.URL); err == nil {
		c.db = treeCPU(table, func(st procStat) bool {
			return st.comm == "postgres" && slices.Contains(st.args(), "-p") && slices.Contains(st.args(), u.Port())
		})
	}
	for _, d := range []*testbed.Dovecot{s.src, s.dst} {
		c.dovecot += treeCPU(table, func(st procStat) bool {
			return st.comm == "dovecot" && slices.ContainsFunc(st.args(), func(a string) bool { return strings.HasPrefix(a, d.Dir) })
		})
	}
	c.busy = machineBusy()
	return c
}

// procStat is a process's line of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	comm      string
	own, kids time.Duration // utime+stime; cutime+cstime of its reaped children
}

func (p procStat) args() []string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

func procTable() map[int]procStat {
	out := map[int]procStat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		lp, rp := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if lp < 0 || rp < lp {
			continue
		}
		f := strings.Fields(string(data[rp+1:]))
		if len(f) < 15 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		tick := time.Second / 100 // USER_HZ
		st := procStat{pid: pid, comm: string(data[lp+1 : rp])}
		st.ppid = int(n(1))
		st.own = time.Duration(n(11)+n(12)) * tick
		st.kids = time.Duration(n(13)+n(14)) * tick
		out[pid] = st
	}
	return out
}

// treeCPU is the CPU time of the server whose master process matches:
// its own, that of its children that ended (reaped into its cutime and
// cstime: Dovecot's imap processes, PostgreSQL's backends) and that of
// its living children.
func treeCPU(table map[int]procStat, master func(procStat) bool) time.Duration {
	var sum time.Duration
	for _, st := range table {
		if !master(st) {
			continue
		}
		sum += st.own + st.kids
		for _, c := range table {
			if c.ppid == st.pid {
				sum += c.own
			}
		}
	}
	return sum
}

// procStatusBytes reads a size field (kB) of /proc/<pid>/status.
func procStatusBytes(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func okOr(err error) string {
	if err != nil {
		return "FAILED: " + err.Error()
	}
	return "ok"
}

// print writes the medians of every setup as a Markdown table, each
// service setup against the CLI at its parallelism.
func (s *svcBench) print(w io.Writer, setups []setup, runs []svcRun) {
	tasks, msgs := len(s.sources), 0
	for _, a := range s.sources {
		msgs += a.messages
	}
	fmt.Fprintf(w, "\n%s, %s, %d CPUs, servers' mail on %s, %d mailboxes × %d messages (%d), jobs.workers = %d, %d round(s) (median), load average before: %s\n\n",
		time.Now().Format("2006-01-02"), runtime.Version(), runtime.NumCPU(), os.TempDir(), tasks, s.cfg.perAccount, msgs,
		max(s.cfg.jobs, 1), s.cfg.runs, loadAverage())
	fmt.Fprintln(w, "| setup | tasks at once | wall s | submission s | msgs/s | × CLI | overhead ms/task | engine s/task | slot time outside the engine ms/task | handover ms (median) | task beyond engine ms | mailmigrate CPU s | database CPU s | Dovecot CPU s | machine CPU s | peak RSS MB per process (idle) | MB per running task (above idle) | verify |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
	cliWall := map[int]time.Duration{}
	for _, st := range setups {
		var mine []svcRun
		for _, r := range runs {
			if r.setup == st {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		slices.SortFunc(mine, func(a, b svcRun) int { return int(a.wall - b.wall) })
		m := mine[len(mine)/2]
		if st.cli {
			cliWall[st.parallel] = m.wall
		}
		ratio, over := "–", "–"
		if c, ok := cliWall[st.parallel]; ok && !st.cli {
			ratio = fmt.Sprintf("%.2f", m.wall.Seconds()/c.Seconds())
			over = fmt.Sprintf("%.0f", float64((m.wall-c).Milliseconds())/float64(tasks))
		}
		var mem []string
		// Above idle as well: most of an idle process is the binary's
		// pages (RssFile), which every process on the machine shares.
		perTask, aboveIdle := 0.0, 0.0
		for _, p := range m.procs {
			if p.idle > 0 {
				mem = append(mem, fmt.Sprintf("%s %.1f (%.1f)", p.name, mb(p.peak), mb(p.idle)))
			} else {
				mem = append(mem, fmt.Sprintf("%s %.1f", p.name, mb(p.peak)))
			}
			if p.tasks > 0 {
				perTask = max(perTask, mb(p.peak)/float64(p.tasks))
				aboveIdle = max(aboveIdle, mb(p.peak-p.idle)/float64(p.tasks))
			}
		}
		submit := "–"
		if !st.cli {
			submit = fmt.Sprintf("%.2f", m.submit.Seconds())
		}
		outside := (time.Duration(st.parallel)*m.wall - m.engine) / time.Duration(tasks)
		fmt.Fprintf(w, "| %s | %d | %.2f | %s | %.0f | %s | %s | %.2f | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %s | %.1f (%s) | %s |\n",
			st.label(), st.parallel, m.wall.Seconds(), submit, float64(m.messages)/m.wall.Seconds(), ratio, over,
			m.engine.Seconds()/float64(tasks), outside.Milliseconds(), m.handover.Milliseconds(), m.wrap.Milliseconds(), m.mmCPU.Seconds(), m.dbCPU.Seconds(), m.dovecot.Seconds(), m.busy.Seconds(),
			strings.Join(mem, ", "), perTask, idleNote(st.cli, aboveIdle), okOr(m.verify))
	}
}

// idleNote is the memory per running task above the process's idle
// size; the CLI has no idle moment to measure.
func idleNote(cli bool, aboveIdle float64) string {
	if cli {
		return "–"
	}
	return fmt.Sprintf("%.1f", aboveIdle)
}
