package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// linesBench is an oauthBench whose old server is Exchange-like (no
// password accepted, tokens of the test Microsoft) and whose hosting is
// a Dovecot whose mailboxes the panel creates, with the job queue
// running: pasted lines go from the form to the new mailboxes.
type linesBench struct {
	*oauthBench
	old     *testbed.Exchange
	dst     *testbed.Dovecot
	jobLogs *lockedBuffer
	// pages are every page the test was shown, for the leak check.
	pages []string
}

// lockedBuffer is the job queue's log, written from its workers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// exchangeMail are n messages of an old mailbox, from first on.
func exchangeMail(first, n int) []testbed.HostileMessage {
	var out []testbed.HostileMessage
	for i := first; i < first+n; i++ {
		out = append(out, testbed.HostileMessage{UID: uint32(i), Flags: []string{`\Seen`},
			Body: fmt.Appendf(nil, "Message-ID: <%d@old.test>\r\nDate: Thu, 2 Jan 2025 03:04:%02d +0000\r\n"+
				"From: a@old.test\r\nSubject: zpráva %d\r\n\r\ntext %d\r\n", i, i%60, i, i)})
	}
	return out
}

func newLinesBench(t *testing.T) *linesBench {
	lb := &linesBench{jobLogs: &lockedBuffer{}}
	lb.dst = testbed.StartDovecotT(t, testbed.DovecotOptions{SharedPasswdFile: true})
	uid, gid := lb.dst.MailOwner()
	driver, err := hosting.NewPasswdFile(hosting.PasswdFileConfig{Path: lb.dst.PasswdFile, UID: strconv.Itoa(uid), GID: strconv.Itoa(gid),
		Home: filepath.Join(lb.dst.Dir, "home", "%d", "%n"), Scheme: hosting.SchemeSHA512Crypt})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := imapconn.LoadCAFile(lb.dst.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	h := jobs.Hosting{IMAP: imapconn.Endpoint{Host: lb.dst.Host, Port: lb.dst.IMAPSPort, Security: imapconn.TLS, RootCAs: pool}, Driver: driver}
	lb.oauthBench = newOAuthBenchWith(t, func(b *oauthBench, cfg *Config) {
		folders := testbed.ExchangeFolders(false)
		folders[0].Messages = exchangeMail(1, 8)
		for i := range folders {
			if folders[i].Name == "Sent Items" {
				folders[i].Messages = exchangeMail(20, 3)
			}
		}
		lb.old = testbed.StartExchange(t, testbed.ExchangeConfig{User: "jana@outlook.com", CheckToken: b.srv.Valid, Folders: folders})
		ctx := context.Background()
		runner, err := jobs.Open(ctx, b.st, jobs.Config{Store: b.st, Box: b.box, Hosting: h, OAuth: cfg.OAuth, AllowPrivate: true,
			SingleProcess: b.st.Dialect() == store.SQLite, Log: slog.New(slog.NewTextHandler(lb.jobLogs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := runner.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { runner.Stop(context.Background()) })
		cfg.Jobs, cfg.Hosting, cfg.AllowPrivate, cfg.AllowPlaintext = runner, h, true, true
	})
	// The old server's answers, not a stand-in's.
	lb.api.tryLogin = lb.api.login
	return lb
}

// form is the domain form with the old server and the pasted lines.
func (lb *linesBench) form(action, lines, kept string) url.Values {
	f := url.Values{"source_host": {"127.0.0.1"}, "source_port": {strconv.Itoa(lb.old.Port)}, "source_security": {"plain"},
		"new_mailboxes": {lines}, "action": {action}}
	if kept != "" {
		f.Set("kept", kept)
	}
	return f
}

// page loads a page the test expects to be shown, with the status.
func (lb *linesBench) page(method, path string, form url.Values, status int) string {
	lb.t.Helper()
	rec := lb.do(method, path, form, lb.cookies[0])
	lb.pages = append(lb.pages, rec.Body.String())
	if rec.Code != status {
		lb.t.Fatalf("%s %s: %d, want %d\n%s", method, path, rec.Code, status, rec.Body.String())
	}
	return rec.Body.String()
}

// signIn presses a line's sign-in button and follows the provider back
// to the domain page; denied makes the provider refuse.
func (lb *linesBench) signIn(login, lines, kept string, denied bool) string {
	lb.t.Helper()
	lb.hint = login
	callback, _ := url.Parse(lb.provider(lb.do("POST", "/domains/firma.test", lb.form("signin-line:"+login, lines, kept), lb.cookies[0])))
	if denied {
		q := callback.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		callback.RawQuery = q.Encode()
	}
	rec := lb.do("GET", callback.RequestURI(), nil, lb.cookies[0])
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Path != "/domains/firma.test" {
		lb.t.Fatalf("callback: %d %s", rec.Code, loc)
	}
	return lb.page("GET", loc.RequestURI(), nil, http.StatusOK)
}

var keptField = regexp.MustCompile(`name="kept" value="([^"]+)"`)

// keptOf is the handle of kept logins a page carries.
func keptOf(t *testing.T, page string) string {
	t.Helper()
	m := keptField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page keeps nothing:\n%s", page)
	}
	return m[1]
}

// kept reads what a handle keeps, as the panel does.
func (lb *linesBench) kept(handle string) keptLogins {
	lb.t.Helper()
	h, session := sha256.Sum256([]byte(handle)), HashToken(lb.cookies[0].Value)
	sealed, err := lb.st.KeptLogins(context.Background(), h[:], session)
	if err != nil {
		lb.t.Fatal(err)
	}
	plain, err := lb.box.Open(sealed, keptContext(h[:], session))
	if err != nil {
		lb.t.Fatal(err)
	}
	var k keptLogins
	if err := json.Unmarshal([]byte(plain), &k); err != nil {
		lb.t.Fatal(err)
	}
	return k
}

// lineResult is a line's item of the check's results.
func lineResult(t *testing.T, page string, line int) string {
	t.Helper()
	start := strings.Index(page, fmt.Sprintf(`<li data-row="line %d"`, line))
	if start < 0 {
		t.Fatalf("no check result of line %d:\n%s", line, page)
	}
	item := page[start:]
	if end := strings.Index(item[1:], `<li data-row=`); end >= 0 {
		item = item[:end+1]
	}
	return item
}

// waitTasks waits until every task of a migration has finished.
func (lb *linesBench) waitTasks(migration int64) []store.Task {
	lb.t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ts, err := lb.st.Tasks(context.Background(), migration)
		if err != nil {
			lb.t.Fatal(err)
		}
		done := len(ts) > 0
		for _, task := range ts {
			done = done && store.Finished(task.State)
		}
		if done {
			return ts
		}
	}
	lb.t.Fatalf("the tasks of migration %d did not finish\n%s", migration, lb.jobLogs.String())
	return nil
}

// messageIDs counts the Message-IDs in every folder of a hosting mailbox,
// logged in to with its password.
func (lb *linesBench) messageIDs(user, password string) map[string]int {
	lb.t.Helper()
	c := lb.dst.LoginT(lb.t, user, password)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		lb.t.Fatal(err)
	}
	ids := map[string]int{}
	for _, l := range list {
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil || sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			lb.t.Fatal(err)
		}
		for _, m := range msgs {
			ids[m.Envelope.MessageID]++
		}
	}
	return ids
}

// A pasted line of a Microsoft mailbox, whose password the old server
// refuses, is signed in to with Microsoft from its check result: the form
// comes back with the line signed in and checked with the token, Start
// creates the mailbox with the line's password and fills it with every
// message once, read with the sign-in. When the customer withdraws the
// access, the task asks to sign in again, and that resumes it. No token
// is in a page or a log.
func TestLineSignsInWithProvider(t *testing.T) {
	lb := newLinesBench(t)
	const line = "jana@outlook.com Stare-Heslo-2025"
	page := lb.page("POST", "/domains/firma.test", lb.form("check", line, ""), http.StatusOK)
	result := lineResult(t, page, 1)
	if strings.Contains(result, "okrow") || !strings.Contains(result, `value="signin-line:jana@outlook.com" class="signin primary"`) ||
		!strings.Contains(result, "sign in with the provider instead") {
		t.Fatalf("the refused line offers no sign-in:\n%s", result)
	}
	if strings.Contains(page, `id="kept"`) {
		t.Errorf("the page says working logins are kept, while none works:\n%s", page)
	}
	if strings.Contains(page, "Stare-Heslo-2025") || !strings.Contains(page, "jana@outlook.com </textarea>") {
		t.Fatalf("the text box is not the line without its password:\n%s", page)
	}

	page = lb.signIn("jana@outlook.com", "jana@outlook.com ", keptOf(t, page), false)
	result = lineResult(t, page, 1)
	if !strings.Contains(page, "the old mailbox is read with this sign-in") ||
		!strings.Contains(result, "okrow") || !strings.Contains(result, `<span class="signedin" data-login="jana@outlook.com" data-provider="microsoft">Signed in with Microsoft`) {
		t.Fatalf("the line did not come back signed in and checked:\n%s", page)
	}
	if !strings.Contains(page, `<li class="signedin" data-login="jana@outlook.com" data-provider="microsoft">`) ||
		!strings.Contains(page, `value="127.0.0.1"`) || !strings.Contains(page, "jana@outlook.com </textarea>") {
		t.Fatalf("the form did not come back as it was left:\n%s", page)
	}

	rec := lb.do("POST", "/domains/firma.test", lb.form("start", "jana@outlook.com ", keptOf(t, page)), lb.cookies[0])
	migration, err := strconv.ParseInt(strings.TrimPrefix(rec.Header().Get("Location"), "/migrations/"), 10, 64)
	if rec.Code != http.StatusSeeOther || err != nil {
		t.Fatalf("start: %d %s\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	task := lb.waitTasks(migration)[0]
	if task.State != store.StateDone || task.Kind != store.TaskCreate || task.SourceUser != "jana@outlook.com" ||
		task.DestUser != "jana@firma.test" || task.SourceSignIn != "microsoft" {
		t.Fatalf("task %+v\n%s", task, lb.jobLogs.String())
	}
	if refresh, err := lb.box.Open(task.SourceSecret, jobs.SecretContext(task.ID, "source-oauth")); err != nil ||
		len(lb.srv.RefreshTokens()) != 1 || refresh != lb.srv.RefreshTokens()[0] {
		t.Fatalf("the task's secret is not the sign-in's refresh token: %v", err)
	}
	want := map[string]int{}
	for _, m := range append(exchangeMail(1, 8), exchangeMail(20, 3)...) {
		want[fmt.Sprintf("%d@old.test", m.UID)] = 1
	}
	onceEach := func(when string) {
		t.Helper()
		got := lb.messageIDs("jana@firma.test", "Stare-Heslo-2025")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s the new mailbox holds %v, want each of %v once", when, got, want)
		}
	}
	onceEach("after the copy")

	// Withdrawn at the provider: the restart stops asking to sign in
	// again, and the migration page's button resumes it.
	lb.srv.RevokeAll()
	lb.page("POST", fmt.Sprintf("/tasks/%d/restart", task.ID), url.Values{}, http.StatusSeeOther)
	if task = lb.waitTasks(migration)[0]; task.State != store.StateFailed || task.Failure == nil || task.Failure.Kind != engine.KindSignInAgain {
		t.Fatalf("after the withdrawal: %s %+v", task.State, task.Failure)
	}
	page = lb.page("GET", fmt.Sprintf("/migrations/%d", migration), nil, http.StatusOK)
	if !strings.Contains(page, fmt.Sprintf(`<form method="post" action="/tasks/%d/signin"`, task.ID)) || !strings.Contains(page, "Sign in with Microsoft again") {
		t.Fatalf("no button to sign in again:\n%s", page)
	}
	lb.hint = "jana@outlook.com"
	rec = lb.do("GET", lb.provider(lb.do("POST", fmt.Sprintf("/tasks/%d/signin", task.ID), url.Values{}, lb.cookies[0])), nil, lb.cookies[0])
	if loc := rec.Header().Get("Location"); loc != fmt.Sprintf("/migrations/%d?signin=ok", migration) {
		t.Fatalf("signing in again: %d %s", rec.Code, loc)
	}
	if task = lb.waitTasks(migration)[0]; task.State != store.StateDone {
		t.Fatalf("after signing in again: %s %+v\n%s", task.State, task.Failure, lb.jobLogs.String())
	}
	onceEach("after signing in again")
	lb.noSecrets(append(lb.pages, lb.jobLogs.String())...)
}

// Lines are signed in one after the other, each keeping the others' sign-
// ins and passwords; the second customer signs in to another account than
// the line's (the test Microsoft signs in only jana), which the old server
// refuses: that line offers its sign-in again.
func TestLinesSignInOneAfterAnother(t *testing.T) {
	lb := newLinesBench(t)
	page := lb.page("POST", "/domains/firma.test", lb.form("check", "jana@outlook.com Heslo-Jany-2025\npetr@outlook.com Heslo-Petra-2025", ""), http.StatusOK)
	for n := 1; n <= 2; n++ {
		if !strings.Contains(lineResult(t, page, n), "class=\"signin primary\"") {
			t.Fatalf("line %d offers no sign-in:\n%s", n, page)
		}
	}
	lines := "jana@outlook.com \npetr@outlook.com "
	page = lb.signIn("jana@outlook.com", lines, keptOf(t, page), false)
	page = lb.signIn("petr@outlook.com", lines, keptOf(t, page), false)
	k := lb.kept(keptOf(t, page))
	jana, petr := k.Lines["jana@outlook.com"], k.Lines["petr@outlook.com"]
	if jana.SignIn == nil || petr.SignIn == nil || jana.SignIn.Refresh == petr.SignIn.Refresh ||
		jana.SourcePassword != "Heslo-Jany-2025" || petr.SourcePassword != "Heslo-Petra-2025" {
		t.Fatalf("the sign-ins and passwords kept: jana %v %q, petr %v %q", jana.SignIn != nil, jana.SourcePassword, petr.SignIn != nil, petr.SourcePassword)
	}
	for _, login := range []string{"jana@outlook.com", "petr@outlook.com"} {
		if !strings.Contains(page, `<li class="signedin" data-login="`+login+`"`) {
			t.Errorf("%s is not shown signed in:\n%s", login, page)
		}
	}
	if r := lineResult(t, page, 1); !strings.Contains(r, "okrow") || !strings.Contains(r, `<span class="signedin"`) {
		t.Errorf("jana's line does not open with its sign-in:\n%s", r)
	}
	if r := lineResult(t, page, 2); strings.Contains(r, "okrow") || !strings.Contains(r, `value="signin-line:petr@outlook.com" class="signin primary"`) {
		t.Errorf("petr's line, signed in to another account, does not offer its sign-in again:\n%s", r)
	}
	lb.noSecrets(lb.pages...)
}

// A sign-in refused at the provider leaves the line as it was: its
// password kept, not signed in, the check failing as before.
func TestLineSignInDenied(t *testing.T) {
	lb := newLinesBench(t)
	page := lb.page("POST", "/domains/firma.test", lb.form("check", "jana@outlook.com Stare-Heslo-2025", ""), http.StatusOK)
	page = lb.signIn("jana@outlook.com", "jana@outlook.com ", keptOf(t, page), true)
	if !strings.Contains(page, "The sign-in was cancelled or refused at the provider") || strings.Contains(page, `class="signedin"`) ||
		!strings.Contains(page, "jana@outlook.com </textarea>") {
		t.Fatalf("the denied sign-in did not leave the line as it was:\n%s", page)
	}
	if kl := lb.kept(keptOf(t, page)).Lines["jana@outlook.com"]; kl.SignIn != nil || kl.SourcePassword != "Stare-Heslo-2025" {
		t.Fatalf("the line kept: signed in %v, password kept %v", kl.SignIn != nil, kl.SourcePassword == "Stare-Heslo-2025")
	}
	page = lb.page("POST", "/domains/firma.test", lb.form("check", "jana@outlook.com ", keptOf(t, page)), http.StatusOK)
	if r := lineResult(t, page, 1); strings.Contains(r, "okrow") || !strings.Contains(r, `class="signin primary"`) {
		t.Fatalf("the line checked after the denied sign-in:\n%s", r)
	}
	lb.noSecrets(lb.pages...)
}

// An existing mailbox's sign-in comes back whatever the form held: with
// nothing typed, and after a check that kept only a pasted line's
// passwords (what is kept empty reads back as nothing). The line's
// passwords stay kept through it.
func TestSignInFromSparseForm(t *testing.T) {
	b := newOAuthBench(t)
	signIn := func(hostingPassword, kept string) string {
		t.Helper()
		form := url.Values{"source_host": {"outlook.office365.com"}, "source_security": {"tls"}, "sync": {"jana@firma.test"},
			"su:jana@firma.test": {"jana@outlook.com"}, "hp:jana@firma.test": {hostingPassword}, "new_mailboxes": {"petr@firma.cz "},
			"kept": {kept}, "action": {"signin:jana@firma.test"}}
		rec := b.do("GET", b.provider(b.do("POST", "/domains/firma.test", form, b.cookies[0])), nil, b.cookies[0])
		loc, _ := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || loc.Query().Get("signin") != "ok" {
			t.Fatalf("callback: %d %s", rec.Code, loc)
		}
		return b.do("GET", loc.RequestURI(), nil, b.cookies[0]).Body.String()
	}
	signIn("", "")
	checked := b.do("POST", "/domains/firma.test", url.Values{"source_host": {"outlook.office365.com"}, "source_security": {"tls"},
		"new_mailboxes": {"petr@firma.cz Heslo-Petra-2025"}, "action": {"check"}}, b.cookies[0]).Body.String()
	if r := lineResult(t, checked, 1); !strings.Contains(r, "okrow") || !strings.Contains(r, `value="signin-line:petr@firma.cz" class="signin"`) {
		t.Errorf("a line whose password works does not offer its sign-in quietly:\n%s", r)
	}
	page := signIn("hosting-heslo", keptOf(t, checked))
	if !strings.Contains(page, `data-mailbox="jana@firma.test"`) || !strings.Contains(page, `id="lines-kept"`) ||
		!strings.Contains(page, `name="hp:jana@firma.test" aria-label="Its password here jana@firma.test" autocomplete="new-password" class="kept"`) {
		t.Errorf("the form did not come back signed in with the line kept:\n%s", page)
	}
	b.noSecrets(page)
}
