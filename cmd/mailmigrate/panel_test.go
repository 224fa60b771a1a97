package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium for a test, or skips the test when it is
// missing (unless the test command requires it).
func browser(t *testing.T) context.Context {
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("MAILMIGRATE_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium is not installed: apt-get install -y chromium")
		}
		t.Skip("chromium is not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first action starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// page drives one browser tab with a time limit per step.
type page struct {
	t    *testing.T
	ctx  context.Context
	logs func() string // the server's log, shown when a step fails
}

func (p page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(p.ctx, chromedp.Location())
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("body")))
		logs := ""
		if p.logs != nil {
			logs = p.logs()
		}
		p.t.Fatalf("browser at %s: %v\npage text:\n%.3000s\nserver log:\n%s", loc, err, body, logs)
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (p page) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("eval %q: %v", js, err)
	}
	return s
}

// waitFor evaluates js until it returns "true" (errors while a page
// navigates count as not yet), or fails the test after 20 s.
func (p page) waitFor(js string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && s == "true" {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: %q %v", js, s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post clicks a button of the form and waits for the page the post brings
// (not the one still on screen, which may have the same elements): the
// old page is marked first, and ready must hold on a page without it.
func (p page) post(button, ready string) {
	p.t.Helper()
	p.eval(`window.__oldPage = "1"; ""`)
	p.do(chromedp.Click(chromedp.CSS(button)))
	p.waitFor(fmt.Sprintf(`String(window.__oldPage === undefined && document.readyState === "complete" && !!document.querySelector(%q))`, ready))
}

// shot saves a screenshot under artifacts/screenshots (git-ignored).
func (p page) shot(name string) {
	p.t.Helper()
	// A screenshot documents a state the test has checked; one taken while
	// live updates re-lay the page out can fail, and is tried again.
	var png []byte
	var err error
	for range 5 {
		if png, err = chromedp.Run(p.ctx, chromedp.FullScreenshot(100)); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("..", "..", "artifacts", "screenshots")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p page) signIn(url, email, password string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), password))
	p.shot("login")
	p.do(chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("form.signout")))
}

// fill puts the whole form of the domain page in, with the given password
// of the second old mailbox and the given pasted lines. Values are set the
// way a person's typing ends up; the form is then submitted by a click.
func (p page) fill(host string, port int, accts []account, secondSourcePW, lines string) {
	p.t.Helper()
	set := map[string]string{"#source_host": host, "#source_port": fmt.Sprint(port),
		"#source_security": "plain", "#new_mailboxes": lines}
	var checks []string
	for i, a := range accts[:2] {
		pw := a.srcPass
		if i == 1 {
			pw = secondSourcePW
		}
		checks = append(checks, fmt.Sprintf(`input[name="sync"][value=%q]`, a.mailbox))
		set[fmt.Sprintf(`input[name=%q]`, "hp:"+a.mailbox)] = a.hostPW
		set[fmt.Sprintf(`input[name=%q]`, "su:"+a.mailbox)] = a.srcUser
		set[fmt.Sprintf(`input[name=%q]`, "sp:"+a.mailbox)] = pw
	}
	vals, _ := json.Marshal(set)
	boxes, _ := json.Marshal(checks)
	p.do(chromedp.WaitVisible(chromedp.ID("tool")))
	if got := p.eval(fmt.Sprintf(`(() => {
		const vals = %s, boxes = %s;
		for (const [sel, v] of Object.entries(vals)) { const el = document.querySelector(sel); if (!el) return "missing " + sel; el.value = v; }
		for (const sel of boxes) { const el = document.querySelector(sel); if (!el) return "missing " + sel; el.checked = true; }
		return "ok";
	})()`, vals, boxes)); got != "ok" {
		p.t.Fatalf("fill: %s", got)
	}
}

// The seed's whole flow in a real browser: sign in, enter the source
// server, check logins (a wrong password explained), sync two existing
// mailboxes and create three new ones (a bad line first refused), watch the
// progress reach done without a reload, download the report, restart (no
// duplicates), and a customer cannot open another customer's pages.
func TestPanelInBrowser(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	s.customer("Firma s.r.o.", "firma.test", 10)
	s.customer("Jiná firma", "jina.test", 0)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	s.panelUser("Jiná firma", "host@jina.test")

	accts := []account{
		{srcUser: "jana@old.test", srcPass: "stare heslo 1", mailbox: "jana@firma.test", hostPW: "nove-heslo-1"},
		{srcUser: "petr.novak@old.test", srcPass: "stare-heslo-2", mailbox: "petr@firma.test", hostPW: "nove-heslo-2"},
		{srcUser: "eva@firma.test", srcPass: "eva-heslo-3", mailbox: "eva@firma.test", hostPW: "eva-heslo-3"},
		{srcUser: "adam@firma.test", srcPass: "adam-heslo-4", mailbox: "adam@firma.test", hostPW: "adam-heslo-4"},
		{srcUser: "olga@firma.test", srcPass: "olga-heslo-5", mailbox: "olga@firma.test", hostPW: "olga-heslo-5"},
	}
	for i := range accts {
		a := &accts[i]
		a.messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(60+i), 20+10*i)
		if i < 2 {
			if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.Click(chromedp.CSS(`a[href="/domains/firma.test"]`)), chromedp.WaitVisible(chromedp.ID("tool")))
	p.shot("domain")

	good := fmt.Sprintf("%s %s\n%s %s\n%s %s\n", accts[2].srcUser, accts[2].srcPass, accts[3].srcUser, accts[3].srcPass,
		accts[4].srcUser, accts[4].srcPass)
	// Check logins with a wrong old password for the second mailbox.
	p.fill("127.0.0.1", s.src.IMAPPort, accts, "wrong password", "")
	p.do(chromedp.Click(chromedp.CSS(`.buttons button[value=check]`)), chromedp.WaitVisible(chromedp.ID("checks")))
	checks := p.text("#checks")
	if !strings.Contains(checks, "petr@firma.test") || !strings.Contains(checks, "rejected the login") || !strings.Contains(checks, "old or mistyped") ||
		!strings.Contains(checks, "Login works") {
		t.Fatalf("check results:\n%s", checks)
	}
	p.shot("check")

	// A bad line refuses everything and names the line; the passwords are not echoed.
	p.fill("127.0.0.1", s.src.IMAPPort, accts, accts[1].srcPass, strings.Replace(good, accts[3].srcUser, "adam", 1))
	p.do(chromedp.Click(chromedp.CSS(`button[value=start]`)), chromedp.WaitVisible(chromedp.ID("errors")))
	if e := p.text("#errors"); !strings.Contains(e, "Line 2") || !strings.Contains(e, "no domain") {
		t.Fatalf("errors:\n%s", e)
	}
	if lines := p.eval(`document.getElementById("new_mailboxes").value`); strings.Contains(lines, "heslo") || !strings.Contains(lines, accts[2].srcUser) {
		t.Errorf("the textarea after an error holds %q", lines)
	}
	if html := p.eval(`document.documentElement.outerHTML`); strings.Contains(html, "heslo") {
		t.Error("a password is in the page after an error")
	}
	p.shot("errors")
	if mbs, _ := s.driver.List(ctx, "firma.test"); len(mbs) != 2 {
		t.Errorf("mailboxes were created from a refused form: %v", mbs)
	}

	// Corrected: started; the progress reaches done without a reload.
	p.fill("127.0.0.1", s.src.IMAPPort, accts, accts[1].srcPass, good)
	p.do(chromedp.Click(chromedp.CSS(`button[value=start]`)), chromedp.WaitVisible(chromedp.ID("tasks")))
	p.eval(`window.__samePage = "yes"`)
	p.do(chromedp.WaitVisible(chromedp.CSS(`#tasks[data-finished="1"]`)))
	if same := p.eval(`window.__samePage || "reloaded"`); same != "yes" {
		t.Error("the page reloaded to show the end of the migration")
	}
	states := p.eval(`Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).map(r => r.dataset.state).join(",")`)
	if states != "done,done,done,done,done" {
		t.Fatalf("states at the end: %s\n%s", states, s.logs.String())
	}
	if !strings.Contains(p.text("#next"), "MX records") {
		t.Error("no next steps after the migration")
	}
	p.shot("migration")
	// The DNS check the next steps point to: the MX still at the old
	// provider is to change, the imap name already leads here.
	p.do(chromedp.Click(chromedp.CSS(`#next a[href$="/dns"]`)), chromedp.WaitVisible(chromedp.ID("dns")))
	dnsTable := p.text("#dns")
	if !strings.Contains(dnsTable, "mx.old-provider.test") || !strings.Contains(dnsTable, "mx.hosting.test") ||
		p.eval(`document.querySelector('#dns tr[data-verdict="fail"]') ? "yes" : "no"`) != "yes" ||
		p.eval(`document.querySelector('#dns tr[data-verdict="ok"]') ? "yes" : "no"`) != "yes" {
		t.Errorf("DNS check table:\n%s", dnsTable)
	}
	p.shot("dns")
	p.do(chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.ID("tasks")))
	// The report downloads.
	csv := p.eval(`fetch(document.querySelector("#tasks tbody tr[id^=task-] .report a").href).then(r => r.text())`)
	if !strings.HasPrefix(csv, "source_folder,destination_folder,") || !strings.Contains(csv, "INBOX") {
		t.Errorf("report download:\n%s", csv)
	}
	for _, a := range accts {
		s.verifyByName(a)
	}

	// Restart every mailbox: nothing is duplicated.
	p.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("restart-all")))
	p.post("#restart-all", "#tasks")
	p.do(chromedp.WaitVisible(chromedp.CSS(`#tasks[data-finished="1"]`)))
	for _, a := range accts {
		s.verifyByName(a)
	}
	migrationURL := p.eval(`location.href`)

	// Another customer sees none of it, by direct URL either.
	p.do(chromedp.Click(chromedp.CSS(`.signout button`)), chromedp.WaitVisible(chromedp.ID("email")))
	p.signIn(s.url, "host@jina.test", panelPassword)
	if home := p.text("main"); strings.Contains(home, "firma.test") || !strings.Contains(home, "jina.test") {
		t.Errorf("other customer's home:\n%s", home)
	}
	for _, u := range []string{migrationURL, s.url + "/domains/firma.test"} {
		p.do(chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("form.signout")))
		if h := p.text("main"); !strings.Contains(h, "not yours") {
			t.Errorf("%s for another customer:\n%s", u, h)
		}
	}
}

// verifyByName checks a mailbox against its source, mapping folders by the
// task's latest report (read through the API as the operator).
func (s *service) verifyByName(a account) {
	s.t.Helper()
	var doms struct{ Domains []struct{ Name string } }
	s.call(s.opToken, "GET", "/domains", nil, &doms)
	var list struct {
		Migrations []migrationOut
	}
	s.call(s.opToken, "GET", "/domains/firma.test/migrations", nil, &list)
	for _, m := range list.Migrations {
		for _, task := range m.Tasks {
			if task.Destination == a.mailbox {
				var rep reportOut
				s.call(s.opToken, "GET", fmt.Sprintf("/tasks/%d/report", task.ID), nil, &rep)
				s.verify(a, rep)
				return
			}
		}
	}
	s.t.Errorf("no task for %s", a.mailbox)
}
