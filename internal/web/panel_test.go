package web

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

type fakeDriver struct{ boxes []hosting.Mailbox }

func (f fakeDriver) List(context.Context, string) ([]hosting.Mailbox, error) { return f.boxes, nil }
func (f fakeDriver) Create(context.Context, string, string, int64) error     { return nil }
func (f fakeDriver) Quota(context.Context, string) (hosting.Mailbox, error) {
	return hosting.Mailbox{}, hosting.ErrNotFound
}

// noJobs queues nothing; each task gets a job number of its own.
type noJobs struct{}

func (noJobs) QueueTx(_ context.Context, _ *sql.Tx, tasks []store.Task) error {
	for i := range tasks {
		tasks[i].JobID = 1000 + tasks[i].ID
	}
	return nil
}
func (noJobs) Requeue(context.Context, int64) error { return nil }
func (noJobs) Cancel(context.Context, int64) error  { return nil }

// signedIn returns a panel on a fresh store and the cookie of a signed-in
// customer who owns firma.test.
func signedIn(t *testing.T) (*Panel, *http.Cookie, store.Store) {
	st := testStore(t)
	ctx := context.Background()
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	u, _ := st.CreateUser(ctx, c.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	tok := NewToken()
	st.CreateSession(ctx, HashToken(tok), u.ID, time.Now().Add(time.Hour))
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: fakeDriver{[]hosting.Mailbox{{Address: "jana@firma.test"}}}},
		Discover: func(_ context.Context, address string) ([]diagnose.Candidate, error) {
			if address != "jana@old.example" {
				return nil, nil
			}
			return []diagnose.Candidate{
				{Host: "imap.old.example", Port: 993, Security: "tls", Source: diagnose.SourceSRV, Reachable: true},
				{Host: "imap.firma.test", Port: 993, Security: "tls", Source: diagnose.SourceGuess, Reachable: true, IsHosting: true,
					Note: i18n.Literal("imap.firma.test already points to this hosting")},
			}, nil
		}})
	api.tryLogin = acceptAll
	return NewPanel(api), &http.Cookie{Name: sessionCookie, Value: tok}, st
}

var missingText = regexp.MustCompile(`\[[a-z]+\.[a-z_.]+\]`)

func TestPagesRenderEveryText(t *testing.T) {
	p, cookie, _ := signedIn(t)
	h := p.Handler()
	for _, path := range []string{"/login", "/", "/domains/firma.test", "/migrations/99"} {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && !(path == "/migrations/99" && rec.Code == 404) {
			t.Errorf("%s: %d", path, rec.Code)
		}
		if m := missingText.FindString(rec.Body.String()); m != "" {
			t.Errorf("%s shows a missing text %s", path, m)
		}
		if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s lacks security headers", path)
		}
	}
}

func TestSignInAndOut(t *testing.T) {
	p, _, _ := signedIn(t)
	h := p.Handler()
	post := func(path string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// Unsigned visitors go to the sign-in page and come back afterwards.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/domains/firma.test", nil))
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login?next=%2Fdomains%2Ffirma.test") {
		t.Fatalf("unsigned: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	rec = post("/login", url.Values{"email": {"Jana@Firma.test"}, "password": {"dlouhe heslo"}, "next": {"/domains/firma.test"}}, nil)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/domains/firma.test" || len(cookies) != 1 ||
		!cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("sign in: %d %v %+v", rec.Code, rec.Header(), cookies)
	}
	session := cookies[0]
	if rec := post("/logout", nil, session); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", rec.Code)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(session)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Errorf("the session works after signing out: %d", rec.Code)
	}
	// An open redirect is not possible through next.
	rec = post("/login", url.Values{"email": {"jana@firma.test"}, "password": {"dlouhe heslo"}, "next": {"//evil.example/"}}, nil)
	if rec.Header().Get("Location") != "/" {
		t.Errorf("next led to %q", rec.Header().Get("Location"))
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	p, cookie, _ := signedIn(t)
	req := httptest.NewRequest("POST", "/domains/firma.test", strings.NewReader("action=start"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("cross-site form post: %d", rec.Code)
	}
}

// The server field offers what discovery found; a found server goes into
// the source fields.
func TestPanelDiscover(t *testing.T) {
	p, cookie, _ := signedIn(t)
	post := func(form url.Values) string {
		req := httptest.NewRequest("POST", "/domains/firma.test", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, req)
		return rec.Body.String()
	}
	page := post(url.Values{"action": {"discover"}, "discover_address": {"jana@old.example"}})
	if !strings.Contains(page, `value="imap.old.example|993|tls"`) || !strings.Contains(page, "already points to this hosting") ||
		strings.Contains(page, `value="imap.firma.test|993|tls"`) {
		t.Errorf("discovery results:\n%s", page)
	}
	page = post(url.Values{"use": {"imap.old.example|993|tls"}, "discover_address": {"jana@old.example"}})
	if !strings.Contains(page, `id="source_host" name="source_host" value="imap.old.example"`) || strings.Contains(page, `id="errors"`) {
		t.Errorf("a used server is not in the fields:\n%s", page)
	}
	if page := post(url.Values{"action": {"discover"}, "discover_address": {"nobody@nowhere.example"}}); !strings.Contains(page, "No IMAP server was found") {
		t.Error("no message when nothing is found")
	}
}

func TestPanelHelpers(t *testing.T) {
	h := HashPassword("heslo 1")
	if !VerifyPassword(h, "heslo 1") || VerifyPassword(h, "heslo 2") || VerifyPassword("junk", "heslo 1") {
		t.Error("password hash does not verify as it should")
	}
	if HashPassword("heslo 1") == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	got := withoutPasswords("a@x.cz tajne heslo\r\n\r\n  b@x.cz\theslo2\nbad\n")
	if got != "a@x.cz \nb@x.cz \nbad " || strings.Contains(got, "heslo") {
		t.Errorf("withoutPasswords = %q", got)
	}
	for in, want := range map[string]string{"/domains/x": "/domains/x", "//evil": "/", "https://evil": "/", "/\\evil": "/", "": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q", in, got)
		}
	}
}

// customerAPI is a fresh store with the customer "Firma", its domain
// firma.test and an API token of it.
func customerAPI(t *testing.T) (store.Store, store.Domain, string) {
	t.Helper()
	st := testStore(t)
	ctx := context.Background()
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	d, _ := st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	tok := NewToken()
	st.CreateToken(ctx, c.ID, "api", HashToken(tok))
	return st, d, tok
}
