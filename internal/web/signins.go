package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
)

// signInKept is how long a sign-in started through the API is kept once
// the browser came back: its tokens until a submission uses them, its
// outcome for the hosting to read.
const signInKept = 24 * time.Hour

// apiSignInPending is what a pending API sign-in keeps sealed: its ID,
// for the redirect back to the hosting, and what the code's exchange
// needs.
type apiSignInPending struct {
	ID       string `json:"id"`
	Verifier string `json:"verifier"`
	Redirect string `json:"redirect"`
}

func apiSignInContext(idHash []byte) string { return "api-sign-in:" + hex.EncodeToString(idHash) }

// signInView is an API sign-in as the API shows it: never a token.
type signInView struct {
	ID        string    `json:"id"`
	Provider  string    `json:"provider"`
	Login     string    `json:"login"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	// URL is where the customer's browser signs in; only in the answer
	// that created the sign-in.
	URL string `json:"url,omitempty"`
}

// signInState is a sign-in's state as the hosting reads it: a pending
// or signed-in one past its expiry has expired.
func signInState(s store.SignIn) string {
	if (s.State == store.SignInPending || s.State == store.SignInSignedIn) && !time.Now().Before(s.Expires) {
		return "expired"
	}
	return s.State
}

func randomHandle(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// createSignIn starts a sign-in of an old mailbox with its provider for a
// hosting's panel: it answers where to send the customer's browser.
func (a *API) createSignIn(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	var in struct {
		Login     string `json:"login"`
		Host      string `json:"host"`
		ReturnURL string `json:"return_url"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	login := strings.TrimSpace(in.Login)
	if login == "" || len(login) > 320 || strings.ContainsAny(login, "\r\n\x00\t ") {
		return badRequest("apisignin.login")
	}
	p := diagnose.ProviderFor(strings.TrimSpace(in.Host), login)
	if p == nil || p.SignIn == "" {
		return failWith(http.StatusUnprocessableEntity, "no_sign_in_provider", "apisignin.no_provider", login)
	}
	prov := a.cfg.OAuth[p.SignIn]
	if prov == nil {
		return failWith(http.StatusUnprocessableEntity, "sign_in_not_configured", "apisignin.not_configured", p.Name, p.SignIn, login)
	}
	back, err := a.returnURL(in.ReturnURL)
	if err != nil {
		return err
	}
	id, state := randomHandle("si_", 24), randomHandle("", 24)
	idHash, stateHash := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(state))
	pending := apiSignInPending{ID: id, Verifier: oauth.NewVerifier(), Redirect: a.callbackURL(r)}
	plain, err := json.Marshal(pending)
	if err != nil {
		return err
	}
	now := time.Now()
	s := store.SignIn{IDHash: idHash[:], TenantID: t.ID, Provider: prov.ID, Login: login, StateHash: stateHash[:],
		ReturnURL: back, State: store.SignInPending, Sealed: a.cfg.Box.Seal(string(plain), apiSignInContext(idHash[:])),
		Expires: now.Add(signInWait), Created: now}
	if err := a.cfg.Store.CreateSignIn(r.Context(), s); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, signInView{ID: id, Provider: prov.ID, Login: login, State: s.State,
		ExpiresAt: s.Expires.UTC(), URL: prov.AuthCodeURL(pending.Redirect, state, pending.Verifier, login)})
	return nil
}

// returnURL checks where a sign-in may send the browser back: only to an
// origin the hosting allows, never anywhere a caller names.
func (a *API) returnURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	// Browsers drop tabs and line breaks and read a backslash as a slash:
	// such an address could lead elsewhere than it parses to.
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" ||
		strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) >= 0 {
		return "", failWith(http.StatusBadRequest, "return_url_not_allowed", "apisignin.return_url", raw)
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if !slices.Contains(a.cfg.SignInReturnOrigins, origin) {
		return "", failWith(http.StatusBadRequest, "return_url_not_allowed", "apisignin.return_url", origin)
	}
	return u.String(), nil
}

// ownSignIn loads one of the tenant's sign-ins by its ID; another
// tenant's answers as one that does not exist.
func (a *API) ownSignIn(ctx context.Context, t store.Tenant, id string) (store.SignIn, []byte, error) {
	h := sha256.Sum256([]byte(id))
	s, err := a.cfg.Store.SignIn(ctx, h[:])
	if err == nil && s.TenantID != t.ID {
		err = store.ErrNotFound
	}
	return s, h[:], err
}

func (a *API) getSignIn(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	id := r.PathValue("id")
	s, _, err := a.ownSignIn(r.Context(), t, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, signInView{ID: id, Provider: s.Provider, Login: s.Login, State: signInState(s), ExpiresAt: s.Expires.UTC()})
	return nil
}

// apiCallback takes the provider's redirect back for a sign-in started
// through the API, found by its state; any other goes to the panel's
// callback, whose states are bound to the panel's session (the browser
// of an API sign-in has none).
func (p *Panel) apiCallback(panel http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.Sum256([]byte(r.URL.Query().Get("state")))
		s, err := p.api.cfg.Store.SignInByState(r.Context(), h[:])
		if errors.Is(err, store.ErrNotFound) {
			panel.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			p.api.cfg.Logf("sign-in callback: %v", err)
			http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
			return
		}
		id, outcome := p.api.finishSignIn(r, s)
		if id != "" && s.ReturnURL != "" {
			u, err := url.Parse(s.ReturnURL)
			if err == nil {
				q := u.Query()
				q.Set("sign_in", id)
				q.Set("outcome", outcome)
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.String(), http.StatusSeeOther)
				return
			}
		}
		name := s.Provider
		if prov := p.api.cfg.OAuth[s.Provider]; prov != nil {
			name = prov.Name
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Add("Vary", "Accept-Language, Cookie")
		// Not p.render: the page must not link to its own address, which
		// holds the authorization code.
		err = p.tmpl[langOf(r)].ExecuteTemplate(w, "apisignin", map[string]any{"Title": tr(r, "apisignin.title."+outcome),
			"Text": catalog.T(printerOf(r), "apisignin.page."+outcome, s.Login, name)})
		if err != nil {
			p.api.cfg.Logf("render apisignin: %v", err)
		}
	})
}

// finishSignIn exchanges the callback's code of a pending API sign-in,
// once, and keeps its tokens sealed: it returns the sign-in's ID ("" when
// it was not pending) and the outcome, ok, denied, failed or expired.
func (a *API) finishSignIn(r *http.Request, s store.SignIn) (string, string) {
	ctx := r.Context()
	st := a.cfg.Store
	now := time.Now()
	if s.State != store.SignInPending || !now.Before(s.Expires) {
		return "", "expired"
	}
	// Taken first, as failed: a second callback with the same state, or
	// one that dies half-way, finds it no longer pending.
	if ok, err := st.ChangeSignIn(ctx, s.IDHash, store.SignInPending, store.SignInFailed, nil, now.Add(signInKept)); err != nil || !ok {
		if err != nil {
			a.cfg.Logf("sign-in callback: %v", err)
		}
		return "", "expired"
	}
	var pending apiSignInPending
	plain, err := a.cfg.Box.Open(s.Sealed, apiSignInContext(s.IDHash))
	if err == nil {
		err = json.Unmarshal([]byte(plain), &pending)
	}
	prov := a.cfg.OAuth[s.Provider]
	if err != nil || prov == nil {
		a.cfg.Logf("sign-in callback of tenant %d with %s: no pending sign-in to finish (%v)", s.TenantID, s.Provider, err)
		return pending.ID, "failed"
	}
	q := r.URL.Query()
	if q.Get("error") != "" {
		outcome := "failed"
		if q.Get("error") == "access_denied" {
			outcome = store.SignInDenied
			_, err = st.ChangeSignIn(ctx, s.IDHash, store.SignInFailed, store.SignInDenied, nil, now.Add(signInKept))
		}
		a.cfg.Logf("sign-in of tenant %d with %s: %s at the provider", s.TenantID, prov.Name, q.Get("error"))
		if err != nil {
			a.cfg.Logf("sign-in callback: %v", err)
		}
		return pending.ID, outcome
	}
	tok, err := prov.Exchange(ctx, pending.Redirect, q.Get("code"), pending.Verifier)
	if err == nil && tok.RefreshToken == "" {
		err = errors.New("the provider gave no refresh token")
	}
	if err == nil {
		var data []byte
		data, err = json.Marshal(providerSignIn{Provider: prov.ID, Refresh: tok.RefreshToken, Access: tok.AccessToken, Expiry: tok.Expiry})
		if err == nil {
			_, err = st.ChangeSignIn(ctx, s.IDHash, store.SignInFailed, store.SignInSignedIn,
				a.cfg.Box.Seal(string(data), apiSignInContext(s.IDHash)), now.Add(signInKept))
		}
	}
	if err != nil {
		a.cfg.Logf("sign-in of tenant %d with %s: %v", s.TenantID, prov.Name, err)
		return pending.ID, "failed"
	}
	a.cfg.Logf("sign-in of tenant %d with %s: signed in", s.TenantID, prov.Name)
	return pending.ID, "ok"
}

// sourceOAuth is a sign-in a hosting made itself with the same client:
// its refresh token.
type sourceOAuth struct {
	Provider     string `json:"provider"`
	RefreshToken string `json:"refresh_token"`
}

// migrationAPIIn is a submission as the API takes it: besides the form,
// an existing mailbox's old login may be given as a sign-in instead of a
// password, and a new mailbox's line may have one.
type migrationAPIIn struct {
	migrationIn
	Sync []struct {
		syncRow
		// SourceSignIn is the ID of a sign-in of POST /api/v1/sign-ins.
		SourceSignIn string       `json:"source_sign_in"`
		SourceOAuth  *sourceOAuth `json:"source_oauth"`
	} `json:"sync"`
	// NewMailboxSignIns are sign-in IDs by a line's old login.
	NewMailboxSignIns map[string]string `json:"new_mailbox_sign_ins"`
}

// decodeMigration reads a submission of the API into in, with the
// sign-ins its rows name: the tenant's own, signed in as the row's old
// login, or refresh tokens the hosting got itself. Refused ones are
// reported with the form's other problems (see validate).
func (a *API) decodeMigration(r *http.Request, t store.Tenant, d store.Domain, in *migrationIn) error {
	var x migrationAPIIn
	if err := decode(r, &x); err != nil {
		return err
	}
	// The form's own fields, as the panel's submissions have them.
	*in = x.migrationIn
	in.Sync = make([]syncRow, len(x.Sync))
	for i, row := range x.Sync {
		in.Sync[i] = row.syncRow
	}
	in.signIns, in.lineSignIns, in.apiSignIns = map[string]*providerSignIn{}, map[string]*providerSignIn{}, map[*providerSignIn][]byte{}
	ctx := r.Context()
	problem := func(field string, m i18n.Message) {
		in.signInProblems = append(in.signInProblems, fieldError{field, m})
	}
	usedIn := map[string]string{} // sign-in ID -> the field that uses it
	take := func(field, id, login string) (*providerSignIn, string, error) {
		if prev := usedIn[id]; prev != "" {
			problem(field, catalog.M("apisignin.twice", prev))
			return nil, "", nil
		}
		usedIn[id] = field
		ps, signedAs, m, err := a.takeSignIn(ctx, t, id, login, in)
		if err == nil && !m.IsZero() {
			problem(field, m)
		}
		return ps, signedAs, err
	}
	for i, row := range x.Sync {
		f := fmt.Sprintf("sync[%d]", i)
		given := 0
		for _, on := range []bool{row.SourcePassword != "", row.SourceSignIn != "", row.SourceOAuth != nil} {
			if on {
				given++
			}
		}
		if row.SourceSignIn == "" && row.SourceOAuth == nil {
			continue
		}
		var ps *providerSignIn
		switch {
		case given > 1:
			problem(f, catalog.M("apisignin.one_of"))
		case row.SourceSignIn != "":
			var signedAs string
			var err error
			if ps, signedAs, err = take(f+".source_sign_in", row.SourceSignIn, row.SourceUser); err != nil {
				return err
			}
			// An old login left out is the sign-in's.
			if ps != nil && strings.TrimSpace(row.SourceUser) == "" {
				in.Sync[i].SourceUser = signedAs
			}
		default:
			var m i18n.Message
			if ps, m = a.givenSignIn(row.SourceOAuth, row.SourceUser); !m.IsZero() {
				problem(f+".source_oauth", m)
			}
		}
		if ps == nil {
			// Refused above: the row is not also asked for a password.
			ps = &providerSignIn{}
		}
		in.signIns[mailboxKey(row.Mailbox)] = ps
	}
	if len(x.NewMailboxSignIns) == 0 {
		return nil
	}
	entries, _, err := bulk.ParseNewMailboxes(strings.NewReader(in.NewMailboxes), d.Name)
	if err != nil {
		return err
	}
	lines := map[string]bool{}
	for _, e := range entries {
		lines[strings.ToLower(e.SourceUser)] = true
	}
	for _, login := range slices.Sorted(maps.Keys(x.NewMailboxSignIns)) {
		f := "new_mailbox_sign_ins." + login
		key := strings.ToLower(strings.TrimSpace(login))
		if !lines[key] {
			problem(f, catalog.M("apisignin.no_line", login))
			continue
		}
		ps, _, err := take(f, x.NewMailboxSignIns[login], login)
		if err != nil {
			return err
		}
		if ps != nil {
			in.lineSignIns[key] = ps
		}
	}
	return nil
}

// mailboxKey is how signIns names an existing mailbox: as validate
// normalises it, in lower case.
func mailboxKey(mailbox string) string {
	mb := strings.TrimSpace(mailbox)
	if n, err := hosting.NormalizeAddress(mb); err == nil {
		mb = n
	}
	return strings.ToLower(mb)
}

// takeSignIn opens one of the tenant's API sign-ins for a row whose old
// login is login ("": any): it must be signed in, as that login. It
// returns the sign-in and the login it is for, or why the row cannot have
// it.
func (a *API) takeSignIn(ctx context.Context, t store.Tenant, id, login string, in *migrationIn) (*providerSignIn, string, i18n.Message, error) {
	s, h, err := a.ownSignIn(ctx, t, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", catalog.M("apisignin.unknown"), nil
	}
	if err != nil {
		return nil, "", i18n.Message{}, err
	}
	switch signInState(s) {
	case store.SignInPending:
		return nil, "", catalog.M("apisignin.pending", s.Login), nil
	case store.SignInDenied:
		return nil, "", catalog.M("apisignin.denied", s.Login), nil
	case store.SignInFailed:
		return nil, "", catalog.M("apisignin.failed", s.Login), nil
	case store.SignInUsed:
		return nil, "", catalog.M("apisignin.used", s.Login), nil
	case "expired":
		return nil, "", catalog.M("apisignin.expired", s.Login), nil
	}
	if login = strings.TrimSpace(login); login != "" && !strings.EqualFold(login, s.Login) {
		return nil, "", catalog.M("apisignin.other_login", s.Login, login), nil
	}
	plain, err := a.cfg.Box.Open(s.Sealed, apiSignInContext(h))
	if err != nil {
		return nil, "", i18n.Message{}, fmt.Errorf("open a sign-in: %w", err)
	}
	ps := &providerSignIn{}
	if err := json.Unmarshal([]byte(plain), ps); err != nil {
		return nil, "", i18n.Message{}, fmt.Errorf("read a sign-in: %w", err)
	}
	// A rotated refresh token replaces the kept one at once: the old one
	// may no longer work.
	ps.redeem = a.redeemer(ps, func(ctx context.Context, refresh string) error {
		data, err := json.Marshal(providerSignIn{Provider: ps.Provider, Refresh: refresh})
		if err != nil {
			return err
		}
		_, err = a.cfg.Store.ChangeSignIn(ctx, h, store.SignInSignedIn, store.SignInSignedIn,
			a.cfg.Box.Seal(string(data), apiSignInContext(h)), s.Expires)
		return err
	})
	in.apiSignIns[ps] = h
	return ps, s.Login, i18n.Message{}, nil
}

// givenSignIn is a row's sign-in from a refresh token the hosting got
// with the same client; its access token is taken at the check.
func (a *API) givenSignIn(o *sourceOAuth, login string) (*providerSignIn, i18n.Message) {
	if !slices.Contains(oauth.IDs, o.Provider) {
		return nil, catalog.M("apisignin.oauth.provider", o.Provider)
	}
	prov := a.cfg.OAuth[o.Provider]
	if prov == nil {
		name := o.Provider
		if p := diagnose.ProviderFor("", login); p != nil && p.SignIn == o.Provider {
			name = p.Name
		}
		return nil, catalog.M("apisignin.not_configured", name, o.Provider, strings.TrimSpace(login))
	}
	if strings.TrimSpace(o.RefreshToken) == "" {
		return nil, catalog.M("apisignin.oauth.token")
	}
	ps := &providerSignIn{Provider: prov.ID, Refresh: strings.TrimSpace(o.RefreshToken)}
	ps.redeem = a.redeemer(ps, nil)
	return ps, i18n.Message{}
}

// redeemer takes a fresh access token for a sign-in, once, where its own
// has expired or it has none: the refresh token a rotation gives is kept
// in it (the task gets that one) and handed to rotated.
func (a *API) redeemer(ps *providerSignIn, rotated func(ctx context.Context, refresh string) error) func(context.Context) error {
	var mu sync.Mutex
	var done bool
	var err error
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return err
		}
		done = true
		if ps.Access != "" && (ps.Expiry.IsZero() || time.Now().Before(ps.Expiry)) {
			return nil
		}
		prov := a.cfg.OAuth[ps.Provider]
		if prov == nil {
			err = fmt.Errorf("sign-in with %q: %w", ps.Provider, oauth.ErrNotConfigured)
			return err
		}
		src := prov.NewSource(&oauth2.Token{RefreshToken: ps.Refresh}, func(ctx context.Context, refresh string) error {
			ps.Refresh = refresh
			if rotated != nil {
				return rotated(ctx, refresh)
			}
			return nil
		})
		// The new token's expiry stays with the source: the check uses it
		// now.
		ps.Access, err = src.Token(ctx, "")
		ps.Expiry = time.Time{}
		return err
	}
}

// useSignIns marks the API's sign-ins of the rows that start used, in the
// transaction that stores their tasks (each task holds its own sealed
// refresh token): a sign-in gives one migration.
func (a *API) useSignIns(ctx context.Context, tx *sql.Tx, in *migrationIn, rows []planned) error {
	var hashes [][]byte
	for _, row := range rows {
		if h := in.apiSignIns[row.signIn]; h != nil {
			hashes = append(hashes, h)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	err := a.cfg.Store.UseSignIns(ctx, tx, hashes)
	if errors.Is(err, store.ErrSignInGone) {
		return failWith(http.StatusConflict, "sign_in_used", "apisignin.used_now")
	}
	return err
}
