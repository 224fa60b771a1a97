package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A customer who types an old login at a well-known provider sees, as it
// is typed, what that provider needs first (an app password, IMAP
// switched on); a Check shows the same from the server, and a server name
// no table knows shows nothing.
func TestPanelProviderHintsAsTyped(t *testing.T) {
	s, p := submitService(t)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)
	hints := func() string { return p.eval(`document.getElementById("provider-hints").innerText`) }
	if h := hints(); h != "" {
		t.Fatalf("hints before anything is typed: %q", h)
	}
	p.do(chromedp.SendKeys(chromedp.ID("new_mailboxes"), "jana.novakova@seznam.cz stare-heslo-1234"))
	p.waitFor(`String(!!document.querySelector('#provider-hints [data-provider="seznam"]'))`)
	if h := hints(); !strings.Contains(h, "Seznam.cz needs an application password") {
		t.Errorf("hint for a seznam.cz login: %q", h)
	}
	p.do(chromedp.SendKeys(chromedp.ID("source_host"), "imap.mail.me.com"))
	p.waitFor(`String(document.querySelectorAll("#provider-hints .provider-hint").length === 2)`)
	if h := hints(); !strings.Contains(h, "iCloud Mail needs an app-specific password") {
		t.Errorf("hint for iCloud's server: %q", h)
	}
	p.shot("provider-hints")
	// A password does not count as a login, and a look-alike domain is
	// not the provider's.
	set := func(id, value string) {
		p.eval(fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %q;
			el.dispatchEvent(new Event("input", {bubbles: true})); return ""; })()`, id, value))
	}
	set("source_host", "imap.example.net")
	set("new_mailboxes", "petr@notgmail.com petr@gmail.com")
	p.waitFor(`String(document.querySelectorAll("#provider-hints .provider-hint").length === 0)`)

	// The server says the same after a Check, without the script.
	set("new_mailboxes", "petr@gmail.com x")
	p.post(`.buttons button[value=check]`, "#tool")
	if h := p.eval(`document.getElementById("provider-hints").innerHTML`); !strings.Contains(h, `data-provider="gmail"`) {
		t.Errorf("hints after Check: %q", h)
	}
}
