package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailmigrate/internal/config"
	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/metrics"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
	"mailmigrate/internal/web"
)

// loadConfig reads --config or the defaults.
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// openStore opens the configured database: PostgreSQL when database is
// set, else the SQLite file in the data directory (which also holds the
// secret key either way).
func openStore(ctx context.Context, cfg config.Config) (*store.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if cfg.Database != "" {
		st, err := store.OpenPostgres(ctx, cfg.Database)
		if err == nil && cfg.DatabaseConnections > 0 {
			st.DB().SetMaxOpenConns(cfg.DatabaseConnections)
			st.DB().SetMaxIdleConns(min(8, cfg.DatabaseConnections))
		}
		return st, err
	}
	return store.Open(filepath.Join(cfg.DataDir, "mailmigrate.db"))
}

// buildHosting turns the hosting part of the configuration into the
// destination endpoint and driver.
func buildHosting(cfg config.Hosting) (jobs.Hosting, error) {
	var h jobs.Hosting
	if cfg.IMAP == "" {
		return h, errors.New("hosting.imap is not set: configure the hosting's IMAP server (see mailmigrate.conf.example)")
	}
	ep, err := imapconn.ParseEndpoint(cfg.IMAP, cfg.AllowPlaintext)
	if err != nil {
		return h, fmt.Errorf("hosting.imap: %w", err)
	}
	if ep.Security == imapconn.Plain && !loopback(ep.Host) {
		return h, fmt.Errorf("hosting.allow_plaintext: %s is not this machine (127.0.0.1, ::1 or localhost); "+
			"the hosting's passwords would cross the network unencrypted. Use imaps:// or a loopback address", ep.Host)
	}
	ep.InsecureSkipVerify = cfg.InsecureSkipVerify
	if cfg.CAFile != "" {
		if ep.RootCAs, err = imapconn.LoadCAFile(cfg.CAFile); err != nil {
			return h, fmt.Errorf("hosting.ca_file: %w", err)
		}
	}
	h.IMAP = ep
	switch cfg.Driver {
	case "command":
		h.Driver, err = hosting.NewCommand(hosting.CommandConfig{List: cfg.CommandList, Create: cfg.CommandCreate, Quota: cfg.CommandQuota,
			Password: cfg.CommandPassword, SetQuota: cfg.CommandSetQuota, Aliases: cfg.CommandAliases})
	default:
		h.Driver, err = hosting.NewPasswdFile(hosting.PasswdFileConfig{Path: cfg.PasswdFile, DefaultQuotaBytes: cfg.DefaultQuota,
			UID: cfg.UID, GID: cfg.GID, Home: cfg.Home, Scheme: cfg.PasswdScheme,
			Aliases: hosting.AliasFileConfig{Path: cfg.AliasFile, Reload: cfg.AliasReloadCommand}})
	}
	if err != nil {
		return h, fmt.Errorf("hosting.driver: %w", err)
	}
	if cfg.MasterUser != "" {
		pw, err := password("master", cfg.MasterPasswordFile, "", "MAILMIGRATE_MASTER_PASSWORD")
		if err != nil {
			return h, fmt.Errorf("hosting.master_password_file: %w", err)
		}
		h.MasterUser, h.MasterPassword = cfg.MasterUser, pw
	}
	return h, nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveBodyMemory is what the copies of one serve process share for
// message bodies, however many run at once.
const serveBodyMemory = 24 << 20

// The roles of a serve process.
const (
	roleAll    = "all"    // the panel, the API and the copies
	roleWeb    = "web"    // the panel and the API
	roleWorker = "worker" // the copies
)

func runServe(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (see mailmigrate.conf.example); without it: data in "+config.Default().DataDir+", listening on "+config.Default().Listen)
	listen := fs.String("listen", "", "address to listen on instead of the configuration's listen; a worker listens only when given one, and serves there only /healthz, /readyz and /metrics")
	role := fs.String("role", roleAll, "what this process does: all (panel, API and copies), web (panel and API) or worker (copies); web and worker need a PostgreSQL database")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until the server stops (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the server stops (for performance work)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate serve [--config FILE] [--listen ADDR] [--role all|web|worker]\n\n"+
			"Runs the migration service: the panel, the JSON API under /api/v1 and the copies. With a PostgreSQL\n"+
			"database any number of servers, on any number of machines, share the work: web servers answer the\n"+
			"customers, workers copy.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		return fail(usagef("serve takes no arguments (got %q): give options as --name value", fs.Arg(0)))
	}
	if *role != roleAll && *role != roleWeb && *role != roleWorker {
		return fail(usagef("--role %q: use all, web or worker", *role))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(usageError{err.Error()})
	}
	if *role != roleAll && cfg.Database == "" {
		return fail(usagef("--role %s: web and worker servers share the work through a PostgreSQL database; set database = postgres://… "+
			"in the configuration (with the SQLite default, run one server with --role all)", *role))
	}
	if *listen != "" {
		cfg.Listen = *listen
	} else if *role == roleWorker {
		cfg.Listen = ""
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// As in migrate: the copies share serveBodyMemory for bodies; a
		// soft limit makes the collector return what else is used promptly
		// instead of letting the heap double first (bench -service: a
		// worker's peak with 4 tasks was 80-95 MB without a limit, 49-54 MB
		// with GOMEMLIMIT=40MiB).
		debug.SetMemoryLimit(16<<20 + serveBodyMemory + int64(max(cfg.Jobs.Workers, 1))<<20)
	}
	slogger := newLogger(cfg.LogFormat)
	logger := slog.NewLogLogger(slogger.Handler(), slog.LevelInfo)
	h, err := buildHosting(cfg.Hosting)
	if err != nil {
		return fail(usageError{err.Error()})
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return fail(err)
	}
	// After the copies have stopped (deferred calls run last in, first out).
	defer stopProfiles()
	// A hosting set up wrong is said now, naming what to fix, not in a
	// customer's first migration.
	if err := checkHosting(ctx, h, someMailbox(ctx, st, h.Driver)); err != nil {
		return fail(usageError{"the hosting is not ready: " + err.Error()})
	}
	if cfg.Hosting.Driver != "command" && st.Dialect() == store.Postgres {
		// Dovecot's passwd-file is on one machine: servers elsewhere
		// would write mailboxes into a file no Dovecot reads.
		stop, err := holdPasswdFile(ctx, st, cfg.Hosting.PasswdFile, machineName())
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	if st.Dialect() == store.SQLite {
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return fail(err)
		}
		defer unlock()
	}
	key, err := openKey(ctx, st, filepath.Join(cfg.DataDir, "secret.key"))
	if err != nil {
		return fail(err)
	}
	box, err := secret.New(key)
	if err != nil {
		return fail(err)
	}
	handler, runner, err := buildService(ctx, st, box, h, cfg, slogger, *role)
	if err != nil {
		return fail(err)
	}
	var ln net.Listener
	if cfg.Listen != "" {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fail(fmt.Errorf("listen on %s: %w", cfg.Listen, err))
		}
	}
	// A client that sends its request slowly holds a connection only so
	// long; the live event streams set their own write deadlines.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, ErrorLog: logger}
	if err := runner.Start(ctx); err != nil {
		return fail(err)
	}
	switch {
	case *role == roleWorker && ln == nil:
		logger.Printf("mailmigrate worker copying, database %s %s", st.Dialect(), st.Location())
	case *role == roleWorker:
		logger.Printf("mailmigrate worker copying, /healthz, /readyz and /metrics on http://%s/, database %s %s",
			ln.Addr(), st.Dialect(), st.Location())
	default:
		logger.Printf("mailmigrate serving on http://%s/ (API under /api/v1) as %s, database %s %s, data directory %s",
			ln.Addr(), *role, st.Dialect(), st.Location(), cfg.DataDir)
	}
	if ts, err := st.Tenants(ctx); err == nil && len(ts) == 0 {
		cp := ""
		if *cfgPath != "" {
			cp = " --config " + *cfgPath
		}
		logger.Printf("no operator yet: create the first one with: mailmigrate admin init%s", cp)
	}
	errc := make(chan error, 1)
	if ln != nil {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		logger.Printf("server: %v", err)
	}
	logger.Printf("stopping: running copies stop at their next step and continue at the next start")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := runner.Stop(sctx); err != nil {
		logger.Printf("stop jobs: %v", err)
	}
	return exitOK
}

// buildService wires the job queue, the API and the panel on a store.
func buildService(ctx context.Context, st *store.DB, box *secret.Box, h jobs.Hosting, cfg config.Config,
	log *slog.Logger, role string) (http.Handler, *jobs.Runner, error) {
	logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	// The tasks running at the same time share one memory for bodies.
	eng := engine.Options{Conn: imapconn.Options{Timeout: 60 * time.Second}, MaxMessageSize: cfg.Hosting.MaxMessageSize,
		MaxFolders: cfg.Sources.MaxFolders, Memory: engine.NewMemory(serveBodyMemory)}
	// A source name that resolves to the hosting's own IMAP server means
	// the customer's DNS was already moved: the diagnosis says so.
	expect := expectFrom(cfg.Hosting)
	if len(expect.IMAP) == 0 {
		expect.IMAP = []string{h.IMAP.Host}
	}
	// Its IMAP answers on the standard ports and the configured one; a
	// server at another port of its address (the demo's old provider) is
	// not the hosting.
	expect.IMAPPorts = []int{h.IMAP.Port, 993, 143}
	diag := diagnose.LoginAttempt{Resolver: diagnose.NewResolver(cfg.DNSServer), Hosting: expect,
		HostingNames: append([]string{h.IMAP.Host}, cfg.Hosting.IMAPNames...)}
	// The SQLite file is this process's alone: serve holds the data
	// directory's lock (lockDataDir), the demo's file is a temporary one.
	// Servers sharing a PostgreSQL database may run each other's jobs.
	mailer, err := buildMailer(cfg.Notify)
	if err != nil {
		return nil, nil, err
	}
	// The panel's checks and the copies of every server count failed
	// logins together, in the database.
	failed := diagnose.NewFailedLogins(st.Slots())
	mets := metrics.New(st.DB())
	providers, err := oauthProviders(cfg)
	if err != nil {
		return nil, nil, err
	}
	runner, err := jobs.Open(ctx, st, jobs.Config{Store: st, Box: box, Hosting: h, Engine: eng, FailedLogins: failed, Metrics: mets,
		SourceHostLimit: cfg.Sources.HostLimit, Workers: cfg.Jobs.Workers, Slice: cfg.Jobs.Slice,
		RescueAfter: cfg.Jobs.RescueAfter, LeaseTTL: cfg.Jobs.Lease, QueueOnly: role == roleWeb,
		SecretRetention: cfg.SecretRetention, AllowPrivate: cfg.Sources.AllowPrivate, Diagnose: diag,
		SingleProcess: st.Dialect() == store.SQLite, Log: log, Notify: mailer, ResyncStopDays: cfg.Jobs.ResyncStopDays,
		OAuth: providers})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /readyz", readiness(st.DB(), h))
	mux.Handle("GET /metrics", localOnly(mets.Handler()))
	if role == roleWorker {
		return mux, runner, nil
	}
	var handoff *web.HandoffKey
	if cfg.Web.HandoffKeyFile != "" {
		data, err := os.ReadFile(cfg.Web.HandoffKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("web.handoff_key_file: %w", err)
		}
		if handoff, err = web.ParseHandoffKey(data); err != nil {
			return nil, nil, fmt.Errorf("web.handoff_key_file %s: %w", cfg.Web.HandoffKeyFile, err)
		}
	}
	api := web.NewAPI(web.Config{Store: st, Jobs: runner, Box: box, Hosting: h, Engine: eng,
		AllowPlaintext: cfg.Sources.AllowPlaintext, AllowPrivate: cfg.Sources.AllowPrivate, AllowedPorts: cfg.Sources.AllowedPorts,
		Diagnose: diag, Logf: logf,
		MaxQuota: cfg.Hosting.MaxQuota, ResyncStopDays: cfg.Jobs.ResyncStopDays,
		PublicURL: cfg.Web.PublicURL, TrustedProxies: cfg.Web.TrustedProxies, FailedLogins: failed,
		CheckLines: cfg.Web.CheckLines, ChecksPerHour: cfg.Web.ChecksPerHour, SourceHostLimit: cfg.Sources.HostLimit, HandoffKey: handoff, Slots: st.Slots(),
		Backoffs: st.Backoffs(), OAuth: providers, SignInReturnOrigins: cfg.Web.SignInReturnOrigins})
	mux.Handle("/api/", api.Handler())
	mux.Handle("/", web.NewPanel(api).Handler())
	return mux, runner, nil
}

// newLogger writes the service's log to standard error: as text (the
// default) or, with log_format = json, one JSON object per line.
func newLogger(format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// checkHosting makes sure the hosting works before the service starts:
// its driver (files, users, programs) and its IMAP server, logged in to
// with the master user into mailbox when both are known.
func checkHosting(ctx context.Context, h jobs.Hosting, mailbox string) error {
	if err := hosting.Check(ctx, h.Driver); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := imapconn.Dial(ctx, h.IMAP, imapconn.Options{Timeout: 15 * time.Second})
	if err != nil {
		return fmt.Errorf("hosting.imap %s: %w", h.IMAP.Addr(), err)
	}
	defer c.Logout(ctx)
	if h.MasterUser != "" && mailbox != "" {
		if err := c.Login(ctx, mailbox+"*"+h.MasterUser, h.MasterPassword); err != nil {
			return fmt.Errorf("hosting.master_user %s (tried with the mailbox %s): %w", h.MasterUser, mailbox, err)
		}
	}
	return nil
}

// someMailbox is a mailbox of the hosting's customers to try the master
// login with: the first the driver lists for a domain in the database;
// "" before there is one.
func someMailbox(ctx context.Context, st store.Store, d hosting.Driver) string {
	ts, err := st.Tenants(ctx)
	if err != nil {
		return ""
	}
	for _, t := range ts {
		ds, _ := st.Domains(ctx, t.ID)
		for _, dom := range ds {
			if mbs, err := d.List(ctx, dom.Name); err == nil && len(mbs) > 0 {
				return mbs[0].Address
			}
		}
	}
	return ""
}

// localOnly lets only requests made on this machine, not passed on by a
// proxy, through: the metrics name customers' old servers and are for the
// hosting's own monitoring.
func localOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
			http.Error(w, "metrics are served to this machine only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readiness answers /readyz: ready while the database answers and the
// hosting's IMAP server takes connections (checked at most every five
// seconds, so that probes cost the server nothing).
func readiness(db *sql.DB, h jobs.Hosting) http.Handler {
	var mu sync.Mutex
	var checked time.Time
	var imapErr error
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var problems []string
		if err := db.PingContext(ctx); err != nil {
			problems = append(problems, "database: "+err.Error())
		}
		mu.Lock()
		if time.Since(checked) > 5*time.Second {
			c, err := imapconn.Dial(ctx, h.IMAP, imapconn.Options{Timeout: 5 * time.Second})
			if err == nil {
				c.Logout(ctx)
			}
			imapErr, checked = err, time.Now()
		}
		if imapErr != nil {
			problems = append(problems, "hosting.imap "+h.IMAP.Addr()+": "+imapErr.Error())
		}
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(problems, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

// openKey loads the key that seals stored passwords, and makes sure it is
// the one the database's passwords were sealed with: a key silently made
// anew would leave every stored password unreadable. A key is made only
// for a new SQLite database; with a shared database every server must be
// given the same key.
func openKey(ctx context.Context, st *store.DB, path string) ([]byte, error) {
	const env = "MAILMIGRATE_SECRET_KEY"
	recorded, held, err := st.KeyFingerprint(ctx, "")
	if err != nil {
		return nil, err
	}
	key, err := secret.LoadKey(path, env)
	switch {
	case errors.Is(err, fs.ErrNotExist) && st.Dialect() != store.SQLite:
		return nil, usagef("no secret key: servers that share a database must all use the same key; copy %s from the first server "+
			"(mode 0600), or set $%s (32 random bytes in base64: head -c32 /dev/urandom | base64)", path, env)
	case errors.Is(err, fs.ErrNotExist) && (held || recorded != ""):
		return nil, usagef("the secret key %s is missing, but the database holds passwords sealed with one: restore the key from "+
			"your backup; if it is lost for good, run: mailmigrate admin secrets forget (customers then enter their passwords again)", path)
	case errors.Is(err, fs.ErrNotExist):
		key, err = secret.LoadOrCreateKey(path, env)
	}
	if err != nil {
		return nil, err
	}
	fp := secret.Fingerprint(key)
	if recorded, _, err = st.KeyFingerprint(ctx, fp); err != nil {
		return nil, err
	}
	if recorded != fp {
		return nil, usagef("the secret key (%s or $%s, fingerprint %s) is not the one this database's passwords were sealed with "+
			"(fingerprint %s): give this server the same key as the others or restore it from your backup; if it is lost for good, "+
			"run: mailmigrate admin secrets forget (customers then enter their passwords again)", path, env, fp, recorded)
	}
	return key, nil
}

// lockDataDir makes sure one server at a time uses a data directory's
// SQLite file: the job queue treats jobs left running as orphans at start.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another mailmigrate serve is using %s; stop it first (or give each server its own data_dir)", dir)
	}
	return func() { f.Close() }, nil
}
