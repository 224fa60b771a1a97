package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

//go:embed templates static
var assets embed.FS

// Panel serves the customer pages: sign-in, the Email Migration Tool of a
// domain and the migration pages. It calls the same validation,
// submission and actions as the API.
type Panel struct {
	api     *API
	tmpl    map[i18n.Lang]*template.Template // the same pages in each language
	limiter *loginLimiter
}

// NewPanel makes the panel on top of the API's logic.
func NewPanel(api *API) *Panel {
	p := &Panel{api: api, tmpl: map[i18n.Lang]*template.Template{}, limiter: newLoginLimiter(api.cfg.Backoffs)}
	for _, l := range i18n.All {
		pr := i18n.New(l)
		p.tmpl[l] = template.Must(template.New("").Funcs(template.FuncMap{
			"t":         func(key string) string { return catalog.Text(l, key) },
			"tf":        func(key string, args ...any) string { return catalog.T(pr, key, args...) },
			"tn":        func(key string, n int, args ...any) string { return catalog.N(pr, key, n, args...) },
			"bytes":     pr.Bytes,
			"when":      pr.Time,
			"day":       pr.Date,
			"num":       func(n any) string { return pr.Sprintf("%d", n) },
			"msg":       func(m i18n.Message) string { return m.In(pr) },
			"remarks":   func(f engine.FolderReport) []string { return f.Remarks(pr) },
			"lang":      func() i18n.Lang { return l },
			"langs":     func() []i18n.Lang { return i18n.All },
			"manageBox": manageBox,
			"sentence":  firstSentence,
			// A template function has no request; the look-up is one row.
			"schedule": func(id int64) (scheduleView, error) { return api.scheduleOf(context.Background(), id) }}).ParseFS(assets, "templates/*.html"))
	}
	return p
}

// tr is a text in the language of a request.
func tr(r *http.Request, key string) string { return catalog.Text(langOf(r), key) }

// langCookie remembers the language a reader chose with the switch.
const langCookie = "mm_lang"

// langOf is the language of a request: the reader's choice, else the
// browser's.
func langOf(r *http.Request) i18n.Lang {
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := i18n.Parse(c.Value); ok {
			return l
		}
	}
	return i18n.FromAcceptLanguage(r.Header.Get("Accept-Language"))
}

// setLang is the language switch: it remembers the choice for a year and
// goes back to the page it was chosen on.
func (p *Panel) setLang(w http.ResponseWriter, r *http.Request) {
	l, ok := i18n.Parse(r.PathValue("lang"))
	if ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: p.api.secure(r)})
		// A signed-in user's mails follow the choice too.
		if c, err := r.Cookie(sessionCookie); err == nil {
			if u, _, err := p.api.cfg.Store.SessionUser(r.Context(), HashToken(c.Value)); err == nil {
				if err := p.api.cfg.Store.SetUserLang(r.Context(), u.ID, string(l)); err != nil {
					p.api.cfg.Logf("language of user %d: %v", u.ID, err)
				}
			}
		}
	}
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

const sessionCookie = "mm_session"

// sessionLifetime is how long a sign-in lasts.
const sessionLifetime = 12 * time.Hour

type ctxKey int

const userKey ctxKey = 0

type viewer struct {
	User   store.User
	Tenant store.Tenant
	// Session is the hash of the sign-in session's token, which what the
	// session keeps (checked logins) is bound to.
	Session []byte
	// Printer writes in the reader's language.
	Printer *i18n.Printer
}

// actor is the signed-in person as the one who asks for an action.
func (v viewer) actor() actor { return actor{Tenant: v.Tenant, User: v.User} }

// Handler routes the pages. Cross-origin form posts are refused by the
// standard library's protection (Sec-Fetch-Site / Origin), which makes
// CSRF tokens unnecessary.
func (p *Panel) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", p.loginPage)
	mux.HandleFunc("POST /login", p.login)
	mux.HandleFunc("POST /logout", p.logout)
	mux.HandleFunc("GET /lang/{lang}", p.setLang)
	mux.HandleFunc("GET /handoff", p.handoff)
	page := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, v viewer) error) {
		mux.Handle(pattern, p.session(fn))
	}
	page("GET /{$}", p.home)
	page("GET /domains/{domain}", p.domainPage)
	page("POST /domains/{domain}", p.domainPost)
	page("GET /domains/{domain}/dns", p.dnsPage)
	page("GET /migrations/{id}", p.migrationPage)
	page("GET /migrations/{id}/events", p.migrationEvents)
	page("POST /tasks/{id}/{action}", p.taskAction)
	page("POST /tasks/{id}/signin", p.signInAgain)
	mux.Handle("GET /oauth/callback", p.apiCallback(p.session(p.oauthCallback)))
	page("POST /migrations/{id}/{action}", p.migrationAction)
	page("GET /migrations/{id}/correct", p.correctPage)
	page("POST /migrations/{id}/correct", p.correctPost)
	page("POST /migrations/{id}/schedule/{op}", p.schedulePost)
	page("GET /tasks/{id}/report", p.taskReport)
	page("GET /tasks/{id}/runs/{run}/report", p.runReportPage)
	page("GET /domains/{domain}/mailboxes/{address}", p.mailboxPage)
	page("POST /domains/{domain}/mailboxes/{address}/{op}", p.mailboxPost)
	page("GET /operator/tasks", p.operatorPage(p.operatorTasks))
	page("GET /operator/tasks/{id}", p.operatorPage(p.operatorTask))
	page("POST /operator/tasks/{id}/{action}", p.operatorPage(p.operatorTaskAction))
	page("GET /operator/customers", p.operatorPage(p.operatorCustomers))
	page("POST /operator/customers/{id}/{op}", p.operatorPage(p.operatorCustomerSwitch))
	page("POST /operator/tokens/{id}/revoke", p.operatorPage(p.operatorRevokeToken))
	return http.NewCrossOriginProtection().Handler(p.securityHeaders(mux))
}

func (p *Panel) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.api.secure(r) {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// session resolves the sign-in cookie; without one the browser goes to the
// sign-in page and comes back afterwards.
func (p *Panel) session(fn func(w http.ResponseWriter, r *http.Request, v viewer) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewer{Printer: printerOf(r)}
		c, err := r.Cookie(sessionCookie)
		if err == nil {
			v.Session = HashToken(c.Value)
			v.User, v.Tenant, err = p.api.cfg.Store.SessionUser(r.Context(), v.Session)
		}
		if errors.Is(err, store.ErrDisabled) {
			p.refuseDisabled(w, r)
			return
		}
		if err != nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		err = fn(w, r, v)
		var ae *apiError
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound), errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			w.WriteHeader(http.StatusNotFound)
			p.render(w, r, "notfound", map[string]any{"Title": "404", "User": v.User})
		case errors.As(err, &ae):
			http.Error(w, ae.shown(v.Printer).Message, ae.Status)
		default:
			p.api.cfg.Logf("panel %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
		}
	})
}

func (p *Panel) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The same address reads in the language of whoever asks.
	w.Header().Add("Vary", "Accept-Language, Cookie")
	// The language switch comes back to this page.
	data["Here"] = r.URL.RequestURI()
	if err := p.tmpl[langOf(r)].ExecuteTemplate(w, name, data); err != nil {
		p.api.cfg.Logf("render %s: %v", name, err)
	}
}

func (p *Panel) loginPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, "login", map[string]any{"Title": tr(r, "signin.title"), "Next": safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps redirects after sign-in on this site.
//
// Only a clean local path is taken: browsers drop tabs and line breaks
// from an address and read a backslash as a slash, so "/\t/evil.example"
// would lead to another site; anything with such characters, or that
// parses with a scheme or a host, goes to the home page instead.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) >= 0 {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	return next
}

func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	next := safeNext(r.PostFormValue("next"))
	ip := p.api.clientAddr(r)
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		p.render(w, r, "login", map[string]any{"Title": tr(r, "signin.title"), "Error": msg, "Email": email, "Next": next})
	}
	wait, err := p.limiter.allow(r.Context(), ip, email)
	if err != nil {
		p.api.cfg.Logf("sign-in limits: %v", err)
		http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
		return
	}
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		fail(http.StatusTooManyRequests, catalog.T(printerOf(r), "signin.limited", catalog.M("n.seconds", i18n.Count(secs))))
		return
	}
	u, err := p.api.cfg.Store.UserByEmail(r.Context(), email)
	hash := u.PasswordHash
	if err != nil {
		hash = dummyHash()
	}
	if !VerifyPassword(hash, r.PostFormValue("password")) || err != nil {
		if err := p.limiter.failed(r.Context(), ip, email); err != nil {
			p.api.cfg.Logf("sign-in limits: %v", err)
		}
		fail(http.StatusUnauthorized, tr(r, "signin.failed"))
		return
	}
	if err := p.limiter.succeeded(r.Context(), ip, email); err != nil {
		p.api.cfg.Logf("sign-in limits: %v", err)
	}
	// Said only to whoever knows the password.
	if off, err := p.disabled(r.Context(), u); err != nil || off {
		if err != nil {
			p.api.cfg.Logf("sign-in of user %d: %v", u.ID, err)
			http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
			return
		}
		fail(http.StatusForbidden, tr(r, "signin.disabled"))
		return
	}
	if err := p.startSession(w, r, u); err != nil {
		http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// disabled tells whether the operator disabled a person's sign-in or the
// person's customer.
func (p *Panel) disabled(ctx context.Context, u store.User) (bool, error) {
	if !u.Disabled.IsZero() {
		return true, nil
	}
	t, err := p.api.cfg.Store.Tenant(ctx, u.TenantID)
	if err != nil {
		return false, fmt.Errorf("the customer of user %d: %w", u.ID, err)
	}
	return !t.Disabled.IsZero(), nil
}

// refuseDisabled answers a sign-in of a disabled person or customer.
func (p *Panel) refuseDisabled(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusForbidden)
	p.render(w, r, "login", map[string]any{"Title": tr(r, "signin.title"), "Error": tr(r, "signin.disabled"), "Next": "/"})
}

// startSession signs a user in: a new session and its cookie.
func (p *Panel) startSession(w http.ResponseWriter, r *http.Request, u store.User) error {
	tok := NewToken()
	if err := p.api.cfg.Store.CreateSession(r.Context(), HashToken(tok), u.ID, time.Now().Add(sessionLifetime)); err != nil {
		p.api.cfg.Logf("sign-in of user %d: %v", u.ID, err)
		return err
	}
	// Mails to this user are written in the language of the panel.
	if err := p.api.cfg.Store.SetUserLang(r.Context(), u.ID, string(langOf(r))); err != nil {
		p.api.cfg.Logf("sign-in of user %d: %v", u.ID, err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: p.api.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(sessionLifetime.Seconds())})
	return nil
}

func (p *Panel) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		_ = p.api.cfg.Store.DeleteSession(r.Context(), HashToken(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (p *Panel) home(w http.ResponseWriter, r *http.Request, v viewer) error {
	owner := v.Tenant.ID
	if isOperator(v.Tenant) {
		owner = 0
	}
	ds, err := p.api.cfg.Store.Domains(r.Context(), owner)
	if err != nil {
		return err
	}
	owners := map[int64]string{}
	if isOperator(v.Tenant) {
		ts, err := p.api.cfg.Store.Tenants(r.Context())
		if err != nil {
			return err
		}
		for _, t := range ts {
			owners[t.ID] = t.Name
		}
	}
	type row struct {
		Domain     store.Domain
		Customer   string
		Migrations int
		Latest     *migrationView
	}
	var rows []row
	for _, d := range ds {
		item := row{Domain: d, Customer: owners[d.TenantID]}
		ms, err := p.api.cfg.Store.Migrations(r.Context(), d.ID)
		if err != nil {
			return err
		}
		item.Migrations = len(ms)
		if len(ms) > 0 {
			mv, err := p.api.view(r.Context(), printerOf(r), ms[0], d)
			if err != nil {
				return err
			}
			item.Latest = &mv
		}
		rows = append(rows, item)
	}
	notes, err := p.notifications(r.Context(), v.Printer, owner)
	if err != nil {
		return err
	}
	p.render(w, r, "home", map[string]any{"Title": tr(r, "home.title"), "User": v.User, "Rows": rows, "Notifications": notes,
		"Operator": isOperator(v.Tenant)})
	return nil
}

// toolForm is what the domain page shows in its fields again after a
// check or an error: everything but the passwords.
type toolForm struct {
	Host, Port, Security string
	Trust                string // a certificate fingerprint the customer chose to trust
	DiscoverAddress      string // an old mailbox address whose server is looked for
	Selected             map[string]bool
	SourceUsers          map[string]string
	Lines                string // the pasted lines with the passwords taken out
	GmailOnce            bool   // a Gmail account's messages once each
}

// setSource puts the form's old server and options into a submission.
func (f toolForm) setSource(in *migrationIn) {
	in.Source.Host, in.Source.Security, in.Source.TrustFingerprint = f.Host, f.Security, f.Trust
	if f.Port != "" {
		port, err := strconv.Atoi(strings.TrimSpace(f.Port))
		if err != nil {
			port = -1 // reported by validation as an invalid port
		}
		in.Source.Port = port
	}
	in.GmailOnce = f.GmailOnce
}

func (p *Panel) domainData(ctx context.Context, v viewer, d store.Domain, f toolForm) (map[string]any, error) {
	mbs, err := p.api.cfg.Hosting.Driver.List(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	ms, err := p.api.cfg.Store.Migrations(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	var views []migrationView
	for _, m := range ms {
		mv, err := p.api.view(ctx, v.Printer, m, d)
		if err != nil {
			return nil, err
		}
		views = append(views, mv)
	}
	if f.Security == "" {
		f.Security = "tls"
	}
	// The existing mailboxes whose old login can sign in with its
	// provider instead of a password: by the old server, or the login.
	signIn := map[string]string{}
	logins := []string{f.DiscoverAddress, f.Lines}
	for _, mb := range mbs {
		logins = append(logins, f.SourceUsers[mb.Address])
		if prov := p.api.signInProvider(f.Host, f.SourceUsers[mb.Address]); prov != nil {
			signIn[mb.Address] = prov.ID
		}
	}
	return map[string]any{"Title": d.Name, "User": v.User, "Domain": d, "Mailboxes": mbs, "Form": f,
		"Hints": providerHints(v.Printer, f.Host, logins...), "HintTable": hintTable(v.Printer),
		"Migrations": views, "Master": p.api.cfg.Hosting.MasterUser != "", "AllowPlaintext": p.api.cfg.AllowPlaintext,
		"Kept": keptRef{}, "KeptMinutes": int(keepChecked / time.Minute), "SignIn": signIn,
		"LineSignIn": map[string]string{}}, nil
}

func (p *Panel) domainPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	d, err := p.api.domain(r.Context(), v.Tenant, r.PathValue("domain"))
	if err != nil {
		return err
	}
	// The source server of the domain's last migration is most likely
	// the one of the next: its fields start filled in.
	var f toolForm
	ms, err := p.api.cfg.Store.Migrations(r.Context(), d.ID)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		f.Host, f.Port, f.Security = ms[0].SourceHost, strconv.Itoa(ms[0].SourcePort), ms[0].SourceSecurity
	}
	// Back from a sign-in with a provider: the form as it was left.
	kept, err := p.kept(r.Context(), v, r.URL.Query().Get("kept"))
	if err != nil {
		return err
	}
	if kept.logins != nil && kept.logins.Form != nil {
		f = kept.logins.Form.toolForm()
	}
	data, err := p.domainData(r.Context(), v, d, f)
	if err != nil {
		return err
	}
	data["Kept"] = kept
	switch r.URL.Query().Get("signin") {
	case "ok":
		data["Notice"] = tr(r, "oauth.ok")
		if kept.logins != nil && kept.logins.Form != nil && kept.logins.Form.Line != "" {
			data["Notice"] = tr(r, "oauth.ok.line")
			if err := p.checkSignedLines(r.Context(), v, d, f, kept.logins, data); err != nil {
				return err
			}
		}
	case "denied":
		data["Errors"] = []string{tr(r, "oauth.denied")}
	case "failed":
		data["Errors"] = []string{tr(r, "oauth.failed")}
	}
	if err := p.withDomainManage(r, data, d); err != nil {
		return err
	}
	p.render(w, r, "domain", data)
	return nil
}

// checkSignedLines checks, back from a pasted line's sign-in with its
// provider, the form's signed-in lines with their tokens, so that the
// customer sees at once whether the old mailboxes open with them. The
// other rows wait for the form's Check: their passwords were not checked
// again.
func (p *Panel) checkSignedLines(ctx context.Context, v viewer, d store.Domain, f toolForm, k *keptLogins, data map[string]any) error {
	var in migrationIn
	f.setSource(&in)
	// Each on its line of the text box, so that a result names the line
	// the page shows.
	lines := strings.Split(f.Lines, "\n")
	for i, line := range lines {
		if k.Lines[strings.ToLower(strings.TrimSpace(line))].SignIn == nil {
			lines[i] = ""
		}
	}
	in.NewMailboxes = strings.Join(lines, "\n")
	if strings.TrimSpace(in.NewMailboxes) == "" {
		return nil
	}
	k.fill(&in)
	checks, _, _, err := p.api.runCheck(ctx, d, &in)
	var ae *apiError
	if errors.As(err, &ae) {
		data["Errors"], checks, err = formErrors(v.Printer, ae), ae.Checks, nil
	}
	if err != nil {
		return err
	}
	data["Checks"], data["LineSignIn"] = localizeChecks(checks, v.Printer), p.lineSignIns(f.Host, checks)
	return nil
}

// domainPost is the form's two buttons: check every login, or start.
func (p *Panel) domainPost(w http.ResponseWriter, r *http.Request, v viewer) error {
	ctx := r.Context()
	d, err := p.api.domain(ctx, v.Tenant, r.PathValue("domain"))
	if err != nil {
		return err
	}
	upload, err := readNewMailboxForm(w, r)
	if err != nil {
		return err
	}
	var in migrationIn
	f := toolForm{Host: r.PostFormValue("source_host"), Port: r.PostFormValue("source_port"),
		Security: r.PostFormValue("source_security"), Selected: map[string]bool{}, SourceUsers: map[string]string{},
		GmailOnce: r.PostFormValue("gmail_once") != "", Trust: r.PostFormValue("trust_fingerprint")}
	f.setSource(&in)
	for _, mb := range r.PostForm["sync"] {
		f.Selected[mb] = true
		f.SourceUsers[mb] = r.PostFormValue("su:" + mb)
		in.Sync = append(in.Sync, syncRow{mb, r.PostFormValue("hp:" + mb), r.PostFormValue("su:" + mb), r.PostFormValue("sp:" + mb)})
	}
	for k, vals := range r.PostForm {
		if mb, ok := strings.CutPrefix(k, "su:"); ok && !f.Selected[mb] && len(vals) > 0 {
			f.SourceUsers[mb] = vals[0]
		}
	}
	in.NewMailboxes = r.PostFormValue("new_mailboxes")
	f.Lines = withoutPasswords(in.NewMailboxes)
	kept, err := p.kept(ctx, v, r.PostFormValue("kept"))
	if err != nil {
		return err
	}

	var errs []string
	var started *migrationView
	if !upload.problem.IsZero() {
		errs = append(errs, upload.problem.In(v.Printer))
	} else if upload.text != "" {
		// The file's lines, numbered as in the file; not echoed into
		// the text box, which keeps what was typed there.
		in.NewMailboxes = upload.text
	}
	kept.logins.fill(&in)
	var checks []checkResult
	var found []diagnose.Candidate
	checksOK := false
	action := r.PostFormValue("action")
	f.DiscoverAddress = strings.TrimSpace(r.PostFormValue("discover_address"))
	if use := r.PostFormValue("use"); use != "" {
		// A found server goes into the source fields.
		parts := strings.Split(use, "|")
		if len(parts) == 3 {
			f.Host, f.Port, f.Security = parts[0], parts[1], parts[2]
		}
		action = "none"
	}
	if len(errs) > 0 {
		action = "none"
	}
	if mb, ok := strings.CutPrefix(action, "signin:"); ok || strings.HasPrefix(action, "signin-line:") {
		line := ""
		if !ok {
			mb, line = "", strings.TrimPrefix(action, "signin-line:")
		}
		problem, err := p.signInFromForm(w, r, v, d, f, &in, kept, mb, line)
		if err != nil || problem == "" {
			return err
		}
		errs, action = append(errs, problem), "none"
	}
	switch action {
	case "none":
	case "discover":
		if !strings.Contains(f.DiscoverAddress, "@") {
			errs = append(errs, tr(r, "discover.address"))
			break
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		found, err = p.api.cfg.Discover(ctx, f.DiscoverAddress)
		cancel()
		found = localizeCandidates(found, v.Printer)
		if err != nil {
			errs = append(errs, messageOf(err).In(v.Printer))
			err = nil
		} else if len(found) == 0 {
			errs = append(errs, tr(r, "discover.none"))
		}
	case "check":
		var rows []planned
		checks, rows, checksOK, err = p.api.runCheck(ctx, d, &in)
		if err == nil {
			// What works is kept for Start; the earlier check's logins
			// are in this one's, filled in above.
			if err = p.drop(ctx, kept); err == nil {
				kept = keptRef{}
				canSignIn := func(login string) bool { return p.api.signInProvider(in.Source.Host, login) != nil }
				if k := keptFrom(&in, rows, checks, canSignIn); k != nil {
					kept, err = p.keep(ctx, v, k)
				}
			}
			if upload.text != "" {
				// The file is not sent again with Start: its logins go
				// into the text box, completed from what is kept.
				f.Lines = withoutPasswords(upload.text)
			}
		}
	default:
		var mv migrationView
		var notStarted []checkResult
		mv, notStarted, err = p.api.submit(ctx, v.Printer, d, &in)
		if err == nil {
			if err := p.drop(ctx, kept); err != nil {
				return err
			}
			kept = keptRef{}
		}
		if err == nil && len(notStarted) == 0 {
			http.Redirect(w, r, fmt.Sprintf("/migrations/%d", mv.ID), http.StatusSeeOther)
			return nil
		}
		if err == nil {
			// The rest started; the form keeps only what is to correct.
			started, checks = &mv, notStarted
			f = notStartedForm(f, notStarted)
		}
	}
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Code == "mailbox_busy") {
		errs = append(errs, formErrors(v.Printer, ae)...)
		checks = ae.Checks
		err = nil
	}
	if err != nil {
		return err
	}
	data, err := p.domainData(ctx, v, d, f)
	if err != nil {
		return err
	}
	// Logins that work are not yet a good start when a mailbox here is
	// too small for its mail: its row says so, and the summary must not
	// contradict it.
	shortOfSpace := false
	for _, c := range checks {
		shortOfSpace = shortOfSpace || (c.Plan != nil && c.Plan.ShortfallBytes > 0)
	}
	data["Errors"], data["Checks"], data["ChecksOK"], data["Found"] = errs, localizeChecks(checks, v.Printer), checksOK, found
	data["LineSignIn"] = p.lineSignIns(f.Host, checks)
	data["ShortOfSpace"] = shortOfSpace
	data["Certs"] = certificates(checks)
	data["Started"] = started
	data["Kept"] = kept
	if err := p.withDomainManage(r, data, d); err != nil {
		return err
	}
	if len(errs) > 0 || started != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	p.render(w, r, "domain", data)
	return nil
}

// formErrors are a refused submission's reasons, as the form lists them.
func formErrors(pr *i18n.Printer, ae *apiError) []string {
	var errs []string
	shown := ae.shown(pr)
	for _, fe := range shown.Fields {
		errs = append(errs, fe.Reason.In(pr)) // the reasons name the mailbox they concern
	}
	for _, le := range shown.Lines {
		errs = append(errs, catalog.T(pr, "errors.line", le.Line, le.Reason.In(pr)))
	}
	if len(ae.Fields) == 0 && len(ae.Lines) == 0 {
		errs = append(errs, shown.Message)
	}
	return errs
}

// lineSignIns are the providers the pasted lines' old logins can sign in
// with here, by the row of their check.
func (p *Panel) lineSignIns(host string, checks []checkResult) map[string]string {
	out := map[string]string{}
	for _, c := range checks {
		if prov := p.api.signInProvider(host, c.SourceUser); prov != nil && strings.HasPrefix(c.Row, "line ") {
			out[c.Row] = prov.ID
		}
	}
	return out
}

// certificates lists the distinct untrusted certificates the checks met:
// every mailbox of one old server meets the same one, and the customer
// decides about it once.
func certificates(checks []checkResult) []*diagnose.Certificate {
	var out []*diagnose.Certificate
	seen := map[string]bool{}
	for _, c := range checks {
		if c.SourceDiagnosis == nil || c.SourceDiagnosis.Certificate == nil || seen[c.SourceDiagnosis.Certificate.Fingerprint] {
			continue
		}
		seen[c.SourceDiagnosis.Certificate.Fingerprint] = true
		out = append(out, c.SourceDiagnosis.Certificate)
	}
	return out
}

// withoutPasswords keeps the logins of pasted lines and drops what follows
// them, so that no password is sent back into the page.
func withoutPasswords(text string) string {
	var out []string
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i == 0 && isCSVHeader(line) {
			continue
		}
		login, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(line, "\t", " ")), " ")
		// A CSV line's first column is the login; the rest holds passwords.
		login, _, _ = strings.Cut(login, ",")
		if login != "" {
			out = append(out, login+" ")
		}
	}
	return strings.Join(out, "\n")
}

// dnsPage shows the DNS check of a domain as a table.
func (p *Panel) dnsPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	d, err := p.api.domain(r.Context(), v.Tenant, r.PathValue("domain"))
	if err != nil {
		return err
	}
	rows, err := p.api.dnsRows(r.Context(), d)
	if err != nil {
		return err
	}
	p.render(w, r, "dns", map[string]any{"Title": d.Name, "User": v.User, "Domain": d, "Rows": localizeRows(rows, v.Printer)})
	return nil
}

func (p *Panel) migrationPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	m, d, err := p.api.migration(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	mv, err := p.api.view(r.Context(), printerOf(r), m, d)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for _, s := range []string{store.StateQueued, store.StateRunning, store.StateDone, store.StateWarnings,
		store.StateFailed, store.StatePaused, store.StateCancelled} {
		labels[s] = tr(r, "state."+s)
	}
	labels["folders"] = tr(r, "progress.folders")
	labels["eta"] = tr(r, "progress.eta")
	labels["started"], labels["finished"] = tr(r, "time.started"), tr(r, "time.finished")
	runs, err := p.api.taskRuns(r.Context(), printerOf(r), mv.Tasks)
	if err != nil {
		return err
	}
	manage, err := p.migrationManage(r, mv, d)
	if err != nil {
		return err
	}
	// The customer learns which of its mailboxes the hosting restarted or
	// cancelled, so that a state it did not choose is not a mystery.
	acted, err := p.api.cfg.Store.CurrentTaskActions(r.Context(), m.ID)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": d.Name, "User": v.User, "M": mv, "Labels": labels, "Manage": manage,
		"Runs": runs, "Acted": acted}
	// Back from signing a mailbox in again.
	switch r.URL.Query().Get("signin") {
	case "ok":
		data["Notice"] = tr(r, "oauth.renewed")
	case "denied":
		data["Problem"] = tr(r, "oauth.denied")
	case "failed":
		data["Problem"] = tr(r, "oauth.failed")
	}
	p.render(w, r, "migration", data)
	return nil
}

func (p *Panel) migrationEvents(w http.ResponseWriter, r *http.Request, v viewer) error {
	m, d, err := p.api.migration(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	return p.api.stream(w, r, v.Tenant.ID, m, d)
}

func (p *Panel) taskAction(w http.ResponseWriter, r *http.Request, v viewer) error {
	task, err := p.api.task(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := p.api.actAs(r.Context(), task, r.PathValue("action"), v.actor()); err != nil {
		if noPasswords(w, r, task.MigrationID, err) {
			return nil
		}
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/migrations/%d", task.MigrationID), http.StatusSeeOther)
	return nil
}

func (p *Panel) migrationAction(w http.ResponseWriter, r *http.Request, v viewer) error {
	m, _, err := p.api.migration(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := p.api.actAll(r.Context(), m, r.PathValue("action"), v.actor()); err != nil {
		if noPasswords(w, r, m.ID, err) {
			return nil
		}
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/migrations/%d", m.ID), http.StatusSeeOther)
	return nil
}

func (p *Panel) taskReport(w http.ResponseWriter, r *http.Request, v viewer) error {
	task, err := p.api.task(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeTaskReport(w, r, task)
}

// HashPassword hashes a panel user's password with argon2id.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 2, 19*1024, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// VerifyPassword checks a password against HashPassword's output.
func VerifyPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, tm uint32
	var par uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &tm, &par); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, tm, m, par, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
