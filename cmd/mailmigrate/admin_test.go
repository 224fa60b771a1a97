package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// runAdminCmd runs mailmigrate admin with a configuration and standard
// input (not a terminal), and returns its exit code and output.
func runAdminCmd(t *testing.T, conf, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"admin", "--config", conf}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Every admin command, as an operator types them one after another on one
// database, with the refusals: what is missing, what would leave no
// operator, what is still being copied, and deletions without --yes.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "mailmigrate.conf")
	data := filepath.Join(dir, "data")
	text := "data_dir = " + data + "\n"
	openStore := func() (*store.DB, error) { return store.Open(filepath.Join(data, "mailmigrate.db")) }
	if onPostgres {
		url := testbed.PostgresT(t)
		text += "database = " + url + "\n"
		openStore = func() (*store.DB, error) { return store.OpenPostgres(context.Background(), url) }
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("heslo ze souboru\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var tokens []string // every token printed, which no other output may show
	var queued store.Task
	// withStore changes the database as the service would, between two
	// commands.
	withStore := func(f func(st *store.DB, d store.Domain)) func() {
		return func() {
			st, err := openStore()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			d, err := st.DomainByName(context.Background(), "firma.test")
			if err != nil {
				t.Fatal(err)
			}
			f(st, d)
		}
	}
	for _, c := range []struct {
		args   string // split at spaces; "_" stands for a space inside an argument
		stdin  string
		before func()
		code   int
		want   []string
	}{
		{args: "init --name Hosting", code: 0, want: []string{"API token for Hosting (shown once"}},
		{args: "init", code: exitUsage, want: []string{"an operator exists already (Hosting)"}},
		{args: "customer add Firma_s.r.o.", code: 0, want: []string{"customer Firma s.r.o. added"}},
		{args: "domain add --customer firma_s.r.o. --mailbox-limit 5 firma.test", code: 0, want: []string{"domain firma.test added for Firma s.r.o."}},
		{args: "domain add --customer Nikdo jina.test", code: exitUsage, want: []string{`no operator or customer named "Nikdo"`}},
		{args: "token add --tenant Firma_s.r.o. --label crm", code: 0, want: []string{"API token for Firma s.r.o."}},
		{args: "user add --tenant Firma_s.r.o. jana@firma.test", stdin: "dlouhe heslo 1\n", code: 0,
			want: []string{"jana@firma.test can sign in to the panel for Firma s.r.o."}},
		{args: "user add --tenant Firma_s.r.o. petr@firma.test", stdin: "kratke\n", code: exitUsage, want: []string{"at least 10 characters"}},
		{args: "user add --tenant Hosting eva@hosting.test --password-file " + pwFile, code: 0, want: []string{"eva@hosting.test can sign in"}},

		{args: "customer list", code: 0, want: []string{"NAME", "Firma s.r.o.  customer  enabled  1        1         1",
			"Hosting       operator  enabled  0        1         1"}},
		{args: "customer show Firma_s.r.o.", code: 0, want: []string{"Firma s.r.o.: customer", "enabled",
			"firma.test (mailbox limit 5): 0 migration(s), 0 running", "jana@firma.test (enabled", `id 2 "crm"`, "last used never"}},
		{args: "customer show Nikdo", code: exitUsage, want: []string{`no operator or customer named "Nikdo"`}},
		{args: "customer show", code: exitUsage, want: []string{"usage: mailmigrate admin customer show NAME"}},
		{args: "domain list --customer Firma_s.r.o.", code: 0, want: []string{"firma.test  Firma s.r.o.  5"}},
		{args: "domain list --customer Hosting", code: 0, want: []string{"DOMAIN"}},
		{args: "domain show firma.test", code: 0, want: []string{"firma.test: customer Firma s.r.o. (enabled), mailbox limit 5"}},
		{args: "domain show jina.test", code: exitUsage, want: []string{"no domain jina.test"}},
		{args: "domain set-limit firma.test 20", code: 0, want: []string{"firma.test: mailbox limit 20 (was 5)"}},
		{args: "domain set-limit firma.test 0", code: 0, want: []string{"firma.test: mailbox limit no limit (was 20)"}},
		{args: "domain set-limit firma.test many", code: exitUsage, want: []string{`"many" is not a number of mailboxes`}},
		{args: "user list --tenant Firma_s.r.o.", code: 0, want: []string{"jana@firma.test  Firma s.r.o.  enabled"}},
		{args: "user list", code: 0, want: []string{"jana@firma.test", "eva@hosting.test  Hosting"}},
		{args: "token list --tenant Firma_s.r.o.", code: 0, want: []string{"2   Firma s.r.o.  crm"}},
		{args: "token list", code: 0, want: []string{"1   Hosting       operator", "2   Firma s.r.o.  crm"}},

		{args: "user disable jana@firma.test", code: 0, want: []string{"jana@firma.test is disabled and signed out"}},
		{args: "user list", code: 0, want: []string{"jana@firma.test   Firma s.r.o.  disabled since"}},
		{args: "user enable jana@firma.test", code: 0, want: []string{"jana@firma.test can sign in again"}},
		{args: "user disable nikdo@firma.test", code: exitUsage, want: []string{"nobody signs in as nikdo@firma.test"}},
		{args: "user password jana@firma.test", stdin: "nove dlouhe heslo\n", code: 0,
			want: []string{"new password set for jana@firma.test; 0 sign-in session(s) ended"}},
		{args: "user password jana@firma.test", stdin: "kratke\n", code: exitUsage, want: []string{"at least 10 characters"}},
		{args: "user password jana@firma.test --password-file " + pwFile + ".missing", code: exitUsage, want: []string{"--password-file"}},

		{args: "customer disable Firma_s.r.o.", code: 0, want: []string{"Firma s.r.o. is disabled"}},
		{args: "customer show Firma_s.r.o.", code: 0, want: []string{"Firma s.r.o.: customer (id 2), created", "disabled since"}},
		{args: "domain show firma.test", code: 0, want: []string{"customer Firma s.r.o. (disabled since"}},
		{args: "customer enable Firma_s.r.o.", code: 0, want: []string{"Firma s.r.o. is enabled"}},
		{args: "customer disable Hosting", code: exitFailure, want: []string{"cannot disable Hosting: it is the only enabled operator"}},
		{args: "customer delete Hosting --yes", code: exitFailure, want: []string{"cannot delete Hosting: it is the only enabled operator"}},

		// A migration queued: neither the domain nor its customer goes.
		{args: "domain show firma.test", code: 0, before: withStore(func(st *store.DB, d store.Domain) {
			_, tasks, err := st.CreateMigration(context.Background(), store.Migration{DomainID: d.ID, SourceHost: "imap.old.test", SourcePort: 993},
				[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@old.test", DestUser: "jana@firma.test"}},
				func(*sql.Tx, []store.Task) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			queued = tasks[0]
		}), want: []string{"1 migration(s), 1 running; mailboxes: 1 queued"}},
		{args: "domain delete firma.test --yes", code: exitFailure, want: []string{
			"cannot delete the domain firma.test: the mailbox jana@firma.test (migration 1) is queued or being copied"}},
		{args: "customer delete Firma_s.r.o. --yes", code: exitFailure, want: []string{"cannot delete Firma s.r.o.: the mailbox jana@firma.test"}},
		{args: "customer show Firma_s.r.o.", code: 0, before: withStore(func(st *store.DB, _ store.Domain) {
			if ok, err := st.TransitionTask(context.Background(), queued.ID, []string{store.StateQueued}, store.StateCancelled, nil); !ok || err != nil {
				t.Fatalf("cancel: %v %v", ok, err)
			}
		}), want: []string{"firma.test (mailbox limit no limit): 1 migration(s), 0 running; mailboxes: 1 cancelled"}},

		// Deleting and revoking want --yes when nobody can be asked.
		{args: "token revoke 2", code: exitUsage, want: []string{"revoking API token 2 refuses every request made with it; add --yes"}},
		{args: "token revoke 2 --yes", code: 0, want: []string{`API token 2 ("crm" of Firma s.r.o.) revoked`}},
		{args: "token revoke 2 --yes", code: exitUsage, want: []string{"no API token 2"}},
		{args: "token revoke crm --yes", code: exitUsage, want: []string{`"crm" is not a token id`}},
		{args: "user delete jana@firma.test", code: exitUsage, want: []string{"add --yes"}},
		{args: "user delete jana@firma.test --yes", code: 0, want: []string{"jana@firma.test deleted"}},
		{args: "user list --tenant Firma_s.r.o.", code: 0, want: []string{"EMAIL"}},
		{args: "domain delete firma.test", code: exitUsage, want: []string{"deleting the domain firma.test deletes its 1 migration(s)", "add --yes"}},
		{args: "customer delete Firma_s.r.o.", code: exitUsage, want: []string{
			"deleting Firma s.r.o. deletes its 1 domain(s), 1 migration(s), 0 sign-in(s) and 0 API token(s) for good; add --yes"}},
		{args: "customer add Jina", code: 0},
		{args: "domain add --customer Jina jina.test", code: 0},
		{args: "domain delete --yes jina.test", code: 0, want: []string{"domain jina.test deleted with its 0 migration(s)"}},
		{args: "customer delete --yes Firma_s.r.o.", code: 0, want: []string{"Firma s.r.o. deleted with its 1 domain(s), 1 migration(s)"}},
		{args: "customer show Firma_s.r.o.", code: exitUsage, want: []string{`no operator or customer named "Firma s.r.o."`}},
		{args: "list", code: 0, want: []string{"Hosting (operator, enabled)", "Jina (customer, enabled)"}},
		{args: "customer frobnicate", code: exitUsage, want: []string{"usage: mailmigrate admin"}},
	} {
		if c.before != nil {
			c.before()
		}
		args := strings.Fields(c.args)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "_", " ")
		}
		code, out := runAdminCmd(t, conf, c.stdin, args...)
		if code != c.code {
			t.Errorf("admin %s: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("admin %s: %q is not in\n%s", c.args, w, out)
			}
		}
		for _, tok := range tokens {
			if strings.Contains(out, tok) {
				t.Errorf("admin %s shows an API token made before:\n%s", c.args, out)
			}
		}
		if strings.Contains(out, "heslo") {
			t.Errorf("admin %s shows a password:\n%s", c.args, out)
		}
		tokens = append(tokens, tokenRE.FindAllString(out, -1)...)
	}
	if len(tokens) != 2 {
		t.Errorf("%d tokens printed, want 2 (init, token add)", len(tokens))
	}
}

// The running service follows what the admin commands change: a disabled
// customer's token and sign-in are refused with the reason, a new password
// ends the sessions and the old one no longer works, a revoked token is
// refused, and the token list says when a token was last used.
func TestAdminChangesReachTheService(t *testing.T) {
	s := newService(t, "10m", false)
	tok := s.customer("Firma", "firma.test", 10)
	s.panelUser("Firma", "jana@firma.test")
	s.start()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(password string) (int, string, *http.Cookie) {
		t.Helper()
		resp, err := noRedirect.PostForm(s.url+"/login", url.Values{"email": {"jana@firma.test"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "mm_session" {
				session = c
			}
		}
		return resp.StatusCode, string(body), session
	}
	home := func(session *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/", nil)
		req.AddCookie(session)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(what string, code int, body string, wantCode int, want string) {
		t.Helper()
		if code != wantCode || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s, want %d with %q", what, code, body, wantCode, want)
		}
	}

	code, body := s.call(tok, "GET", "/domains", nil, nil)
	expect("the customer's token", code, body, http.StatusOK, "firma.test")
	if out := s.admin("token", "list", "--tenant", "Firma"); strings.Contains(out, "never") {
		t.Errorf("the used token's last use is not shown:\n%s", out)
	}
	code, _, session := signIn(panelPassword)
	expect("sign-in", code, "", http.StatusSeeOther, "")

	s.admin("customer", "disable", "Firma")
	code, body = s.call(tok, "GET", "/domains", nil, nil)
	expect("the token of a disabled customer", code, body, http.StatusForbidden, "disabled the account of Firma")
	code, body, _ = signIn(panelPassword)
	expect("sign-in of a disabled customer", code, body, http.StatusForbidden, "disabled by the hosting")
	if code := home(session); code != http.StatusSeeOther {
		t.Errorf("the session from before disabling: %d", code)
	}

	s.admin("customer", "enable", "Firma")
	code, body = s.call(tok, "GET", "/domains", nil, nil)
	expect("the token once enabled", code, body, http.StatusOK, "firma.test")
	code, _, session = signIn(panelPassword)
	if code != http.StatusSeeOther || home(session) != http.StatusOK {
		t.Fatalf("sign-in once enabled: %d", code)
	}

	pwFile := filepath.Join(s.dir, "new.pw")
	const newPassword = "nove panel heslo 456"
	if err := os.WriteFile(pwFile, []byte(newPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, newPassword)
	if out := s.admin("user", "password", "--password-file", pwFile, "jana@firma.test"); !strings.Contains(out, "1 sign-in session(s) ended") {
		t.Errorf("password reset: %s", out)
	}
	if code := home(session); code != http.StatusSeeOther {
		t.Errorf("the session from before the new password: %d", code)
	}
	code, body, _ = signIn(panelPassword)
	expect("the old password", code, body, http.StatusUnauthorized, "not right")
	code, _, _ = signIn(newPassword)
	expect("the new password", code, "", http.StatusSeeOther, "")

	id := regexp.MustCompile(`(?m)^(\d+)\s+Firma\s`).FindStringSubmatch(s.admin("token", "list", "--tenant", "Firma"))
	if id == nil {
		t.Fatal("no token of Firma listed")
	}
	s.admin("token", "revoke", "--yes", id[1])
	code, body = s.call(tok, "GET", "/domains", nil, nil)
	expect(fmt.Sprintf("the revoked token %s", id[1]), code, body, http.StatusUnauthorized, "the API token is not valid")
}
