package testbed

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresEnv names the environment variable with the URL of a PostgreSQL
// server the tests use instead of starting their own (a superuser's, or a
// role that may create databases): each test gets a new database in it,
// dropped when the test ends.
const PostgresEnv = "MAILMIGRATE_TEST_POSTGRES"

// ErrPostgresNotFound is returned (wrapped) when PostgreSQL's programs are
// missing; PostgresT skips then, unless told not to.
var ErrPostgresNotFound = errors.New("PostgreSQL not installed")

// Postgres is a PostgreSQL server for tests: a private cluster started on
// loopback, or the server of PostgresEnv.
type Postgres struct {
	// URL is a superuser's (database postgres).
	URL   string
	admin *sql.DB
	dir   string      // the private cluster's directory, or ""
	proc  *serverProc // the shell that runs the private cluster's postmaster
	// lifeline is our end of the pipe whose closing stops the postmaster.
	lifeline *os.File
	// How the private cluster was started, to start it again.
	bin, password string
	uid, gid      int
	chown         bool
	port          int
}

// StartPostgres runs initdb in a new temporary directory and starts the
// cluster's postmaster on a free loopback port, with its socket in that
// directory (as nobody when we are root: initdb and postgres refuse root),
// with a random password and without durability (fsync off): data that
// lives as long as a test. The caller must call Stop.
func StartPostgres() (*Postgres, error) {
	bin, err := postgresBinaries()
	if err != nil {
		return nil, err
	}
	dir, uid, gid, chown, err := newServerDir("postgres")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin, uid: uid, gid: gid, chown: chown}
	if p.password, err = p.initdb(bin, uid, gid, chown); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	// A port found free can be taken before the postmaster binds it; a
	// new one fixes that rare race.
	for attempt := 1; ; attempt++ {
		p.port = 0
		err = p.start()
		if err == nil {
			return p, nil
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	_ = removeDir(dir)
	return nil, err
}

// ConnectPostgres uses a running server (see PostgresEnv).
func ConnectPostgres(serverURL string) (*Postgres, error) {
	p := &Postgres{URL: serverURL}
	if err := p.connect(10 * time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// postgresBinaries finds the directory with initdb and postgres: that of
// the initdb on the PATH (a link leads to it), or Debian's
// /usr/lib/postgresql/<version>/bin (the newest).
func postgresBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("start postgres: %w: no initdb on the PATH or in /usr/lib/postgresql/*/bin (install postgresql)", ErrPostgresNotFound)
}

// initdb makes the cluster in dir/data, owned by uid and gid when chown
// is set, with the superuser postgres, and returns its random password.
func (p *Postgres) initdb(bin string, uid, gid int, chown bool) (string, error) {
	for _, sub := range []string{"data", "run"} {
		d := filepath.Join(p.dir, sub)
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", err
		}
		if err := chownTree(d, uid, gid, chown); err != nil {
			return "", err
		}
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	password := hex.EncodeToString(secret)
	pwfile := filepath.Join(p.dir, "run", "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	defer os.Remove(pwfile)
	if err := chownTree(pwfile, uid, gid, chown); err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(p.dir, "data"), "-U", "postgres",
		"--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	// initdb looks up its own directory from the working directory, which
	// must be one nobody may enter.
	cmd.Dir = p.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	runAs(cmd, uid, gid, chown)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return password, nil
}

// start runs the postmaster on a free port and waits until it takes
// connections. It runs under a shell that asks it for a fast shutdown
// (SIGINT: it ends its sessions instead of waiting for their clients) once
// the shell's standard input, a pipe from us, closes: when Stop closes it,
// or when the test process dies, however it dies (a timeout's panic, a
// kill), so that no cluster outlives its tests.
func (p *Postgres) start() error {
	bin, uid, gid, chown := p.bin, p.uid, p.gid, p.chown
	if p.port == 0 {
		ports, err := freePorts(1)
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		p.port = ports[0]
	}
	ports := []int{p.port}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	p.URL = (&url.URL{Scheme: "postgres", User: url.UserPassword("postgres", p.password), Host: addr,
		Path: "/postgres", RawQuery: "sslmode=disable"}).String()
	// An asynchronous command's standard input is /dev/null unless
	// redirected: the pipe is passed on as descriptor 3.
	cmd := exec.Command("/bin/sh", "-c", `exec 3<&0; "$@" 3<&- & pid=$!; (read _ <&3; kill -INT $pid) & wait $pid`, "sh",
		filepath.Join(bin, "postgres"), "-D", filepath.Join(p.dir, "data"), "-p", strconv.Itoa(ports[0]),
		"-k", filepath.Join(p.dir, "run"), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	cmd.Dir = p.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	runAs(cmd, uid, gid, chown)
	stdin, lifeline, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	cmd.Stdin = stdin
	proc, err := startProc("postgres", cmd, filepath.Join(p.dir, "postgres.out"), nil)
	stdin.Close()
	if err != nil {
		lifeline.Close()
		return err
	}
	proc.terminate = func(sp *serverProc) error {
		lifeline.Close()
		if sp.killAfter(10 * time.Second) {
			return errors.New("postgres ignored a fast shutdown for 10s, killed")
		}
		return nil
	}
	p.proc, p.lifeline = proc, lifeline
	if err := proc.waitListening(30*time.Second, addr); err != nil {
		lifeline.Close()
		return err
	}
	// The postmaster accepts connections before it takes logins.
	if err := p.connect(30 * time.Second); err != nil {
		_ = proc.stop()
		return fmt.Errorf("%w%s", err, proc.diagnostics())
	}
	return nil
}

// connect opens the superuser's connection, trying until timeout.
func (p *Postgres) connect(timeout time.Duration) error {
	db, err := sql.Open("pgx", p.URL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			p.admin = db
			return nil
		}
		if time.Now().After(deadline) {
			db.Close()
			return fmt.Errorf("postgres: no login after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops the private cluster (a fast shutdown: its sessions end)
// and starts it again on the same port, as pg_ctl restart -m fast does:
// its clients lose their connections, and find it again at the address
// they know.
func (p *Postgres) Restart() error {
	if p.proc == nil {
		return errors.New("restart postgres: only a private cluster can be restarted")
	}
	p.admin.Close()
	if err := p.proc.stop(); err != nil {
		return fmt.Errorf("restart postgres: %w", err)
	}
	_ = p.lifeline.Close()
	if err := p.start(); err != nil {
		p.proc = nil
		return fmt.Errorf("restart postgres: %w", err)
	}
	return nil
}

// Stop ends the private cluster and removes its files; of a server of
// PostgresEnv it only closes the connection.
func (p *Postgres) Stop() error {
	var errs []error
	if p.admin != nil {
		errs = append(errs, p.admin.Close())
	}
	if p.proc != nil {
		errs = append(errs, p.proc.stop())
		// Closed already, unless the postmaster had ended by itself.
		_ = p.lifeline.Close()
	}
	if p.dir != "" {
		errs = append(errs, removeDir(p.dir))
	}
	return errors.Join(errs...)
}

// CreateDatabase makes a new, empty database and returns its name and URL.
func (p *Postgres) CreateDatabase(ctx context.Context) (name, dbURL string, err error) {
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name = "mm_test_" + hex.EncodeToString(suffix)
	if _, err := p.admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return "", "", fmt.Errorf("postgres URL: %w", err)
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

// DropDatabase drops a database of CreateDatabase, ending the sessions
// still connected to it.
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	if _, err := p.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// shared is the server the tests of one package share (see PostgresMain).
var shared struct {
	sync.Mutex
	main    bool // PostgresMain runs the tests, and stops the server after them
	started bool
	pg      *Postgres
	err     error
}

// PostgresMain runs a package's tests and then stops the PostgreSQL server
// that PostgresT started for them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testbed.PostgresMain(m)) }
func PostgresMain(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.pg != nil {
		if err := shared.pg.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop postgres: %v\n", err)
			code = max(code, 1)
		}
	}
	return code
}

// PostgresT returns the URL of a new, empty PostgreSQL database for the
// test, dropped when it ends. The server is started once per test binary
// (see PostgresMain), or is the one PostgresEnv names. Without PostgreSQL
// the test is skipped, unless MAILMIGRATE_REQUIRE_POSTGRES=1 (as
// scripts/test.sh sets), then it fails.
func PostgresT(t testing.TB) string {
	t.Helper()
	shared.Lock()
	if !shared.main {
		shared.Unlock()
		t.Fatal("testbed.PostgresT needs the package's TestMain to call testbed.PostgresMain, which stops the server")
	}
	if !shared.started {
		shared.started = true
		if u := os.Getenv(PostgresEnv); u != "" {
			shared.pg, shared.err = ConnectPostgres(u)
		} else {
			shared.pg, shared.err = StartPostgres()
		}
	}
	pg, err := shared.pg, shared.err
	shared.Unlock()
	if errors.Is(err, ErrPostgresNotFound) && os.Getenv("MAILMIGRATE_REQUIRE_POSTGRES") != "1" {
		t.Skipf("skipping: %v (set %s to a server's URL, or MAILMIGRATE_REQUIRE_POSTGRES=1 to make this fatal)", err, PostgresEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name, dbURL, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return dbURL
}
