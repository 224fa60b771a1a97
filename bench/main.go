// Command bench measures mailmigrate against the destination server's own
// limit and against Dovecot's dsync. It starts two Dovecot instances (source
// and destination) through the test bed, generates a deterministic corpus,
// finds the plain client's best connection counts (one message per APPEND,
// and MULTIAPPEND batches) and the source's FETCH rate, then runs interleaved
// rounds of the plain clients, dsync over imapc and the real mailmigrate
// binary through the phases initial, re-run, incremental and many accounts,
// and prints the medians as a Markdown table.
//
//	go run ./bench            # 5,000 messages, ~315 MB
//	go run ./bench -small     # 500 messages
//	go run ./bench -huge      # plus one 50 MB message
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

const password = "bench password"

type config struct {
	small, huge bool
	runs        int
	workers     int
	parallel    int
	profile     string
	serve       bool
	tmpfs       bool
	latency     time.Duration
	accounts    int
	perAccount  int
	service     bool
	jobs        int
	setups      string
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.small, "small", false, "500 messages instead of 5,000")
	flag.BoolVar(&cfg.huge, "huge", false, "add one 50 MB message")
	flag.IntVar(&cfg.runs, "runs", 3, "runs per phase; the median is reported")
	flag.IntVar(&cfg.workers, "workers", 0, "pass --workers N to mailmigrate (0: its default)")
	flag.IntVar(&cfg.parallel, "parallel", 0, "pass --parallel N to mailmigrate in the many-accounts phase (0: all accounts at once)")
	flag.StringVar(&cfg.profile, "profile", "", "write CPU and heap profiles of the first initial run (with -service: of every mailmigrate process) into this directory")
	flag.IntVar(&cfg.accounts, "accounts", 20, "accounts in the many-accounts phase")
	flag.IntVar(&cfg.perAccount, "per-account", 250, "messages per account in the many-accounts phase")
	flag.BoolVar(&cfg.tmpfs, "tmpfs", false, "keep the servers' mail in /dev/shm: removes disk noise, shows the servers' CPU limit")
	flag.DurationVar(&cfg.latency, "source-latency", 0, "hold every piece of data to and from the source this long each way, as a remote old provider would (a round trip is twice this)")
	flag.BoolVar(&cfg.serve, "serve", false, "load the corpus, print a migrate command line and keep the servers running until interrupted (for profiling)")
	flag.BoolVar(&cfg.service, "service", false, "the service instead: mailboxes submitted through serve's API (SQLite; PostgreSQL with 1-3 workers) against the CLI at the same parallelism (see service.go)")
	flag.StringVar(&cfg.setups, "setups", "", "with -service: only these setups, comma-separated (cli4,sqlite,pg1,cli8,pg2,cli12,pg3 with -jobs 4)")
	flag.IntVar(&cfg.jobs, "jobs", 4, "with -service: jobs.workers, the tasks at once in each copying process")
	flag.Parse()
	if cfg.service {
		cfg.serviceDefaults()
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bed is the two servers and the mailmigrate binary.
type bed struct {
	cfg      config
	src, dst *testbed.Dovecot
	bin      string
	dir      string
	caBundle string
	users    int
	// srcPorts are the source's own ports while it sits behind delay
	// proxies (-source-latency).
	srcPorts [2]int
}

func run(cfg config) error {
	ctx := context.Background()
	if cfg.tmpfs {
		// The test bed makes its server directories under TMPDIR.
		os.Setenv("TMPDIR", "/dev/shm")
	}
	dir, err := os.MkdirTemp("", "mailmigrate-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bed{cfg: cfg, dir: dir, bin: filepath.Join(dir, "mailmigrate")}
	logf("building mailmigrate")
	if out, err := exec.Command("go", "build", "-o", b.bin, "./cmd/mailmigrate").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	if cfg.service {
		return b.service(ctx)
	}
	opts := testbed.DovecotOptions{MaxUserIPConnections: 100}
	if b.src, err = testbed.StartDovecot(opts); err != nil {
		return err
	}
	defer b.src.Stop()
	if b.dst, err = testbed.StartDovecot(opts); err != nil {
		return err
	}
	defer b.dst.Stop()
	if err := b.writeCABundle(); err != nil {
		return err
	}

	n := 5000
	if cfg.small {
		n = 500
	}
	co := testbed.CorpusOptions{Seed: 2026, Messages: n, AttachmentPercent: 10, AttachmentMax: 2816 << 10}
	if cfg.huge {
		co.Huge = 50 << 20
	}
	corpus := testbed.GenerateCorpus(co)
	size := corpusBytes(corpus)
	logf("corpus: %d messages, %.1f MB in %d folders", len(corpus.Messages), mb(size), len(corpus.Folders))
	src := "bench@src.test"
	if err := b.src.AddUser(src, password, 0); err != nil {
		return err
	}
	if _, err := load(ctx, b.src, src, corpus, 4); err != nil {
		return err
	}
	if cfg.latency > 0 {
		if err := b.distant(cfg.latency); err != nil {
			return err
		}
		logf("the source is %v away each way (a round trip %v)", cfg.latency, 2*cfg.latency)
	}

	if cfg.serve {
		return b.serveUntilInterrupted(ctx, src)
	}
	res := &results{messages: len(corpus.Messages), bytes: size}
	if err := b.calibrate(ctx, corpus, src, res); err != nil {
		return err
	}
	dsync := b.doveadm()
	if dsync == "" {
		logf("doveadm not found: no dsync reference")
	}

	// initial, in interleaved rounds: the yardsticks, dsync and
	// mailmigrate one after another, each into a fresh account, so that a
	// change in the machine's speed touches them alike. Each round starts
	// one contender later than the one before: what a run leaves behind
	// (servers' processes still exiting, written mail) falls on each
	// contender in turn, not always on the same one.
	var last phaseRun
	var lastUser, lastState, dsyncUser string
	fresh := func() (string, string, error) {
		user, state := b.newDest()
		return user, state, b.dst.AddUser(user, password, 0)
	}
	yardstick := func(phase string, copy func(user string) error) func(int) error {
		return func(int) error {
			user, _, err := fresh()
			if err != nil {
				return err
			}
			r, err := measure(func() error { return copy(user) })
			if err != nil {
				return fmt.Errorf("%s: %w", phase, err)
			}
			r.copied = len(corpus.Messages)
			res.add(phase, r)
			return nil
		}
	}
	contenders := []func(round int) error{
		yardstick(phaseAppend, func(user string) error { _, err := load(ctx, b.dst, user, corpus, res.appendConns); return err }),
		yardstick(phaseMulti, func(user string) error { return loadMulti(ctx, b.dst, user, corpus, res.multiConns, multiBatch) }),
		yardstick(phaseCopier, func(user string) error { return copyMulti(ctx, b.src, src, b.dst, user, res.multiConns, multiBatch) }),
	}
	if dsync != "" {
		for _, v := range []struct {
			phase string
			tls   bool
		}{{"dsync initial", false}, {phaseDsyncTLS, true}} {
			contenders = append(contenders, func(int) error {
				user, _, err := fresh()
				if err != nil {
					return err
				}
				r, err := b.dsync(dsync, src, user, v.tls)
				if err != nil {
					return err
				}
				if !v.tls {
					dsyncUser = user
				}
				r.copied = len(corpus.Messages)
				res.add(v.phase, r)
				return nil
			})
		}
	}
	contenders = append(contenders, func(round int) error {
		user, state, err := fresh()
		if err != nil {
			return err
		}
		extra := []string{}
		if round == 0 && cfg.profile != "" {
			os.MkdirAll(cfg.profile, 0o755)
			extra = []string{"--cpuprofile", filepath.Join(cfg.profile, "cpu.pprof"),
				"--memprofile", filepath.Join(cfg.profile, "heap.pprof")}
		}
		r, err := b.migrate(src, user, state, len(corpus.Messages), tlsBoth, extra...)
		if err != nil {
			return fmt.Errorf("initial: %w", err)
		}
		res.add("initial", r)
		last, lastUser, lastState = r, user, state
		return nil
	})
	// The same with plain IMAP to the destination (the hosting's own
	// server, on loopback), and on both sides: what encryption costs on a
	// machine that runs both servers (the dsync above reads the source
	// over plain IMAP and writes no protocol at all).
	for _, v := range []struct {
		tr    transport
		phase string
	}{{tlsSource, phaseTLSSource}, {noTLS, phasePlain}} {
		contenders = append(contenders, func(int) error {
			user, state, err := fresh()
			if err != nil {
				return err
			}
			r, err := b.migrate(src, user, state, len(corpus.Messages), v.tr)
			if err != nil {
				return fmt.Errorf("%s: %w", v.phase, err)
			}
			res.add(v.phase, r)
			return nil
		})
	}
	for round := range cfg.runs {
		for k := range contenders {
			if err := contenders[(round+k)%len(contenders)](round); err != nil {
				return err
			}
		}
	}
	res.verified("initial", b.verify(ctx, src, lastUser, last.report))

	for range cfg.runs {
		if dsync != "" {
			r, err := b.dsync(dsync, src, dsyncUser, false)
			if err != nil {
				return err
			}
			res.add("dsync re-run", r)
		}
		r, err := b.migrate(src, lastUser, lastState, 0, tlsBoth)
		if err != nil {
			return fmt.Errorf("re-run: %w", err)
		}
		res.add("re-run", r)
	}

	for i := range cfg.runs {
		more := corpus.More(uint64(100+i), 50)
		if _, err := load(ctx, b.src, src, more, 2); err != nil {
			return err
		}
		if dsync != "" {
			r, err := b.dsync(dsync, src, dsyncUser, false)
			if err != nil {
				return err
			}
			r.copied = 50
			res.add("dsync +50", r)
		}
		r, err := b.migrate(src, lastUser, lastState, 50, tlsBoth)
		if err != nil {
			return fmt.Errorf("incremental: %w", err)
		}
		res.add("incremental +50", r)
		last = r
	}
	res.verified("incremental +50", b.verify(ctx, src, lastUser, last.report))

	if err := b.manyAccounts(ctx, res); err != nil {
		return err
	}
	res.print(os.Stdout, cfg)
	return nil
}

// The phases of the yardsticks.
const (
	phaseAppend    = "plain client, 1 message per APPEND"
	phaseMulti     = "plain client, MULTIAPPEND"
	phaseCopier    = "plain copier, FETCH + MULTIAPPEND"
	phaseDsyncTLS  = "dsync initial, TLS to the source"
	phaseTLSSource = "initial, TLS to the source only"
	phasePlain     = "initial, no TLS"
)

// multiBatch is the plain client's MULTIAPPEND batch: messages of one
// folder per command.
const multiBatch = 200

// calibrate finds the plain client's best connection count, with one
// message per APPEND (go-imap, 1 to 8 connections) and with MULTIAPPEND
// batches (1 to 4), and measures the source's FETCH rate.
func (b *bed) calibrate(ctx context.Context, corpus *testbed.Corpus, src string, res *results) error {
	best := func(label string, conns []int, run func(user string, conns int) error) (int, error) {
		var tries []string
		var bestConns int
		var bestTime time.Duration
		for _, n := range conns {
			user, _ := b.newDest()
			if err := b.dst.AddUser(user, password, 0); err != nil {
				return 0, err
			}
			start := time.Now()
			if err := run(user, n); err != nil {
				return 0, fmt.Errorf("%s: %w\n%s", label, err, b.dst.LogTail(20))
			}
			d := time.Since(start)
			logf("%s with %d connection(s): %.2f s", label, n, d.Seconds())
			tries = append(tries, fmt.Sprintf("%d: %.2f s", n, d.Seconds()))
			if bestConns == 0 || d < bestTime {
				bestConns, bestTime = n, d
			}
		}
		res.calibration = append(res.calibration, fmt.Sprintf("%s (%s)", label, strings.Join(tries, ", ")))
		return bestConns, nil
	}
	var err error
	res.appendConns, err = best("APPEND", []int{1, 2, 4, 8}, func(user string, n int) error {
		_, err := load(ctx, b.dst, user, corpus, n)
		return err
	})
	if err != nil {
		return err
	}
	res.multiConns, err = best(fmt.Sprintf("MULTIAPPEND of %d", multiBatch), []int{1, 2, 4}, func(user string, n int) error {
		return loadMulti(ctx, b.dst, user, corpus, n, multiBatch)
	})
	if err != nil {
		return err
	}
	busy0 := machineBusy()
	d, err := fetchAll(ctx, b.src, src)
	if err != nil {
		return fmt.Errorf("fetch ceiling: %w", err)
	}
	res.fetchCeiling, res.fetchBusy = d, machineBusy()-busy0
	logf("FETCH of everything: %.2f s, machine CPU %.2f s", d.Seconds(), res.fetchBusy.Seconds())
	return nil
}

// measure runs a plain client in this process: wall time, this process's
// CPU time and the machine's.
func measure(fn func() error) (phaseRun, error) {
	cpu0, busy0, start := selfCPU(), machineBusy(), time.Now()
	err := fn()
	return phaseRun{wall: time.Since(start), cpu: selfCPU() - cpu0, busy: machineBusy() - busy0}, err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// doveadm returns the path of Dovecot's doveadm, "" when it is missing.
func (b *bed) doveadm() string {
	for _, p := range []string{"doveadm", "/usr/bin/doveadm", "/usr/sbin/doveadm"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// dsync copies the source account into dst the way a hosting that runs
// Dovecot can without mailmigrate: Dovecot's own dsync reads the old
// server over IMAP (imapc, plain IMAP on loopback) and writes straight
// into the mail store, with the destination instance's configuration.
// Its CPU time is doveadm's: the reading client and the writing server
// in one process.
func (b *bed) dsync(doveadm, src, dst string, tls bool) (phaseRun, error) {
	port, ssl := b.src.IMAPPort, []string{"-o", "imapc_ssl=no"}
	if tls {
		// As it would reach a remote old server. The test bed's
		// certificate names 127.0.0.1, which imapc does not check against
		// an address; verifying it costs nothing worth measuring.
		port, ssl = b.src.IMAPSPort, []string{"-o", "imapc_ssl=imaps", "-o", "imapc_ssl_verify=no"}
	}
	args := append([]string{"-c", b.dst.ConfigPath(),
		"-o", "imapc_host=" + b.src.Host, "-o", fmt.Sprintf("imapc_port=%d", port),
		"-o", "imapc_user=" + src, "-o", "imapc_password=" + password,
		"-o", "imapc_features=rfc822.size fetch-headers"}, ssl...)
	cmd := exec.Command(doveadm, append(args, "sync", "-1", "-R", "-u", dst, "imapc:")...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	r, err := b.time(cmd)
	if err != nil {
		return r, fmt.Errorf("dsync: %v\n%s", err, out.String())
	}
	return r, nil
}

// time runs a command and measures its wall time, CPU time, peak RSS and
// the machine's busy time.
func (b *bed) time(cmd *exec.Cmd) (phaseRun, error) {
	var r phaseRun
	busy0 := machineBusy()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	err := cmd.Wait()
	r.wall = time.Since(start)
	r.busy = machineBusy() - busy0
	r.maxRSS = <-hwm
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, err
}

// manySources makes the source accounts of the many-accounts phase, each
// with the same mail.
func (b *bed) manySources(ctx context.Context) (*testbed.Corpus, []string, error) {
	per := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: 77, Messages: b.cfg.perAccount,
		AttachmentPercent: 10, AttachmentMax: 2816 << 10})
	var srcs []string
	for i := range b.cfg.accounts {
		u := fmt.Sprintf("user%02d@src.test", i)
		if err := b.src.AddUser(u, password, 0); err != nil {
			return nil, nil, err
		}
		if err := b.near(func() error { _, err := load(ctx, b.src, u, per, 2); return err }); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", u, err)
		}
		srcs = append(srcs, u)
	}
	return per, srcs, nil
}

func (b *bed) manyAccounts(ctx context.Context, res *results) error {
	per, srcs, err := b.manySources(ctx)
	if err != nil {
		return err
	}
	total := len(per.Messages) * len(srcs)
	res.manyAccounts, res.manyMessages, res.manyBytes = len(srcs), total, corpusBytes(per)*int64(len(srcs))
	// The yardstick for this phase: the same messages appended to fresh
	// accounts by the plain client with MULTIAPPEND, the accounts one after
	// another with its best connection count.
	start := time.Now()
	for range srcs {
		u, _ := b.newDest()
		if err := b.dst.AddUser(u, password, 0); err != nil {
			return err
		}
		if err := loadMulti(ctx, b.dst, u, per, res.multiConns, multiBatch); err != nil {
			return fmt.Errorf("many accounts ceiling %s: %w\n%s", u, err, b.dst.LogTail(30))
		}
	}
	res.manyCeiling = time.Since(start)
	logf("many accounts, plain client with MULTIAPPEND: %.2f s", res.manyCeiling.Seconds())

	var last phaseRun
	var lastDst []string
	for range b.cfg.runs {
		var lines []string
		var dsts []string
		lines = append(lines, "source_user,source_password,dest_user,dest_password")
		for _, s := range srcs {
			d, _ := b.newDest()
			if err := b.dst.AddUser(d, password, 0); err != nil {
				return err
			}
			dsts = append(dsts, d)
			lines = append(lines, fmt.Sprintf("%s,%s,%s,%s", s, password, d, password))
		}
		list := filepath.Join(b.dir, "accounts.csv")
		if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		_, state := b.newDest()
		args := []string{"--accounts", list, "--parallel", fmt.Sprint(cmp.Or(b.cfg.parallel, len(srcs)))}
		r, err := b.run(state, total, tlsBoth, args...)
		if err != nil {
			return fmt.Errorf("many accounts: %w", err)
		}
		res.add("many accounts", r)
		last, lastDst = r, dsts
	}
	var verr error
	for i, s := range srcs {
		if err := b.verifyReport(ctx, s, lastDst[i], last.report.Accounts[i]); err != nil {
			verr = err
			break
		}
	}
	res.verified("many accounts", verr)
	return nil
}

// serveUntilInterrupted keeps the servers up for manual runs: one fresh
// destination account per run, named in the printed command, and the
// many-accounts phase's sources with forty account lists of fresh
// destinations.
func (b *bed) serveUntilInterrupted(ctx context.Context, src string) error {
	pw := filepath.Join(b.dir, "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	for i := 1; i <= 100; i++ {
		if err := b.dst.AddUser(fmt.Sprintf("run%d@dst.test", i), password, 0); err != nil {
			return err
		}
	}
	fmt.Printf("%s migrate --source imaps://%s --dest imaps://%s --ca-file %s --source-user %s --source-password-file %s --dest-password-file %s --state %s/stateN.db --dest-user runN@dst.test\n",
		b.bin, b.src.IMAPSAddr(), b.dst.IMAPSAddr(), b.caBundle, src, pw, pw, b.dir)
	_, srcs, err := b.manySources(ctx)
	if err != nil {
		return err
	}
	for n := 1; n <= 40; n++ {
		lines := []string{"source_user,source_password,dest_user,dest_password"}
		for _, s := range srcs {
			d, _ := b.newDest()
			if err := b.dst.AddUser(d, password, 0); err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s,%s,%s,%s", s, password, d, password))
		}
		list := filepath.Join(b.dir, fmt.Sprintf("accounts%d.csv", n))
		if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("%s migrate --source imaps://%s --dest imaps://%s --ca-file %s --state %s/manyN.db --accounts %s/accountsN.csv --parallel %d   (N = 1..40)\n",
		b.bin, b.src.IMAPSAddr(), b.dst.IMAPSAddr(), b.caBundle, b.dir, b.dir, len(srcs))
	// The plain copier on demand, for A/B runs against a command above:
	// a line "copier N" on standard input copies into runN@dst.test.
	fmt.Printf("standard input: \"copier N\" runs the plain copier into runN@dst.test\n")
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var n int
			if _, err := fmt.Sscanf(sc.Text(), "copier %d", &n); err != nil {
				continue
			}
			busy0 := machineBusy()
			r, err := measure(func() error {
				return copyMulti(ctx, b.src, src, b.dst, fmt.Sprintf("run%d@dst.test", n), 4, multiBatch)
			})
			fmt.Printf("copier %d: %.2f s, CPU %.2f s, machine %.2f s, error %v\n", n, r.wall.Seconds(), r.cpu.Seconds(),
				(machineBusy() - busy0).Seconds(), err)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

// distant puts the source behind delay proxies: from now on every client
// of the bench reaches it through them. near gives the direct ports back
// for a while (loading mail into it).
func (b *bed) distant(delay time.Duration) error {
	b.srcPorts = [2]int{b.src.IMAPPort, b.src.IMAPSPort}
	for i, port := range []*int{&b.src.IMAPPort, &b.src.IMAPSPort} {
		p, err := startDelayProxy(net.JoinHostPort(b.src.Host, strconv.Itoa(b.srcPorts[i])), delay)
		if err != nil {
			return err
		}
		*port = p.port()
	}
	return nil
}

// near runs f with the source reached directly.
func (b *bed) near(f func() error) error {
	if b.srcPorts == [2]int{} {
		return f()
	}
	far := [2]int{b.src.IMAPPort, b.src.IMAPSPort}
	b.src.IMAPPort, b.src.IMAPSPort = b.srcPorts[0], b.srcPorts[1]
	defer func() { b.src.IMAPPort, b.src.IMAPSPort = far[0], far[1] }()
	return f()
}

func (b *bed) newDest() (user, state string) {
	b.users++
	return fmt.Sprintf("dst%03d@dst.test", b.users), filepath.Join(b.dir, fmt.Sprintf("state%03d.db", b.users))
}

func (b *bed) writeCABundle() error {
	var bundle []byte
	for _, d := range []*testbed.Dovecot{b.src, b.dst} {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return err
		}
		bundle = append(bundle, pem...)
	}
	b.caBundle = filepath.Join(b.dir, "ca.pem")
	return os.WriteFile(b.caBundle, bundle, 0o644)
}

// transport is how mailmigrate reaches the two servers.
type transport int

const (
	tlsBoth   transport = iota // imaps:// on both sides, as by default
	tlsSource                  // imaps:// to the source, plain IMAP to the destination (loopback)
	noTLS                      // plain IMAP on both sides
)

// phaseRun is one run of the mailmigrate binary.
type phaseRun struct {
	wall   time.Duration
	cpu    time.Duration
	maxRSS int64         // bytes
	busy   time.Duration // CPU time of the whole machine during the run
	copied int
	report struct{ Accounts []*engine.Report }
}

func (b *bed) migrate(src, dst, state string, wantCopied int, tr transport, extra ...string) (phaseRun, error) {
	pw := filepath.Join(b.dir, "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		return phaseRun{}, err
	}
	args := append([]string{"--source-user", src, "--source-password-file", pw,
		"--dest-user", dst, "--dest-password-file", pw}, extra...)
	return b.run(state, wantCopied, tr, args...)
}

// run starts mailmigrate migrate and measures it: wall time, CPU time and
// peak RSS of the process.
func (b *bed) run(state string, wantCopied int, tr transport, extra ...string) (phaseRun, error) {
	report := filepath.Join(b.dir, "report.json")
	srcURL, dstURL := "imaps://"+b.src.IMAPSAddr(), "imaps://"+b.dst.IMAPSAddr()
	if tr != tlsBoth {
		dstURL = "imap://" + b.dst.IMAPAddr()
		extra = append(extra, "--allow-plaintext")
	}
	if tr == noTLS {
		srcURL = "imap://" + b.src.IMAPAddr()
	}
	args := append([]string{"migrate", "--source", srcURL, "--dest", dstURL, "--ca-file", b.caBundle,
		"--state", state, "--report", report, "--quiet"}, extra...)
	if b.cfg.workers > 0 {
		args = append(args, "--workers", fmt.Sprint(b.cfg.workers))
	}
	cmd := exec.Command(b.bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	r, err := b.time(cmd)
	if err != nil {
		return r, fmt.Errorf("mailmigrate: %v\n%s", err, out.String())
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r.report); err != nil {
		return r, err
	}
	for _, a := range r.report.Accounts {
		r.copied += a.Totals.Copied
	}
	if r.copied != wantCopied {
		return r, fmt.Errorf("copied %d messages, expected %d\n%s", r.copied, wantCopied, out.String())
	}
	return r, nil
}

// watchHWM follows a process's peak resident memory (VmHWM) until it
// exits. rusage's ru_maxrss cannot be used: Go starts children with vfork,
// and Linux carries the parent's peak over into the child's.
func watchHWM(pid int) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			data, err := os.ReadFile(path)
			kb, found := int64(0), false
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
					found = true
				}
			}
			if err != nil || !found {
				out <- peak
				return
			}
			peak = max(peak, kb*1024)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return out
}

func (b *bed) verify(ctx context.Context, src, dst string, rep struct{ Accounts []*engine.Report }) error {
	return b.verifyReport(ctx, src, dst, rep.Accounts[0])
}

func (b *bed) verifyReport(ctx context.Context, src, dst string, r *engine.Report) error {
	s, err := b.src.Login(src, password)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := b.dst.Login(dst, password)
	if err != nil {
		return err
	}
	defer d.Close()
	m := map[string]string{}
	for _, f := range r.Folders {
		m[f.Source] = f.Dest
	}
	return testbed.Verify(ctx, s, d, m)
}

// login opens an implicit-TLS session, as mailmigrate does, so that the
// ceiling pays the same encryption cost.
func login(d *testbed.Dovecot, user string) (*imapclient.Client, error) {
	tc, err := d.TLSConfig()
	if err != nil {
		return nil, err
	}
	cl, err := imapclient.DialTLS(d.IMAPSAddr(), &imapclient.Options{TLSConfig: tc})
	if err != nil {
		return nil, err
	}
	if err := cl.Login(user, password).Wait(); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// load appends a corpus to an account with conns parallel connections,
// every message with its flags and date, and returns the time the APPENDs
// took (folder creation excluded).
func load(ctx context.Context, d *testbed.Dovecot, user string, c *testbed.Corpus, conns int) (time.Duration, error) {
	cl, err := d.Login(user, password)
	if err != nil {
		return 0, err
	}
	if err := (&testbed.Corpus{Folders: c.Folders}).Load(ctx, cl); err != nil {
		cl.Close()
		return 0, err
	}
	names, err := testbed.ServerFolderNames(cl, c.Folders)
	cl.Close()
	if err != nil {
		return 0, err
	}
	clients := make([]*imapclient.Client, conns)
	for i := range clients {
		if clients[i], err = login(d, user); err != nil {
			return 0, err
		}
		defer clients[i].Close()
	}
	next := make(chan testbed.Message)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for _, cl := range clients {
		wg.Go(func() {
			for m := range next {
				cmd := cl.Append(names[m.Folder], int64(len(m.Body)), &imap.AppendOptions{Flags: m.Flags, Time: m.InternalDate})
				if _, err := cmd.Write(m.Body); err != nil {
					errs <- err
					return
				}
				if err := cmd.Close(); err != nil {
					errs <- err
					return
				}
				if _, err := cmd.Wait(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, m := range c.Messages {
		next <- m
	}
	close(next)
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

// loadMulti appends a corpus as the plain client with MULTIAPPEND: batches
// of up to batch messages of one folder per command, the folders taken in
// turn, over conns connections. It writes with imapconn (the only
// MULTIAPPEND client at hand), over TLS as mailmigrate does, from memory.
func loadMulti(ctx context.Context, d *testbed.Dovecot, user string, c *testbed.Corpus, conns, batch int) error {
	cl, err := d.Login(user, password)
	if err != nil {
		return err
	}
	if err := (&testbed.Corpus{Folders: c.Folders}).Load(ctx, cl); err != nil {
		cl.Close()
		return err
	}
	names, err := testbed.ServerFolderNames(cl, c.Folders)
	cl.Close()
	if err != nil {
		return err
	}
	var folders [][]testbed.Message
	index := map[string]int{}
	for _, m := range c.Messages {
		i, ok := index[m.Folder]
		if !ok {
			i = len(folders)
			index[m.Folder] = i
			folders = append(folders, nil)
		}
		folders[i] = append(folders[i], m)
	}
	var batches [][]testbed.Message
	for len(folders) > 0 {
		next := folders[:0]
		for _, f := range folders {
			k := min(batch, len(f))
			batches = append(batches, f[:k])
			if len(f) > k {
				next = append(next, f[k:])
			}
		}
		folders = next
	}
	return appendBatches(ctx, d, user, conns, func(work chan<- folderBatch) error {
		for _, b := range batches {
			msgs := make([]imapconn.AppendMessage, len(b))
			for i, m := range b {
				msgs[i] = imapconn.AppendMessage{Flags: m.Flags, Date: m.InternalDate,
					Size: int64(len(m.Body)), Body: bytes.NewReader(m.Body)}
			}
			work <- folderBatch{names[b[0].Folder], msgs}
		}
		return nil
	})
}

// folderBatch is one MULTIAPPEND: messages of one folder.
type folderBatch struct {
	folder string
	msgs   []imapconn.AppendMessage
}

// appendBatches appends what produce sends with MULTIAPPEND on conns TLS
// connections to user's account at d, while produce runs; the first
// error of either side is returned.
func appendBatches(ctx context.Context, d *testbed.Dovecot, user string, conns int, produce func(chan<- folderBatch) error) error {
	pool, err := imapconn.LoadCAFile(d.CAFile)
	if err != nil {
		return err
	}
	ep := imapconn.Endpoint{Host: d.Host, Port: d.IMAPSPort, Security: imapconn.TLS, RootCAs: pool}
	work := make(chan folderBatch, 1)
	errs := make(chan error, conns+1)
	var wg sync.WaitGroup
	for range conns {
		conn, err := imapconn.Dial(ctx, ep, imapconn.Options{})
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.Login(ctx, user, password); err != nil {
			return err
		}
		wg.Go(func() {
			for b := range work {
				if _, err := conn.Append(ctx, b.folder, b.msgs); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		})
	}
	err = produce(work)
	close(work)
	if err != nil {
		errs <- err
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// copyMulti is the plainest copy over TLS: one connection reads every
// folder (UID FETCH 1:* of flags, date and body) while conns connections
// append what was read in MULTIAPPEND batches of up to batch messages or
// 4 MiB, into folders of the same names. No ledger, no identities, no
// re-matching: what a copy costs before anything that makes it safe to
// run again.
func copyMulti(ctx context.Context, src *testbed.Dovecot, srcUser string, dst *testbed.Dovecot, dstUser string, conns, batch int) error {
	in, err := login(src, srcUser)
	if err != nil {
		return err
	}
	defer in.Close()
	list, err := in.List("", "*", nil).Collect()
	if err != nil {
		return err
	}
	out, err := login(dst, dstUser)
	if err != nil {
		return err
	}
	for _, mb := range list {
		if !strings.EqualFold(mb.Mailbox, "INBOX") {
			if err := out.Create(mb.Mailbox, nil).Wait(); err != nil {
				out.Close()
				return fmt.Errorf("create %q: %w", mb.Mailbox, err)
			}
		}
	}
	out.Close()
	return appendBatches(ctx, dst, dstUser, conns, func(work chan<- folderBatch) error {
		for _, mb := range list {
			if slices.Contains(mb.Attrs, imap.MailboxAttrNoSelect) {
				continue
			}
			sel, err := in.Select(mb.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				return err
			}
			if sel.NumMessages == 0 {
				continue
			}
			cmd := in.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true,
				BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			cur := folderBatch{folder: mb.Mailbox}
			size := 0
			for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
				var am imapconn.AppendMessage
				for item := msg.Next(); item != nil; item = msg.Next() {
					switch it := item.(type) {
					case imapclient.FetchItemDataFlags:
						// \Recent is the server's to set.
						am.Flags = slices.DeleteFunc(it.Flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), `\Recent`) })
					case imapclient.FetchItemDataInternalDate:
						am.Date = it.Time
					case imapclient.FetchItemDataBodySection:
						body, err := io.ReadAll(it.Literal)
						if err != nil {
							return err
						}
						am.Size, am.Body = int64(len(body)), bytes.NewReader(body)
						size += len(body)
					}
				}
				cur.msgs = append(cur.msgs, am)
				if len(cur.msgs) == batch || size >= 4<<20 {
					work <- cur
					cur, size = folderBatch{folder: mb.Mailbox}, 0
				}
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			if len(cur.msgs) > 0 {
				work <- cur
			}
		}
		return nil
	})
}

// fetchAll reads every body of every folder with one connection.
func fetchAll(ctx context.Context, d *testbed.Dovecot, user string) (time.Duration, error) {
	cl, err := login(d, user)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	list, err := cl.List("", "*", nil).Collect()
	if err != nil {
		return 0, err
	}
	for _, mb := range list {
		if slices.Contains(mb.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		sel, err := cl.Select(mb.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return 0, err
		}
		if sel.NumMessages == 0 {
			continue
		}
		cmd := cl.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if body, ok := item.(imapclient.FetchItemDataBodySection); ok && body.Literal != nil {
					io.Copy(io.Discard, body.Literal)
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// machineBusy reads the busy CPU time of the whole machine (all processes:
// both servers and mailmigrate) from /proc/stat.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var total, idle int64
	for i, v := range f[1:] {
		var n int64
		fmt.Sscan(v, &n)
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(total-idle) * time.Second / 100 // USER_HZ
}

func corpusBytes(c *testbed.Corpus) int64 {
	var n int64
	for _, m := range c.Messages {
		n += int64(len(m.Body))
	}
	return n
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// results collects the runs of every phase.
type results struct {
	messages     int
	bytes        int64
	appendConns  int // the plain client's best connection counts
	multiConns   int
	calibration  []string
	fetchCeiling time.Duration
	fetchBusy    time.Duration
	manyAccounts int
	manyMessages int
	manyBytes    int64
	manyCeiling  time.Duration
	order        []string
	runs         map[string][]phaseRun
	verify       map[string]error
}

func (r *results) add(phase string, run phaseRun) {
	if r.runs == nil {
		r.runs, r.verify = map[string][]phaseRun{}, map[string]error{}
	}
	if _, ok := r.runs[phase]; !ok {
		r.order = append(r.order, phase)
	}
	r.runs[phase] = append(r.runs[phase], run)
	logf("%s: %.2f s, CPU %.2f s (machine %.2f s), peak RSS %.1f MB, copied %d", phase, run.wall.Seconds(),
		run.cpu.Seconds(), run.busy.Seconds(), mb(run.maxRSS), run.copied)
}

func (r *results) verified(phase string, err error) {
	r.verify[phase] = err
	if err != nil {
		logf("%s: VERIFY FAILED: %v", phase, err)
	}
}

// median is a phase's run with the median wall time.
func (r *results) median(phase string) (phaseRun, bool) {
	runs := slices.Clone(r.runs[phase])
	if len(runs) == 0 {
		return phaseRun{}, false
	}
	slices.SortFunc(runs, func(a, b phaseRun) int { return int(a.wall - b.wall) })
	return runs[len(runs)/2], true
}

func (r *results) print(w io.Writer, cfg config) {
	where := "disk (" + os.TempDir() + ")"
	if cfg.tmpfs {
		where = "tmpfs (/dev/shm)"
	}
	if cfg.latency > 0 {
		where += fmt.Sprintf(", the source %v away each way", cfg.latency)
	}
	fmt.Fprintf(w, "\n%s, %s, %d CPUs, servers' mail on %s, %d interleaved rounds per phase (median)\n\n",
		time.Now().Format("2006-01-02"), runtime.Version(), runtime.NumCPU(), where, cfg.runs)
	fmt.Fprintf(w, "Corpus: %d messages, %.1f MB. Plain client calibration: %s; rounds use %d and %d connection(s). FETCH of everything %.2f s (machine CPU %.2f s).\n\n",
		r.messages, mb(r.bytes), strings.Join(r.calibration, "; "), r.appendConns, r.multiConns,
		r.fetchCeiling.Seconds(), r.fetchBusy.Seconds())
	// The best plain client and dsync, for the ratios of the initial copy.
	best := time.Duration(0)
	for _, p := range []string{phaseAppend, phaseMulti} {
		if m, ok := r.median(p); ok && (best == 0 || m.wall < best) {
			best = m.wall
		}
	}
	dsync, copier := time.Duration(0), time.Duration(0)
	if m, ok := r.median("dsync initial"); ok {
		dsync = m.wall
	}
	if m, ok := r.median(phaseCopier); ok {
		copier = m.wall
	}
	fmt.Fprintln(w, "| phase | wall s | messages | msgs/s | MB/s | CPU s | machine CPU s | peak RSS MB | × best plain client | × plain copier | × dsync | verify |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, p := range r.order {
		m, _ := r.median(p)
		msgs, bytes := m.copied, int64(0)
		ratio, vsCopier, vsDsync := "–", "–", "–"
		switch p {
		case "initial", "dsync initial", phaseAppend, phaseMulti, phaseCopier, phaseDsyncTLS, phaseTLSSource, phasePlain:
			bytes = r.bytes
			ratio = fmt.Sprintf("%.2f", m.wall.Seconds()/best.Seconds())
			if copier > 0 {
				vsCopier = fmt.Sprintf("%.2f", m.wall.Seconds()/copier.Seconds())
			}
			if dsync > 0 {
				vsDsync = fmt.Sprintf("%.2f", m.wall.Seconds()/dsync.Seconds())
			}
		case "many accounts":
			bytes = r.manyBytes
			ratio = fmt.Sprintf("%.2f", m.wall.Seconds()/r.manyCeiling.Seconds())
		}
		rate, mbs := "–", "–"
		if msgs > 0 {
			rate = fmt.Sprintf("%.0f", float64(msgs)/m.wall.Seconds())
		}
		if bytes > 0 {
			mbs = fmt.Sprintf("%.1f", mb(bytes)/m.wall.Seconds())
		}
		v := "–"
		if err, ok := r.verify[p]; ok {
			v = "ok"
			if err != nil {
				v = "FAILED"
			}
		}
		rss := "–"
		if m.maxRSS > 0 {
			rss = fmt.Sprintf("%.1f", mb(m.maxRSS))
		}
		fmt.Fprintf(w, "| %s | %.2f | %d | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s |\n", p, m.wall.Seconds(), msgs, rate, mbs,
			m.cpu.Seconds(), m.busy.Seconds(), rss, ratio, vsCopier, vsDsync, v)
	}
	fmt.Fprintf(w, "\nMany accounts: %d accounts, %d messages, %.1f MB; the plain client with MULTIAPPEND, account after account: %.2f s.\n",
		r.manyAccounts, r.manyMessages, mb(r.manyBytes), r.manyCeiling.Seconds())
	// The plain clients append from memory: a copy also has the source
	// serve every body. When both servers share this machine's cores, no
	// copy over TLS can take less than the two servers' work spread over
	// all cores, whatever the tool does.
	multi, okMulti := r.median(phaseMulti)
	initial, okInitial := r.median("initial")
	if okMulti && okInitial && r.fetchBusy > 0 {
		bound := (multi.busy + r.fetchBusy) / time.Duration(runtime.NumCPU())
		fmt.Fprintf(w, "\nMachine bound of a copy over TLS: (MULTIAPPEND's machine CPU %.2f s + FETCH's %.2f s) / %d cores = %.2f s; the initial copy took %.2f s (%.2f×) at %.2f s of machine CPU.\n",
			multi.busy.Seconds(), r.fetchBusy.Seconds(), runtime.NumCPU(), bound.Seconds(), initial.wall.Seconds(),
			initial.wall.Seconds()/bound.Seconds(), initial.busy.Seconds())
	}
}
