package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Check, then Start, without typing passwords twice: the passwords of the
// logins a check found working are kept on the server for this sign-in,
// so Start needs only the ones that failed; the page never holds a
// password, and the kept logins are of no use to another session or
// after signing out.
func TestCheckThenStartKeepsPasswordsInBrowser(t *testing.T) {
	s, p := submitService(t)
	ctx := context.Background()
	ema := account{srcUser: "ema@old-domain.test", srcPass: "Ema-stare-heslo-41", mailbox: "ema@firma.test", hostPW: "Ema-tady-heslo-41"}
	filip := account{srcUser: "filip@old-domain.test", srcPass: "Filip-stare-heslo-42", mailbox: "filip@firma.test", hostPW: "Filip-tady-heslo-42"}
	gita := account{srcUser: "gita@old-domain.test", srcPass: "Gita-stare-heslo-43", mailbox: "gita@firma.test", hostPW: "Gita-stare-heslo-43"}
	hugo := account{srcUser: "hugo@w123456", srcPass: "Hugo-stare-heslo-44", mailbox: "hugo@firma.test", hostPW: "Hugo-nove-heslo-44"}
	for i, a := range []*account{&ema, &filip, &gita, &hugo} {
		a.messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(41+i), 12)
	}
	for _, a := range []account{ema, filip} {
		if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.secrets = append(s.secrets, ema.hostPW, filip.hostPW, hugo.hostPW)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)

	// Check: filip's old password and hugo's old password are wrong.
	form := sourceFields(s, fmt.Sprintf("%s %s\n%s %s %s\n", gita.srcUser, gita.srcPass, hugo.srcUser, "Spatne-heslo-49", hugo.hostPW))
	for _, a := range []struct {
		account
		srcPass string
	}{{ema, ema.srcPass}, {filip, "Spatne-heslo-48"}} {
		form[fmt.Sprintf(`input[name="hp:%s"]`, a.mailbox)] = a.hostPW
		form[fmt.Sprintf(`input[name="su:%s"]`, a.mailbox)] = a.srcUser
		form[fmt.Sprintf(`input[name="sp:%s"]`, a.mailbox)] = a.srcPass
	}
	p.setForm(form, ema.mailbox, filip.mailbox)
	p.post(`.buttons button[value=check]`, "#checks")
	if !strings.Contains(p.text("#kept"), "15 minutes") {
		t.Fatalf("no word of kept passwords:\n%s", p.text("#checks"))
	}
	kept := func(name string) string {
		return p.eval(fmt.Sprintf(`(document.querySelector('input[name=%q]') || {}).placeholder || ""`, name))
	}
	for name, want := range map[string]bool{"hp:" + ema.mailbox: true, "sp:" + ema.mailbox: true,
		"hp:" + filip.mailbox: false, "sp:" + filip.mailbox: false} {
		if got := kept(name) != ""; got != want {
			t.Errorf("%s marked kept: %v, want %v", name, got, want)
		}
	}
	if p.eval(`document.getElementById("lines-kept") ? "yes" : "no"`) != "yes" {
		t.Error("the lines do not say their checked passwords are kept")
	}
	html := p.eval(`document.documentElement.outerHTML`)
	for _, sec := range []string{ema.srcPass, ema.hostPW, filip.hostPW, gita.srcPass, hugo.hostPW} {
		if strings.Contains(html, sec) {
			t.Errorf("a password is in the page after the check: %s", sec)
		}
	}
	handle := p.eval(`document.querySelector('input[name=kept]').value`)
	p.shot("check-kept")

	// Start with only what failed typed again: filip's old password and
	// hugo's line (the others keep their logins only).
	lines := p.eval(`document.getElementById("new_mailboxes").value`)
	lines = strings.Replace(lines, hugo.srcUser+" ", fmt.Sprintf("%s %s %s", hugo.srcUser, hugo.srcPass, hugo.hostPW), 1)
	p.setForm(map[string]string{"#new_mailboxes": lines, fmt.Sprintf(`input[name="sp:%s"]`, filip.mailbox): filip.srcPass,
		fmt.Sprintf(`input[name="hp:%s"]`, filip.mailbox): filip.hostPW}, ema.mailbox, filip.mailbox)
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done,done,done,done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	for _, a := range []account{ema, filip, gita, hugo} {
		s.verifyByName(a)
	}
	if c, err := s.dst.Login(hugo.mailbox, hugo.hostPW); err != nil {
		t.Errorf("hugo's new password: %v", err)
	} else {
		c.Close()
	}

	// Used once: the same handle, in this session or after signing in
	// again, fills in nothing.
	reuse := func(name string) {
		p.openDomain(s)
		p.setForm(map[string]string{"#source_host": "127.0.0.1", "#source_port": fmt.Sprint(s.src.IMAPPort), "#source_security": "plain",
			"#new_mailboxes": gita.srcUser})
		p.eval(fmt.Sprintf(`const h = document.createElement("input"); h.type = "hidden"; h.name = "kept"; h.value = %q;
			document.getElementById("tool").appendChild(h); ""`, handle))
		p.post(`button[value=start]`, "#errors")
		if e := p.text("#errors"); !strings.Contains(e, "no password") {
			t.Errorf("%s: a used handle still filled in passwords:\n%s", name, e)
		}
	}
	reuse("used handle")

	// A fresh check's handle is of no use after signing out.
	p.openDomain(s)
	again := sourceFields(s, "")
	again[fmt.Sprintf(`input[name="hp:%s"]`, ema.mailbox)] = ema.hostPW
	again[fmt.Sprintf(`input[name="su:%s"]`, ema.mailbox)] = ema.srcUser
	again[fmt.Sprintf(`input[name="sp:%s"]`, ema.mailbox)] = ema.srcPass
	p.setForm(again, ema.mailbox)
	p.post(`.buttons button[value=check]`, "#kept")
	handle = p.eval(`document.querySelector('input[name=kept]').value`)
	p.do(chromedp.Click(chromedp.CSS(`.signout button`)), chromedp.WaitVisible(chromedp.ID("email")))
	p.signIn(s.url, "jana@firma.test", panelPassword)
	reuse("after signing out")
}
