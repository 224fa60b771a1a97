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
)

// Mailbox management on a real Dovecot hosting: a mailbox paused for
// lack of space gets a larger quota in the panel and, resumed, finishes;
// a new password works over IMAP and the old one no longer does; an alias
// is listed and written to the alias file.
func TestPanelManageMailboxes(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	aliasFile := filepath.Join(s.dir, "virtual")
	if err := os.WriteFile(aliasFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(s.conf)
	conf = fmt.Appendf(conf, "hosting.max_quota = 1G\nhosting.alias_file = %s\nhosting.alias_reload_command = /bin/true\n", aliasFile)
	if err := os.WriteFile(s.conf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")

	small := account{srcUser: "small@old.test", srcPass: "small-heslo", mailbox: "small@firma.test", hostPW: "small-host-1"}
	small.messages = s.sourceAccount(small.srcUser, small.srcPass, 41, 200)
	if err := s.driver.Create(ctx, small.mailbox, small.hostPW, halfQuota(41, 200)); err != nil {
		t.Fatal(err)
	}
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)

	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	var m migrationOut
	code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source,
		"sync": []map[string]string{{"mailbox": small.mailbox, "hosting_password": small.hostPW,
			"source_user": small.srcUser, "source_password": small.srcPass}}}, &m)
	if code != 201 || len(m.Tasks) != 1 {
		t.Fatalf("create: %d %s", code, body)
	}
	row := fmt.Sprintf("#task-%d", m.Tasks[0].ID)
	box := fmt.Sprintf(`[id="mb-%s"]`, small.mailbox)
	// submit posts a form of the mailbox's box and waits for the page the
	// post brings: the old page is marked, and the new one has a notice.
	submit := func(form string) {
		t.Helper()
		p.eval(`window.__oldPage = "yes"; ""`)
		p.do(chromedp.Click(chromedp.CSS(box + " " + form + ` button[type=submit]`)))
		p.waitFor(`String(!window.__oldPage && !!document.getElementById("manage-notice"))`)
	}
	set := func(id, value string) {
		t.Helper()
		p.eval(fmt.Sprintf(`document.getElementById(%q).value = %q; ""`, id, value))
	}

	// Paused for lack of space: the box offers Raise quota.
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", s.url, m.ID)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-state="paused_over_quota"] form[action$="/resume"] button`)))
	p.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(box+`.paused .quota-form button.primary`)))
	if txt := p.text(box); !strings.Contains(txt, "Raise") {
		t.Errorf("paused mailbox's box:\n%s", txt)
	}
	p.shot("manage-paused")
	set("quota-"+small.mailbox, "1G")
	submit(".quota-form")
	// Read in the page: the live updates may replace nodes between a
	// query and a read from outside.
	p.waitFor(fmt.Sprintf(`String(((document.querySelector(%q) || {}).textContent || "").trim() === "1.0 GB")`, box+" .quota"))
	p.shot("manage-quota-raised")
	time.Sleep(1100 * time.Millisecond) // Dovecot re-reads a passwd-file at most once a second
	p.eval(`window.__beforeResume = "yes"; ""`)
	p.do(chromedp.Click(chromedp.CSS(row + ` form[action$="/resume"] button`)))
	p.waitFor(`String(!window.__beforeResume && !!document.getElementById("tasks"))`)
	p.do(chromedp.WaitVisible(chromedp.CSS(row + `[data-state="done"]`)))
	p.shot("manage-resumed-done")

	// A new password: it logs in over IMAP, the old one is refused.
	newPW := "Nove-Heslo-Schranky-7"
	s.secrets = append(s.secrets, newPW)
	set("password-"+small.mailbox, newPW)
	submit(".password-form")
	// Read in the page: the live updates may replace nodes between a
	// query and a read from outside.
	p.waitFor(fmt.Sprintf(`String(((document.getElementById("manage-notice") || {}).textContent || "").includes(%q))`, small.mailbox))
	p.shot("manage-password")
	time.Sleep(1100 * time.Millisecond)
	c, err := s.dst.Login(small.mailbox, newPW)
	if err != nil {
		t.Fatalf("the new password does not log in: %v", err)
	}
	c.Close()
	if c, err := s.dst.Login(small.mailbox, small.hostPW); err == nil {
		c.Close()
		t.Error("the old password still logs in")
	}

	// An alias: listed at the mailbox, and in the alias file.
	set("alias-"+small.mailbox, "info")
	submit(".alias-form")
	if got := p.eval(fmt.Sprintf(`document.querySelector(%q) ? "yes" : "no"`, box+` li[data-alias="info@firma.test"]`)); got != "yes" {
		t.Errorf("the alias is not listed:\n%s", p.text(box))
	}
	p.shot("manage-alias")
	if data, _ := os.ReadFile(aliasFile); !strings.Contains(string(data), "info@firma.test") || !strings.Contains(string(data), small.mailbox) {
		t.Errorf("alias file:\n%s", data)
	}
	small.hostPW = newPW
	s.verifyByName(small)
}
