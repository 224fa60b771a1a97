package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// manageDriver is an in-memory hosting with every optional capability.
type manageDriver struct {
	mu        sync.Mutex
	boxes     map[string]int64 // address → quota
	passwords map[string]string
	aliases   []hosting.Alias
}

func newManageDriver() *manageDriver {
	return &manageDriver{boxes: map[string]int64{"jana@firma.test": 1 << 30, "petr@firma.test": 1 << 30, "karel@jina.test": 1 << 30},
		passwords: map[string]string{}}
}

func (f *manageDriver) List(_ context.Context, domain string) ([]hosting.Mailbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hosting.Mailbox
	for a, q := range f.boxes {
		if strings.HasSuffix(a, "@"+domain) {
			out = append(out, hosting.Mailbox{Address: a, QuotaBytes: q, UsedBytes: -1})
		}
	}
	return out, nil
}
func (f *manageDriver) Create(context.Context, string, string, int64) error { return nil }
func (f *manageDriver) Quota(_ context.Context, address string) (hosting.Mailbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.boxes[address]
	if !ok {
		return hosting.Mailbox{}, hosting.ErrNotFound
	}
	return hosting.Mailbox{Address: address, QuotaBytes: q, UsedBytes: -1}, nil
}
func (f *manageDriver) SetPassword(_ context.Context, address, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords[address] = password
	return nil
}
func (f *manageDriver) SetQuota(_ context.Context, address string, q int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boxes[address] = q
	return nil
}
func (f *manageDriver) Aliases(_ context.Context, domain string) ([]hosting.Alias, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hosting.Alias
	for _, a := range f.aliases {
		if strings.HasSuffix(a.Address, "@"+domain) {
			out = append(out, a)
		}
	}
	return out, nil
}
func (f *manageDriver) AddAlias(_ context.Context, a hosting.Alias) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.aliases {
		if o.Address == a.Address {
			return hosting.ErrExists
		}
	}
	f.aliases = append(f.aliases, a)
	return nil
}
func (f *manageDriver) RemoveAlias(_ context.Context, address string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.aliases {
		if o.Address == address {
			f.aliases = append(f.aliases[:i], f.aliases[i+1:]...)
			return nil
		}
	}
	return hosting.ErrNotFound
}

// manageSetup is a store with two customers (firma.test, jina.test), an
// API token for the first, and a panel session for it.
func manageSetup(t *testing.T, driver hosting.Driver) (api http.Handler, panel http.Handler, token string, cookie *http.Cookie) {
	t.Helper()
	st := testStore(t)
	ctx := context.Background()
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	other, _ := st.CreateTenant(ctx, "Jina", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	st.CreateDomain(ctx, store.Domain{TenantID: other.ID, Name: "jina.test"})
	token = NewToken()
	st.CreateToken(ctx, c.ID, "api", HashToken(token))
	u, _ := st.CreateUser(ctx, c.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	sess := NewToken()
	st.CreateSession(ctx, HashToken(sess), u.ID, time.Now().Add(time.Hour))
	a := NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: driver}, MaxQuota: 10 << 30})
	return a.Handler(), NewPanel(a).Handler(), token, &http.Cookie{Name: sessionCookie, Value: sess}
}

func callAPI(t *testing.T, h http.Handler, token, method, path string, body any) (int, apiError, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var ae apiError
	json.Unmarshal(rec.Body.Bytes(), &ae)
	return rec.Code, ae, rec.Body.String()
}

func TestMailboxManagementAPI(t *testing.T) {
	drv := newManageDriver()
	h, _, tok, _ := manageSetup(t, drv)
	base := "/api/v1/domains/firma.test/mailboxes/jana@firma.test"

	// Tenant isolation: another customer's domain, an address outside the
	// domain and an unknown mailbox all answer 404.
	for _, path := range []string{
		"/api/v1/domains/jina.test/mailboxes/karel@jina.test/password",
		"/api/v1/domains/firma.test/mailboxes/karel@jina.test/password",
		"/api/v1/domains/firma.test/mailboxes/nikdo@firma.test/password",
	} {
		if code, ae, _ := callAPI(t, h, tok, "POST", path, map[string]string{"password": "velmi dlouhe heslo"}); code != 404 || ae.Code != "not_found" {
			t.Errorf("POST %s = %d %s, want 404", path, code, ae.Code)
		}
	}
	for _, path := range []string{"/api/v1/domains/jina.test/mailboxes/karel@jina.test/quota", "/api/v1/domains/jina.test/mailboxes/karel@jina.test/aliases"} {
		if code, _, _ := callAPI(t, h, tok, "POST", path, map[string]any{"quota_bytes": 2 << 30, "alias": "x"}); code != 404 {
			t.Errorf("POST %s = %d, want 404", path, code)
		}
	}
	if drv.passwords["karel@jina.test"] != "" || drv.boxes["karel@jina.test"] != 1<<30 || len(drv.aliases) != 0 {
		t.Fatal("another customer's mailbox was changed")
	}

	// Password policy, then a change.
	for _, pw := range []string{"kratke", "jana@firma.test", "password123"} {
		code, ae, body := callAPI(t, h, tok, "POST", base+"/password", map[string]string{"password": pw})
		if code != 400 || ae.Code != "weak_password" || strings.Contains(body, pw) {
			t.Errorf("password %q: %d %s", pw, code, body)
		}
	}
	if code, _, body := callAPI(t, h, tok, "POST", base+"/password", map[string]string{"password": "správné koňské heslo"}); code != 204 {
		t.Fatalf("password change: %d %s", code, body)
	}
	if drv.passwords["jana@firma.test"] != "správné koňské heslo" {
		t.Error("the driver did not get the new password")
	}

	// Quota: over the plan limit, not larger, then a raise.
	code, ae, _ := callAPI(t, h, tok, "POST", base+"/quota", map[string]any{"quota_bytes": 11 << 30})
	if code != 400 || ae.Code != "over_plan_limit" || !strings.Contains(ae.Message, "10.0 GB") {
		t.Errorf("over the plan limit: %d %+v", code, ae)
	}
	if code, ae, _ := callAPI(t, h, tok, "POST", base+"/quota", map[string]any{"quota_bytes": 1 << 29}); code != 400 || !strings.Contains(ae.Message, "larger") {
		t.Errorf("a smaller quota: %d %+v", code, ae)
	}
	if code, _, body := callAPI(t, h, tok, "POST", base+"/quota", map[string]any{"quota_bytes": 5 << 30}); code != 200 || !strings.Contains(body, `"quota_bytes": 5368709120`) {
		t.Errorf("raise: %d %s", code, body)
	}
	if drv.boxes["jana@firma.test"] != 5<<30 {
		t.Error("the driver did not get the new quota")
	}

	// Aliases.
	if code, _, body := callAPI(t, h, tok, "POST", base+"/aliases", map[string]any{"alias": "info", "also": []string{"petr@firma.test"}}); code != 201 {
		t.Fatalf("add alias: %d %s", code, body)
	}
	if code, ae, _ := callAPI(t, h, tok, "POST", base+"/aliases", map[string]any{"alias": "info@firma.test"}); code != 409 || ae.Code != "exists" {
		t.Errorf("add an existing alias: %d %+v", code, ae)
	}
	for _, bad := range []string{"petr", "x@jina.test", "", "a b"} {
		if code, _, body := callAPI(t, h, tok, "POST", base+"/aliases", map[string]any{"alias": bad}); code != 400 {
			t.Errorf("alias %q: %d %s, want 400", bad, code, body)
		}
	}
	var list struct{ Aliases []hosting.Alias }
	_, _, body := callAPI(t, h, tok, "GET", base+"/aliases", nil)
	json.Unmarshal([]byte(body), &list)
	if want := []hosting.Alias{{Address: "info@firma.test", Targets: []string{"jana@firma.test", "petr@firma.test"}}}; !reflect.DeepEqual(list.Aliases, want) {
		t.Errorf("aliases = %+v, want %+v", list.Aliases, want)
	}
	if code, _, body := callAPI(t, h, tok, "DELETE", base+"/aliases/info@firma.test", nil); code != 204 {
		t.Errorf("remove alias: %d %s", code, body)
	}
	if code, _, _ := callAPI(t, h, tok, "DELETE", base+"/aliases/info@firma.test", nil); code != 404 {
		t.Errorf("remove a removed alias: %d, want 404", code)
	}
}

// A driver without the optional capabilities answers 501 and the panel
// shows no management section.
func TestMailboxManagementUnsupported(t *testing.T) {
	h, panel, tok, cookie := manageSetup(t, fakeDriverWith("jana@firma.test"))
	base := "/api/v1/domains/firma.test/mailboxes/jana@firma.test"
	if code, ae, _ := callAPI(t, h, tok, "POST", base+"/password", map[string]string{"password": "velmi dlouhe heslo"}); code != 501 || ae.Code != "not_supported" {
		t.Errorf("password without the capability: %d %+v", code, ae)
	}
	req := httptest.NewRequest("GET", "/domains/firma.test", nil)
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	panel.ServeHTTP(rec, req)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), `id="manage"`) {
		t.Errorf("domain page without management: %d, section shown: %v", rec.Code, strings.Contains(rec.Body.String(), `id="manage"`))
	}
}

// fakeDriverWith is a driver with mailboxes that have a quota, and none of
// the optional capabilities.
type quotaOnlyDriver struct{ fakeDriver }

func (f quotaOnlyDriver) Quota(_ context.Context, address string) (hosting.Mailbox, error) {
	return hosting.Mailbox{Address: address, QuotaBytes: 1 << 30}, nil
}

func fakeDriverWith(addr string) hosting.Driver {
	return quotaOnlyDriver{fakeDriver{[]hosting.Mailbox{{Address: addr}}}}
}

// The panel's forms: a change returns to the page with a notice, a
// refusal shows the mailbox with the reason and no password, and a
// cross-origin post is refused.
func TestMailboxManagementPanel(t *testing.T) {
	drv := newManageDriver()
	_, panel, _, cookie := manageSetup(t, drv)
	post := func(path string, form url.Values, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		panel.ServeHTTP(rec, req)
		return rec
	}
	get := func(path string) string {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		panel.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		return rec.Body.String()
	}
	if p := get("/domains/firma.test?changed=quota&mailbox=Call+us+now"); strings.Contains(p, "Call us") {
		t.Error("a crafted link put its words into the notice")
	}
	page := get("/domains/firma.test")
	if !strings.Contains(page, `id="manage"`) || !strings.Contains(page, `data-mailbox="jana@firma.test"`) || missingText.MatchString(page) {
		t.Fatalf("domain page lacks the management section or a text:\n%s", page)
	}

	rec := post("/domains/firma.test/mailboxes/jana@firma.test/quota", url.Values{"quota": {"5 GB"}, "back": {"/domains/firma.test"}}, nil)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/domains/firma.test?changed=quota&mailbox=jana%40firma.test") {
		t.Fatalf("quota form: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if drv.boxes["jana@firma.test"] != 5<<30 {
		t.Error("quota not raised")
	}
	loc, _, _ := strings.Cut(rec.Header().Get("Location"), "#") // a browser keeps the fragment to itself
	if p := get(loc); !strings.Contains(p, "The quota of jana@firma.test was raised.") || !strings.Contains(p, "5.0 GB") {
		t.Errorf("no notice or new quota after the raise:\n%s", p)
	}

	rec = post("/domains/firma.test/mailboxes/jana@firma.test/quota", url.Values{"quota": {"20G"}}, nil)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Your plan allows at most 10.0 GB") {
		t.Errorf("over the plan limit in the panel: %d\n%s", rec.Code, rec.Body.String())
	}
	rec = post("/domains/firma.test/mailboxes/jana@firma.test/password", url.Values{"password": {"heslo12345"}}, nil)
	if rec.Code != http.StatusUnprocessableEntity || strings.Contains(rec.Body.String(), "heslo12345") || !strings.Contains(rec.Body.String(), "commonly used") {
		t.Errorf("weak password in the panel: %d\n%s", rec.Code, rec.Body.String())
	}
	// An open redirect through "back" is not possible.
	rec = post("/domains/firma.test/mailboxes/jana@firma.test/alias", url.Values{"alias": {"info"}, "back": {"//evil.example/"}}, nil)
	if rec.Code != http.StatusSeeOther || strings.Contains(rec.Header().Get("Location"), "evil") {
		t.Errorf("alias form: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if len(drv.aliases) != 1 {
		t.Errorf("aliases after the form: %+v", drv.aliases)
	}
	rec = post("/domains/firma.test/mailboxes/jana@firma.test/unalias", url.Values{"alias": {"info@firma.test"}},
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if rec.Code != http.StatusForbidden || len(drv.aliases) != 1 {
		t.Errorf("cross-origin post: %d, aliases %+v", rec.Code, drv.aliases)
	}
	// Another customer's mailbox: the page does not exist.
	rec = post("/domains/jina.test/mailboxes/karel@jina.test/password", url.Values{"password": {"velmi dlouhe heslo"}}, nil)
	if rec.Code != http.StatusNotFound || drv.passwords["karel@jina.test"] != "" {
		t.Errorf("another customer's mailbox: %d", rec.Code)
	}
}
