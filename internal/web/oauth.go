package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
)

// signInWait is how long a sign-in with a provider may take, from the
// button to the provider's redirect back.
const signInWait = 10 * time.Minute

// providerSignIn is an old mailbox the customer signed in to with its provider,
// as the panel keeps it (sealed, for the session) until Start.
type providerSignIn struct {
	Provider string    `json:"p"`
	Refresh  string    `json:"r"`
	Access   string    `json:"a"`
	Expiry   time.Time `json:"e"`
	// redeem, set for a sign-in given through the API, takes a fresh
	// access token once, at the check, where the one kept has expired or
	// there is none (see apiSignIns).
	redeem func(ctx context.Context) error
}

// checkToken is the token of a check's login: the access token of the
// sign-in while it lasts. It is never refreshed here, so that the refresh
// token the task gets is the one the provider gave (a refresh could
// rotate it); a sign-in older than its access token is done again.
func (s *providerSignIn) checkToken(ctx context.Context, _ string) (string, error) {
	if s.redeem != nil {
		if err := s.redeem(ctx); err != nil {
			return "", err
		}
	}
	if s.Access == "" || !s.Expiry.IsZero() && time.Now().After(s.Expiry) {
		return "", fmt.Errorf("the sign-in's access token expired: %w", oauth.ErrRevoked)
	}
	return s.Access, nil
}

// signInPending is a sign-in under way: kept sealed for the session
// under its state's hash until the provider sends the browser back, and
// used once.
type signInPending struct {
	Provider string `json:"provider"`
	Verifier string `json:"verifier"`
	Redirect string `json:"redirect"`
	// A mailbox of the domain form: the form comes back as it was, with
	// the passwords typed and kept so far.
	Domain     string      `json:"domain,omitempty"`
	Mailbox    string      `json:"mailbox,omitempty"`
	SourceUser string      `json:"source_user,omitempty"`
	Logins     *keptLogins `json:"logins,omitempty"`
	// Or a pasted line of the domain form, by its old login.
	Line string `json:"line,omitempty"`
	// Or a task whose sign-in is renewed.
	TaskID int64 `json:"task_id,omitempty"`
}

// signInProvider is the provider a mailbox at host (or of login user)
// signs in with here, or nil: none known, or the hosting is not
// registered with it.
func (a *API) signInProvider(host, user string) *oauth.Provider {
	p := diagnose.ProviderFor(strings.TrimSpace(host), strings.TrimSpace(user))
	if p == nil || p.SignIn == "" {
		return nil
	}
	return a.cfg.OAuth[p.SignIn]
}

// callbackURL is where providers send the browser back: on the panel's
// public address, or the one the request came to.
func (a *API) callbackURL(r *http.Request) string {
	base := strings.TrimSuffix(a.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if a.secure(r) {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/oauth/callback"
}

func signInContext(stateHash, sessionHash []byte) string {
	return "oauth-state:" + hex.EncodeToString(stateHash) + ":" + hex.EncodeToString(sessionHash)
}

// startSignIn keeps a pending sign-in for this session and sends the
// browser to the provider.
func (p *Panel) startSignIn(w http.ResponseWriter, r *http.Request, v viewer, prov *oauth.Provider, pending signInPending, user string) error {
	raw := make([]byte, 24)
	rand.Read(raw)
	state := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(state))
	pending.Provider, pending.Verifier, pending.Redirect = prov.ID, oauth.NewVerifier(), p.api.callbackURL(r)
	plain, err := json.Marshal(pending)
	if err != nil {
		return err
	}
	sealed := p.api.cfg.Box.Seal(string(plain), signInContext(h[:], v.Session))
	if err := p.api.cfg.Store.KeepLogins(r.Context(), h[:], v.Session, sealed, time.Now().Add(signInWait)); err != nil {
		return err
	}
	http.Redirect(w, r, prov.AuthCodeURL(pending.Redirect, state, pending.Verifier, user), http.StatusSeeOther)
	return nil
}

// signInFromForm starts the sign-in of one old login from the domain
// form: an existing mailbox's, or a pasted line's (line, its old login);
// what the form holds comes back after it.
func (p *Panel) signInFromForm(w http.ResponseWriter, r *http.Request, v viewer, d store.Domain, f toolForm, in *migrationIn, kept keptRef, mailbox, line string) (string, error) {
	line = strings.TrimSpace(line)
	user := line
	if mailbox != "" {
		if user = strings.TrimSpace(f.SourceUsers[mailbox]); user == "" {
			return catalog.T(v.Printer, "oauth.need_user", mailbox), nil
		}
	}
	prov := p.api.signInProvider(f.Host, user)
	if prov == nil {
		return catalog.T(v.Printer, "oauth.unavailable", user), nil
	}
	logins := &keptLogins{Source: sourceKey(in), Sync: map[string]keptSync{}, Lines: map[string]keptLine{}}
	if k := kept.logins; k != nil && k.Source == logins.Source {
		// Copied: a map read back empty is nil.
		maps.Copy(logins.Sync, k.Sync)
		maps.Copy(logins.Lines, k.Lines)
	}
	for _, s := range in.Sync {
		if s.SourcePassword != "" || s.HostingPassword != "" {
			logins.Sync[strings.ToLower(s.Mailbox)] = keptSync{SourceUser: strings.TrimSpace(s.SourceUser),
				SourcePassword: s.SourcePassword, HostingPassword: s.HostingPassword}
		}
	}
	// Every line's passwords, typed or kept: they are the new mailboxes'.
	entries, _, err := bulk.ParseNewMailboxes(strings.NewReader(in.NewMailboxes), d.Name)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		kl := logins.Lines[strings.ToLower(e.SourceUser)]
		kl.SourcePassword, kl.NewPassword = e.SourcePassword, e.DestPassword
		logins.Lines[strings.ToLower(e.SourceUser)] = kl
	}
	if mailbox != "" {
		f.Selected[mailbox] = true
	}
	// The lines as submitted: those of an uploaded file too.
	logins.Form = &keptForm{Host: f.Host, Port: f.Port, Security: f.Security, Trust: f.Trust,
		SourceUsers: f.SourceUsers, Lines: withoutPasswords(in.NewMailboxes), GmailOnce: f.GmailOnce, Line: line}
	for mb, on := range f.Selected {
		if on {
			logins.Form.Selected = append(logins.Form.Selected, mb)
		}
	}
	if err := p.drop(r.Context(), kept); err != nil {
		return "", err
	}
	return "", p.startSignIn(w, r, v, prov, signInPending{Domain: d.Name, Mailbox: mailbox, Line: line, SourceUser: user, Logins: logins}, user)
}

// signInAgain starts a new sign-in for a task whose sign-in was withdrawn
// or expired; the callback stores it and resumes the task.
func (p *Panel) signInAgain(w http.ResponseWriter, r *http.Request, v viewer) error {
	task, err := p.api.task(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	prov := p.api.cfg.OAuth[task.SourceSignIn]
	switch {
	case prov == nil:
		return failWith(http.StatusConflict, "no_sign_in", "oauth.unavailable", task.SourceUser)
	case !store.Finished(task.State):
		return failWith(http.StatusConflict, "task_running", "correct.running", task.DestUser)
	}
	return p.startSignIn(w, r, v, prov, signInPending{TaskID: task.ID}, task.SourceUser)
}

// oauthCallback is where the provider sends the browser back: the state
// must be one this session started and not yet used.
func (p *Panel) oauthCallback(w http.ResponseWriter, r *http.Request, v viewer) error {
	ctx := r.Context()
	q := r.URL.Query()
	h := sha256.Sum256([]byte(q.Get("state")))
	sealed, err := p.api.cfg.Store.KeptLogins(ctx, h[:], v.Session)
	if errors.Is(err, store.ErrNotFound) {
		return failWith(http.StatusBadRequest, "sign_in_expired", "oauth.expired")
	}
	if err != nil {
		return err
	}
	if err := p.api.cfg.Store.DropKeptLogins(ctx, h[:]); err != nil {
		return err
	}
	plain, err := p.api.cfg.Box.Open(sealed, signInContext(h[:], v.Session))
	if err != nil {
		return fmt.Errorf("open a pending sign-in: %w", err)
	}
	var pending signInPending
	if err := json.Unmarshal([]byte(plain), &pending); err != nil {
		return fmt.Errorf("read a pending sign-in: %w", err)
	}
	prov := p.api.cfg.OAuth[pending.Provider]
	if prov == nil {
		return failWith(http.StatusBadRequest, "sign_in_expired", "oauth.expired")
	}
	outcome := "ok"
	var tok *oauth2.Token
	switch {
	case q.Get("error") != "":
		outcome = "denied"
	default:
		tok, err = prov.Exchange(ctx, pending.Redirect, q.Get("code"), pending.Verifier)
		if err == nil && tok.RefreshToken == "" {
			err = errors.New("the provider gave no refresh token")
		}
		if err != nil {
			p.api.cfg.Logf("sign-in with %s: %v", prov.Name, err)
			outcome = "failed"
		}
	}
	if pending.TaskID != 0 {
		return p.renewSignIn(w, r, v, pending, tok, outcome)
	}
	logins := pending.Logins
	if outcome == "ok" {
		logins.signedIn(pending, &providerSignIn{Provider: prov.ID, Refresh: tok.RefreshToken, Access: tok.AccessToken, Expiry: tok.Expiry})
	}
	ref, err := p.keep(ctx, v, logins)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/domains/"+url.PathEscape(pending.Domain)+"?"+url.Values{"kept": {ref.Handle}, "signin": {outcome}}.Encode(), http.StatusSeeOther)
	return nil
}

// renewSignIn stores a task's new sign-in and resumes the task.
func (p *Panel) renewSignIn(w http.ResponseWriter, r *http.Request, v viewer, pending signInPending, tok *oauth2.Token, outcome string) error {
	ctx := r.Context()
	task, err := p.api.task(ctx, v.Tenant, strconv.FormatInt(pending.TaskID, 10))
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/migrations/%d", task.MigrationID)
	if outcome != "ok" {
		http.Redirect(w, r, back+"?signin="+outcome, http.StatusSeeOther)
		return nil
	}
	sealed := p.api.cfg.Box.Seal(tok.RefreshToken, jobs.SecretContext(task.ID, "source-oauth"))
	ok, err := p.api.cfg.Store.RenewSignIn(ctx, task.ID, pending.Provider, sealed)
	if err != nil {
		return err
	}
	if !ok {
		return failWith(http.StatusConflict, "task_running", "correct.running", task.DestUser)
	}
	if err := p.api.actAs(ctx, task, "restart", v.actor()); err != nil {
		return err
	}
	p.api.cfg.Logf("task %d: signed in again with %s and restarted", task.ID, pending.Provider)
	http.Redirect(w, r, back+"?signin=ok", http.StatusSeeOther)
	return nil
}

// tokenLogin tries a sign-in at the old server with a signed-in mailbox's
// access token.
func (a *API) tokenLogin(ctx context.Context, ep imapconn.Endpoint, user string, s *providerSignIn) (*engine.Failure, error) {
	tok, err := s.checkToken(ctx, "")
	if err == nil {
		var c *imapconn.Conn
		if c, err = imapconn.Dial(ctx, ep, a.cfg.Engine.Conn); err == nil {
			err = c.LoginToken(ctx, user, tok)
			c.Logout(ctx)
		}
	}
	if err != nil {
		if imapconn.KindOf(err) == imapconn.ErrAuth || errors.Is(err, oauth.ErrRevoked) {
			err = &engine.SignInError{Err: err}
		}
		return engine.Explain(&engine.SideError{Side: engine.SideSource, User: user, Err: err}), err
	}
	return nil, nil
}
