package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The hosting's support in a real browser: a customer's mailbox failed
// because the old server refused its login; once the old password works
// again, the operator finds the mailbox among the failed ones of every
// customer, reads why it failed and restarts it on the customer's behalf;
// the customer's page then says, in either language, that the hosting
// restarted it. No password is in any page.
func TestOperatorRestartsForCustomerInBrowser(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.customer("Jiná firma", "jina.test", 0)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	s.panelUser("Hosting", "podpora@hosting.test")
	a := account{srcUser: "jana@old.test", srcPass: "Stare-heslo-61", mailbox: "jana@firma.test", hostPW: "Nove-heslo-61"}
	b := account{srcUser: "petr@old.test", srcPass: "Stare-heslo-62", mailbox: "petr@firma.test", hostPW: "Nove-heslo-62"}
	for i, acct := range []*account{&a, &b} {
		acct.messages = s.sourceAccount(acct.srcUser, acct.srcPass, uint64(61+i), 12)
		if err := s.driver.Create(ctx, acct.mailbox, acct.hostPW, 0); err != nil {
			t.Fatal(err)
		}
		s.secrets = append(s.secrets, acct.srcPass, acct.hostPW)
	}
	s.start()

	// Copied once; then the old password changes and a restart fails.
	m := s.syncMigration(firma, a, b)
	if got := s.wait(firma, m.ID); got.State != "done" {
		t.Fatalf("the first copy ended %s:\n%s", got.State, s.logs.String())
	}
	if err := s.src.SetPassword(a.srcUser, "Jine-heslo-63"); err != nil {
		t.Fatal(err)
	}
	if code, body := s.call(firma, "POST", fmt.Sprintf("/migrations/%d/restart", m.ID), nil, nil); code >= 300 {
		t.Fatalf("restart: %d %s", code, body)
	}
	if got := s.wait(firma, m.ID); got.State != "failed" {
		t.Fatalf("the restart with a changed password ended %s", got.State)
	}
	// The customer sets the old password back and asks the hosting for help.
	if err := s.src.SetPassword(a.srcUser, a.srcPass); err != nil {
		t.Fatal(err)
	}

	p := page{t: t, ctx: bctx, logs: s.logs.String}
	noSecrets := func(where string) {
		t.Helper()
		html := p.eval(`document.documentElement.outerHTML`)
		for _, sec := range s.secrets {
			if strings.Contains(html, sec) {
				t.Errorf("%s shows a password", where)
			}
		}
	}
	p.signIn(s.url, "podpora@hosting.test", panelPassword)
	p.do(chromedp.WaitVisible(chromedp.ID("operator-links")))
	p.post(`#operator-links a[href="/operator/tasks"]`, "#filters")
	if rows := p.eval(`String(document.querySelectorAll("#all-tasks tbody tr").length)`); rows != "2" {
		t.Errorf("%s mailboxes listed before filtering, want 2", rows)
	}
	p.eval(`document.getElementById("f-state").value = "failed"; document.getElementById("f-source").value = "127.0"; ""`)
	p.post(`#filters button[type=submit]`, "#all-tasks")
	if q := p.eval(`location.search`); !strings.Contains(q, "state=failed") || !strings.Contains(q, "source_host=127.0") {
		t.Errorf("the filters are not in the address: %s", q)
	}
	list := p.text("#all-tasks tbody")
	if rows := p.eval(`String(document.querySelectorAll("#all-tasks tbody tr").length)`); rows != "1" ||
		!strings.Contains(list, "Firma s.r.o.") || !strings.Contains(list, a.mailbox) || !strings.Contains(list, "rejected the login") {
		t.Fatalf("the failed mailboxes (%s rows):\n%s", rows, list)
	}
	p.shot("operator-tasks")
	noSecrets("the operator's list")

	p.post(`#all-tasks a[href^="/operator/tasks/"]`, "#task")
	if f := p.text("#failure"); !strings.Contains(f, "rejected the login") || !strings.Contains(f, "Likely causes") {
		t.Errorf("the failure on the task's page:\n%s", f)
	}
	p.shot("operator-task")
	noSecrets("the task's page")
	p.post("#restart", "#task")
	if got := s.wait(firma, m.ID); got.State != "done" {
		t.Fatalf("the operator's restart ended %s:\n%s", got.State, s.logs.String())
	}
	s.verifyByName(a)
	p.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("actions")))
	if got := p.text("#actions"); !strings.Contains(got, "Restarted by the hosting (podpora@hosting.test)") {
		t.Errorf("the operator's history of the task:\n%s", got)
	}
	if state := p.eval(`document.getElementById("task").dataset.state`); state != "done" {
		t.Errorf("the task's page shows it %s", state)
	}

	// The customer sees who restarted the mailbox; the other one it
	// restarted itself.
	p.do(chromedp.Click(chromedp.CSS(`.signout button`)), chromedp.WaitVisible(chromedp.ID("email")))
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", s.url, m.ID)), chromedp.WaitVisible(chromedp.ID("tasks")))
	acted := func(mailbox string) string {
		return p.eval(fmt.Sprintf(`(() => { const r = Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).find(r => r.cells[0].textContent === %q);
			const a = r && r.querySelector(".acted"); return a ? a.textContent : ""; })()`, mailbox))
	}
	if got := acted(a.mailbox); !strings.HasPrefix(got, "Restarted by the hosting") {
		t.Errorf("the customer's page says %q of %s", got, a.mailbox)
	}
	if got := acted(b.mailbox); got != "" {
		t.Errorf("the customer's page says %q of %s, which the customer restarted", got, b.mailbox)
	}
	p.shot("customer-restarted-by-hosting")
	p.post(`a[hreflang="cs"]`, "#tasks")
	if got := acted(a.mailbox); !strings.HasPrefix(got, "Znovu spustil hosting") {
		t.Errorf("the customer's page in Czech says %q", got)
	}
	// A customer does not reach the operator's pages.
	p.do(chromedp.Navigate(s.url+"/operator/tasks?state=failed"), chromedp.WaitVisible(chromedp.CSS("form.signout")))
	if h := p.text("main"); !strings.Contains(h, "404") {
		t.Errorf("the operator's list for a customer:\n%s", h)
	}
}
