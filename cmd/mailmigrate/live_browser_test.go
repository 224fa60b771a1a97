package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The migration page stays true without a reload: while one mailbox runs
// out of space and another finishes, each row shows the actions of its
// state as it changes (Resume and no Cancel on the paused one, Restart and
// no Cancel on the finished one) with its start and finish times; after a
// resume the old out-of-space messages are gone; and the page lists every
// run of a mailbox, newest first.
func TestPanelLiveStates(t *testing.T) {
	bctx := browser(t)
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")

	small := account{srcUser: "small@old.test", srcPass: "small-heslo", mailbox: "small@firma.test", hostPW: "small-host-1"}
	big := account{srcUser: "big@old.test", srcPass: "big-heslo", mailbox: "big@firma.test", hostPW: "big-host-1"}
	small.messages = s.sourceAccount(small.srcUser, small.srcPass, 21, 400)
	big.messages = s.sourceAccount(big.srcUser, big.srcPass, 22, 600)
	// The small mailbox holds about half of its mail: it pauses midway,
	// after the page is open.
	if err := s.driver.Create(ctx, small.mailbox, small.hostPW, halfQuota(21, 400)); err != nil {
		t.Fatal(err)
	}
	if err := s.driver.Create(ctx, big.mailbox, big.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	s.start()
	p := page{t: t, ctx: bctx, logs: s.logs.String}
	p.signIn(s.url, "jana@firma.test", panelPassword)

	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	var m migrationOut
	code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source,
		"sync": []map[string]string{
			{"mailbox": small.mailbox, "hosting_password": small.hostPW, "source_user": small.srcUser, "source_password": small.srcPass},
			{"mailbox": big.mailbox, "hosting_password": big.hostPW, "source_user": big.srcUser, "source_password": big.srcPass}}}, &m)
	if code != 201 || len(m.Tasks) != 2 {
		t.Fatalf("create: %d %s", code, body)
	}
	smallRow, bigRow := fmt.Sprintf("#task-%d", m.Tasks[0].ID), fmt.Sprintf("#task-%d", m.Tasks[1].ID)
	p.do(chromedp.Navigate(fmt.Sprintf("%s/migrations/%d", s.url, m.ID)), chromedp.WaitVisible(chromedp.ID("tasks")))
	if live := p.eval(`document.getElementById("tasks").dataset.live || ""`); live != "1" {
		t.Fatalf("the migration had finished before its page was open (%q): the test cannot watch it", live)
	}
	p.eval(`window.__samePage = "yes"`)
	visible := func(sel string) bool {
		t.Helper()
		return p.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); return el && el.offsetParent !== null ? "yes" : "no"; })()`, sel)) == "yes"
	}

	// The small mailbox pauses: Resume, no Cancel, why, and when.
	p.do(chromedp.WaitVisible(chromedp.CSS(smallRow + `[data-state="paused_over_quota"] form[action$="/resume"] button`)))
	if visible(smallRow+` form[action$="/cancel"]`) || visible(smallRow+` form[action$="/restart"]`) {
		t.Error("a paused mailbox offers Cancel or Restart")
	}
	if f := p.text(smallRow + " .state .failure"); !strings.Contains(f, "full") {
		t.Errorf("paused mailbox's message: %q", f)
	}
	if !visible(smallRow+" .times .started") || !visible(smallRow+" .times .finished") {
		t.Errorf("paused mailbox's times: %q", p.text(smallRow+" .times"))
	}
	// The big one finishes: Restart, no Cancel, its finish time; then the restart of all.
	p.do(chromedp.WaitVisible(chromedp.CSS(bigRow+`[data-state="done"] form[action$="/restart"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#tasks[data-finished="1"]`)), chromedp.WaitVisible(chromedp.ID("restart-all")))
	if visible(bigRow+` form[action$="/cancel"]`) || visible(bigRow+` form[action$="/resume"]`) {
		t.Error("a finished mailbox offers Cancel or Resume")
	}
	if !visible(bigRow+" .times .finished") || !visible(bigRow+" .report a") {
		t.Errorf("finished mailbox's times %q and report %q", p.text(bigRow+" .times"), p.text(bigRow+" .report"))
	}
	if same := p.eval(`window.__samePage || "reloaded"`); same != "yes" {
		t.Error("the page reloaded to show the states")
	}
	// The paused run is listed at once.
	p.waitFor(fmt.Sprintf(`String((document.querySelector("#runs-%d ol.runs > li") || {dataset: {}}).dataset.state === "paused_over_quota")`, m.Tasks[0].ID))
	p.shot("live-paused")

	// More space, then Resume: the old out-of-space messages are gone.
	if err := s.driver.SetQuota(ctx, small.mailbox, 1<<30); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // Dovecot re-reads a passwd-file at most once a second
	// The form posts and the page comes back: wait for the new page, not
	// the old one still on screen.
	p.eval(`window.__beforeResume = "yes"; ""`)
	p.do(chromedp.Click(chromedp.CSS(smallRow + ` form[action$="/resume"] button`)))
	p.waitFor(`String(!window.__beforeResume && !!document.getElementById("tasks"))`)
	if st := p.eval(fmt.Sprintf(`document.querySelector(%q).dataset.state`, smallRow)); st == "paused_over_quota" {
		t.Fatal("still paused after Resume")
	}
	if visible(smallRow+" .state .space") || visible(smallRow+" .state .failure") {
		t.Errorf("after Resume the page still says:\n%s", p.text(smallRow+" .state"))
	}
	p.eval(`window.__samePage = "yes"`)
	p.do(chromedp.WaitVisible(chromedp.CSS(smallRow + `[data-state="done"] form[action$="/restart"] button`)))
	if visible(smallRow+` form[action$="/resume"]`) || visible(smallRow+` form[action$="/cancel"]`) ||
		visible(smallRow+" .state .failure") || !visible(smallRow+" .times .finished") {
		t.Errorf("resumed mailbox at the end:\n%s", p.text(smallRow))
	}

	// Two runs of the small mailbox, newest first, each with its folders,
	// listed as they end, without a reload.
	runs := fmt.Sprintf("#runs-%d", m.Tasks[0].ID)
	kinds := fmt.Sprintf(`Array.from(document.querySelectorAll("%s ol.runs > li")).map(li => li.dataset.kind + ":" + li.dataset.state).join(",")`, runs)
	p.waitFor(fmt.Sprintf(`String(%s === "resume:done,first:paused_over_quota")`, kinds))
	if !visible(fmt.Sprintf("#folders-%d", m.Tasks[0].ID)) {
		t.Error("the resumed mailbox's folder report is not shown")
	}
	if same := p.eval(`window.__samePage || "reloaded"`); same != "yes" {
		t.Error("the page reloaded to show the runs")
	}
	p.eval(fmt.Sprintf(`(() => { document.querySelectorAll("%s details").forEach(d => d.open = true); return ""; })()`, runs))
	if text := p.text(runs); !strings.Contains(text, "INBOX") || !strings.Contains(text, "already there") {
		t.Errorf("runs:\n%s", text)
	}
	p.shot("live-runs")
	csv := p.eval(fmt.Sprintf(`fetch(document.querySelector("%s li:last-child .downloads a").href).then(r => r.text())`, runs))
	if !strings.HasPrefix(csv, "source_folder,") || !strings.Contains(csv, "INBOX") {
		t.Errorf("first run's report:\n%s", csv)
	}
}
