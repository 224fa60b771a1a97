package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Check logins shows, per existing mailbox and before anything starts,
// the old mailbox's size against the free space here and the folder
// plan; a mailbox too small says by how much, and the API answer carries
// the same plan. The typed passwords are not in the page.
func TestPanelCheckShowsPlan(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")

	roomy := account{srcUser: "roomy@old.test", srcPass: "roomy-heslo-1", mailbox: "roomy@firma.test", hostPW: "roomy-host-1"}
	small := account{srcUser: "small@old.test", srcPass: "small-heslo-2", mailbox: "small@firma.test", hostPW: "small-host-2"}
	roomy.messages = s.sourceAccount(roomy.srcUser, roomy.srcPass, 31, 40)
	small.messages = s.sourceAccount(small.srcUser, small.srcPass, 32, 200)
	if err := s.driver.Create(ctx, roomy.mailbox, roomy.hostPW, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.driver.Create(ctx, small.mailbox, small.hostPW, halfQuota(32, 200)); err != nil {
		t.Fatal(err)
	}
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.do(chromedp.Click(chromedp.CSS(`a[href="/domains/firma.test"]`)), chromedp.WaitVisible(chromedp.ID("tool")))

	// The domain page has no check result yet, so #checks marks the new page.
	p.fill("127.0.0.1", s.src.IMAPPort, []account{roomy, small}, small.srcPass, "")
	p.do(chromedp.Click(chromedp.CSS(`.buttons button[value=check]`)), chromedp.WaitVisible(chromedp.ID("checks")))
	row := func(mailbox string) string {
		return p.eval(`(() => { const li = Array.from(document.querySelectorAll("#checks li[data-row]")).find(li => li.querySelector("strong").textContent === "` +
			mailbox + `"); if (!li) return "missing"; li.querySelectorAll("details").forEach(d => d.open = true); return li.innerText; })()`)
	}
	r := row(roomy.mailbox)
	if !strings.Contains(r, "Login works") || !strings.Contains(r, "Old mailbox:") || !strings.Contains(r, "free here: 1.0 GB") ||
		!strings.Contains(r, "Folder plan: 40 messages") || !strings.Contains(r, "INBOX") || strings.Contains(r, "will not fit") {
		t.Errorf("roomy mailbox's check:\n%s", r)
	}
	sm := row(small.mailbox)
	if !strings.Contains(sm, "Folder plan: 200 messages") || !strings.Contains(sm, "will not fit") || !strings.Contains(sm, "too little") {
		t.Errorf("small mailbox's check:\n%s", sm)
	}
	if n := p.eval(`String(document.querySelectorAll("#checks .shortfall").length)`); n != "1" {
		t.Errorf("%s shortfall warnings, want 1", n)
	}
	// The summary does not say "you can start" over a mailbox that will
	// not fit.
	if head := p.eval(`document.querySelector("#checks > p").textContent`); !strings.Contains(head, "too small") {
		t.Errorf("check summary: %q", head)
	}
	html := p.eval(`document.documentElement.outerHTML`)
	for _, pw := range []string{roomy.srcPass, roomy.hostPW, small.srcPass, small.hostPW} {
		if strings.Contains(html, pw) {
			t.Errorf("the password %q is in the page after the check", pw)
		}
	}
	p.shot("check-plan")

	// The API answers the same plan.
	var ans struct {
		OK     bool
		Checks []struct {
			Mailbox string
			Plan    *struct {
				Messages       int
				SizeBytes      int64  `json:"size_bytes"`
				FreeBytes      *int64 `json:"free_bytes"`
				ShortfallBytes int64  `json:"shortfall_bytes"`
				Warning        string
				Folders        []struct {
					Source, Destination string
					Messages            int
				}
			}
		}
	}
	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	code, body := s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": source,
		"sync": []map[string]string{
			{"mailbox": roomy.mailbox, "hosting_password": roomy.hostPW, "source_user": roomy.srcUser, "source_password": roomy.srcPass},
			{"mailbox": small.mailbox, "hosting_password": small.hostPW, "source_user": small.srcUser, "source_password": small.srcPass}}}, &ans)
	if code != 200 || !ans.OK || len(ans.Checks) != 2 || ans.Checks[0].Plan == nil || ans.Checks[1].Plan == nil {
		t.Fatalf("check: %d %s", code, body)
	}
	rp, sp := ans.Checks[0].Plan, ans.Checks[1].Plan
	if rp.Messages != 40 || rp.SizeBytes <= 0 || rp.FreeBytes == nil || rp.ShortfallBytes != 0 || rp.Warning != "" || len(rp.Folders) == 0 {
		t.Errorf("roomy plan: %s", body)
	}
	if sp.Messages != 200 || sp.ShortfallBytes <= 0 || sp.Warning == "" {
		t.Errorf("small plan: %s", body)
	}
	sum := 0
	for _, f := range rp.Folders {
		sum += f.Messages
	}
	if sum != 40 {
		t.Errorf("the roomy plan's folders hold %d messages, want 40: %s", sum, body)
	}
}
