package main

import (
	"context"
	"fmt"
	"os"
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

	var m migrationOut
	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	sync := []map[string]string{{"mailbox": a.mailbox, "hosting_password": a.hostPW, "source_user": a.srcUser, "source_password": a.srcPass}}
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": sync}, &m); code != 201 {
		t.Fatalf("start: %d %s", code, body)
	}
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
