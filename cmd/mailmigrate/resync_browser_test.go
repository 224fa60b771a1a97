package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/store"
)

// A failed migration whose passwords have expired: Restart leads to the
// styled form that asks for them (one form for the migration), where the
// server is corrected too and a daily re-sync is started; the migration
// page shows the schedule, and Stop ends it.
func TestResyncInBrowser(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	conf, _ := os.ReadFile(s.conf)
	if err := os.WriteFile(s.conf, append(conf, "jobs.resync_stop_days = 10\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	accts := []account{
		{srcUser: "jana@old.test", srcPass: "stare heslo 1", mailbox: "jana@firma.test", hostPW: "nove-heslo-1"},
		{srcUser: "petr@old.test", srcPass: "stare heslo 2", mailbox: "petr@firma.test", hostPW: "nove-heslo-2"},
	}
	for i, a := range accts {
		accts[i].messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(81+i), 25)
		if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
			t.Fatal(err)
		}
		s.secrets = append(s.secrets, a.srcPass, a.hostPW)
	}
	s.start()

	var m migrationOut
	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	var sync []map[string]string
	for _, a := range accts {
		sync = append(sync, map[string]string{"mailbox": a.mailbox, "hosting_password": a.hostPW, "source_user": a.srcUser, "source_password": a.srcPass})
	}
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": sync}, &m); code != 201 {
		t.Fatalf("start: %d %s", code, body)
	}
	if got := s.wait(firma, m.ID); got.State != "done" {
		t.Fatalf("migration ended %s:\n%s", got.State, s.logs.String())
	}
	// Days later: the old server refused the second mailbox's login on
	// a re-sync, and the passwords' retention time has passed.
	s.kill()
	st := s.openStore()
	if ok, err := st.TransitionTask(ctx, m.Tasks[1].ID, []string{store.StateDone}, store.StateFailed, &engine.Failure{Kind: "auth",
		Side: engine.SideSource, Message: "The old server rejected the login.", Detail: "authentication failed"}); !ok || err != nil {
		t.Fatalf("fail the task: %v", err)
	}
	if n, err := st.ExpireSecrets(ctx, time.Now().Add(time.Hour)); n != 2 || err != nil {
		t.Fatalf("expired %d: %v", n, err)
	}
	st.Close()
	s.start()
	taskID := m.Tasks[1].ID

	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", s.url, m.ID)), chromedp.WaitVisible(chromedp.ID("tasks")))
	p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#task-%d form[action$="/restart"] button`, taskID))), chromedp.WaitVisible(chromedp.ID("correct")))
	if !strings.Contains(p.text("#expired"), "no longer stored") ||
		p.eval(`getComputedStyle(document.body).fontFamily === "" || !document.querySelector('link[rel=stylesheet]') ? "plain" : "styled"`) != "styled" {
		t.Fatalf("Restart without passwords:\n%s", p.text("main"))
	}
	if n := p.eval(`String(document.querySelectorAll("form").length - document.querySelectorAll("form.signout").length)`); n != "1" {
		t.Errorf("%s forms on the password page; want one for the migration", n)
	}
	if host := p.eval(`document.getElementById("source_host").value`); host != "127.0.0.1" {
		t.Errorf("source host in the form: %q", host)
	}
	p.shot("resync-passwords")

	// Another name of the old server (the ledger starts anew for it;
	// matching by content copies nothing twice), every password, and the
	// daily re-sync.
	p.eval(`document.getElementById("source_host").value = "localhost"; document.getElementById("schedule").checked = true; "ok"`)
	for i, a := range accts {
		p.eval(fmt.Sprintf(`document.querySelector('input[name="sp:%[1]d"]').value = %[2]q;
			document.querySelector('input[name="hp:%[1]d"]').value = %[3]q; "ok"`, m.Tasks[i].ID, a.srcPass, a.hostPW))
	}
	p.do(chromedp.Click(chromedp.ID("correct-submit")), chromedp.WaitVisible(chromedp.ID("tasks")))
	if got := s.wait(firma, m.ID); got.State != "done" {
		t.Fatalf("after the correction: %s\n%s", got.State, s.logs.String())
	}
	for _, a := range accts {
		s.verifyByName(a)
	}
	p.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#schedule[data-active="1"]`)))
	if text := p.text("#schedule"); !strings.Contains(text, "new mail is copied once a day") || !strings.Contains(text, "10 days") {
		t.Errorf("schedule on the migration page:\n%s", text)
	}
	if title := p.text("h1"); !strings.Contains(title, "localhost") {
		t.Errorf("the migration's server after the correction: %s", title)
	}
	for _, sec := range s.secrets {
		if strings.Contains(p.eval(`document.documentElement.outerHTML`), sec) {
			t.Error("a password is in the page")
		}
	}
	p.shot("resync-schedule")

	p.do(chromedp.Click(chromedp.ID("schedule-stop")), chromedp.WaitVisible(chromedp.ID("schedule-start")))
	var sch struct{ Active bool }
	if code, body := s.call(firma, "GET", fmt.Sprintf("/migrations/%d/schedule", m.ID), nil, &sch); code != 200 || sch.Active {
		t.Errorf("schedule after Stop: %d %s", code, body)
	}
	for _, sec := range s.secrets {
		if strings.Contains(s.logs.String(), sec) {
			t.Errorf("a password is in the log")
		}
	}
}
