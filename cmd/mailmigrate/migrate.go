package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"text/tabwriter"
	"time"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
)

const bulkHeader = bulk.CSVHeader

func runMigrate(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var ef endpointFlags
	ef.register(fs)
	state := fs.String("state", "", "ledger file that makes re-runs copy only what is new (default "+defaultStatePath()+")")
	reportPath := fs.String("report", "", "also write the report as JSON to this file")
	workers := fs.Int("workers", 0, "parallel destination connections per account (default 4 for one or two accounts at once, fewer when more run at once: about 8 in all)")
	maxFolders := fs.Int("max-folders", engine.DefaultMaxFolders, "refuse a source mailbox with more folders than this")
	parallel := fs.Int("parallel", 2, "accounts migrated at the same time with --accounts")
	gmailOnce := fs.Bool("gmail-once", false, "from Gmail, copy each message once: into INBOX, Sent, Drafts or its first label's folder, in that order, with its other labels as keywords (default: once into the folder of every label)")
	quiet := fs.Bool("quiet", false, "no progress display or log lines, only the final report")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at the end (for performance work)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate migrate --source URL --source-user LOGIN --source-password-file F \\\n"+
			"                           --dest URL --dest-user LOGIN --dest-password-file F [flags]\n"+
			"       mailmigrate migrate --source URL --dest URL --accounts FILE [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	accounts, code, ok := parseAccounts(ctx, fs, &ef, args)
	if !ok {
		return code
	}
	if *workers < 0 || *workers > 16 {
		return fail(usagef("--workers must be between 1 and 16"))
	}
	if *parallel < 1 {
		return fail(usagef("--parallel must be at least 1"))
	}
	path := *state
	if path == "" {
		path = defaultStatePath()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fail(fmt.Errorf("create state directory: %w", err))
		}
	}
	led, err := store.Open(path)
	if err != nil {
		return fail(err)
	}
	defer led.Close()
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return fail(err)
	}
	defer stopProfiles()

	// The accounts copied at the same time share one memory for bodies
	// (16 MiB for one, 20 MiB for more, however many): memory does not
	// grow with --parallel. A soft limit makes the garbage collector
	// return what else is used promptly instead of letting the heap double
	// first; each account's connections hold about half a megabyte of
	// buffers.
	par := min(*parallel, len(accounts))
	if *workers == 0 {
		*workers = engine.AppendWorkersFor(par)
	}
	budget := int64(16 << 20)
	if par > 1 {
		budget = 20 << 20
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(16<<20 + budget + int64(par)<<19)
	}
	var progress engine.Progress
	progress.AddAccounts(len(accounts))
	disp := newDisplay(os.Stderr, &progress, *quiet)
	disp.start()
	opt := engine.Options{Conn: imapconn.Options{Timeout: ef.timeout}, AppendWorkers: *workers,
		MaxFolders: *maxFolders, GmailOnce: *gmailOnce, Progress: &progress, Logf: disp.logf, Memory: engine.NewMemory(budget)}

	reports := make([]*engine.Report, len(accounts))
	g := newGate(*parallel)
	var wg sync.WaitGroup
	for i, a := range accounts {
		wg.Go(func() {
			// Interrupted while waiting, the account still runs: it
			// stops at once and its report says so.
			if g.acquire(ctx) == nil {
				defer g.release()
			}
			aopt := opt
			aopt.Logf = func(format string, args ...any) {
				disp.logf("%s: "+format, append([]any{a.SourceUser}, args...)...)
			}
			aopt.Throttled = func(until time.Time) {
				g.slowDown(until)
				// A pause of seconds passes unnoticed; a longer one is said.
				if time.Until(until) >= 5*time.Second {
					disp.logf("%s: %s", a.SourceUser, catalog.T(out, "throttled", out.Clock(until)))
				}
			}
			var err error
			reports[i], err = engine.Run(ctx, a, led, aopt)
			var throttled *engine.ThrottledError
			if errors.As(err, &throttled) {
				disp.logf("%s: %s", a.SourceUser, catalog.T(out, "throttled.stopped", out.Clock(throttled.Until)))
			}
		})
	}
	wg.Wait()
	disp.stop()
	printReports(os.Stdout, reports)
	if *reportPath != "" {
		if err := writeJSON(*reportPath, reports); err != nil {
			return fail(err)
		}
	}
	return exitCode(reports)
}

// accountList is the single account of the flags or the list of --accounts.
func (f *endpointFlags) accountList() ([]engine.Account, error) {
	if f.accounts == "" {
		a, err := f.account()
		if err != nil {
			return nil, err
		}
		return []engine.Account{a}, nil
	}
	if f.sourceUser != "" || f.destUser != "" || f.sourcePass != "" || f.destPass != "" ||
		f.sourcePassFile != "" || f.destPassFile != "" {
		return nil, usagef("--accounts takes the logins and passwords from the file; drop --source-user/--dest-user and the password flags")
	}
	src, dst, err := f.endpoints()
	if err != nil {
		return nil, err
	}
	file, err := os.Open(f.accounts)
	if err != nil {
		return nil, usagef("--accounts: %v", errors.Unwrap(err))
	}
	defer file.Close()
	entries, err := bulk.Parse(file)
	if err != nil {
		var errs bulk.Errors
		if errors.As(err, &errs) {
			return nil, usagef("%s has %d bad line(s); nothing was copied:\n%v", f.accounts, len(errs), err)
		}
		return nil, usagef("%s: %v", f.accounts, err)
	}
	out := make([]engine.Account, len(entries))
	for i, e := range entries {
		out[i] = engine.Account{Source: src, SourceUser: e.SourceUser, SourcePassword: e.SourcePassword,
			Dest: dst, DestUser: e.DestUser, DestPassword: e.DestPassword}
	}
	return out, nil
}

func defaultStatePath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "mailmigrate-state.db"
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "mailmigrate", "state.db")
}

func fail(err error) int {
	// An error that says its words in both languages says them in the
	// environment's.
	var m interface{ Message() i18n.Message }
	if errors.As(err, &m) {
		fmt.Fprintf(os.Stderr, "mailmigrate: %s\n", m.Message().In(out))
	} else {
		fmt.Fprintf(os.Stderr, "mailmigrate: %v\n", err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// accountExit is the exit code one account's outcome calls for.
func accountExit(r *engine.Report) int {
	switch r.Status {
	case engine.StatusDone:
		return exitOK
	case engine.StatusWarnings:
		return exitPartial
	case engine.StatusOverQuota:
		return exitOverQuota
	}
	if r.Failure == nil {
		return exitFailure
	}
	switch r.Failure.Kind {
	case imapconn.ErrAuth.Code(), engine.KindSignInAgain:
		return exitAuth
	case imapconn.ErrResolve.Code(), imapconn.ErrConnect.Code(), imapconn.ErrTLS.Code(),
		imapconn.ErrTimeout.Code(), imapconn.ErrConnLost.Code(), engine.KindSignIn:
		return exitConnection
	}
	return exitFailure
}

// exitCode picks the most severe outcome of all accounts: authentication,
// connection, other failure, over quota, then partial.
func exitCode(reports []*engine.Report) int {
	rank := map[int]int{exitAuth: 5, exitConnection: 4, exitFailure: 3, exitOverQuota: 2, exitPartial: 1, exitOK: 0}
	code := exitOK
	for _, r := range reports {
		if c := accountExit(r); rank[c] > rank[code] {
			code = c
		}
	}
	return code
}

func writeJSON(path string, reports []*engine.Report) error {
	data, err := json.MarshalIndent(struct {
		Accounts []*engine.Report `json:"accounts"`
	}{reports}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// printReports writes the human report: per account a verdict, per folder
// the counts, then what was skipped or failed and what to do.
func printReports(w io.Writer, reports []*engine.Report) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		t := r.Totals
		fmt.Fprintf(w, "%s (%s) -> %s (%s): %s\n", r.SourceUser, r.Source, r.DestUser, r.Dest, statusText(r.Status))
		fmt.Fprintln(w, catalog.T(out, "summary", catalog.N(out, "messages", t.SourceMessages), catalog.N(out, "folders", len(r.Folders)),
			t.Copied, t.AlreadyPresent, t.Skipped, t.Failed, t.FlagsUpdated, out.Bytes(t.BytesCopied), r.Finished.Sub(r.Started).Round(1e7)))
		if len(r.Folders) > 0 {
			tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, catalog.T(out, "table.report"))
			for _, f := range r.Folders {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\n", f.Source, f.Dest, f.SourceMessages,
					f.Copied, f.AlreadyPresent, len(f.Skipped), len(f.Failed))
			}
			tw.Flush()
		}
		for _, f := range r.Folders {
			for _, note := range f.Remarks(out) {
				fmt.Fprintln(w, catalog.T(out, "note", f.Source, f.Dest, note))
			}
			for _, m := range f.Skipped {
				fmt.Fprintln(w, catalog.T(out, "skipped", f.Source, m.Subject, out.Date(m.Date), out.Bytes(m.Size), m.Reason.In(out)))
			}
			for _, m := range f.Failed {
				fmt.Fprintln(w, catalog.T(out, "failed", f.Source, m.UID, m.Subject, out.Bytes(m.Size), m.Reason.In(out)))
			}
		}
		if warn := r.Space.Warning(); !warn.IsZero() && r.Failure == nil {
			fmt.Fprintln(w, catalog.T(out, "warning", warn.In(out)))
		}
		if f := r.Failure.Localize(out); f != nil {
			fmt.Fprintf(w, "  %s\n%s\n", f.Message, catalog.T(out, "details", f.Detail))
		}
	}
}

func statusText(s engine.Status) string {
	switch s {
	case engine.StatusDone:
		return catalog.T(out, "status.done")
	case engine.StatusWarnings:
		return catalog.T(out, "status.warnings")
	case engine.StatusOverQuota:
		return catalog.T(out, "status.over_quota")
	}
	return catalog.T(out, "status.failed")
}
