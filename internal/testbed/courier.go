package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Courier is a running Courier-IMAP 5 (Debian's courier-imap, unpacked by
// scripts/test.sh) on loopback, plaintext only. Courier's authlib has its
// paths compiled in (/etc/courier/authdaemonrc, userdb.dat, the socket
// /run/courier/authdaemon/socket), so couriertcpd and authdaemond run in a
// private mount namespace where /etc/courier and /run are the instance's
// own directories. Users are in a userdb (authuserdb) with Maildirs under
// Dir/home, owned by nobody when we are root.
//
// What a client sees: personal namespace "INBOX." with "." as separator,
// no SPECIAL-USE, QUOTA announced (Debian's IMAP_CAPABILITY); a user
// without a maildir quota answers GETQUOTAROOT with a bare
// `* QUOTA "ROOT"` (no resource list at all), a user with one (see
// AddUserQuota) with `* QUOTA "ROOT" (STORAGE used limit)`. Debian's
// IMAP_EMPTYTRASH=Trash:7 is left out: it deletes Trash messages older
// than seven days at every login, and migrated mail is older.
type Courier struct {
	Host     string
	IMAPPort int
	Dir      string

	etc, logPath     string
	mailUID, mailGID int
	chown            bool
	proc             *serverProc

	mu    sync.Mutex
	users []courierUser
}

type courierUser struct{ name, hash, home string }

// StartCourier starts a fresh Courier-IMAP in a new temporary directory
// and waits until it accepts connections. The caller must call Stop.
func StartCourier() (*Courier, error) {
	var paths [4]string
	for i, f := range []struct{ pkg, rel string }{
		{"courier-base", "usr/sbin/couriertcpd"},
		{"courier-imap", "usr/lib/courier/courier/imaplogin"},
		{"courier-imap", "usr/bin/imapd"},
		{"courier-authdaemon", "usr/lib/courier/courier-authlib/authdaemond"},
	} {
		p, err := unpacked(f.pkg, f.rel)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	for _, f := range []struct{ pkg, rel string }{
		{"courier-authlib-userdb", "usr/lib/courier-authlib/libauthuserdb.so.0"},
		{"courier-authlib-userdb", "usr/sbin/userdbpw"},
		{"courier-authlib", "usr/lib/courier/courier-authlib/makedatprog"},
		{"courier-base", "usr/bin/maildirmake.courier"},
	} {
		if _, err := unpacked(f.pkg, f.rel); err != nil {
			return nil, err
		}
	}
	dir, uid, gid, chown, err := newServerDir("courier")
	if err != nil {
		return nil, err
	}
	c := &Courier{Host: "127.0.0.1", Dir: dir, etc: filepath.Join(dir, "etc"), logPath: filepath.Join(dir, "authdaemond.log"),
		mailUID: uid, mailGID: gid, chown: chown}
	if err := c.start(paths); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Courier) start(paths [4]string) error {
	tcpd, imaplogin, imapd, authdaemond := paths[0], paths[1], paths[2], paths[3]
	cmd, err := namespaceCommand(`d=$1; authd=$2; shift 2
mount --bind "$d/etc" /etc/courier
mount --bind "$d/run" /run
"$authd" >"$d/authdaemond.log" 2>&1 &
i=0
while [ ! -S /run/courier/authdaemon/socket ]; do
	i=$((i+1)); [ $i -lt 200 ] || { echo "authdaemond made no socket" >&2; exit 1; }
	sleep 0.02
done
exec "$@"`, c.Dir, authdaemond, tcpd, "-address=127.0.0.1", "-nodnslookup", "-noidentlookup",
		"-maxprocs=200", "-maxperip=200", "PORT", imaplogin, imapd, "Maildir")
	if err != nil {
		return err
	}
	// The mount point must exist; it stays empty, the namespace's view of
	// it is Dir/etc.
	if err := os.MkdirAll("/etc/courier", 0o755); err != nil {
		return fmt.Errorf("start courier: mount point: %w", err)
	}
	for _, sub := range []string{"etc/shared", "run/courier/authdaemon", "home"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("start courier: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.etc, "authdaemonrc"), []byte(`authmodulelist="authuserdb"
authmodulelistorig="authuserdb"
daemons=3
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
`), 0o644); err != nil {
		return fmt.Errorf("start courier: %w", err)
	}
	if err := c.writeUserdbLocked(); err != nil {
		return fmt.Errorf("start courier: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return fmt.Errorf("start courier: %w", err)
	}
	c.IMAPPort = ports[0]
	for i, a := range cmd.Args {
		if a == "PORT" {
			cmd.Args[i] = strconv.Itoa(c.IMAPPort)
		}
	}
	// Debian's /etc/courier/imapd, which its init script exports.
	cmd.Env = append(os.Environ(), unpackedLibraryPath(),
		"LTDL_LIBRARY_PATH="+filepath.Join(ServersRoot(), "usr/lib/courier-authlib"),
		"IMAP_CAPABILITY=IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE",
		"IMAP_KEYWORDS=1", "IMAP_ACL=1", "IMAP_PROXY=0", "IMAP_IDLE_TIMEOUT=60", "IMAP_MAILBOX_SANITY_CHECK=1",
		"IMAP_DISABLETHREADSORT=0", "IMAP_CHECK_ALL_FOLDERS=0", "IMAP_OBSOLETE_CLIENT=0", "IMAP_UMASK=022",
		"IMAP_ULIMITD=131072", "IMAP_USELOCKS=1", "IMAP_SHAREDINDEXFILE=/etc/courier/shared/index",
		"IMAP_ENHANCEDIDLE=0", "IMAP_TRASHFOLDERNAME=Trash", "IMAP_MOVE_EXPUNGE_TO_TRASH=0",
		"HEADERFROM=X-IMAP-Sender", "MAILDIRPATH=Maildir")
	c.proc, err = startProc("courier", cmd, filepath.Join(c.Dir, "couriertcpd.log"), c.LogTail)
	if err != nil {
		return err
	}
	return c.proc.waitListening(10*time.Second, c.addr())
}

func (c *Courier) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.IMAPPort)) }

// Name is "courier".
func (c *Courier) Name() string { return "courier" }

// AddUser adds a user without a mailbox quota.
func (c *Courier) AddUser(user, password string) error { return c.AddUserQuota(user, password, 0) }

// AddUserQuota adds a user whose Maildir has a maildirquota of quotaBytes
// (0: none). authuserdb reopens userdb.dat when it changes, so the user
// can log in at once.
func (c *Courier) AddUserQuota(user, password string, quotaBytes int64) error {
	if user == "" || strings.ContainsAny(user, "\t\n\r|/ ") || quotaBytes < 0 {
		return fmt.Errorf("add courier user %q: invalid name or quota", user)
	}
	if strings.ContainsAny(password, "\r\n\x00") {
		return fmt.Errorf("add courier user %q: password with CR, LF or NUL", user)
	}
	hash, err := runUnpacked(password+"\n"+password+"\n", "usr/sbin/userdbpw", "-md5")
	if err != nil {
		return fmt.Errorf("add courier user %q: %w", user, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.users {
		if u.name == user {
			return fmt.Errorf("add courier user %q: already exists", user)
		}
	}
	home := filepath.Join(c.Dir, "home", fmt.Sprintf("u%03d-%s", len(c.users)+1, sanitizeName(user)))
	args := []string{"usr/bin/maildirmake.courier"}
	if quotaBytes > 0 {
		args = append(args, "-q", fmt.Sprintf("%dS", quotaBytes))
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		return fmt.Errorf("add courier user %q: %w", user, err)
	}
	if _, err := runUnpacked("", append(args, filepath.Join(home, "Maildir"))...); err != nil {
		return fmt.Errorf("add courier user %q: %w", user, err)
	}
	if err := chownTree(home, c.mailUID, c.mailGID, c.chown); err != nil {
		return fmt.Errorf("add courier user %q: %w", user, err)
	}
	c.users = append(c.users, courierUser{name: user, hash: strings.TrimSpace(hash), home: home})
	if err := c.writeUserdbLocked(); err != nil {
		c.users = c.users[:len(c.users)-1]
		return fmt.Errorf("add courier user %q: %w", user, err)
	}
	return nil
}

// writeUserdbLocked writes userdb.dat and userdbshadow.dat as makeuserdb
// would, through Courier's makedatprog (which replaces them atomically);
// makeuserdb itself has /etc/courier compiled in.
func (c *Courier) writeUserdbLocked() error {
	var pub, shadow strings.Builder
	for _, u := range c.users {
		fmt.Fprintf(&pub, "%s\tuid=%d|gid=%d|home=%s|mail=%s|_=\n", u.name, c.mailUID, c.mailGID, u.home, filepath.Join(u.home, "Maildir"))
		fmt.Fprintf(&shadow, "%s\tsystempw=%s\n", u.name, u.hash)
	}
	pub.WriteString(".\n")
	shadow.WriteString(".\n")
	for _, f := range []struct{ name, data string }{{"userdb", pub.String()}, {"userdbshadow", shadow.String()}} {
		if _, err := runUnpacked(f.data, "usr/lib/courier/courier-authlib/makedatprog", "-",
			filepath.Join(c.etc, f.name+".tmp"), filepath.Join(c.etc, f.name+".dat")); err != nil {
			return err
		}
	}
	return nil
}

// runUnpacked runs a program from the unpacked tree with stdin and
// returns its standard output.
func runUnpacked(stdin string, argv ...string) (string, error) {
	cmd := exec.Command(filepath.Join(ServersRoot(), argv[0]), argv[1:]...)
	cmd.Env = append(os.Environ(), unpackedLibraryPath())
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Endpoint is the plaintext port.
func (c *Courier) Endpoint() ServerEndpoint { return ServerEndpoint{Host: c.Host, Port: c.IMAPPort} }

// Login logs in on the plaintext port.
func (c *Courier) Login(user, password string) (*imapclient.Client, error) {
	return loginPlain(c.addr(), user, password)
}

// LogTail returns the last n lines of couriertcpd's and authdaemond's
// output (imapd reports errors on it too).
func (c *Courier) LogTail(n int) string {
	var parts []string
	for _, f := range []string{"couriertcpd.log", "authdaemond.log"} {
		if s := tailFile(filepath.Join(c.Dir, f), n); s != "" {
			parts = append(parts, f+":\n"+s)
		}
	}
	return strings.Join(parts, "\n")
}

// Stop ends couriertcpd, authdaemond and every imapd, and removes Dir.
func (c *Courier) Stop() error {
	return errors.Join(c.proc.stop(), removeDir(c.Dir))
}
