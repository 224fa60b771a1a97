package web

import (
	"bytes"
	"context"
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

// The sign-in with a provider comes back only to the session that started
// it, once; the page then shows the mailbox signed in, without a token.
func TestOAuthCallbackBoundToSession(t *testing.T) {
	const clientSecret = "web-client-secret"
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", ClientSecret: clientSecret, User: "jana@outlook.com"})
	prov, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", ClientSecret: clientSecret, AuthURL: srv.AuthURL, TokenURL: srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	st := testStore(t)
	ctx := context.Background()
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	u, _ := st.CreateUser(ctx, c.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	var cookies []*http.Cookie
	for range 2 {
		tok := NewToken()
		st.CreateSession(ctx, HashToken(tok), u.ID, time.Now().Add(time.Hour))
		cookies = append(cookies, &http.Cookie{Name: sessionCookie, Value: tok})
	}
	box, _ := secret.New(bytes.Repeat([]byte{3}, 32))
	var logs strings.Builder
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, OAuth: map[string]*oauth.Provider{oauth.Microsoft: prov},
		Hosting: jobs.Hosting{Driver: fakeDriver{[]hosting.Mailbox{{Address: "jana@firma.test"}}}},
		Logf:    func(f string, a ...any) { logs.WriteString(f) }})
	api.tryLogin = acceptAll
	h := NewPanel(api).Handler()
	do := func(method, path string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.AddCookie(c)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// startSignIn presses the row's button and returns the callback the
	// provider sends the browser to.
	startSignIn := func() string {
		t.Helper()
		rec := do("POST", "/domains/firma.test", url.Values{"source_host": {"outlook.office365.com"}, "source_security": {"tls"},
			"sync": {"jana@firma.test"}, "su:jana@firma.test": {"jana@outlook.com"}, "hp:jana@firma.test": {"hosting-heslo"},
			"action": {"signin:jana@firma.test"}}, cookies[0])
		loc, _ := url.Parse(rec.Header().Get("Location"))
		q := loc.Query()
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc.String(), srv.AuthURL) || q.Get("code_challenge_method") != "S256" ||
			q.Get("redirect_uri") != "http://example.com/oauth/callback" || q.Get("login_hint") != "jana@outlook.com" {
			t.Fatalf("sign-in button: %d %s", rec.Code, loc)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		back, _ := url.Parse(resp.Header.Get("Location"))
		return back.RequestURI()
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
	for _, sec := range append(append(srv.AccessTokens(), srv.RefreshTokens()...), clientSecret) {
		if strings.Contains(page, sec) || strings.Contains(logs.String(), sec) {
			t.Fatal("a token or the client secret is in the page or the log")
		}
	}
}
