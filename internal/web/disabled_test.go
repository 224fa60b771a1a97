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

	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
)

// operatorSetup is signedIn's panel and store with a sealing key, API
// tokens of the customer and of an operator, and the customer's ID.
func operatorSetup(t *testing.T) (p *Panel, st store.Store, customer int64, custTok, opTok string) {
	t.Helper()
	p, _, st = signedIn(t)
	p.api.cfg.Box, _ = secret.New(bytes.Repeat([]byte{7}, 32))
	ctx := context.Background()
	d, err := st.DomainByName(ctx, "firma.test")
	if err != nil {
		t.Fatal(err)
	}
	custTok, opTok = NewToken(), NewToken()
	st.CreateToken(ctx, d.TenantID, "api", HashToken(custTok))
	op, _ := st.CreateTenant(ctx, "Hosting", store.KindOperator)
	st.CreateToken(ctx, op.ID, "operator", HashToken(opTok))
	return p, st, d.TenantID, custTok, opTok
}

// request is one request to the panel or the API and what it should get.
type request struct {
	name string
	do   func() (int, string)
	code int
	want string // in the answer's text
}

func (r request) check(t *testing.T) {
	t.Helper()
	code, body := r.do()
	if code != r.code || !strings.Contains(body, r.want) {
		t.Errorf("%s: %d %q, want %d with %q", r.name, code, body, r.code, r.want)
	}
}

// requests makes the requests of the tests below.
type requests struct {
	t     *testing.T
	api   http.Handler
	panel http.Handler
}

func (rq requests) call(token, method, path string, body any) func() (int, string) {
	return func() (int, string) {
		code, ae, text := callAPI(rq.t, rq.api, token, method, path, body)
		if ae.Message != "" {
			return code, ae.Message
		}
		return code, text
	}
}

func (rq requests) signIn(email, password string) func() (int, string) {
	return func() (int, string) {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		rq.panel.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
}

func (rq requests) page(session string) func() (int, string) {
	return func() (int, string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		rec := httptest.NewRecorder()
		rq.panel.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String() + rec.Header().Get("Location")
	}
}

// A disabled customer's token and sign-ins are refused with a reason, and
// not even the operator starts a migration into its domains; enabled
// again, everything works; a revoked token is refused as unknown.
func TestDisabledCustomerRefused(t *testing.T) {
	p, st, customer, custTok, opTok := operatorSetup(t)
	ctx := context.Background()
	rq := requests{t, p.api.Handler(), p.Handler()}
	submission := map[string]any{"source": map[string]any{"host": "imap.old.test"}, "new_mailboxes": "novy@firma.test dlouhe-heslo-1"}
	session := NewToken()
	users, _ := st.Users(ctx, customer)
	st.CreateSession(ctx, HashToken(session), users[0].ID, time.Now().Add(time.Hour))

	if err := st.SetTenantDisabled(ctx, customer, true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []request{
		{"the customer's token", rq.call(custTok, "GET", "/api/v1/domains", nil), http.StatusForbidden, "disabled the account of Firma"},
		{"the operator starts a migration", rq.call(opTok, "POST", "/api/v1/domains/firma.test/migrations", submission),
			http.StatusForbidden, "the customer of firma.test is disabled"},
		{"the operator's token", rq.call(opTok, "GET", "/api/v1/domains", nil), http.StatusOK, "firma.test"},
		{"sign-in with the right password", rq.signIn("jana@firma.test", "dlouhe heslo"), http.StatusForbidden, "disabled by the hosting"},
		{"sign-in with a wrong password", rq.signIn("jana@firma.test", "spatne heslo"), http.StatusUnauthorized, "not right"},
		{"the session from before", rq.page(session), http.StatusSeeOther, "/login"},
	} {
		r.check(t)
	}
	if ms, _ := st.Migrations(ctx, 1); len(ms) != 0 {
		t.Errorf("%d migrations stored for a disabled customer", len(ms))
	}

	if err := st.SetTenantDisabled(ctx, customer, false); err != nil {
		t.Fatal(err)
	}
	ks, _ := st.Tokens(ctx, customer)
	for _, r := range []request{
		{"the customer's token", rq.call(custTok, "GET", "/api/v1/domains", nil), http.StatusOK, "firma.test"},
		{"the operator starts a migration", rq.call(opTok, "POST", "/api/v1/domains/firma.test/migrations", submission),
			http.StatusCreated, "novy@firma.test"},
		{"sign-in", rq.signIn("jana@firma.test", "dlouhe heslo"), http.StatusSeeOther, ""},
		{"the token revoked", func() (int, string) {
			if _, err := st.DeleteToken(ctx, ks[0].ID); err != nil {
				t.Fatal(err)
			}
			return rq.call(custTok, "GET", "/api/v1/domains", nil)()
		}, http.StatusUnauthorized, "the API token is not valid"},
	} {
		r.check(t)
	}
}

// A disabled person cannot sign in, a session that slipped through is
// refused with the reason, and a new password ends the sessions.
func TestDisabledUserAndNewPassword(t *testing.T) {
	p, st, customer, _, _ := operatorSetup(t)
	ctx := context.Background()
	rq := requests{t, p.api.Handler(), p.Handler()}
	users, _ := st.Users(ctx, customer)
	jana := users[0]
	other, _ := st.CreateUser(ctx, customer, "eva@firma.test", HashPassword("jine dlouhe heslo"))

	if err := st.SetUserDisabled(ctx, jana.ID, true); err != nil {
		t.Fatal(err)
	}
	// As if signed in just before it was disabled.
	late := NewToken()
	st.CreateSession(ctx, HashToken(late), jana.ID, time.Now().Add(time.Hour))
	evaSession := NewToken()
	st.CreateSession(ctx, HashToken(evaSession), other.ID, time.Now().Add(time.Hour))
	for _, r := range []request{
		{"sign-in of the disabled person", rq.signIn("jana@firma.test", "dlouhe heslo"), http.StatusForbidden, "disabled by the hosting"},
		{"a session of the disabled person", rq.page(late), http.StatusForbidden, "disabled by the hosting"},
		{"another person of the customer", rq.signIn("eva@firma.test", "jine dlouhe heslo"), http.StatusSeeOther, ""},
	} {
		r.check(t)
	}

	if _, err := st.SetUserPassword(ctx, other.ID, HashPassword("nove dlouhe heslo")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []request{
		{"the session from before the new password", rq.page(evaSession), http.StatusSeeOther, "/login"},
		{"the old password", rq.signIn("eva@firma.test", "jine dlouhe heslo"), http.StatusUnauthorized, "not right"},
		{"the new password", rq.signIn("eva@firma.test", "nove dlouhe heslo"), http.StatusSeeOther, ""},
	} {
		r.check(t)
	}
}
