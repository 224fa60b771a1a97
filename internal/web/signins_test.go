package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

const (
	signInClientSecret = "api-client-secret-never-shown"
	oldLogin           = "jana@outlook.com"
	hostPassword       = "Jana-tady-heslo-73"
	returnOrigin       = "https://panel.hosting.test"
)

// signInBench is the service of a hosting registered with a local
// Microsoft: an Exchange-like old server that takes its access tokens,
// Dovecot as the hosting with a passwd-file driver, the job queue copying
// for real, and two customers with API tokens.
type signInBench struct {
	t        *testing.T
	srv      *testbed.OAuthServer
	old      *testbed.Exchange
	dst      *testbed.Dovecot
	st       *store.DB
	box      *secret.Box
	h        http.Handler
	tokens   [2]string // customer A (firma.test, druha.test), customer B (jina.test)
	logs     *syncLog
	answers  []string // every API answer and page, for the leak check
	messages int
}

// syncLog is a log that the job queue and the API write at once.
type syncLog struct {
	mu chan struct{}
	b  strings.Builder
}

func (l *syncLog) Logf(f string, a ...any) {
	l.mu <- struct{}{}
	fmt.Fprintf(&l.b, f+"\n", a...)
	<-l.mu
}

func (l *syncLog) String() string {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.String()
}

func newSignInBench(t *testing.T, rotate bool, lifetime time.Duration) *signInBench {
	b := &signInBench{t: t, logs: &syncLog{mu: make(chan struct{}, 1)}, messages: 12}
	ctx := context.Background()
	b.srv = testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", ClientSecret: signInClientSecret, User: oldLogin, RotateRefresh: rotate,
		Lifetime: lifetime})
	prov, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", ClientSecret: signInClientSecret, AuthURL: b.srv.AuthURL, TokenURL: b.srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	providers := map[string]*oauth.Provider{oauth.Microsoft: prov}
	folders := testbed.ExchangeFolders(false)
	for i := 1; i <= b.messages; i++ {
		folders[0].Messages = append(folders[0].Messages, testbed.HostileMessage{UID: uint32(i), Flags: []string{`\Seen`},
			InternalDate: time.Date(2025, 3, 4, 5, 6, i, 0, time.UTC),
			Body: fmt.Appendf(nil, "Message-ID: <%d@outlook.test>\r\nDate: Tue, 4 Mar 2025 05:06:%02d +0000\r\n"+
				"From: a@outlook.test\r\nSubject: zpráva %d\r\n\r\ntext %d\r\n", i, i, i, i)})
	}
	b.old = testbed.StartExchange(t, testbed.ExchangeConfig{User: oldLogin, CheckToken: b.srv.Valid, Folders: folders})
	b.dst = testbed.StartDovecotT(t, testbed.DovecotOptions{SharedPasswdFile: true})
	uid, gid := b.dst.MailOwner()
	driver, err := hosting.NewPasswdFile(hosting.PasswdFileConfig{Path: b.dst.PasswdFile, UID: strconv.Itoa(uid), GID: strconv.Itoa(gid),
		Home: filepath.Join(b.dst.Dir, "home", "%d", "%n"), Scheme: hosting.SchemeSHA512Crypt})
	if err != nil {
		t.Fatal(err)
	}
	if err := driver.Create(ctx, "jana@firma.test", hostPassword, 0); err != nil {
		t.Fatal(err)
	}
	pool, err := imapconn.LoadCAFile(b.dst.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	h := jobs.Hosting{IMAP: imapconn.Endpoint{Host: b.dst.Host, Port: b.dst.IMAPSPort, Security: imapconn.TLS, RootCAs: pool}, Driver: driver}
	b.st = testStore(t)
	b.box, _ = secret.New(bytes.Repeat([]byte{5}, 32))
	runner, err := jobs.Open(ctx, b.st, jobs.Config{Store: b.st, Box: b.box, Hosting: h, OAuth: providers, AllowPrivate: true,
		SingleProcess: b.st.Dialect() == store.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Stop(context.Background()) })
	for i, c := range []struct{ name, domains string }{{"Firma", "firma.test druha.test"}, {"Jiná", "jina.test"}} {
		tenant, _ := b.st.CreateTenant(ctx, c.name, store.KindCustomer)
		for _, d := range strings.Fields(c.domains) {
			if _, err := b.st.CreateDomain(ctx, store.Domain{TenantID: tenant.ID, Name: d}); err != nil {
				t.Fatal(err)
			}
		}
		b.tokens[i] = NewToken()
		b.st.CreateToken(ctx, tenant.ID, "panel", HashToken(b.tokens[i]))
	}
	api := NewAPI(Config{Store: b.st, Jobs: runner, Box: b.box, Hosting: h, OAuth: providers, AllowPrivate: true, AllowPlaintext: true,
		SignInReturnOrigins: []string{returnOrigin}, Logf: b.logs.Logf})
	mux := http.NewServeMux()
	mux.Handle("/api/", api.Handler())
	mux.Handle("/", NewPanel(api).Handler())
	b.h = mux
	return b
}

// api calls the API as customer who (0 or 1) and decodes the answer.
func (b *signInBench) api(who int, method, path string, body any) (int, map[string]any) {
	b.t.Helper()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+b.tokens[who])
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	b.answers = append(b.answers, rec.Body.String())
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		b.t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	return rec.Code, out
}

// start creates a sign-in of customer A and returns its answer.
func (b *signInBench) start(login, returnURL string) map[string]any {
	b.t.Helper()
	in := map[string]any{"login": login, "host": "outlook.office365.com"}
	if returnURL != "" {
		in["return_url"] = returnURL
	}
	code, out := b.api(0, "POST", "/api/v1/sign-ins", in)
	if code != http.StatusCreated {
		b.t.Fatalf("create a sign-in: %d %v", code, out)
	}
	return out
}

// browse follows a sign-in's url as the customer's browser does: the
// provider grants at once (or, with denied, the customer refuses) and
// sends the browser to the callback, which answers without a panel
// session.
func (b *signInBench) browse(signInURL, lang string, denied bool) *httptest.ResponseRecorder {
	b.t.Helper()
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(signInURL)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Path != "/oauth/callback" {
		b.t.Fatalf("the provider sends the browser to %q", resp.Header.Get("Location"))
	}
	if denied {
		q := back.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		back.RawQuery = q.Encode()
	}
	return b.callback(back.RequestURI(), lang)
}

func (b *signInBench) callback(uri, lang string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", uri, nil)
	req.Header.Set("Accept-Language", lang)
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	b.answers = append(b.answers, rec.Header().Get("Location"), rec.Body.String())
	return rec
}

func (b *signInBench) state(who int, id string) string {
	b.t.Helper()
	code, out := b.api(who, "GET", "/api/v1/sign-ins/"+id, nil)
	if code != http.StatusOK {
		return strconv.Itoa(code)
	}
	return out["state"].(string)
}

// migrate submits a migration of customer A from the old server and
// waits until every task of it has finished.
func (b *signInBench) migrate(domain string, in map[string]any) (int, map[string]any) {
	b.t.Helper()
	in["source"] = map[string]any{"host": "127.0.0.1", "port": b.old.Port, "security": "plain"}
	code, out := b.api(0, "POST", "/api/v1/domains/"+domain+"/migrations", in)
	if code != http.StatusCreated {
		return code, out
	}
	id := int64(out["id"].(float64))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tasks, err := b.st.Tasks(context.Background(), id)
		if err != nil {
			b.t.Fatal(err)
		}
		done := true
		for _, task := range tasks {
			done = done && store.Finished(task.State)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("migration %d did not finish:\n%s", id, b.logs)
		}
	}
	_, out = b.api(0, "GET", fmt.Sprintf("/api/v1/migrations/%d", id), nil)
	return code, out
}

// inbox counts the messages of a hosting mailbox's INBOX.
func (b *signInBench) inbox(user, pass string) uint32 {
	b.t.Helper()
	c := b.dst.LoginT(b.t, user, pass)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		b.t.Fatal(err)
	}
	return *st.NumMessages
}

// noSecrets fails when a token or the client secret is in an answer, a
// page or the log.
func (b *signInBench) noSecrets() {
	b.t.Helper()
	texts := append(b.answers, b.logs.String())
	for _, sec := range append(b.srv.Tokens(), signInClientSecret) {
		for _, text := range texts {
			if strings.Contains(text, sec) {
				b.t.Fatalf("a token or the client secret is in an answer, a page or the log:\n%s", text)
			}
		}
	}
}

func reason(out map[string]any) string {
	data, _ := json.Marshal(out)
	return string(data)
}

// A hosting's panel signs an old Outlook.com mailbox in through the API:
// the customer's browser goes to the provider and back to a page in the
// customer's language, the sign-in is signed in, a migration row takes it
// instead of the old password and copies every message once, and the
// sign-in is used up. A line of new mailboxes does the same with its own
// sign-in, and comes back to the hosting's panel; the mailbox gets the
// line's password. No token is in any answer, page or log.
func TestAPISignInMigrates(t *testing.T) {
	b := newSignInBench(t, false, 0)
	ctx := context.Background()
	created := b.start(oldLogin, "")
	id := created["id"].(string)
	u, _ := url.Parse(created["url"].(string))
	q := u.Query()
	if created["provider"] != "microsoft" || created["state"] != "pending" || !strings.HasPrefix(u.String(), b.srv.AuthURL) ||
		q.Get("login_hint") != oldLogin || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" ||
		q.Get("redirect_uri") != "http://example.com/oauth/callback" {
		t.Fatalf("created: %v", created)
	}
	if s, err := b.st.SignIn(ctx, HashToken(id)); err != nil || s.Login != oldLogin || bytes.Contains(s.Sealed, []byte(q.Get("state"))) {
		t.Fatalf("stored: %+v %v", s, err)
	}
	if got := b.state(0, id); got != "pending" {
		t.Errorf("before the browser came back: %s", got)
	}
	page := b.browse(u.String(), "cs", false)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "Schránka jana@outlook.com je přihlášena přes Microsoft") ||
		!strings.Contains(page.Body.String(), `lang="cs"`) {
		t.Fatalf("the page after the sign-in: %d\n%s", page.Code, page.Body)
	}
	if got := b.state(0, id); got != "signed_in" {
		t.Fatalf("after the callback: %s", got)
	}

	// The row leaves out the old login: it is the sign-in's.
	row := map[string]any{"mailbox": "jana@firma.test", "hosting_password": hostPassword, "source_sign_in": id}
	code, out := b.migrate("firma.test", map[string]any{"sync": []any{row}})
	tasks, _ := out["tasks"].([]any)
	if code != http.StatusCreated || len(tasks) != 1 || tasks[0].(map[string]any)["state"] != store.StateDone {
		t.Fatalf("migration: %d %s\n%s", code, reason(out), b.logs)
	}
	task := tasks[0].(map[string]any)
	if task["source_user"] != oldLogin {
		t.Errorf("the task reads %v", task["source_user"])
	}
	if n := b.inbox("jana@firma.test", hostPassword); n != uint32(b.messages) {
		t.Errorf("the mailbox holds %d messages, want %d", n, b.messages)
	}
	if got := b.state(0, id); got != "used" {
		t.Errorf("after the migration the sign-in is %s", got)
	}
	if s, _ := b.st.SignIn(ctx, HashToken(id)); s.Sealed != nil {
		t.Error("a used sign-in still holds its tokens")
	}
	// Used once: a second submission is refused, and copies nothing.
	code, out = b.migrate("firma.test", map[string]any{"sync": []any{row}})
	if code != http.StatusBadRequest || !strings.Contains(reason(out), `"sync[0].source_sign_in"`) ||
		!strings.Contains(reason(out), "already used") {
		t.Errorf("a used sign-in again: %d %s", code, reason(out))
	}

	// A new mailbox: back to the hosting's panel, in English.
	created = b.start(oldLogin, returnOrigin+"/migrate?step=2")
	lineID := created["id"].(string)
	back := b.browse(created["url"].(string), "en", false)
	loc, _ := url.Parse(back.Header().Get("Location"))
	if back.Code != http.StatusSeeOther || loc.Scheme+"://"+loc.Host+loc.Path != returnOrigin+"/migrate" ||
		loc.Query().Get("step") != "2" || loc.Query().Get("sign_in") != lineID || loc.Query().Get("outcome") != "ok" {
		t.Fatalf("back to the panel: %d %s", back.Code, loc)
	}
	const newPassword = "Nove-heslo-druha-2025"
	code, out = b.migrate("druha.test", map[string]any{"new_mailboxes": oldLogin + " " + newPassword + "\n",
		"new_mailbox_sign_ins": map[string]string{"JANA@outlook.com": lineID}})
	tasks, _ = out["tasks"].([]any)
	if code != http.StatusCreated || len(tasks) != 1 || tasks[0].(map[string]any)["state"] != store.StateDone {
		t.Fatalf("new mailbox: %d %s\n%s", code, reason(out), b.logs)
	}
	if n := b.inbox("jana@druha.test", newPassword); n != uint32(b.messages) {
		t.Errorf("the new mailbox holds %d messages, want %d", n, b.messages)
	}
	// The task keeps the sign-in's refresh token, sealed for it.
	taskID := int64(tasks[0].(map[string]any)["id"].(float64))
	stored, _ := b.st.Task(ctx, taskID)
	refresh, err := b.box.Open(stored.SourceSecret, jobs.SecretContext(taskID, "source-oauth"))
	if err != nil || stored.SourceSignIn != oauth.Microsoft || len(b.srv.RefreshTokens()) != 2 || !strings.HasPrefix(refresh, "rt-") {
		t.Errorf("the task's sign-in: %q %v", stored.SourceSignIn, err)
	}
	if got := b.state(0, lineID); got != "used" {
		t.Errorf("after the new mailbox the sign-in is %s", got)
	}
	b.noSecrets()
}

// A hosting that signs its customers in itself gives the refresh token:
// the check takes an access token with it, and the task keeps the refresh
// token the provider rotated it into, with which it copies. One the
// provider no longer takes starts nothing, asking to sign in again.
func TestAPISourceOAuth(t *testing.T) {
	b := newSignInBench(t, true, 0)
	ctx := context.Background()
	_, revoked, _ := b.srv.Grant()
	b.srv.Revoke(revoked)
	row := map[string]any{"mailbox": "jana@firma.test", "hosting_password": hostPassword, "source_user": oldLogin,
		"source_oauth": map[string]any{"provider": "microsoft", "refresh_token": revoked}}
	code, out := b.migrate("firma.test", map[string]any{"sync": []any{row}})
	if code != http.StatusBadRequest || out["error"] != "source_login" || !strings.Contains(reason(out), "sign_in_again") {
		t.Fatalf("a revoked refresh token: %d %s", code, reason(out))
	}
	_, refresh, _ := b.srv.Grant()
	row["source_oauth"] = map[string]any{"provider": "microsoft", "refresh_token": refresh}
	code, out = b.migrate("firma.test", map[string]any{"sync": []any{row}})
	tasks, _ := out["tasks"].([]any)
	if code != http.StatusCreated || len(tasks) != 1 || tasks[0].(map[string]any)["state"] != store.StateDone {
		t.Fatalf("migration: %d %s\n%s", code, reason(out), b.logs)
	}
	if n := b.inbox("jana@firma.test", hostPassword); n != uint32(b.messages) {
		t.Errorf("the mailbox holds %d messages, want %d", n, b.messages)
	}
	taskID := int64(tasks[0].(map[string]any)["id"].(float64))
	stored, _ := b.st.Task(ctx, taskID)
	kept, err := b.box.Open(stored.SourceSecret, jobs.SecretContext(taskID, "source-oauth"))
	if current := b.srv.RefreshTokens(); err != nil || kept == refresh || len(current) != 1 || kept != current[0] {
		t.Errorf("the task does not hold the rotated refresh token: %v", err)
	}
	b.noSecrets()
}

// A sign-in whose access token expired before it was used takes a new
// one at the check; the refresh token the provider rotates then replaces
// the kept one at once, so that the submission after the check signs in
// with it.
func TestAPISignInRefreshedAtCheck(t *testing.T) {
	b := newSignInBench(t, true, 2*time.Second)
	created := b.start(oldLogin, "")
	id := created["id"].(string)
	if page := b.browse(created["url"].(string), "en", false); !strings.Contains(page.Body.String(), "is signed in with Microsoft") {
		t.Fatalf("the page after the sign-in:\n%s", page.Body)
	}
	first := b.srv.RefreshTokens()
	time.Sleep(2100 * time.Millisecond)
	in := map[string]any{"source": map[string]any{"host": "127.0.0.1", "port": b.old.Port, "security": "plain"},
		"sync": []any{map[string]any{"mailbox": "jana@firma.test", "hosting_password": hostPassword, "source_user": oldLogin, "source_sign_in": id}}}
	code, out := b.api(0, "POST", "/api/v1/domains/firma.test/check", in)
	if code != http.StatusOK || out["ok"] != true {
		t.Fatalf("check: %d %s", code, reason(out))
	}
	if now := b.srv.RefreshTokens(); len(first) != 1 || len(now) != 1 || now[0] == first[0] {
		t.Fatal("the check did not refresh the expired access token")
	}
	code, out = b.migrate("firma.test", map[string]any{"sync": in["sync"]})
	tasks, _ := out["tasks"].([]any)
	if code != http.StatusCreated || len(tasks) != 1 || tasks[0].(map[string]any)["state"] != store.StateDone {
		t.Fatalf("migration: %d %s\n%s", code, reason(out), b.logs)
	}
	if n := b.inbox("jana@firma.test", hostPassword); n != uint32(b.messages) {
		t.Errorf("the mailbox holds %d messages, want %d", n, b.messages)
	}
	b.noSecrets()
}

// What a sign-in through the API refuses, each with its reason: another
// customer's sign-in, another login, one not finished, refused or
// expired, a return address elsewhere, a mailbox no provider signs in,
// a provider the hosting is not registered with, two ways to read one
// row, a sign-in for no line. The callback is used once, a denied
// sign-in is denied, an expired one expired, and expired ones are
// deleted.
func TestAPISignInRefusals(t *testing.T) {
	b := newSignInBench(t, false, 0)
	ctx := context.Background()
	signedIn := b.start(oldLogin, "")
	id := signedIn["id"].(string)
	callback, _ := url.Parse(b.browse(signedIn["url"].(string), "en", false).Header().Get("Location"))
	if callback.String() != "" {
		t.Fatalf("without a return_url the browser was sent to %s", callback)
	}
	pending := b.start(oldLogin, "")["id"].(string)
	deniedIn := b.start(oldLogin, returnOrigin+"/back")
	denied := b.browse(deniedIn["url"].(string), "en", true)
	if loc, _ := url.Parse(denied.Header().Get("Location")); loc.Query().Get("outcome") != "denied" || b.state(0, deniedIn["id"].(string)) != "denied" {
		t.Errorf("denied: %s, state %s", loc, b.state(0, deniedIn["id"].(string)))
	}
	expired := b.start(oldLogin, "")
	if _, err := b.st.DB().Exec(`UPDATE api_sign_in SET expires = 1000 WHERE state = 'pending' AND login = 'jana@outlook.com' AND id_hash = ` +
		hexLiteral(b.st, HashToken(expired["id"].(string)))); err != nil {
		t.Fatal(err)
	}
	if got := b.state(0, expired["id"].(string)); got != "expired" {
		t.Errorf("a sign-in past its time: %s", got)
	}
	page := b.browse(expired["url"].(string), "en", false)
	if !strings.Contains(page.Body.String(), "already completed or has expired") {
		t.Errorf("the callback of an expired sign-in:\n%s", page.Body)
	}

	// Another customer neither sees nor uses customer A's sign-in.
	if code, _ := b.api(1, "GET", "/api/v1/sign-ins/"+id, nil); code != http.StatusNotFound {
		t.Errorf("another customer reads the sign-in: %d", code)
	}
	code, out := b.api(1, "POST", "/api/v1/domains/jina.test/migrations", map[string]any{"source": map[string]any{"host": "outlook.office365.com"},
		"new_mailboxes": oldLogin + " Nove-heslo-jina-2025\n", "new_mailbox_sign_ins": map[string]string{oldLogin: id}})
	if code != http.StatusBadRequest || !strings.Contains(reason(out), "there is no such sign-in") {
		t.Errorf("another customer's sign-in: %d %s", code, reason(out))
	}

	sync := func(extra map[string]any) map[string]any {
		row := map[string]any{"mailbox": "jana@firma.test", "hosting_password": hostPassword, "source_user": oldLogin}
		for k, v := range extra {
			row[k] = v
		}
		return map[string]any{"sync": []any{row}}
	}
	for _, c := range []struct {
		name  string
		in    map[string]any
		field string
		want  string
	}{
		{"another login", sync(map[string]any{"source_user": "eva@outlook.com", "source_sign_in": id}), "sync[0].source_sign_in",
			"this sign-in is for jana@outlook.com, not for the old login eva@outlook.com"},
		{"not finished", sync(map[string]any{"source_sign_in": pending}), "sync[0].source_sign_in", "is not finished yet"},
		{"denied", sync(map[string]any{"source_sign_in": deniedIn["id"]}), "sync[0].source_sign_in", "cancelled or refused"},
		{"expired", sync(map[string]any{"source_sign_in": expired["id"]}), "sync[0].source_sign_in", "has expired"},
		{"unknown", sync(map[string]any{"source_sign_in": "si_nothing"}), "sync[0].source_sign_in", "there is no such sign-in"},
		{"and a password", sync(map[string]any{"source_sign_in": id, "source_password": "x"}), "sync[0]", "only one of"},
		{"google not registered", sync(map[string]any{"source_oauth": map[string]any{"provider": "google", "refresh_token": "rt"}}),
			"sync[0].source_oauth", "no sign-in with google set up"},
		{"no line", map[string]any{"new_mailboxes": "eva@outlook.com Nove-heslo-eva-2025\n", "new_mailbox_sign_ins": map[string]string{oldLogin: id}},
			"new_mailbox_sign_ins." + oldLogin, "no line of new_mailboxes"},
	} {
		code, out := b.migrate("firma.test", c.in)
		var fields []string
		if fs, ok := out["fields"].([]any); ok {
			for _, f := range fs {
				fields = append(fields, f.(map[string]any)["field"].(string)+": "+f.(map[string]any)["reason"].(string))
			}
		}
		if code != http.StatusBadRequest || !strings.Contains(strings.Join(fields, "\n"), c.field+": ") ||
			!strings.Contains(strings.Join(fields, "\n"), c.want) || strings.Contains(strings.Join(fields, "\n"), "enter the password") {
			t.Errorf("%s: %d %q", c.name, code, fields)
		}
	}
	if got := b.state(0, id); got != "signed_in" {
		t.Errorf("refused submissions used the sign-in: %s", got)
	}

	// The callback works once.
	again := b.start(oldLogin, returnOrigin+"/back")
	first := b.browse(again["url"].(string), "en", false)
	firstLoc, _ := url.Parse(first.Header().Get("Location"))
	uri := firstLoc.Query().Get("sign_in")
	if uri != again["id"] {
		t.Fatalf("first callback: %s", firstLoc)
	}
	replay := b.callback(replayOf(t, b, again["url"].(string)), "en")
	if replay.Code != http.StatusOK || !strings.Contains(replay.Body.String(), "already completed or has expired") ||
		b.state(0, again["id"].(string)) != "signed_in" {
		t.Errorf("a second callback: %d %s", replay.Code, replay.Header().Get("Location"))
	}

	for _, c := range []struct {
		in   map[string]any
		code int
		err  string
	}{
		{map[string]any{"login": oldLogin, "return_url": "https://elsewhere.example/back"}, http.StatusBadRequest, "return_url_not_allowed"},
		{map[string]any{"login": oldLogin, "return_url": "https://panel.hosting.test.elsewhere.example/"}, http.StatusBadRequest, "return_url_not_allowed"},
		{map[string]any{"login": oldLogin, "return_url": "https://panel.hosting.test@elsewhere.example/"}, http.StatusBadRequest, "return_url_not_allowed"},
		{map[string]any{"login": oldLogin, "return_url": "/relative"}, http.StatusBadRequest, "return_url_not_allowed"},
		{map[string]any{"login": oldLogin, "return_url": "http://panel.hosting.test/back"}, http.StatusBadRequest, "return_url_not_allowed"},
		{map[string]any{"login": "jana@seznam.cz"}, http.StatusUnprocessableEntity, "no_sign_in_provider"},
		{map[string]any{"login": "jana@gmail.com"}, http.StatusUnprocessableEntity, "sign_in_not_configured"},
		{map[string]any{"login": "jana@firma.cz", "host": "imap.gmail.com"}, http.StatusUnprocessableEntity, "sign_in_not_configured"},
		{map[string]any{"login": ""}, http.StatusBadRequest, "invalid"},
	} {
		code, out := b.api(0, "POST", "/api/v1/sign-ins", c.in)
		if code != c.code || out["error"] != c.err || out["message"] == "" {
			t.Errorf("%v: %d %s", c.in, code, reason(out))
		}
	}
	req := httptest.NewRequest("POST", "/api/v1/sign-ins", strings.NewReader(`{"login": "jana@gmail.com"}`))
	req.Header.Set("Authorization", "Bearer "+b.tokens[0])
	req.Header.Set("Accept-Language", "cs")
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "tento hosting nemá nastavené přihlašování přes Gmail") {
		t.Errorf("in Czech: %s", rec.Body)
	}

	// Expired ones are deleted; the others stay until their time.
	if n, err := b.st.ExpireSignIns(ctx, time.Now()); err != nil || n != 1 {
		t.Errorf("deleted %d: %v", n, err)
	}
	if got := b.state(0, expired["id"].(string)); got != "404" {
		t.Errorf("an expired sign-in after the clean-up: %s", got)
	}
	if got := b.state(0, id); got != "signed_in" {
		t.Errorf("the clean-up took a live sign-in: %s", got)
	}
	b.noSecrets()
}

// hexLiteral writes bytes as a literal of the store's SQL.
func hexLiteral(st *store.DB, b []byte) string {
	if st.Dialect() == store.Postgres {
		return fmt.Sprintf(`'\x%x'::bytea`, b)
	}
	return fmt.Sprintf(`x'%x'`, b)
}

// replayOf is the callback address of a sign-in's url again: the
// provider sends the same state with a new code.
func replayOf(t *testing.T, b *signInBench, signInURL string) string {
	t.Helper()
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(signInURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	return back.RequestURI()
}
