// Package testbed runs throw-away IMAP servers (Dovecot) on loopback, fills
// them with a deterministic mail corpus and compares mailboxes, so migration
// code can be tested end to end against a real server.
package testbed

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2/imapclient"
)

// ErrDovecotNotFound is returned (wrapped) by StartDovecot when no dovecot
// binary is installed.
var ErrDovecotNotFound = errors.New("dovecot binary not found")

// DovecotOptions configures a Dovecot instance started by StartDovecot.
type DovecotOptions struct {
	// Separator is the hierarchy separator: "/" (default, via a namespace
	// block) or "." (Dovecot's own Maildir++ default, no separator override).
	Separator string
	// Prefix is the personal namespace prefix, e.g. "INBOX." ("" default).
	Prefix string
	// MaxMailSize is quota_max_mail_size in bytes; 0 = no limit.
	MaxMailSize int64
	// MaxUserIPConnections is mail_max_userip_connections; 0 = 50.
	MaxUserIPConnections int
	// SharedPasswdFile makes passdb and userdb read one passwd-file,
	// Dovecot.PasswdFile, which the test manages itself (as a hosting's
	// provisioning does), instead of the per-user files AddUser writes.
	// The file starts empty; AddUser and SetQuota are refused. Lines need
	// the uid and gid from MailOwner, and Dovecot looks at the file at most
	// once per second (see writeUserLocked).
	SharedPasswdFile bool
	// MasterUser and MasterPassword add a Dovecot master user: logging in
	// as "mailbox*MasterUser" with MasterPassword opens any mailbox.
	MasterUser, MasterPassword string
	// Mbox stores mail in mbox files (~/mail, INBOX in ~/inbox) instead
	// of Maildir. A folder is then either a file holding mail or a
	// directory holding folders: creating a child of a folder that is a
	// file fails with "NO [CANNOT] Mailbox doesn't allow inferior
	// mailboxes", and a folder created with a trailing separator can only
	// hold folders.
	Mbox bool
}

// Dovecot is a running Dovecot instance listening on loopback.
type Dovecot struct {
	Host      string // "127.0.0.1"
	IMAPPort  int    // plain port that offers STARTTLS (plaintext auth allowed too, for tests)
	IMAPSPort int    // implicit TLS port
	CAFile    string // PEM self-signed certificate of the server (valid for 127.0.0.1 and localhost)
	Dir       string // base dir of this instance
	// PasswdFile is the passwd-file passdb and userdb read when
	// DovecotOptions.SharedPasswdFile is set ("" otherwise). It is mode
	// 0640, with the group of Dovecot's internal user, which its auth
	// process runs as; the directory is writable by this process only.
	PasswdFile string

	opts       DovecotOptions
	configPath string
	usersPath  string
	logPath    string
	mailUID    int
	mailGID    int
	chown      bool // running as root: files Dovecot's unprivileged processes touch must belong to mailUID

	proc *serverProc // the master; its output is where config errors land

	mu    sync.Mutex
	users map[string]*dovecotUser
}

type dovecotUser struct {
	name  string
	hash  string // {SSHA256}…, so no password character can break the passwd-file syntax
	home  string
	quota int64
	mtime time.Time // of the user's passwd-file as last written
}

// StartDovecot starts a fresh Dovecot instance in a new temporary directory
// and waits until both ports accept connections. It is usable outside tests;
// the caller must call Stop.
func StartDovecot(opts DovecotOptions) (*Dovecot, error) {
	bin, err := dovecotBinary()
	if err != nil {
		return nil, err
	}
	switch opts.Separator {
	case "":
		opts.Separator = "/"
	case "/", ".":
	default:
		return nil, fmt.Errorf("start dovecot: unsupported separator %q (want \"/\" or \".\")", opts.Separator)
	}
	if opts.MaxUserIPConnections == 0 {
		opts.MaxUserIPConnections = 50
	}
	if opts.MaxMailSize < 0 || opts.MaxUserIPConnections < 0 {
		return nil, errors.New("start dovecot: negative limit in options")
	}
	if strings.ContainsAny(opts.Prefix, "\r\n\"") {
		return nil, fmt.Errorf("start dovecot: unsupported namespace prefix %q", opts.Prefix)
	}

	d, err := newDovecotDir(opts)
	if err != nil {
		return nil, err
	}
	// A port picked by listening on :0 can be taken by someone else before
	// Dovecot binds it; a fresh pair of ports fixes that rare race.
	for attempt := 1; ; attempt++ {
		err = d.start(bin)
		if err == nil {
			return d, nil
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	_ = os.RemoveAll(d.Dir)
	return nil, err
}

// StartDovecotT starts Dovecot for a test and stops it on cleanup. If the
// dovecot binary is missing the test is skipped, unless the environment has
// MAILMIGRATE_REQUIRE_DOVECOT=1 (as CI should), then it fails.
func StartDovecotT(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	d, err := StartDovecot(opts)
	if errors.Is(err, ErrDovecotNotFound) && os.Getenv("MAILMIGRATE_REQUIRE_DOVECOT") != "1" {
		t.Skipf("skipping: %v (set MAILMIGRATE_REQUIRE_DOVECOT=1 to make this fatal)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop dovecot: %v", err)
		}
	})
	return d
}

func dovecotBinary() (string, error) {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	// sbin is often not on a non-root PATH even though the package is installed.
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("start dovecot: %w (install dovecot-imapd)", ErrDovecotNotFound)
}

// newDovecotDir prepares the instance directory: certificate, users and
// home directories, with ownership that Dovecot's unprivileged processes
// can use.
func newDovecotDir(opts DovecotOptions) (*Dovecot, error) {
	dir, uid, gid, chown, err := newServerDir("dovecot")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{
		Host:       "127.0.0.1",
		Dir:        dir,
		CAFile:     filepath.Join(dir, "cert.pem"),
		opts:       opts,
		configPath: filepath.Join(dir, "dovecot.conf"),
		usersPath:  filepath.Join(dir, "users"),
		users:      make(map[string]*dovecotUser),
		logPath:    filepath.Join(dir, "dovecot.log"),
		mailUID:    uid,
		mailGID:    gid,
		chown:      chown,
	}
	if opts.SharedPasswdFile {
		d.PasswdFile = filepath.Join(dir, "passwd")
	}
	if err := d.prepareDir(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start dovecot: %w", err)
	}
	return d, nil
}

func (d *Dovecot) prepareDir() error {
	// Only the config process (running as the master's user) reads the key.
	if err := writeCert(d.CAFile, filepath.Join(d.Dir, "key.pem")); err != nil {
		return err
	}
	for _, sub := range []string{"home", "users"} {
		p := filepath.Join(d.Dir, sub)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := d.lchown(p); err != nil {
			return err
		}
	}
	if d.PasswdFile != "" {
		// Dovecot opens a passwd-file without variables at startup and
		// exits if it is missing. The hashes in it are secrets: readable
		// by the auth process's group, not by everyone.
		if err := os.WriteFile(d.PasswdFile, nil, 0o640); err != nil {
			return err
		}
		if d.chown {
			if err := os.Lchown(d.PasswdFile, -1, d.mailGID); err != nil {
				return err
			}
		}
	}
	return nil
}

// MailOwner returns the uid and gid that mail processes run as (nobody and
// nogroup when the tests run as root, else the current user): the values
// for fields 3 and 4 of a line in PasswdFile.
func (d *Dovecot) MailOwner() (uid, gid int) { return d.mailUID, d.mailGID }

// mailIdentity returns the uid/gid that mail and internal processes run as:
// nobody/nogroup when we are root (Dovecot refuses root for mail access),
// otherwise ourselves.
func mailIdentity() (uid, gid int, chown bool, err error) {
	if os.Geteuid() != 0 {
		return os.Geteuid(), os.Getegid(), false, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, false, fmt.Errorf("start dovecot: look up user nobody: %w", err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, false, fmt.Errorf("start dovecot: uid of nobody: %w", err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, false, fmt.Errorf("start dovecot: gid of nobody: %w", err)
	}
	// Debian's nobody has primary group nogroup; prefer it by name when it
	// exists so the config says what the notes describe.
	if g, err := user.LookupGroup("nogroup"); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	return uid, gid, true, nil
}

func (d *Dovecot) lchown(path string) error {
	if !d.chown {
		return nil
	}
	return os.Lchown(path, d.mailUID, d.mailGID)
}

// start picks ports, writes the config, runs the master in the foreground
// (so we own its PID) and waits until it serves both ports.
func (d *Dovecot) start(bin string) error {
	ports, err := freePorts(2)
	if err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	d.IMAPPort, d.IMAPSPort = ports[0], ports[1]
	if err := d.writeConfig(); err != nil {
		return fmt.Errorf("start dovecot: write config: %w", err)
	}
	_ = os.Remove(d.logPath) // a retry must not show the previous attempt's log

	// -F keeps the master in the foreground, so its PID is ours to signal
	// and reap instead of being read back from master.pid. Its process
	// group lets Stop find the children that outlive the master (an imap
	// process serving a still-connected client).
	proc, err := startProc("dovecot", exec.Command(bin, "-F", "-c", d.configPath), filepath.Join(d.Dir, "master.out"), d.LogTail)
	if err != nil {
		return err
	}
	proc.terminate = terminateDovecotMaster
	d.proc = proc
	return proc.waitListening(10*time.Second, d.IMAPAddr(), d.IMAPSAddr())
}

// terminateDovecotMaster signals the master before its children. On its
// own the master needs ~1 s to wind down its children. Signalling them
// too, once the master is in shutdown (so it no longer respawns them),
// makes that a few milliseconds; at the same moment as the master, it
// sometimes respawned one and then waited for it.
func terminateDovecotMaster(p *serverProc) error {
	var errs []error
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("SIGTERM: %w", err))
	}
	select {
	case <-p.done:
	case <-time.After(50 * time.Millisecond):
		_ = terminateGroup(p.cmd.Process.Pid)
	}
	if p.killAfter(5 * time.Second) {
		errs = append(errs, errors.New("master ignored SIGTERM for 5s, killed"))
	}
	return errors.Join(errs...)
}

// LogTail returns the last n lines of the instance's log, for diagnosing
// a failure.
func (d *Dovecot) LogTail(n int) string { return tailFile(d.logPath, n) }

// freePorts returns n distinct loopback ports that were free a moment ago.
// Dovecot treats port 0 as "disabled", so it cannot pick one itself.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	// Holding all listeners open until the end keeps the ports distinct.
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (d *Dovecot) writeConfig() error {
	internalUser, internalGroup, err := identityNames(d.mailUID, d.mailGID)
	if err != nil {
		return err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated by mailmigrate/internal/testbed; removed with the instance.")
	p("protocols = imap")
	p("listen = 127.0.0.1")
	p("base_dir = %s", filepath.Join(d.Dir, "run"))
	p("state_dir = %s", filepath.Join(d.Dir, "state"))
	p("instance_name = %s", filepath.Base(d.Dir))
	p("log_path = %s", d.logPath)
	p("info_log_path = %s", d.logPath)
	p("default_internal_user = %s", internalUser)
	p("default_internal_group = %s", internalGroup)
	p("default_login_user = %s", internalUser)
	p("first_valid_uid = 1")
	p("first_valid_gid = 1")
	p("ssl = yes")
	p("ssl_cert = <%s", d.CAFile)
	p("ssl_key = <%s", filepath.Join(d.Dir, "key.pem"))
	p("disable_plaintext_auth = no")
	p("auth_mechanisms = plain login")
	// The 2 s default would make every negative login test slow. A failed
	// login still takes ~0.5 s: Dovecot 2.3 flushes delayed failures from
	// a timer with that period.
	p("auth_failure_delay = 0")
	// Names as given: the default %Lu lower-cases them, and they would no
	// longer match the file names under users/.
	p("auth_username_format = %%u")
	// Both read the user's own passwd-file (see writeUserLocked), or the
	// one shared file, so the per-user quota rides along as a userdb field.
	users := d.usersPath + "/%u"
	if d.PasswdFile != "" {
		users = d.PasswdFile
	}
	if d.opts.MasterUser != "" {
		hash, err := ssha256(d.opts.MasterPassword)
		if err != nil {
			return err
		}
		master := filepath.Join(d.Dir, "master-users")
		if err := os.WriteFile(master, []byte(d.opts.MasterUser+":"+hash+"\n"), 0o644); err != nil {
			return fmt.Errorf("write master users: %w", err)
		}
		p("auth_master_user_separator = *")
		// pass = yes: the mailbox must exist in the normal passdb too.
		p("passdb {\n  driver = passwd-file\n  master = yes\n  pass = yes\n  args = %s\n}", master)
	}
	p("passdb {\n  driver = passwd-file\n  args = %s\n}", users)
	p("userdb {\n  driver = passwd-file\n  args = %s\n}", users)
	switch {
	case d.opts.Mbox:
		p("mail_location = mbox:~/mail:INBOX=~/inbox")
	case d.opts.Separator == "/":
		// Maildir++ (the default layout) stores "a/b" as ".a.b" and so
		// rejects '.' in names ("NO [CANNOT] Character not allowed in
		// mailbox name: '.'") whatever the separator; LAYOUT=fs uses real
		// directories and allows it.
		p("mail_location = maildir:~/Maildir:LAYOUT=fs")
	default:
		p("mail_location = maildir:~/Maildir")
	}
	// A throw-away server needs no durability; fsync per APPEND made
	// loading a corpus several times slower.
	p("mail_fsync = never")
	// With the mailbox list index, parallel APPENDs from several imap
	// processes to one user contend on dovecot.list.index.log; the kernel
	// then reports false deadlocks (EDEADLK) on its fcntl lock and Dovecot
	// 2.3 panics. (flock avoids the panic but stalls for a minute.)
	p("mailbox_list_index = no")
	p("namespace inbox {")
	p("  inbox = yes")
	if d.opts.Separator == "/" {
		p("  separator = /")
	}
	if d.opts.Prefix != "" {
		p("  prefix = %s", d.opts.Prefix)
	}
	for _, mb := range []struct{ name, use, auto string }{
		{"Drafts", `\Drafts`, "subscribe"},
		{"Sent", `\Sent`, "subscribe"},
		{"Trash", `\Trash`, "subscribe"},
		{"Junk", `\Junk`, "create"},
		{"Archive", `\Archive`, "create"},
	} {
		p("  mailbox %s {\n    special_use = %s\n    auto = %s\n  }", mb.name, mb.use, mb.auto)
	}
	p("}")
	p("mail_plugins = $mail_plugins quota")
	p("protocol imap {")
	p("  mail_plugins = $mail_plugins imap_quota")
	p("  mail_max_userip_connections = %d", d.opts.MaxUserIPConnections)
	p("}")
	p("plugin {")
	p("  quota = count:User quota")
	p("  quota_vsizes = yes")
	if d.opts.MaxMailSize > 0 {
		p("  quota_max_mail_size = %dB", d.opts.MaxMailSize)
	}
	p("}")
	// Non-root runs cannot chroot; as root the chroot only adds setup work.
	p("service imap-login {")
	p("  chroot =")
	// One long-lived login process serving many clients keeps logins fast
	// when a test opens dozens of connections at once.
	p("  service_count = 0")
	p("  process_min_avail = 1")
	p("  client_limit = 256")
	p("  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }", d.IMAPPort)
	p("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }", d.IMAPSPort)
	p("}")
	p("service imap {\n  process_limit = 256\n}")
	// Every failed login from an IP also delays that IP's next logins
	// (2 s, 4 s, … 15 s, even successful ones) through anvil's auth-penalty
	// socket; auth_failure_delay does not cover it and loopback is not
	// exempt. An unusable socket turns it off.
	p("service anvil {\n  chroot =\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}")
	p("service auth {\n  chroot =\n}")
	p("service stats {\n  chroot =\n}")
	return os.WriteFile(d.configPath, []byte(b.String()), 0o644)
}

func identityNames(uid, gid int) (userName, groupName string, err error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", "", fmt.Errorf("look up uid %d: %w", uid, err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		return "", "", fmt.Errorf("look up gid %d: %w", gid, err)
	}
	return u.Username, g.Name, nil
}

// AddUser creates a mail user; quotaBytes 0 means unlimited. The user can
// log in immediately. Names are case-sensitive and may not contain ':',
// '/', '%', '\' or whitespace; passwords may contain anything but CR, LF
// and NUL.
func (d *Dovecot) AddUser(user, password string, quotaBytes int64) error {
	// The name is a file name under users/ and a passwd-file key.
	if user == "" || user[0] == '.' || strings.ContainsAny(user, ":/%\\\r\n\x00\t ") || !utf8.ValidString(user) {
		return fmt.Errorf("add user %q: name must be non-empty UTF-8 without ':', '/', '%%', '\\', whitespace or a leading '.'", user)
	}
	if strings.ContainsAny(password, "\r\n\x00") {
		return fmt.Errorf("add user %q: password cannot contain CR, LF or NUL (IMAP could not send it)", user)
	}
	if quotaBytes < 0 {
		return fmt.Errorf("add user %q: negative quota %d", user, quotaBytes)
	}
	if d.PasswdFile != "" {
		return fmt.Errorf("add user %q: this instance reads users from %s (SharedPasswdFile); write the line there", user, d.PasswdFile)
	}
	hash, err := ssha256(password)
	if err != nil {
		return fmt.Errorf("add user %q: %w", user, err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users[user]; ok {
		return fmt.Errorf("add user %q: already exists", user)
	}
	// Mail homes get numbered names: the user name may hold characters
	// (non-ASCII, '@') that make paths in log messages hard to read.
	home := filepath.Join(d.Dir, "home", fmt.Sprintf("u%03d-%s", len(d.users)+1, sanitizeName(user)))
	if err := os.Mkdir(home, 0o700); err != nil {
		return fmt.Errorf("add user %q: %w", user, err)
	}
	if err := d.lchown(home); err != nil {
		return fmt.Errorf("add user %q: chown home: %w", user, err)
	}
	u := &dovecotUser{name: user, hash: hash, home: home, quota: quotaBytes}
	if err := d.writeUserLocked(u); err != nil {
		return fmt.Errorf("add user %q: %w", user, err)
	}
	d.users[user] = u
	return nil
}

// SetQuota changes a user's storage limit (0 = unlimited). It takes effect
// for new logins; sessions already open keep their old limit. It returns
// only once a new login is sure to see the change, which takes up to a
// second.
func (d *Dovecot) SetQuota(user string, quotaBytes int64) error {
	if quotaBytes < 0 {
		return fmt.Errorf("set quota of %q: negative quota %d", user, quotaBytes)
	}
	return d.updateUser("set quota of", user, func(u *dovecotUser) { u.quota = quotaBytes })
}

// SetPassword changes a user's password, as a customer does at the old
// provider; like SetQuota, for new logins, once it returns.
func (d *Dovecot) SetPassword(user, password string) error {
	if strings.ContainsAny(password, "\r\n\x00") {
		return fmt.Errorf("set password of %q: password cannot contain CR, LF or NUL", user)
	}
	hash, err := ssha256(password)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", user, err)
	}
	return d.updateUser("set password of", user, func(u *dovecotUser) { u.hash = hash })
}

// updateUser rewrites a user's line after change, and waits until a new
// login is sure to read it.
func (d *Dovecot) updateUser(what, user string, change func(*dovecotUser)) error {
	if d.PasswdFile != "" {
		return fmt.Errorf("%s %q: this instance reads users from %s (SharedPasswdFile); change the line there", what, user, d.PasswdFile)
	}
	d.mu.Lock()
	u, ok := d.users[user]
	if !ok {
		d.mu.Unlock()
		return fmt.Errorf("%s %q: no such user", what, user)
	}
	changed := *u
	change(&changed)
	err := d.writeUserLocked(&changed)
	if err == nil {
		*u = changed
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, user, err)
	}
	// Dovecot may have checked this user's file earlier in the current
	// second and then won't look again until the clock moves on (see
	// writeUserLocked). Any lookup stamped with a later second is certain
	// to see the new file.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
	return nil
}

// writeUserLocked writes the passwd-file of one user atomically (temp file +
// rename) so the auth process never reads a half-written file.
//
// Each user has a file of its own (passdb and userdb read users/<name>)
// because Dovecot 2.3 stats a passwd-file at most once per second: with one
// shared file, a user added right after someone else logged in would be
// unknown until the next second. A new user's file has never been looked
// at, so it is read at once.
func (d *Dovecot) writeUserLocked(u *dovecotUser) error {
	var b strings.Builder
	// user:password:uid:gid:gecos:home:shell:extra fields
	fmt.Fprintf(&b, "%s:%s:%d:%d::%s::", u.name, u.hash, d.mailUID, d.mailGID, u.home)
	if u.quota > 0 {
		// The userdb_ prefix is stripped on userdb lookups. The B suffix
		// matters: a bare number is read as KiB (tested: "1048576" gave a
		// 1 GiB limit).
		fmt.Fprintf(&b, "userdb_quota_rule=*:storage=%dB", u.quota)
	}
	b.WriteString("\n")

	tmp, err := os.CreateTemp(d.Dir, ".user-*")
	if err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write passwd-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	if err := d.lchown(tmp.Name()); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	// Dovecot reloads the file only when its mtime (whole seconds) or size
	// changed, and a quota edit can keep the size; so force a new mtime
	// even for several writes within one second.
	mtime := time.Now().Truncate(time.Second)
	if !mtime.After(u.mtime) {
		mtime = u.mtime.Add(time.Second)
	}
	if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(d.usersPath, u.name)); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	u.mtime = mtime
	return nil
}

// ssha256 hashes a password in Dovecot's {SSHA256} scheme:
// base64(sha256(password+salt)+salt). Storing a hash rather than {PLAIN}
// means ':' or any other character in a password cannot break the file.
func ssha256(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	sum := sha256.Sum256(append([]byte(password), salt...))
	return "{SSHA256}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...)), nil
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '@':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

// Stop terminates the master process (SIGTERM, SIGKILL after ~5 s), waits
// until it and every child is gone, and removes Dir. Clients still
// connected are cut off. It is safe to call more than once.
func (d *Dovecot) Stop() error {
	return errors.Join(d.proc.stop(), removeDir(d.Dir))
}

// ConfigPath is the instance's configuration file, for Dovecot's own tools
// (doveadm -c).
func (d *Dovecot) ConfigPath() string { return d.configPath }

// IMAPSAddr returns the implicit-TLS address, "127.0.0.1:port".
func (d *Dovecot) IMAPSAddr() string {
	return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPSPort))
}

// IMAPAddr returns the plain (STARTTLS-capable) address, "127.0.0.1:port".
func (d *Dovecot) IMAPAddr() string {
	return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPPort))
}

// TLSConfig returns a client TLS config that trusts only this instance's
// certificate.
func (d *Dovecot) TLSConfig() (*tls.Config, error) {
	pemData, err := os.ReadFile(d.CAFile)
	if err != nil {
		return nil, fmt.Errorf("dovecot tls config: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("dovecot tls config: no certificate in %s", d.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: d.Host}, nil
}

// Login connects to the plain IMAP port and logs in; a test convenience.
func (d *Dovecot) Login(user, password string) (*imapclient.Client, error) {
	return loginPlain(d.IMAPAddr(), user, password)
}

// LoginT is Login that fails the test on error and logs out on cleanup.
func (d *Dovecot) LoginT(t testing.TB, user, password string) *imapclient.Client {
	t.Helper()
	c, err := d.Login(user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Logout may fail if the test closed the client itself; that's fine.
		_ = c.Logout().Wait()
		_ = c.Close()
	})
	return c
}
