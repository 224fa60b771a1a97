package hosting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailmigrate/internal/testbed"
)

// startHosting starts a test Dovecot whose passdb and userdb read one
// passwd-file, and a driver that manages that very file.
func startHosting(t *testing.T, scheme string) (*testbed.Dovecot, *PasswdFile) {
	t.Helper()
	d := testbed.StartDovecotT(t, testbed.DovecotOptions{SharedPasswdFile: true})
	return d, hostingDriver(t, d, scheme)
}

func hostingDriver(t *testing.T, d *testbed.Dovecot, scheme string) *PasswdFile {
	t.Helper()
	uid, gid := d.MailOwner()
	p, err := NewPasswdFile(PasswdFileConfig{
		Path:              d.PasswdFile,
		DefaultQuotaBytes: 1 << 20,
		UID:               strconv.Itoa(uid),
		GID:               strconv.Itoa(gid),
		// Dovecot creates the missing directories on first login.
		Home:   filepath.Join(d.Dir, "home", "%d", "%n"),
		Scheme: scheme,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// storageLimitKiB returns the STORAGE limit GETQUOTAROOT reports (KiB),
// or -1 when there is none.
func storageLimitKiB(t *testing.T, c *imapclient.Client) int64 {
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
	return -1
}

func appendFiller(c *imapclient.Client, size int) error {
	msg := []byte("Subject: filler\r\n\r\n" + strings.Repeat("x", size))
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

func TestPasswdFileDovecot(t *testing.T) {
	t.Parallel()
	d, p := startHosting(t, "")
	ctx := context.Background()
	const pw = `pa:ss "wörd" {5} <&> \ end `

	// Usable at once: no sleep between Create and the login.
	if err := p.Create(ctx, "jana@Firma.cz", pw, 64<<10); err != nil {
		t.Fatal(err)
	}
	c := d.LoginT(t, "jana@firma.cz", pw)
	if got := storageLimitKiB(t, c); got != 64 {
		t.Fatalf("STORAGE limit of jana = %d KiB, want 64", got)
	}
	if err := appendFiller(c, 40<<10); err != nil {
		t.Fatalf("append under quota: %v", err)
	}
	// Over quota: Dovecot refuses the literal, and go-imap then drops the
	// connection (see testbed's TestDovecotQuota), so c is done.
	var ie *imap.Error
	if err := appendFiller(c, 40<<10); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("append over quota: %v, want NO [OVERQUOTA]", err)
	}
	if _, err := d.Login("jana@firma.cz", pw+"x"); err == nil {
		t.Error("login with a wrong password succeeded")
	}

	// The default quota, and each password scheme, through the same file.
	if err := p.Create(ctx, "petr@firma.cz", "petr-pw", 0); err != nil {
		t.Fatal(err)
	}
	if got := storageLimitKiB(t, d.LoginT(t, "petr@firma.cz", "petr-pw")); got != 1024 {
		t.Errorf("STORAGE limit of petr = %d KiB, want the default 1024", got)
	}
	for _, scheme := range []string{SchemeSHA512Crypt, SchemeBlfCrypt} {
		addr := strings.ToLower(scheme) + "@firma.cz"
		if err := hostingDriver(t, d, scheme).Create(ctx, addr, pw, 0); err != nil {
			t.Fatal(err)
		}
		d.LoginT(t, addr, pw)
	}
	if err := p.Create(ctx, "karel@jinde.cz", "k", 5<<20); err != nil {
		t.Fatal(err)
	}

	got, err := p.List(ctx, "firma.cz")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, mb := range got {
		list = append(list, fmt.Sprintf("%s=%d", mb.Address, mb.QuotaBytes))
	}
	if want := "blf-crypt@firma.cz=1048576 jana@firma.cz=65536 petr@firma.cz=1048576 sha512-crypt@firma.cz=1048576"; strings.Join(list, " ") != want {
		t.Errorf("List(firma.cz) = %v, want %s", list, want)
	}
	if mb, err := p.Quota(ctx, "karel@jinde.cz"); err != nil || mb.QuotaBytes != 5<<20 || mb.UsedBytes != -1 {
		t.Errorf("Quota(karel) = %+v, %v", mb, err)
	}
	if err := p.Create(ctx, "jana@firma.cz", "other", 0); !errors.Is(err, ErrExists) {
		t.Errorf("second Create of jana = %v, want ErrExists", err)
	}
	// The refused create did not disturb the existing mailbox.
	d.LoginT(t, "jana@firma.cz", pw)

	// The rewrites kept the file's mode and group, which let Dovecot's
	// auth process (not root) read it all along.
	fi, err := os.Stat(d.PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	_, gid := d.MailOwner()
	if st, ok := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o640 || ok && int(st.Gid) != gid {
		t.Errorf("passwd-file is %v, gid %v after rewrites; want 0640, gid %d", fi.Mode().Perm(), fi.Sys(), gid)
	}
}

func TestPasswdFileDovecotConcurrentCreates(t *testing.T) {
	t.Parallel()
	d, p := startHosting(t, SchemeSHA512Crypt)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			addr := fmt.Sprintf("u%d@firma.cz", i)
			if errs[i] = p.Create(context.Background(), addr, "pw"+addr, 0); errs[i] != nil {
				return
			}
			c, err := d.Login(addr, "pw"+addr)
			if err != nil {
				errs[i] = err
				return
			}
			_ = c.Logout().Wait()
			c.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("mailbox %d: %v", i, err)
		}
	}
	if got, err := p.List(context.Background(), "firma.cz"); err != nil || len(got) != 10 {
		t.Errorf("List after 10 concurrent creates: %d mailboxes, %v", len(got), err)
	}
}

// TestDovecotPasswdFileReRead pins down the Dovecot behaviour Create's
// wait is built on: the auth process checks a passwd-file at most once per
// second, so a user written after a lookup in the same second stays
// unknown, even though the rename gave the file a new inode and size,
// until the next second; a lookup that is the first in its second sees
// the new file at once.
func TestDovecotPasswdFileReRead(t *testing.T) {
	t.Parallel()
	d, p := startHosting(t, SchemeSHA512Crypt)
	ctx := context.Background()
	if err := p.Create(ctx, "first@firma.cz", "pw", 0); err != nil {
		t.Fatal(err)
	}
	nextSecond := func() time.Time {
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
		return time.Now().Truncate(time.Second)
	}

	measured := false
	for attempt := range 5 {
		sec := nextSecond()
		// A login makes the auth process look at the file in this second.
		c, err := d.Login("first@firma.cz", "pw")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		addr := fmt.Sprintf("gate%d@firma.cz", attempt)
		written, err := p.add(ctx, addr, "pw", 0)
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		c, loginErr := d.Login(addr, "pw")
		if loginErr == nil {
			c.Close()
		}
		if sent.Sub(sec) > 800*time.Millisecond {
			continue // too close to the next second to tell; a busy machine
		}
		if loginErr == nil {
			t.Fatalf("a user written %v after another lookup in the same second could log in at once: Dovecot re-reads sooner than Create assumes", written.Sub(sec))
		}
		waitVisible(ctx, written)
		if c, err := d.Login(addr, "pw"); err != nil {
			t.Fatalf("after waitVisible the new user still cannot log in: %v", err)
		} else {
			c.Close()
		}
		t.Logf("user written at +%v into the second, after a lookup: login at +%v refused, login after the second boundary accepted",
			written.Sub(sec).Round(time.Millisecond), sent.Sub(sec).Round(time.Millisecond))
		measured = true
		break
	}
	if !measured {
		t.Skip("could not fit the measurement into one second five times; machine too busy")
	}

	// The first lookup in a second stats the file and re-reads it.
	nextSecond()
	if _, err := p.add(ctx, "fresh@firma.cz", "pw", 0); err != nil {
		t.Fatal(err)
	}
	c, err := d.Login("fresh@firma.cz", "pw")
	if err != nil {
		t.Fatalf("first lookup of a second did not see the new user: %v", err)
	}
	c.Close()
}

// A changed password logs in at once against Dovecot and the old one no
// longer does; a raised quota shows in GETQUOTAROOT at the next login.
func TestPasswdFileDovecotManage(t *testing.T) {
	t.Parallel()
	d, p := startHosting(t, SchemeSHA512Crypt)
	ctx := context.Background()
	if err := p.Create(ctx, "jana@firma.cz", "stare heslo 1", 64<<10); err != nil {
		t.Fatal(err)
	}
	c := d.LoginT(t, "jana@firma.cz", "stare heslo 1")
	if got := storageLimitKiB(t, c); got != 64 {
		t.Fatalf("STORAGE limit before = %d KiB, want 64", got)
	}
	// Twice within a second, so that the second rewrite has the same size
	// and second as the first: Dovecot must still see it.
	for _, pw := range []string{"nove heslo 22", "nove heslo 33"} {
		if err := p.SetPassword(ctx, "jana@firma.cz", pw); err != nil {
			t.Fatal(err)
		}
		d.LoginT(t, "jana@firma.cz", pw)
	}
	for _, old := range []string{"stare heslo 1", "nove heslo 22"} {
		if c, err := d.Login("jana@firma.cz", old); err == nil {
			c.Close()
			t.Errorf("the replaced password %q still logs in", old)
		}
	}
	if err := p.SetQuota(ctx, "jana@firma.cz", 5<<20); err != nil {
		t.Fatal(err)
	}
	if got := storageLimitKiB(t, d.LoginT(t, "jana@firma.cz", "nove heslo 33")); got != 5<<10 {
		t.Errorf("STORAGE limit after SetQuota = %d KiB, want %d", got, 5<<10)
	}
}
