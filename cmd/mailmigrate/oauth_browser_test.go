package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/testbed"
)

// An old mailbox at Microsoft is signed in to from the panel instead of
// giving its password: the "Sign in with Microsoft" button of its row
// goes to the provider (here a local authorization server that approves
// at once) and back to the form as it was, the copy starts with the
// sealed refresh token, and when the sign-in is withdrawn the task stops
// in a "sign in again" state whose button signs in again and resumes it:
// every message once. No token or client secret is in a page or the log.
func TestSignInWithProviderInBrowser(t *testing.T) {
	const oldUser, hostPW = "eva@outlook.com", "Eva-tady-heslo-61"
	srv, src, s, p := microsoftPanel(t, oldUser, true)
	const mailbox = "eva@firma.test"
	if err := s.driver.Create(context.Background(), mailbox, hostPW, 0); err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, hostPW)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)

	form := map[string]string{"#source_host": "127.0.0.1", "#source_port": fmt.Sprint(src.Port), "#source_security": "plain",
		`input[name="hp:` + mailbox + `"]`: hostPW, `input[name="su:` + mailbox + `"]`: oldUser}
	// Without a password the check fails; the row now offers the sign-in
	// (the login is an Outlook.com address).
	p.setForm(form, mailbox)
	p.post(`.buttons button[value=check]`, "#errors")
	signInButton := `button[value="signin:` + mailbox + `"]`
	if p.eval(fmt.Sprintf(`document.querySelector(%q) ? document.querySelector(%q).textContent : ""`, signInButton, signInButton)) != "Sign in with Microsoft" {
		t.Fatalf("no sign-in button in the row:\n%s", p.text("#tool"))
	}
	p.setForm(map[string]string{`input[name="hp:` + mailbox + `"]`: hostPW}, mailbox)
	p.post(signInButton, "#signin-notice")
	if got := p.eval(`document.querySelector(".signedin") ? document.querySelector(".signedin").dataset.mailbox : ""`); got != mailbox {
		t.Fatalf("the row is not signed in (%q):\n%s", got, p.text("#tool"))
	}
	if p.eval(`document.getElementById("source_host").value + ":" + document.getElementById("source_port").value`) != fmt.Sprintf("127.0.0.1:%d", src.Port) ||
		p.eval(`String(document.querySelector('input[name="sync"][value="`+mailbox+`"]').checked)`) != "true" {
		t.Errorf("the form did not come back as it was left")
	}
	p.shot("oauth-signed-in")
	p.post(`.buttons button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	if n := destMessages(t, s, mailbox, hostPW); n != 15 {
		t.Fatalf("the mailbox holds %d messages, want 15", n)
	}
	migration := p.eval(`location.pathname`)

	// The customer withdraws the access: a restart stops, asking to sign
	// in again, and the button resumes the task.
	srv.RevokeAll()
	p.post(`form[action$="/restart"] button`, "#tasks")
	// The page as it is rendered once the run ended (the button is not
	// added by live updates), loaded once the database says so: loading
	// it again and again could take more than a minute (each load opens
	// an event stream).
	st := s.openStore()
	defer st.Close()
	id, _ := strconv.ParseInt(strings.TrimPrefix(migration, "/migrations/"), 10, 64)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ts, err := st.Tasks(context.Background(), id); err == nil && len(ts) == 1 && ts[0].State == "failed" {
			break
		}
	}
	p.do(chromedp.Navigate(s.url+migration), chromedp.WaitVisible(chromedp.ID("tasks")))
	if state := p.eval(`document.querySelector("#tasks tbody tr[id^=task-]").dataset.state`); state != "failed" {
		t.Fatalf("after the revocation: %s\n%s", state, s.logs.String())
	}
	if f := p.text("#tasks .failure"); !strings.Contains(f, "Sign in with the provider again") {
		t.Errorf("the failure does not ask to sign in again: %s", f)
	}
	p.shot("oauth-sign-in-again")
	p.post(`form.signin-again button`, "#signin-notice")
	if states := p.waitFinished(); states != "done" {
		t.Fatalf("after signing in again: %s\n%s", states, s.logs.String())
	}
	if n := destMessages(t, s, mailbox, hostPW); n != 15 {
		t.Errorf("after the resumed copy the mailbox holds %d messages, want 15", n)
	}

	html := p.eval(`document.documentElement.outerHTML`)
	for _, sec := range append(srv.Tokens(), panelClientSecret) {
		if strings.Contains(html, sec) || strings.Contains(s.logs.String(), sec) {
			t.Fatalf("a token or the client secret is in the page or the log")
		}
	}
}

// destMessages counts the messages of a hosting mailbox's INBOX.
func destMessages(t *testing.T, s *service, user, pass string) uint32 {
	t.Helper()
	c := s.dst.LoginT(t, user, pass)
	defer c.Close()
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumMessages
}

// A pasted line of New Mailbox Migration whose old mailbox is at
// Microsoft: its check fails on the password, the button in its check
// result (outside the form, which it submits) signs in with Microsoft and
// brings the form back with the line signed in and checked, and Start
// creates the mailbox with the line's password and fills it through the
// sign-in. No token or client secret is in the page or the log.
func TestLineSignInWithProviderInBrowser(t *testing.T) {
	const oldUser, newPW = "eva@outlook.com", "Eva-Nove-Heslo-62"
	srv, src, s, p := microsoftPanel(t, oldUser, false)
	s.secrets = append(s.secrets, newPW)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)

	p.setForm(map[string]string{"#source_host": "127.0.0.1", "#source_port": fmt.Sprint(src.Port), "#source_security": "plain",
		"#new_mailboxes": oldUser + " " + newPW})
	p.post(`.buttons button[value=check]`, "#checks")
	button := `#checks li[data-row="line 1"] button[value="signin-line:` + oldUser + `"]`
	if got := p.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).className || ""`, button)); got != "signin primary" {
		t.Fatalf("the refused line offers no sign-in (%q):\n%s", got, p.text("#checks"))
	}
	p.shot("oauth-line-refused")
	p.post(button, "#signin-notice")
	if p.eval(`document.querySelector('#checks li[data-row="line 1"].okrow .signedin') ? "yes" : "no"`) != "yes" ||
		p.eval(`document.querySelector('#signed-lines li[data-login="`+oldUser+`"]') ? "yes" : "no"`) != "yes" {
		t.Fatalf("the line did not come back signed in and checked:\n%s\n%s", p.text("#checks"), p.text("#tool"))
	}
	if lines := p.eval(`document.getElementById("new_mailboxes").value`); strings.TrimSpace(lines) != oldUser {
		t.Errorf("the text box holds %q, want the line's login", lines)
	}
	p.shot("oauth-line-signed-in")
	p.post(`.buttons button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	if n := destMessages(t, s, "eva@firma.test", newPW); n != 15 {
		t.Fatalf("the new mailbox holds %d messages, want 15", n)
	}
	html := p.eval(`document.documentElement.outerHTML`)
	for _, sec := range append(srv.Tokens(), panelClientSecret) {
		if strings.Contains(html, sec) || strings.Contains(s.logs.String(), sec) {
			t.Fatalf("a token or the client secret is in the page or the log")
		}
	}
}

// panelClientSecret is the hosting's OAuth client secret in the browser
// tests: never in a page or the log.
const panelClientSecret = "panel-client-secret-never-shown"

// microsoftPanel starts what the browser tests of signing in with
// Microsoft share: a local authorization server that approves oldUser
// (rotating refresh tokens if asked), an old server with 15 messages that
// takes only its tokens, a service registered with that server as
// Microsoft, a customer with a panel user, and a browser page.
func microsoftPanel(t *testing.T, oldUser string, rotate bool) (*testbed.OAuthServer, *testbed.Hostile, *service, page) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm-panel", ClientSecret: panelClientSecret,
		User: oldUser, RotateRefresh: rotate})
	src := testbed.StartHostile(t, testbed.HostileConfig{User: oldUser, Caps: []string{"AUTH=XOAUTH2"}, CheckToken: srv.Valid,
		Folders: []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 5, Messages: oauthMessages(15)}}})
	bctx := browser(t)
	s := newServiceWith(t, "10m", false, fmt.Sprintf("oauth.microsoft.client_id = mm-panel\noauth.microsoft.client_secret = %s\n"+
		"oauth.microsoft.auth_url = %s\noauth.microsoft.token_url = %s\n", panelClientSecret, srv.AuthURL, srv.TokenURL))
	s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	s.secrets = append(s.secrets, panelClientSecret)
	return srv, src, s, page{t: t, ctx: bctx, logs: s.logs.String}
}
