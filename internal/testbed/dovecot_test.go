package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func responseCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestDovecotStartStop(t *testing.T) {
	t.Parallel()
	d, err := StartDovecot(DovecotOptions{})
	if errors.Is(err, ErrDovecotNotFound) && os.Getenv("MAILMIGRATE_REQUIRE_DOVECOT") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddUser("alice@example.test", "secret", 0); err != nil {
		t.Fatal(err)
	}
	c, err := d.Login("alice@example.test", "secret")
	if err != nil {
		t.Fatal(err)
	}
	// The open session keeps an imap process alive past the master's exit
	// unless Stop takes care of the whole process group.
	defer c.Close()
	pid := d.proc.cmd.Process.Pid
	if !groupAlive(pid) {
		t.Fatalf("no live process in group %d before Stop", pid)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if groupAlive(pid) {
		t.Errorf("Dovecot processes (group %d) still running after Stop", pid)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s still exists after Stop (stat: %v)", d.Dir, err)
	}
	for _, addr := range []string{d.IMAPAddr(), d.IMAPSAddr()} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestDovecotPasswordCharacters(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{})
	passwords := map[string]string{
		"quotes":    `say "hi" \ to {all} of žluťoučký kůň`,
		"colon":     "a:b:c::",
		"spaces":    "  leading and trailing  ",
		"literal":   "{5}\r", // rejected below: CR cannot travel in LOGIN
		"non-ascii": "пароль密码🔑",
	}
	for user, pw := range passwords {
		err := d.AddUser(user, pw, 0)
		if user == "literal" {
			if err == nil {
				t.Errorf("AddUser accepted a password with CR")
			}
			continue
		}
		if err != nil {
			t.Fatalf("AddUser(%q): %v", user, err)
		}
	}
	for user, pw := range passwords {
		if user == "literal" {
			continue
		}
		c, err := d.Login(user, pw)
		if err != nil {
			t.Errorf("login %s with %q: %v", user, pw, err)
			continue
		}
		c.Close()
	}
	// Wrong password and unknown user. Each failure still takes ~0.5 s
	// (Dovecot's failure timer), so both run at once.
	var wg sync.WaitGroup
	for user, pw := range map[string]string{"quotes": "wrong", "nobody-here": "x"} {
		wg.Go(func() {
			_, err := d.Login(user, pw)
			if responseCode(err) != imap.ResponseCodeAuthenticationFailed {
				t.Errorf("login %s/%s: got %v, want NO [AUTHENTICATIONFAILED]", user, pw, err)
			}
		})
	}
	wg.Wait()
	if err := d.AddUser("quotes", "again", 0); err == nil {
		t.Error("AddUser accepted a duplicate user")
	}
	for _, bad := range []string{"", "a:b", "a/b", "with space", ".hidden"} {
		if err := d.AddUser(bad, "x", 0); err == nil {
			t.Errorf("AddUser accepted user name %q", bad)
		}
	}
}

func TestDovecotTLS(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{})
	if err := d.AddUser("tls", "pw", 0); err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("CAFile holds no certificate")
	}

	dials := map[string]func(string, *imapclient.Options) (*imapclient.Client, error){
		"IMAPS":    imapclient.DialTLS,
		"STARTTLS": imapclient.DialStartTLS,
	}
	addrs := map[string]string{"IMAPS": d.IMAPSAddr(), "STARTTLS": d.IMAPAddr()}
	for name, dial := range dials {
		for _, serverName := range []string{"127.0.0.1", "localhost"} {
			c, err := dial(addrs[name], &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: serverName}})
			if err != nil {
				t.Errorf("%s as %s with CAFile trusted: %v", name, serverName, err)
				continue
			}
			if err := c.Login("tls", "pw").Wait(); err != nil {
				t.Errorf("%s: login: %v", name, err)
			}
			c.Close()
		}

		// The system roots do not know our self-signed certificate.
		c, err := dial(addrs[name], &imapclient.Options{TLSConfig: &tls.Config{ServerName: "127.0.0.1"}})
		if err == nil {
			c.Close()
			t.Errorf("%s without CAFile: connection succeeded, want a verification error", name)
			continue
		}
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("%s without CAFile: got %v, want a certificate verification error", name, err)
		}
	}

	cfg, err := d.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialTLS(d.IMAPSAddr(), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("DialTLS with TLSConfig(): %v", err)
	}
	c.Close()
}

func TestDovecotQuota(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{MaxMailSize: 100 << 10})
	if err := d.AddUser("q", "pw", 64<<10); err != nil {
		t.Fatal(err)
	}
	msg := func(n int) []byte {
		return []byte("Subject: filler\r\n\r\n" + strings.Repeat("x", n))
	}
	limitKiB := func(c *imapclient.Client) int64 {
		t.Helper()
		roots, err := c.GetQuotaRoot("INBOX").Wait()
		if err != nil {
			t.Fatalf("GETQUOTAROOT: %v", err)
		}
		for _, r := range roots {
			if res, ok := r.Resources[imap.QuotaResourceStorage]; ok {
				return res.Limit
			}
		}
		t.Fatalf("GETQUOTAROOT returned no STORAGE resource: %+v", roots)
		return 0
	}

	c := d.LoginT(t, "q", "pw")
	// QUOTA counts STORAGE in KiB: 64<<10 bytes is 64.
	if got := limitKiB(c); got != 64 {
		t.Fatalf("STORAGE limit = %d KiB, want 64", got)
	}
	if err := appendMessage(c, "INBOX", Message{Body: msg(40 << 10)}); err != nil {
		t.Fatalf("append under quota: %v", err)
	}
	// Dovecot 2.3.19 answers, instead of the "+" continuation (it checks
	// the size announced in the literal against the remaining quota):
	//   NO [OVERQUOTA] Quota exceeded (mailbox for user is full)
	// followed by its timing suffix "(0.003 + 0.000 + 0.002 secs).".
	// go-imap v2 beta.8 then closes the connection: the refused literal
	// leaves its command encoder in an error state. So c is dead now.
	err := appendMessage(c, "INBOX", Message{Body: msg(40 << 10)})
	if responseCode(err) != imap.ResponseCodeOverQuota || !strings.Contains(err.Error(), "Quota exceeded") {
		t.Fatalf("append over quota: got %v, want NO [OVERQUOTA] Quota exceeded", err)
	}

	if err := d.SetQuota("q", 256<<10); err != nil {
		t.Fatal(err)
	}
	c2 := d.LoginT(t, "q", "pw")
	if got := limitKiB(c2); got != 256 {
		t.Fatalf("after SetQuota: STORAGE limit = %d KiB, want 256", got)
	}
	if err := appendMessage(c2, "INBOX", Message{Body: msg(40 << 10)}); err != nil {
		t.Fatalf("append after raising the quota: %v", err)
	}

	// quota_max_mail_size is checked before quota, also instead of "+":
	//   NO [LIMIT] Mail size is larger than the maximum size allowed by server configuration
	// (plus the timing suffix); again the client connection is lost.
	err = appendMessage(c2, "INBOX", Message{Body: msg(120 << 10)})
	if responseCode(err) != imap.ResponseCodeLimit || !strings.Contains(err.Error(), "Mail size is larger than the maximum size allowed") {
		t.Fatalf("append over quota_max_mail_size: got %v, want NO [LIMIT] Mail size is larger...", err)
	}

	// 0 removes the limit: GETQUOTAROOT then lists no STORAGE resource.
	if err := d.SetQuota("q", 0); err != nil {
		t.Fatal(err)
	}
	c3 := d.LoginT(t, "q", "pw")
	roots, err := c3.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots {
		if res, ok := r.Resources[imap.QuotaResourceStorage]; ok {
			t.Errorf("unlimited user still has a STORAGE limit: %+v", res)
		}
	}
	if err := d.SetQuota("nosuch", 1); err == nil {
		t.Error("SetQuota of an unknown user succeeded")
	}
}

func TestDovecotSeparatorAndPrefix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		opts         DovecotOptions
		delim        rune
		prefix       string
		badCreate    string
		goodCreate   string
		specialDraft string
	}{
		{DovecotOptions{}, '/', "", "", "A/B", "Drafts"},
		{DovecotOptions{Separator: "."}, '.', "", "A/B", "A.B", "Drafts"},
		{DovecotOptions{Separator: ".", Prefix: "INBOX."}, '.', "INBOX.", "A.B", "INBOX.A.B", "INBOX.Drafts"},
	}
	for _, tc := range cases {
		d := StartDovecotT(t, tc.opts)
		if err := d.AddUser("u", "pw", 0); err != nil {
			t.Fatal(err)
		}
		c := d.LoginT(t, "u", "pw")
		root, err := c.List("", "", nil).Collect()
		if err != nil || len(root) != 1 {
			t.Fatalf("%+v: LIST \"\" \"\": %v %v", tc.opts, root, err)
		}
		if root[0].Delim != tc.delim {
			t.Errorf("%+v: delimiter %q, want %q", tc.opts, root[0].Delim, tc.delim)
		}
		ns, err := c.Namespace().Wait()
		if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Prefix != tc.prefix {
			t.Errorf("%+v: NAMESPACE %+v %v, want personal prefix %q", tc.opts, ns, err, tc.prefix)
		}
		if tc.badCreate != "" {
			if err := c.Create(tc.badCreate, nil).Wait(); err == nil {
				t.Errorf("%+v: CREATE %q succeeded", tc.opts, tc.badCreate)
			}
		}
		if err := c.Create(tc.goodCreate, nil).Wait(); err != nil {
			t.Errorf("%+v: CREATE %q: %v", tc.opts, tc.goodCreate, err)
		}
		list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		uses := map[string]bool{}
		for _, l := range list {
			for _, a := range l.Attrs {
				if l.Mailbox == tc.specialDraft && a == imap.MailboxAttrDrafts {
					uses["drafts"] = true
				}
				switch a {
				case imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive:
					uses[string(a)] = true
				}
			}
		}
		if len(uses) != 5 {
			t.Errorf("%+v: special-use mailboxes found: %v, want Drafts, Sent, Trash, Junk, Archive", tc.opts, uses)
		}
	}
	if _, err := StartDovecot(DovecotOptions{Separator: ":"}); err == nil {
		t.Error("separator ':' accepted")
	}
}

func TestDovecotMaxUserIPConnections(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{MaxUserIPConnections: 2})
	if err := d.AddUser("u", "pw", 0); err != nil {
		t.Fatal(err)
	}
	d.LoginT(t, "u", "pw")
	d.LoginT(t, "u", "pw")
	c, err := d.Login("u", "pw")
	if err == nil {
		c.Close()
		t.Fatal("third connection logged in despite mail_max_userip_connections = 2")
	}
	// Dovecot 2.3.19 answers the LOGIN itself with
	//   NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)
	if responseCode(err) != imap.ResponseCodeLimit || !strings.Contains(err.Error(), "Maximum number of connections") {
		t.Errorf("third login: %v", err)
	}
}

func TestDovecotSharedPasswdFile(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{SharedPasswdFile: true})
	fi, err := os.Stat(d.PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Size() != 0 {
		t.Errorf("PasswdFile mode %v size %d, want an empty 0640 file", fi.Mode().Perm(), fi.Size())
	}
	if err := d.AddUser("alice", "pw", 0); err == nil {
		t.Error("AddUser succeeded on a SharedPasswdFile instance")
	}
	if err := d.SetQuota("alice", 1); err == nil {
		t.Error("SetQuota succeeded on a SharedPasswdFile instance")
	}
	uid, gid := d.MailOwner()
	line := fmt.Sprintf("alice@example.test:{PLAIN}secret:%d:%d::%s::userdb_quota_rule=*:storage=64K\n", uid, gid, filepath.Join(d.Dir, "home", "alice"))
	if err := os.WriteFile(d.PasswdFile, []byte(line), 0o640); err != nil {
		t.Fatal(err)
	}
	// No login has looked at the file yet, so the first one reads it.
	c := d.LoginT(t, "alice@example.test", "secret")
	roots, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) == 0 || roots[0].Resources[imap.QuotaResourceStorage].Limit != 64 {
		t.Errorf("GETQUOTAROOT = %+v, want a 64 KiB STORAGE limit", roots)
	}
}
