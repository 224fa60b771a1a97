package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The seed's flow in Czech: the language switch on the sign-in page is
// remembered; the tool's page, a refused line, the check of logins (a
// wrong password with its causes, the folder plan with Czech plural
// forms), the live progress with decimal commas, the report and the DNS
// check all read in Czech, and no English sentence shows.
func TestCzechFlowInBrowser(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	accts := []account{
		{srcUser: "jana@old.test", srcPass: "Janino-stare-heslo-1", mailbox: "jana@firma.test", hostPW: "Janino-tady-heslo-1"},
		{srcUser: "petr@old.test", srcPass: "Petrovo-stare-heslo-2", mailbox: "petr@firma.test", hostPW: "Petrovo-tady-heslo-2"},
		{srcUser: "eva@old.test", srcPass: "Evino-stare-heslo-3", mailbox: "eva@firma.test", hostPW: "Evino-stare-heslo-3"},
	}
	for i := range accts {
		accts[i].messages = s.sourceAccount(accts[i].srcUser, accts[i].srcPass, uint64(90+i), 30+10*i)
		if i < 2 {
			if err := s.driver.Create(ctx, accts[i].mailbox, accts[i].hostPW, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	// English words that must not show on a Czech page (texts of every
	// layer: panel, engine, diagnosis, validation).
	english := regexp.MustCompile(`\b(the|and|Login works|mailbox|folders?|messages?|password|Start|Check)\b`)
	noEnglish := func(where, sel string) {
		t.Helper()
		text := p.text(sel)
		// Addresses, folder names and server lines are data, not words.
		text = regexp.MustCompile(`[\w.+-]+@[\w.-]+|«[^»]*»|"[^"]*"`).ReplaceAllString(text, "")
		if m := english.FindString(text); m != "" {
			t.Errorf("%s: English %q in the Czech page:\n%s", where, m, text)
		}
	}

	p.do(chromedp.Navigate(s.url+"/login"), chromedp.WaitVisible(chromedp.ID("email")))
	p.post(`.langs a[lang="cs"]`, "#email")
	if lang := p.eval(`document.documentElement.lang`); lang != "cs" || !strings.Contains(p.text("h1"), "Přihlášení") {
		t.Fatalf("after the switch: lang %q, %q", lang, p.text("h1"))
	}
	p.shot("cs-signin")
	p.signIn(s.url, "jana@firma.test", panelPassword)
	if h := p.text("main"); !strings.Contains(h, "Vaše domény") {
		t.Errorf("home page in Czech:\n%s", h)
	}
	p.do(chromedp.Click(chromedp.CSS(`a[href="/domains/firma.test"]`)), chromedp.WaitVisible(chromedp.ID("tool")))
	noEnglish("tool", "#tool")
	p.shot("cs-domain")

	// A refused line, in Czech.
	p.setForm(sourceFields(s, accts[2].srcUser+" "+accts[2].srcPass+"\nadam heslo-bez-domeny-99\n"))
	p.post(`button[value=start]`, "#errors")
	if e := p.text("#errors"); !strings.Contains(e, "Řádek 2") || !strings.Contains(e, "nemá doménu") {
		t.Errorf("refused line:\n%s", e)
	}
	noEnglish("errors", "#errors")
	p.shot("cs-errors")

	// Check: petr's old password is wrong.
	p.fill("127.0.0.1", s.src.IMAPPort, accts, "spatne-heslo", "")
	p.post(`.buttons button[value=check]`, "#checks")
	p.eval(`document.querySelectorAll("#checks details").forEach(d => d.open = true); ""`)
	checks := p.text("#checks")
	for _, w := range []string{"Přihlášení funguje", "Heslo může být staré", "Plán složek: 30 zpráv", "složek", "Původní schránka"} {
		if !strings.Contains(checks, w) {
			t.Errorf("check results lack %q:\n%s", w, checks)
		}
	}
	noEnglish("checks", "#checks")
	p.shot("cs-check")

	// Start; the progress and its sizes are Czech without a reload.
	p.fill("127.0.0.1", s.src.IMAPPort, accts, accts[1].srcPass, accts[2].srcUser+" "+accts[2].srcPass+"\n")
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done,done,done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	tasks := p.text("#tasks")
	if !strings.Contains(tasks, "Hotovo") || !regexp.MustCompile(`\d,\d (KB|MB)`).MatchString(tasks) {
		t.Errorf("migration page in Czech:\n%s", tasks)
	}
	if next := p.text("#next"); !strings.Contains(next, "Další kroky") {
		t.Errorf("next steps:\n%s", next)
	}
	p.shot("cs-migration")
	p.eval(`document.querySelectorAll("#tasks details").forEach(d => d.open = true); ""`)
	noEnglish("migration", "#tasks")
	csv := p.eval(`fetch(document.querySelector("#tasks tbody tr[id^=task-] .report a").href).then(r => r.text())`)
	if !strings.HasPrefix(csv, "source_folder,") {
		t.Errorf("report:\n%s", csv)
	}

	// The DNS check, in Czech.
	p.do(chromedp.Click(chromedp.CSS(`#next a[href$="/dns"]`)), chromedp.WaitVisible(chromedp.ID("dns")))
	dns := p.text("#dns")
	if !strings.Contains(dns, "mx.hosting.test") || !strings.Contains(dns, "Nastavte záznam") {
		t.Errorf("DNS check in Czech:\n%s", dns)
	}
	noEnglish("dns", "#dns")
	p.shot("cs-dns")
	for _, a := range accts {
		s.verifyByName(a)
	}
}
