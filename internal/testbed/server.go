package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Server is an IMAP server a test started on loopback: Dovecot (through
// DovecotServer), Cyrus, Courier or GNU Mailutils.
type Server interface {
	// Name says which server this is, for test names and messages.
	Name() string
	// AddUser creates a mailbox the user can log in to at once.
	AddUser(user, password string) error
	// Endpoint is where clients connect.
	Endpoint() ServerEndpoint
	// Login connects and logs in with go-imap, for loading a corpus and
	// verifying.
	Login(user, password string) (*imapclient.Client, error)
	// LogTail returns the last n lines of the server's log.
	LogTail(n int) string
	// Stop ends every process of the server and removes its files.
	Stop() error
}

// ServerEndpoint is how to reach a Server.
type ServerEndpoint struct {
	Host   string
	Port   int
	TLS    bool   // implicit TLS from the first byte; false: plaintext, no STARTTLS
	CAFile string // the server's self-signed certificate when TLS
}

// Addr is "host:port".
func (e ServerEndpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// ErrServerNotInstalled is returned (wrapped) when a server's programs are
// missing, or when the server cannot run here (it needs root for a private
// mount namespace); StartServerT skips then, unless told not to.
var ErrServerNotInstalled = errors.New("test server not installed")

// ServersRootEnv names the environment variable holding the directory
// where scripts/test.sh unpacked the servers that cannot be installed next
// to Dovecot (Cyrus, Courier).
const ServersRootEnv = "MAILMIGRATE_TESTSERVERS"

// DefaultServersRoot is where scripts/test.sh unpacks them by default.
const DefaultServersRoot = "/var/cache/mailmigrate-testservers/root"

// ServersRoot returns the unpacked package tree: $MAILMIGRATE_TESTSERVERS
// or DefaultServersRoot.
func ServersRoot() string {
	if r := os.Getenv(ServersRootEnv); r != "" {
		return r
	}
	return DefaultServersRoot
}

// StartServerT runs start for a test and stops the server on cleanup. A
// server that is not installed skips the test, unless
// MAILMIGRATE_REQUIRE_SERVERS=1 (as scripts/test.sh sets), then it fails.
func StartServerT[S Server](t testing.TB, start func() (S, error)) S {
	t.Helper()
	s, err := start()
	if errors.Is(err, ErrServerNotInstalled) && os.Getenv("MAILMIGRATE_REQUIRE_SERVERS") != "1" {
		t.Skipf("skipping: %v (run scripts/test.sh once to install; set MAILMIGRATE_REQUIRE_SERVERS=1 to make this fatal)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s: %v", s.Name(), err)
		}
	})
	return s
}

// DovecotServer adapts a Dovecot to Server (users without quota, the
// implicit-TLS port).
type DovecotServer struct{ *Dovecot }

// StartDovecotServer starts Dovecot as a Server.
func StartDovecotServer(opts DovecotOptions) (DovecotServer, error) {
	d, err := StartDovecot(opts)
	if errors.Is(err, ErrDovecotNotFound) {
		err = fmt.Errorf("%w: %w", ErrServerNotInstalled, err)
	}
	return DovecotServer{d}, err
}

// Name is "dovecot", with the options that change its layout.
func (d DovecotServer) Name() string {
	n := "dovecot"
	if d.opts.Mbox {
		n += "-mbox"
	}
	if d.opts.Prefix != "" || d.opts.Separator != "/" {
		n += fmt.Sprintf(" (%q %q)", d.opts.Prefix, d.opts.Separator)
	}
	return n
}

// AddUser adds a user without quota.
func (d DovecotServer) AddUser(user, password string) error {
	return d.Dovecot.AddUser(user, password, 0)
}

// Endpoint is the implicit-TLS port.
func (d DovecotServer) Endpoint() ServerEndpoint {
	return ServerEndpoint{Host: d.Host, Port: d.IMAPSPort, TLS: true, CAFile: d.CAFile}
}

// loginPlain connects without TLS (no STARTTLS either) and logs in.
func loginPlain(addr, user, password string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %q at %s: %w", user, addr, err)
	}
	return c, nil
}

// serverProc is a server's process group, started in its own group so that
// Stop finds every child, with its stdout and stderr in a file.
type serverProc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	outPath string
	logs    func(n int) string // the server's own log, for failures
	// terminate, when set, replaces the default ending of the leader
	// (SIGTERM to the group, SIGKILL after two seconds) for a server
	// whose leader must wind down its children itself; it returns once
	// the leader is reaped.
	terminate func(*serverProc) error

	stopOnce sync.Once
	stopErr  error
}

func startProc(name string, cmd *exec.Cmd, outPath string, logs func(int) string) (*serverProc, error) {
	// A file, not a pipe: children inherit it, and with a pipe Wait would
	// wait for them too.
	out, err := os.Create(outPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		setProcessGroup(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &serverProc{name: name, cmd: cmd, done: make(chan struct{}), outPath: outPath, logs: logs}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitListening waits until every address accepts connections; on failure
// it kills the group and returns the server's output and log.
func (p *serverProc) waitListening(timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for _, addr := range addrs {
		for {
			select {
			case <-p.done:
				_ = p.stop()
				return fmt.Errorf("start %s: exited early (%v)%s", p.name, p.cmd.ProcessState, p.diagnostics())
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				_ = p.stop()
				return fmt.Errorf("start %s: %s not accepting connections after %s: %v%s", p.name, addr, timeout, err, p.diagnostics())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// diagnostics returns the server's output and log tail, where the reason
// for a failed start is.
func (p *serverProc) diagnostics() string {
	var b strings.Builder
	if data, err := os.ReadFile(p.outPath); err == nil && len(bytes.TrimSpace(data)) > 0 {
		fmt.Fprintf(&b, "\noutput:\n%s", bytes.TrimSpace(data))
	}
	if p.logs != nil {
		if s := p.logs(40); s != "" {
			fmt.Fprintf(&b, "\nlog tail:\n%s", s)
		}
	}
	return b.String()
}

// stop ends the whole process group: the leader first (see terminate),
// then whatever it left behind. A nil p, a server that never got as far as
// its process, has nothing to stop.
func (p *serverProc) stop() error {
	if p == nil {
		return nil
	}
	p.stopOnce.Do(func() {
		var errs []error
		select {
		case <-p.done:
		default:
			if p.terminate != nil {
				errs = append(errs, p.terminate(p))
			} else {
				_ = terminateGroup(p.cmd.Process.Pid)
				p.killAfter(2 * time.Second)
			}
		}
		errs = append(errs, killProcessGroup(p.cmd.Process.Pid, 2*time.Second))
		if err := errors.Join(errs...); err != nil {
			p.stopErr = fmt.Errorf("stop %s: %w", p.name, err)
		}
	})
	return p.stopErr
}

// killAfter waits up to grace for the leader to exit, then kills it; it
// returns whether it had to.
func (p *serverProc) killAfter(grace time.Duration) (killed bool) {
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return true
	}
}

// newServerDir makes a server's instance directory and returns the
// identity the server's unprivileged processes run as (see mailIdentity).
// Not t.TempDir: its parents are 0700, and when we are root the server's
// processes running as nobody could not reach the files; for the same
// reason the directory is opened up to 0755 here.
func newServerDir(name string) (dir string, uid, gid int, chown bool, err error) {
	uid, gid, chown, err = mailIdentity()
	if err != nil {
		return "", 0, 0, false, err
	}
	dir, err = os.MkdirTemp("", "mm-"+name+"-*")
	if err != nil {
		return "", 0, 0, false, fmt.Errorf("start %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.Remove(dir)
		return "", 0, 0, false, fmt.Errorf("start %s: %w", name, err)
	}
	return dir, uid, gid, chown, nil
}

// writeCert writes a self-signed certificate for loopback and its key,
// which only the owner may read.
func writeCert(certFile, keyFile string) error {
	certPEM, keyPEM, err := SelfSignedCert("localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, keyPEM, 0o600)
}

// removeDir removes a server's directory, retrying briefly while children
// that got the last signal late are still writing.
func removeDir(dir string) error {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("remove %s: %w", dir, err)
}

// tailFile returns the last n lines of a text file, "" if unreadable.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unpacked returns the path of a file in the unpacked package tree, or
// ErrServerNotInstalled naming the package it comes from.
func unpacked(pkg, rel string) (string, error) {
	p := filepath.Join(ServersRoot(), rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s not found (Debian package %s, unpacked by scripts/test.sh into %s)", ErrServerNotInstalled, p, pkg, ServersRoot())
	}
	return p, nil
}

// unpackedLibraryPath is LD_LIBRARY_PATH for programs from the unpacked
// tree, whose own libraries (libcyrus*, libcourierauth) are there too.
func unpackedLibraryPath() string {
	root := ServersRoot()
	return "LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib") + ":" + filepath.Join(root, "usr/lib/x86_64-linux-gnu")
}

// namespaceCommand runs argv in a private mount namespace after script
// (sh, with "$@" = argv) has set up its bind mounts; the script must end
// with exec "$@". Courier's and Cyrus's compiled-in paths (/etc/courier,
// /run/courier, /dev/log) are pointed at the instance's directory this way
// without touching the system's. It needs root.
func namespaceCommand(script string, argv ...string) (*exec.Cmd, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root for a private mount namespace (unshare -m)", ErrServerNotInstalled)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("%w: unshare (util-linux) not found", ErrServerNotInstalled)
	}
	// unshare makes the new namespace's mounts private, so nothing leaks
	// back to the system.
	args := append([]string{"--mount", "--", "/bin/sh", "-ec", script, "sh"}, argv...)
	cmd := exec.Command(unshare, args...)
	setProcessGroup(cmd)
	return cmd, nil
}

// chownTree gives a directory tree to the mail identity when running as
// root, so servers running as nobody can use it.
func chownTree(dir string, uid, gid int, chown bool) error {
	if !chown {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
