package web

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// oauthBench is a panel whose hosting is registered with a local
// Microsoft, two sessions of one customer, and their requests.
type oauthBench struct {
	t       *testing.T
	srv     *testbed.OAuthServer
	st      *store.DB
	box     *secret.Box
	h       http.Handler
	api     *API
	d       store.Domain
	cookies []*http.Cookie
	logs    *strings.Builder
	// hint is the login the panel must send to the provider as a hint.
	hint string
}

const webClientSecret = "web-client-secret"

func newOAuthBench(t *testing.T) *oauthBench { return newOAuthBenchWith(t, nil) }

// newOAuthBenchWith is newOAuthBench whose API's configuration setup
// changes before the API is made.
func newOAuthBenchWith(t *testing.T, setup func(b *oauthBench, cfg *Config)) *oauthBench {
	b := &oauthBench{t: t, logs: &strings.Builder{}, hint: "jana@outlook.com"}
	b.srv = testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", ClientSecret: webClientSecret, User: "jana@outlook.com"})
	prov, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", ClientSecret: webClientSecret, AuthURL: b.srv.AuthURL, TokenURL: b.srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	b.st = testStore(t)
	ctx := context.Background()
	c, _ := b.st.CreateTenant(ctx, "Firma", store.KindCustomer)
	b.d, _ = b.st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	u, _ := b.st.CreateUser(ctx, c.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	for range 2 {
		tok := NewToken()
		b.st.CreateSession(ctx, HashToken(tok), u.ID, time.Now().Add(time.Hour))
		b.cookies = append(b.cookies, &http.Cookie{Name: sessionCookie, Value: tok})
	}
	b.box, _ = secret.New(bytes.Repeat([]byte{3}, 32))
	cfg := Config{Store: b.st, Jobs: noJobs{}, Box: b.box, OAuth: map[string]*oauth.Provider{oauth.Microsoft: prov},
		Hosting: jobs.Hosting{Driver: fakeDriver{[]hosting.Mailbox{{Address: "jana@firma.test"}}}},
		Logf:    func(f string, a ...any) { fmt.Fprintf(b.logs, f+"\n", a...) }}
	if setup != nil {
		setup(b, &cfg)
	}
	api := NewAPI(cfg)
	api.tryLogin = acceptAll
	b.api, b.h = api, NewPanel(api).Handler()
	return b
}

func (b *oauthBench) do(method, path string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// provider follows a redirect to the provider and returns where it sends
// the browser back.
func (b *oauthBench) provider(rec *httptest.ResponseRecorder) string {
	b.t.Helper()
	loc, _ := url.Parse(rec.Header().Get("Location"))
	q := loc.Query()
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc.String(), b.srv.AuthURL) || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != "http://example.com/oauth/callback" || q.Get("login_hint") != b.hint {
		b.t.Fatalf("to the provider: %d %s", rec.Code, loc)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(loc.String())
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	return back.RequestURI()
}

// noSecrets fails when a token or the client secret is in text.
func (b *oauthBench) noSecrets(texts ...string) {
	b.t.Helper()
	for _, sec := range append(b.srv.Tokens(), webClientSecret) {
		for _, text := range append(texts, b.logs.String()) {
			if strings.Contains(text, sec) {
				b.t.Fatal("a token or the client secret is in a page or the log")
			}
		}
	}
}

// The sign-in with a provider comes back only to the session that started
// it, once; the page then shows the mailbox signed in, without a token.
func TestOAuthCallbackBoundToSession(t *testing.T) {
	b := newOAuthBench(t)
	do, cookies := b.do, b.cookies
	// startSignIn presses the row's button and returns the callback the
	// provider sends the browser to.
	startSignIn := func() string {
		t.Helper()
		return b.provider(do("POST", "/domains/firma.test", url.Values{"source_host": {"outlook.office365.com"}, "source_security": {"tls"},
			"sync": {"jana@firma.test"}, "su:jana@firma.test": {"jana@outlook.com"}, "hp:jana@firma.test": {"hosting-heslo"},
			"action": {"signin:jana@firma.test"}}, cookies[0]))
	}
	callback := startSignIn()
	if rec := do("GET", callback, nil, cookies[1]); rec.Code != http.StatusBadRequest {
		t.Fatalf("another session's callback: %d", rec.Code)
	}
	rec := do("GET", callback, nil, cookies[0])
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Path != "/domains/firma.test" || loc.Query().Get("signin") != "ok" {
		t.Fatalf("callback: %d %s", rec.Code, loc)
	}
	if again := do("GET", callback, nil, cookies[0]); again.Code != http.StatusBadRequest {
		t.Errorf("a callback used twice: %d", again.Code)
	}
	page := do("GET", loc.RequestURI(), nil, cookies[0]).Body.String()
	if !strings.Contains(page, "Signed in with Microsoft") || !strings.Contains(page, `value="outlook.office365.com"`) ||
		!strings.Contains(page, `name="kept"`) {
		t.Errorf("the form did not come back signed in:\n%s", page)
	}
	if other := do("GET", loc.RequestURI(), nil, cookies[1]).Body.String(); strings.Contains(other, "Signed in with Microsoft") {
		t.Error("another session sees the sign-in")
	}
	// Refused at the provider.
	denied, _ := url.Parse(startSignIn())
	q := denied.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	denied.RawQuery = q.Encode()
	rec = do("GET", denied.RequestURI(), nil, cookies[0])
	if loc, _ := url.Parse(rec.Header().Get("Location")); loc.Query().Get("signin") != "denied" {
		t.Errorf("denied: %d %s", rec.Code, loc)
	}
	b.noSecrets(page)
}

// A task whose sign-in was deleted with the passwords cannot be given a
// password; the migration page's button signs in again, stores the new
// refresh token and restarts the task.
func TestSignInAgainRenewsTask(t *testing.T) {
	b := newOAuthBench(t)
	ctx := context.Background()
	m, tasks, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: "outlook.office365.com", SourcePort: 993, SourceSecurity: "tls"},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@outlook.com", DestUser: "jana@firma.test", SourceSignIn: oauth.Microsoft}},
		func(_ *sql.Tx, tasks []store.Task) error {
			tasks[0].SourceSecret, tasks[0].JobID = []byte("sealed"), 1
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	task := tasks[0]
	b.st.TransitionTask(ctx, task.ID, []string{store.StateQueued}, store.StateDone, nil)
	b.st.ForgetSecrets(ctx)
	var in correctIn
	in.Source.Host, in.Source.Security = "outlook.office365.com", "tls"
	in.Tasks = append(in.Tasks, struct {
		TaskID          int64  `json:"task_id"`
		SourcePassword  string `json:"source_password"`
		HostingPassword string `json:"hosting_password"`
	}{TaskID: task.ID, SourcePassword: "an-old-password", HostingPassword: "x"})
	err = b.api.correct(ctx, m, &in, actor{})
	var ae *apiError
	if !errors.As(err, &ae) || len(ae.Fields) != 1 || !strings.Contains(ae.Fields[0].Reason.String(), "signs in with its provider") {
		t.Errorf("a password for a signed-in task: %v", err)
	}
	page := b.do("GET", fmt.Sprintf("/migrations/%d", m.ID), nil, b.cookies[0]).Body.String()
	if !strings.Contains(page, "Sign in with Microsoft again") {
		t.Fatalf("no sign-in button for a task without its sign-in:\n%s", page)
	}
	rec := b.do("GET", b.provider(b.do("POST", fmt.Sprintf("/tasks/%d/signin", task.ID), url.Values{}, b.cookies[0])), nil, b.cookies[0])
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != fmt.Sprintf("/migrations/%d?signin=ok", m.ID) {
		t.Fatalf("callback: %d %s", rec.Code, loc)
	}
	got, _ := b.st.Task(ctx, task.ID)
	refresh, err := b.box.Open(got.SourceSecret, jobs.SecretContext(task.ID, "source-oauth"))
	if err != nil || len(b.srv.RefreshTokens()) != 1 || refresh != b.srv.RefreshTokens()[0] {
		t.Fatalf("the task's refresh token is not the new sign-in's: %v", err)
	}
	after := b.do("GET", fmt.Sprintf("/migrations/%d?signin=ok", m.ID), nil, b.cookies[0]).Body.String()
	if !strings.Contains(after, "Signed in again") {
		t.Errorf("no word of the renewed sign-in")
	}
	b.noSecrets(page, after)
}
