package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailmigrate/internal/notify/smtptest"
)

// A finished migration mails its customer once, through the configured
// relay, and the home page lists it; a restart of the server sends nothing
// again.
func TestNotificationInBrowser(t *testing.T) {
	bctx := browser(t)
	relay := smtptest.Start(t, "", "")
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	conf, _ := os.ReadFile(s.conf)
	conf = fmt.Appendf(conf, "notify.smtp = %s\nnotify.security = none\nnotify.from = Migrace <noreply@hosting.test>\nnotify.base_url = https://migrate.hosting.test\n", relay.Addr)
	if err := os.WriteFile(s.conf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	a := account{srcUser: "jana@old.test", srcPass: "stare heslo 1", mailbox: "jana@firma.test", hostPW: "nove-heslo-1"}
	a.messages = s.sourceAccount(a.srcUser, a.srcPass, 71, 15)
	if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, a.srcPass, a.hostPW)
	s.start()

	m := s.syncMigration(firma, a)
	if got := s.wait(firma, m.ID); got.State != "done" {
		t.Fatalf("migration ended %s:\n%s", got.State, s.logs.String())
	}
	mail := relay.Wait(1, 30*time.Second)[0]
	if mail.Subject != "Your migration from 127.0.0.1 to firma.test has finished" || strings.Join(mail.To, ",") != "jana@firma.test" ||
		!strings.Contains(mail.Body, fmt.Sprintf("https://migrate.hosting.test/migrations/%d", m.ID)) ||
		!strings.Contains(mail.Body, "jana@firma.test (from jana@old.test): copied") {
		t.Errorf("mail %q to %v:\n%s", mail.Subject, mail.To, mail.Body)
	}
	for _, sec := range s.secrets {
		if strings.Contains(mail.Data, sec) || strings.Contains(s.logs.String(), sec) {
			t.Errorf("a password is in the mail or the log")
		}
	}

	// A restart sends nothing again.
	s.kill()
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.WaitVisible(chromedp.ID("notifications")))
	if text := p.text("#notifications"); !strings.Contains(text, mail.Subject) {
		t.Errorf("home page notifications:\n%s", text)
	}
	p.shot("home-notifications")
	time.Sleep(time.Second)
	if n := len(relay.Mails()); n != 1 {
		t.Errorf("%d mails after a restart", n)
	}
}

// A mailbox that runs out of space, an old login refused on a re-run and
// a hosting login refused on a re-run each mail the customer what to do,
// through a relay that speaks TLS from the first byte and wants a login;
// the home page lists them, those that need action first.
func TestNotificationsForActionInBrowser(t *testing.T) {
	bctx := browser(t)
	relay := smtptest.StartTLS(t, "relay-user", "relay-heslo-465")
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	ca, pw := filepath.Join(s.dir, "relay-ca.pem"), filepath.Join(s.dir, "relay.pw")
	if err := os.WriteFile(ca, relay.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte("relay-heslo-465\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(s.conf)
	// One worker: the mailboxes are copied one after the other, so each
	// stop happens while the next mailbox still waits (the last one's
	// stop is told in the migration's "finished" mail instead).
	conf = fmt.Appendf(conf, "jobs.workers = 1\nnotify.smtp = %s\nnotify.security = tls\nnotify.user = relay-user\nnotify.password_file = %s\n"+
		"notify.ca_file = %s\nnotify.from = noreply@hosting.test\nnotify.base_url = https://migrate.hosting.test\n", relay.Addr, pw, ca)
	if err := os.WriteFile(s.conf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	full := account{srcUser: "plna@old.test", srcPass: "Plna-stare-heslo-51", mailbox: "plna@firma.test", hostPW: "Plna-tady-heslo-51"}
	old := account{srcUser: "olga@old.test", srcPass: "Olga-stare-heslo-52", mailbox: "olga@firma.test", hostPW: "Olga-tady-heslo-52"}
	here := account{srcUser: "hana@old.test", srcPass: "Hana-stare-heslo-53", mailbox: "hana@firma.test", hostPW: "Hana-tady-heslo-53"}
	last := account{srcUser: "lada@old.test", srcPass: "Lada-stare-heslo-54", mailbox: "lada@firma.test", hostPW: "Lada-tady-heslo-54"}
	quota := map[string]int64{full.mailbox: halfQuota(51, 60)}
	for i, a := range []*account{&full, &old, &here, &last} {
		n := 12
		if a == &full {
			n = 60
		}
		a.messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(51+i), n)
		if err := s.driver.Create(ctx, a.mailbox, a.hostPW, quota[a.mailbox]); err != nil {
			t.Fatal(err)
		}
		s.secrets = append(s.secrets, a.srcPass, a.hostPW)
	}
	s.secrets = append(s.secrets, "relay-heslo-465")
	s.start()
	migrate := func(accts ...account) migrationOut {
		m := s.syncMigration(firma, accts...)
		s.wait(firma, m.ID)
		return m
	}
	subjects := func(n int) []string {
		var out []string
		for _, m := range relay.Wait(n, 60*time.Second) {
			out = append(out, m.Subject)
		}
		return out
	}

	// Out of space while the next mailbox waits.
	migrate(full, last)
	got := subjects(2)
	if got[0] != "plna@firma.test is out of space: its migration from 127.0.0.1 is paused" ||
		!strings.HasSuffix(got[1], "has finished – some mailboxes need your action") {
		t.Errorf("mails of the paused migration: %q", got)
	}
	if body := relay.Mails()[0].Body; !strings.Contains(body, "Enlarge the mailbox's quota") {
		t.Errorf("paused mail:\n%s", body)
	}

	// Both logins work at first; then the old password and the hosting
	// password change, and a restart of everything stops at each.
	m := migrate(old, here, last)
	subjects(3)
	if err := s.src.SetPassword(old.srcUser, "Olga-nove-heslo-55"); err != nil {
		t.Fatal(err)
	}
	if err := s.driver.SetPassword(ctx, here.mailbox, "Hana-nove-heslo-56"); err != nil {
		t.Fatal(err)
	}
	if code, body := s.call(firma, "POST", fmt.Sprintf("/migrations/%d/restart", m.ID), nil, nil); code >= 300 {
		t.Fatalf("restart: %d %s", code, body)
	}
	s.wait(firma, m.ID)
	got = subjects(6)[3:]
	want := []string{"The old server 127.0.0.1 refused the login for olga@firma.test",
		"The mailbox hana@firma.test refused the migration's login: its copy from 127.0.0.1 stopped"}
	if got[0] != want[0] || got[1] != want[1] || !strings.HasSuffix(got[2], "some mailboxes need your action") {
		t.Errorf("mails of the re-run: %q", got)
	}
	mails := relay.Mails()
	if body := mails[3].Body; !strings.Contains(body, "olga@old.test") || !strings.Contains(body, "press Restart") {
		t.Errorf("old login mail:\n%s", body)
	}
	if body := mails[4].Body; !strings.Contains(body, "current password") {
		t.Errorf("hosting login mail:\n%s", body)
	}
	for _, mail := range mails {
		for _, sec := range s.secrets {
			if strings.Contains(mail.Data, sec) {
				t.Errorf("a password is in the mail %q", mail.Subject)
			}
		}
	}

	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.WaitVisible(chromedp.ID("notifications")))
	text := p.text("#notifications")
	for _, w := range append(want, "is out of space") {
		if !strings.Contains(text, w) {
			t.Errorf("home page lacks %q:\n%s", w, text)
		}
	}
	p.shot("home-notifications-action")
}
