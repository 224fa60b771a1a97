package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"mailmigrate/internal/demo"
)

// setForm puts values into the domain page's fields and ticks the given
// mailboxes to sync, the way a person's typing ends up.
func (p page) setForm(vals map[string]string, sync ...string) {
	p.t.Helper()
	v, _ := json.Marshal(vals)
	s, _ := json.Marshal(append([]string{}, sync...))
	if got := p.eval(fmt.Sprintf(`(() => {
		for (const [sel, v] of Object.entries(%s)) { const el = document.querySelector(sel); if (!el) return "missing " + sel; el.value = v; }
		document.querySelectorAll('input[name="sync"]').forEach(b => { b.checked = %s.includes(b.value); });
		return "ok";
	})()`, v, s)); got != "ok" {
		p.t.Fatalf("form: %s", got)
	}
}

// fitsWidth says whether the page is no wider than the window.
func (p page) fitsWidth() string {
	return p.eval(`document.documentElement.scrollWidth + " <= " + window.innerWidth + ": " + (document.documentElement.scrollWidth <= window.innerWidth)`)
}

// The demo shows the product, not false alarms: a finished migration, a
// mailbox paused for lack of space and a failed login with its ranked
// causes; checking logins against the demo's old server (another port of
// the hosting's address) warns of no DNS move, a working login is shown
// as good, an untrusted certificate once. The domain page remembers the
// last server, names the mailboxes of earlier migrations, warns of
// plaintext only while plaintext is chosen, and neither a 3,000-character
// line nor a 390 px phone makes the page wider than the window.
func TestDemoInBrowser(t *testing.T) {
	bctx := browser(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := startDemo(ctx, "127.0.0.1:0", 20, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	p := page{t: t, ctx: bctx}
	p.signIn(d.url, demoUser, demoPassword)

	// Every state a migration ends in.
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", d.url, d.sample)), chromedp.WaitVisible(chromedp.ID("tasks")))
	if s := p.eval(`Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).map(r => r.dataset.state).join(",")`); s != "done,done" {
		t.Errorf("sample migration: %s", s)
	}
	p.shot("demo-migration")
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", d.url, d.trouble)), chromedp.WaitVisible(chromedp.ID("tasks")))
	if s := p.eval(`Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).map(r => r.dataset.state).join(",")`); s != "paused_over_quota,failed" {
		t.Errorf("migration that needs attention: %s", s)
	}
	if first := p.eval(`(document.querySelector('#tasks tr[data-state="failed"] .reasons li') || {}).textContent || ""`); !strings.Contains(first, "password") {
		t.Errorf("first cause of the failed re-sync login: %q", first)
	}
	if m := p.text("main"); strings.Contains(m, "already points") || !strings.Contains(m, "mailbox is full") {
		t.Errorf("migration page:\n%s", m)
	}
	p.shot("demo-trouble")

	// The domain page starts with the last migration's server.
	p.do(chromedp.Navigate(d.url+"/domains/"+demo.Domain), chromedp.WaitVisible(chromedp.ID("tool")))
	if got, want := p.eval(`[source_host.value, source_port.value, source_security.value].join(" ")`),
		fmt.Sprintf("%s %d plain", d.env.Source.Host, d.env.Source.Port); got != want {
		t.Errorf("source fields %q, want the last migration's %q", got, want)
	}
	earlier := p.eval(`Array.from(document.querySelectorAll("h2")).filter(h => h.textContent === "Earlier migrations").map(h => h.parentElement.textContent).join("")`)
	for _, mb := range []string{demo.ExistingMailbox, demo.NewMailbox, demo.FullMailbox, demo.TypoMailbox} {
		if !strings.Contains(earlier, mb) {
			t.Errorf("earlier migrations do not name %s:\n%s", mb, earlier)
		}
	}
	// The plaintext warning follows the choice, without a reload.
	warn := `(() => { const w = Array.from(document.querySelectorAll("#tool p")).find(e => e.textContent.startsWith("Only for old servers"));
		return w ? getComputedStyle(w).display : "none"; })()`
	if shown := p.eval(warn); shown == "none" {
		t.Error("no plaintext warning while plaintext is chosen")
	}
	p.eval(`source_security.value = "tls"; ""`)
	if shown := p.eval(warn); shown != "none" {
		t.Errorf("plaintext warning shown with TLS chosen (display %s)", shown)
	}
	p.eval(`source_security.value = "plain"; ""`)
	p.shot("demo-domain")

	// Check logins against the demo's old server: one works, one lacks
	// its domain. No DNS move is claimed; the good one looks good.
	rows := map[string]string{
		"#source_host": d.env.Source.Host, "#source_port": fmt.Sprint(d.env.Source.Port), "#source_security": "plain",
		`input[name="hp:` + demo.ExistingMailbox + `"]`: demo.ExistingPassword,
		`input[name="su:` + demo.ExistingMailbox + `"]`: demo.OldUser,
		`input[name="sp:` + demo.ExistingMailbox + `"]`: demo.OldPassword,
		`input[name="hp:` + demo.TypoMailbox + `"]`:     demo.TypoPassword,
		`input[name="su:` + demo.TypoMailbox + `"]`:     demo.TypoLogin,
		`input[name="sp:` + demo.TypoMailbox + `"]`:     demo.TypoUserPassword,
	}
	p.setForm(rows, demo.ExistingMailbox, demo.TypoMailbox)
	p.do(chromedp.Click(chromedp.CSS(`.buttons button[value=check]`)), chromedp.WaitVisible(chromedp.ID("checks")))
	if w := p.eval(`(document.getElementById("source-warning") || {}).textContent || ""`); w != "" {
		t.Errorf("false DNS warning: %s", w)
	}
	if c := p.text("#checks"); strings.Contains(c, "already points") || !strings.Contains(c, "Login works") {
		t.Errorf("check results:\n%s", c)
	}
	if good := p.eval(`(() => { const g = document.querySelector("#checks li.okrow .good"); if (!g) return "missing";
		return (g.closest(".error") ? "inside an error box, " : "") + getComputedStyle(g).color; })()`); good != "rgb(6, 118, 71)" {
		t.Errorf(`"Login works": %s`, good)
	}
	if first := p.eval(`(document.querySelector('#checks li:not(.okrow) .reasons li') || {}).dataset?.code || ""`); first != "no_domain" {
		t.Errorf("first cause of the failed check: %q", first)
	}
	p.shot("demo-check")

	// The hosting itself as the old server (a move between two services
	// of this hosting is allowed): its certificate (untrusted from
	// outside) is shown once, not per row.
	rows["#source_host"], rows["#source_port"], rows["#source_security"] = d.env.Hosting.Host, fmt.Sprint(d.env.Hosting.Port), "tls"
	rows[`input[name="su:`+demo.TypoMailbox+`"]`] = demo.TypoUser
	p.setForm(rows, demo.ExistingMailbox, demo.TypoMailbox)
	p.post(`.buttons button[value=check]`, "#checks")
	if n := p.eval(`String(document.querySelectorAll("#checks .cert").length)`); n != "1" {
		t.Errorf("the certificate is shown %s times", n)
	}
	p.shot("demo-check-certificate")
	// But a mailbox that would be copied into itself is refused.
	rows[`input[name="su:`+demo.TypoMailbox+`"]`] = demo.TypoMailbox
	p.setForm(rows, demo.ExistingMailbox, demo.TypoMailbox)
	p.post(`.buttons button[value=check]`, "#tool")
	if m := p.text("main"); !strings.Contains(m, "into itself") {
		t.Errorf("no refusal of a mailbox copied into itself:\n%s", m)
	}

	// A 3,000-character line pasted and echoed in the error (on a fresh
	// page: the one before shows errors of its own).
	p.do(chromedp.Navigate(d.url+"/domains/"+demo.Domain), chromedp.WaitVisible(chromedp.ID("tool")))
	long := strings.Repeat("x", 3000)
	p.setForm(map[string]string{"#source_host": d.env.Source.Host, "#source_port": fmt.Sprint(d.env.Source.Port),
		"#source_security": "plain", "#new_mailboxes": long})
	p.do(chromedp.Click(chromedp.CSS(`button[value=start]`)), chromedp.WaitVisible(chromedp.ID("errors")))
	if !strings.Contains(p.text("#errors"), "Line 1") {
		t.Errorf("errors:\n%.300s", p.text("#errors"))
	}
	if w := p.fitsWidth(); !strings.HasSuffix(w, "true") {
		t.Errorf("page width with a 3,000-character line: %s", w)
	}
	p.shot("demo-long-line")

	// A phone: the sync table fits, and so do the migration pages.
	p.do(chromedp.EmulateViewport(390, 844))
	for _, u := range []string{d.url + "/domains/" + demo.Domain, fmt.Sprintf("%s/migrations/%d", d.url, d.sample),
		fmt.Sprintf("%s/migrations/%d", d.url, d.trouble)} {
		p.do(chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("main")))
		p.eval(`document.querySelectorAll("details").forEach(e => e.open = true); ""`)
		if w := p.fitsWidth(); !strings.HasSuffix(w, "true") {
			t.Errorf("%s at 390 px: %s", u, w)
		}
	}
	p.do(chromedp.Navigate(d.url+"/domains/"+demo.Domain), chromedp.WaitVisible(chromedp.ID("tool")))
	if r := p.eval(`(() => { const t = document.querySelector("table.sync").getBoundingClientRect(); return t.right + " <= " + window.innerWidth + ": " + (t.right <= window.innerWidth); })()`); !strings.HasSuffix(r, "true") {
		t.Errorf("sync table at 390 px: %s", r)
	}
	p.shot("demo-domain-phone")
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", d.url, d.trouble)), chromedp.WaitVisible(chromedp.ID("tasks")))
	p.shot("demo-trouble-phone")
}
