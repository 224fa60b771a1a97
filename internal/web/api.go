// Package web serves the migration service over HTTP: the JSON API under
// /api/v1 (and, later, the customer pages) on top of the store and the job
// queue. Every object is checked against the caller's tenant.
package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/slots"
	"mailmigrate/internal/store"
)

// Jobs is what the API asks of the job queue.
type Jobs interface {
	// QueueTx queues the jobs of new tasks in the transaction that stores
	// them, and sets their JobID.
	QueueTx(ctx context.Context, tx *sql.Tx, tasks []store.Task) error
	Requeue(ctx context.Context, taskID int64) error
	Cancel(ctx context.Context, taskID int64) error
}

// Config is the API's wiring.
type Config struct {
	Store   store.Store
	Jobs    Jobs
	Box     *secret.Box
	Hosting jobs.Hosting
	// Engine options for pre-flight logins (timeouts).
	Engine engine.Options
	// AllowPlaintext lets customers choose an unencrypted source.
	AllowPlaintext bool
	// AllowPrivate lets source addresses point into internal networks
	// (tests, or a hosting migrating between its own servers).
	AllowPrivate bool
	// Diagnose explains failed logins; its Resolver and Hosting tell
	// whether an old server's name already leads to this hosting.
	Diagnose diagnose.LoginAttempt
	// Discover finds the old IMAP server of a mailbox address; nil uses a
	// Discoverer with Diagnose's resolver and hosting.
	Discover func(ctx context.Context, address string) ([]diagnose.Candidate, error)
	// MaxQuota is the plan limit: the largest quota a customer may give
	// a mailbox. 0: customers cannot change quotas.
	MaxQuota int64
	// ResyncStopDays is how many days after the domain's MX points to the
	// hosting a scheduled re-sync stops (shown to the customer).
	ResyncStopDays int
	Logf           func(format string, args ...any)
	// PublicURL is the panel's public address (https: Secure cookies and
	// HSTS); TrustedProxies may name the client in X-Forwarded-For.
	PublicURL      string
	TrustedProxies []netip.Prefix
	// CheckLines and ChecksPerHour cap logins per check and per customer
	// and hour (0: 500 and 2,000).
	CheckLines, ChecksPerHour int
	// SourceHostLimit is how many connections the hosting allows itself
	// to one old server (sources.host_limit); a check logs in with as
	// many at once, at least 4 and at most half of FailedLogins.PerHost.
	SourceHostLimit int
	// FailedLogins counts failed logins to old servers; shared with the
	// job queue. Nil: the API's own.
	FailedLogins *diagnose.FailedLogins
	// AllowedPorts are the source ports allowed besides 143 and 993
	// (unless AllowPrivate).
	AllowedPorts []int
	// HandoffKey, if set, lets the hosting's own panel sign its customers
	// in here (GET /handoff).
	HandoffKey *HandoffKey
	// Slots keeps what every server must know: the hosting panel's links
	// already taken. Nil: this process's own.
	Slots slots.Slots
	// Backoffs counts the panel's failed sign-ins (store.DB.Backoffs, so
	// that all web servers count together). Nil: this process's own.
	Backoffs Backoffs
	// OAuth are the providers an old mailbox may be signed in to with
	// instead of a password, by ID (package oauth); nil: none.
	OAuth map[string]*oauth.Provider
	// SignInReturnOrigins are the origins a sign-in started through the
	// API may send the browser back to (lower case, scheme://host[:port]).
	SignInReturnOrigins []string
}

// API serves /api/v1.
type API struct {
	cfg    Config
	failed *diagnose.FailedLogins
	// streams counts the open event streams per tenant.
	streamsMu sync.Mutex
	streams   map[int64]int
	// tryLogin logs in once to a server; tests replace it to stand for
	// servers that accept every login.
	tryLogin func(ctx context.Context, ep imapconn.Endpoint, side engine.Side, user, pass string) (*engine.Failure, error)
	// inspect is the pre-flight of one copy (engine.Check); tests replace
	// it together with tryLogin.
	inspect func(ctx context.Context, a engine.Account, opt engine.Options) (*engine.Report, error)
}

// NewAPI makes the API handler.
func NewAPI(cfg Config) *API {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Discover == nil {
		d := &diagnose.Discoverer{Resolver: cfg.Diagnose.Resolver, Hosting: cfg.Diagnose.Hosting,
			Ports: cfg.AllowedPorts, AnyPort: cfg.AllowPrivate}
		cfg.Discover = d.Discover
	}
	failed := cfg.FailedLogins
	if failed == nil {
		failed = diagnose.NewFailedLogins(nil)
	}
	if cfg.Slots == nil {
		cfg.Slots = slots.NewMemory()
	}
	a := &API{cfg: cfg, failed: failed, streams: map[int64]int{}}
	a.tryLogin, a.inspect = a.login, engine.Check
	return a
}

// Handler routes the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, t store.Tenant) error) {
		mux.Handle(pattern, a.auth(fn))
	}
	h("GET /api/v1/domains", a.listDomains)
	h("GET /api/v1/domains/{domain}/mailboxes", a.listMailboxes)
	h("GET /api/v1/domains/{domain}/dnscheck", a.dnsCheck)
	h("POST /api/v1/domains/{domain}/mailboxes/{address}/password", a.setPassword)
	h("POST /api/v1/domains/{domain}/mailboxes/{address}/quota", a.setQuota)
	h("GET /api/v1/domains/{domain}/mailboxes/{address}/aliases", a.listAliases)
	h("POST /api/v1/domains/{domain}/mailboxes/{address}/aliases", a.createAlias)
	h("DELETE /api/v1/domains/{domain}/mailboxes/{address}/aliases/{alias}", a.deleteAlias)
	h("GET /api/v1/discover", a.discover)
	h("POST /api/v1/sign-ins", a.createSignIn)
	h("GET /api/v1/sign-ins/{id}", a.getSignIn)
	h("POST /api/v1/domains/{domain}/check", a.check)
	h("POST /api/v1/domains/{domain}/migrations", a.createMigration)
	h("GET /api/v1/domains/{domain}/migrations", a.listMigrations)
	h("GET /api/v1/migrations/{id}", a.getMigration)
	h("POST /api/v1/migrations/{id}/{action}", a.migrationAction)
	h("POST /api/v1/migrations/{id}/correct", a.correctMigration)
	h("GET /api/v1/migrations/{id}/schedule", a.schedule)
	h("POST /api/v1/migrations/{id}/schedule", a.schedule)
	h("DELETE /api/v1/migrations/{id}/schedule", a.schedule)
	h("GET /api/v1/migrations/{id}/events", a.events)
	h("GET /api/v1/tasks", a.listAllTasks)
	h("GET /api/v1/tasks/{id}", a.getTask)
	h("POST /api/v1/tasks/{id}/{action}", a.taskAction)
	h("GET /api/v1/tasks/{id}/report", a.report)
	h("GET /api/v1/tasks/{id}/runs", a.listRuns)
	h("GET /api/v1/tasks/{id}/runs/{run}/report", a.runReport)
	h("GET /api/v1/customers", a.listCustomers)
	h("POST /api/v1/customers", a.createCustomer)
	h("POST /api/v1/customers/{id}/domains", a.createDomain)
	h("POST /api/v1/customers/{id}/tokens", a.createToken)
	mux.HandleFunc("GET /api/v1/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.Write(OpenAPIYAML)
	})
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "api.route", r.Method, r.URL.Path)
	})
	return mux
}

// apiError is an error with an HTTP status and a stable code.
type apiError struct {
	Status int    `json:"-"`
	Code   string `json:"error"`
	// Text is the message for the reader; Message is Text in the reader's
	// language, filled when the error is answered (shown).
	Text    i18n.Message  `json:"-"`
	Message string        `json:"message"`
	Fields  []fieldError  `json:"fields,omitempty"`
	Lines   []lineError   `json:"lines,omitempty"`
	Checks  []checkResult `json:"checks,omitempty"`
	// TaskID and MigrationID name the task a mailbox_busy refusal waits
	// for.
	TaskID      int64 `json:"task_id,omitempty"`
	MigrationID int64 `json:"migration_id,omitempty"`
}

func (e *apiError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Text.String()
}

// shown is a copy of the error for its reader: every sentence written in
// the printer's language.
func (e *apiError) shown(p *i18n.Printer) *apiError {
	c := *e
	if !e.Text.IsZero() {
		c.Message = e.Text.In(p)
	}
	c.Fields, c.Lines = nil, nil
	for _, f := range e.Fields {
		c.Fields = append(c.Fields, fieldError{f.Field, i18n.Literal(f.Reason.In(p))})
	}
	for _, l := range e.Lines {
		c.Lines = append(c.Lines, lineError{l.Line, i18n.Literal(l.Reason.In(p))})
	}
	c.Checks = localizeChecks(e.Checks, p)
	return &c
}

type fieldError struct {
	Field  string       `json:"field"`
	Reason i18n.Message `json:"reason"`
}

type lineError struct {
	Line   int          `json:"line"`
	Reason i18n.Message `json:"reason"`
}

var errNotFound = &apiError{Status: http.StatusNotFound, Code: "not_found", Text: catalog.M("api.not_found")}

// failWith is an error answer with one of the catalog's texts.
func failWith(status int, code, key string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Text: catalog.M(key, args...)}
}

// badRequest is an "invalid" answer with one of the catalog's texts.
func badRequest(key string, args ...any) *apiError {
	return failWith(http.StatusBadRequest, "invalid", key, args...)
}

// messageOf is an error's sentence for the customer: its own, when the
// package that made it wrote one in both languages, else its text.
func messageOf(err error) i18n.Message {
	var m interface{ Message() i18n.Message }
	if errors.As(err, &m) {
		return m.Message()
	}
	return i18n.Literal(err.Error())
}

// invalidErr is an "invalid" answer that says what err says.
func invalidErr(err error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid", Text: messageOf(err)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, key string, args ...any) {
	writeJSON(w, status, (&apiError{Code: code, Text: catalog.M(key, args...)}).shown(printerOf(r)))
}

// auth resolves the bearer token to a tenant and turns handler errors into
// JSON answers. Unknown objects and other tenants' objects answer the same
// 404, so that IDs cannot be probed.
func (a *API) auth(fn func(w http.ResponseWriter, r *http.Request, t store.Tenant) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailmigrate"`)
			writeError(w, r, http.StatusUnauthorized, "unauthorized", "api.token.missing")
			return
		}
		t, err := a.cfg.Store.TokenTenant(r.Context(), HashToken(tok))
		if errors.Is(err, store.ErrDisabled) {
			// The token is right: its holder learns why it is refused.
			writeError(w, r, http.StatusForbidden, "disabled", "api.token.disabled", t.Name)
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailmigrate", error="invalid_token"`)
			writeError(w, r, http.StatusUnauthorized, "unauthorized", "api.token.invalid")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
		err = fn(w, r, t)
		var ae *apiError
		switch {
		case err == nil:
		case errors.As(err, &ae):
			writeJSON(w, ae.Status, ae.shown(printerOf(r)))
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, errNotFound.shown(printerOf(r)))
		case errors.Is(err, store.ErrConflict):
			writeError(w, r, http.StatusConflict, "conflict", "api.conflict", err.Error())
		default:
			a.cfg.Logf("api %s %s: %v", r.Method, r.URL.Path, err)
			writeError(w, r, http.StatusInternalServerError, "internal", "error.server")
		}
	})
}

// NewToken returns a new random API token.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "mm_" + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how a token is stored: its SHA-256.
func HashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func isOperator(t store.Tenant) bool { return t.Kind == store.KindOperator }

// domain loads a domain by name if the tenant may see it.
func (a *API) domain(ctx context.Context, t store.Tenant, name string) (store.Domain, error) {
	d, err := a.cfg.Store.DomainByName(ctx, name)
	if err != nil {
		return d, err
	}
	if !isOperator(t) && d.TenantID != t.ID {
		return d, store.ErrNotFound
	}
	return d, nil
}

// migration loads a migration and its domain if the tenant may see them.
func (a *API) migration(ctx context.Context, t store.Tenant, idText string) (store.Migration, store.Domain, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return store.Migration{}, store.Domain{}, store.ErrNotFound
	}
	m, err := a.cfg.Store.Migration(ctx, id)
	if err != nil {
		return m, store.Domain{}, err
	}
	d, err := a.cfg.Store.Domain(ctx, m.DomainID)
	if err != nil {
		return m, d, err
	}
	if !isOperator(t) && d.TenantID != t.ID {
		return m, d, store.ErrNotFound
	}
	return m, d, nil
}

// task loads a task if the tenant may see it.
func (a *API) task(ctx context.Context, t store.Tenant, idText string) (store.Task, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return store.Task{}, store.ErrNotFound
	}
	task, err := a.cfg.Store.Task(ctx, id)
	if err != nil {
		return task, err
	}
	if _, _, err := a.migration(ctx, t, strconv.FormatInt(task.MigrationID, 10)); err != nil {
		return task, err
	}
	return task, nil
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	owner := t.ID
	if isOperator(t) {
		owner = 0
	}
	ds, err := a.cfg.Store.Domains(r.Context(), owner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": nonNil(ds)})
	return nil
}

func (a *API) listMailboxes(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	if err != nil {
		return err
	}
	mbs, err := a.cfg.Hosting.Driver.List(r.Context(), d.Name)
	if err != nil {
		return fmt.Errorf("list mailboxes of %s: %w", d.Name, err)
	}
	type mailbox struct {
		Address    string `json:"address"`
		QuotaBytes int64  `json:"quota_bytes"`
	}
	out := []mailbox{}
	for _, m := range mbs {
		out = append(out, mailbox{m.Address, m.QuotaBytes})
	}
	writeJSON(w, http.StatusOK, map[string]any{"mailboxes": out})
	return nil
}

// dnsRows checks a domain's DNS against the hosting.
func (a *API) dnsRows(ctx context.Context, d store.Domain) ([]diagnose.Row, error) {
	if a.cfg.Diagnose.Resolver == nil {
		return nil, failWith(http.StatusServiceUnavailable, "not_configured", "api.dns.not_configured")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return diagnose.CheckDNS(ctx, a.cfg.Diagnose.Resolver, d.Name, a.cfg.Diagnose.Hosting)
}

func (a *API) dnsCheck(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	if err != nil {
		return err
	}
	rows, err := a.dnsRows(r.Context(), d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": d.Name, "rows": nonNil(localizeRows(rows, printerOf(r)))})
	return nil
}

// discover finds the old IMAP server of a mailbox address.
func (a *API) discover(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	addr := strings.TrimSpace(r.URL.Query().Get("address"))
	if !strings.Contains(addr, "@") {
		return badRequest("api.discover.address")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	cands, err := a.cfg.Discover(ctx, addr)
	if err != nil {
		return invalidErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"candidates": nonNil(localizeCandidates(cands, printerOf(r)))})
	return nil
}

// migrationView is a migration with its tasks, as the API shows it.
type migrationView struct {
	store.Migration
	Domain string       `json:"domain"`
	State  string       `json:"state"`
	Tasks  []store.Task `json:"tasks"`
}

// view is a migration as its reader sees it, in the printer's language.
func (a *API) view(ctx context.Context, p *i18n.Printer, m store.Migration, d store.Domain) (migrationView, error) {
	tasks, err := a.cfg.Store.Tasks(ctx, m.ID)
	if err != nil {
		return migrationView{}, err
	}
	return migrationView{Migration: m, Domain: d.Name, State: overallState(tasks), Tasks: nonNil(localizeTasks(tasks, p))}, nil
}

// overallState summarises the tasks: running while any runs, else the
// worst outcome.
func overallState(tasks []store.Task) string {
	rank := map[string]int{store.StateDone: 0, store.StateCancelled: 1, store.StateWarnings: 2,
		store.StatePaused: 3, store.StateFailed: 4}
	state := store.StateDone
	for _, t := range tasks {
		if !store.Finished(t.State) {
			return store.StateRunning
		}
		if rank[t.State] > rank[state] {
			state = t.State
		}
	}
	return state
}

func (a *API) listMigrations(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	if err != nil {
		return err
	}
	ms, err := a.cfg.Store.Migrations(r.Context(), d.ID)
	if err != nil {
		return err
	}
	out := []migrationView{}
	for _, m := range ms {
		v, err := a.view(r.Context(), printerOf(r), m, d)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"migrations": out})
	return nil
}

func (a *API) getMigration(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	m, d, err := a.migration(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := a.view(r.Context(), printerOf(r), m, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) getTask(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	task, err := a.task(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, localizeTask(task, printerOf(r)))
	return nil
}

// actor is who asks for an action: a customer acts for itself, the
// operator on a customer's behalf, and that is recorded (see actAs).
type actor struct {
	Tenant store.Tenant
	User   store.User // the person signed in to the panel; zero through the API
}

// actAs applies an action to one task and records it when the operator
// took it.
func (a *API) actAs(ctx context.Context, task store.Task, action string, by actor) error {
	if err := a.act(ctx, task, action); err != nil {
		return err
	}
	if !isOperator(by.Tenant) {
		return nil
	}
	after, err := a.cfg.Store.Task(ctx, task.ID)
	if err != nil {
		return err
	}
	// Only what the action did is recorded: a restart of a task that was
	// running already, or a cancel of a finished one, changes nothing.
	did := after.JobID != task.JobID
	if action == "cancel" {
		did = !store.Finished(task.State) && after.State == store.StateCancelled
	}
	if !did {
		return nil
	}
	_, err = a.cfg.Store.RecordTaskAction(ctx, store.TaskAction{TaskID: task.ID, JobID: after.JobID, Action: action,
		TenantID: by.Tenant.ID, UserID: by.User.ID, UserEmail: by.User.Email})
	return err
}

// act applies restart, resume or cancel to one task.
func (a *API) act(ctx context.Context, task store.Task, action string) error {
	switch action {
	case "cancel":
		return a.cfg.Jobs.Cancel(ctx, task.ID)
	case "restart", "resume":
		if action == "resume" && task.State != store.StatePaused {
			return failWith(http.StatusConflict, "not_paused", "api.not_paused")
		}
		err := a.cfg.Jobs.Requeue(ctx, task.ID)
		if errors.Is(err, jobs.ErrNoSecrets) {
			return failWith(http.StatusConflict, "no_passwords", "api.no_passwords")
		}
		var be *store.BusyError
		if errors.As(err, &be) {
			return busyError(be)
		}
		return err
	}
	return failWith(http.StatusNotFound, "not_found", "api.action", action)
}

func (a *API) taskAction(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	task, err := a.task(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.actAs(r.Context(), task, r.PathValue("action"), actor{Tenant: t}); err != nil {
		return err
	}
	task, err = a.cfg.Store.Task(r.Context(), task.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, localizeTask(task, printerOf(r)))
	return nil
}

func (a *API) migrationAction(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	m, d, err := a.migration(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.actAll(r.Context(), m, r.PathValue("action"), actor{Tenant: t}); err != nil {
		return err
	}
	v, err := a.view(r.Context(), printerOf(r), m, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// actAll applies an action to every task of a migration it fits. A
// mailbox that another migration copies into now is skipped; the others
// go on, and the refusal is reported after them.
func (a *API) actAll(ctx context.Context, m store.Migration, action string, by actor) error {
	tasks, err := a.cfg.Store.Tasks(ctx, m.ID)
	if err != nil {
		return err
	}
	var busy error
	for _, task := range tasks {
		if action == "resume" && task.State != store.StatePaused {
			continue
		}
		if action == "restart" && !store.Finished(task.State) {
			continue
		}
		err := a.actAs(ctx, task, action, by)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "mailbox_busy" {
			busy = cmp.Or(busy, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return busy
}

// busyError is the answer to a task refused because its mailbox has
// another task queued or copying.
func busyError(be *store.BusyError) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "mailbox_busy", TaskID: be.TaskID, MigrationID: be.MigrationID,
		Text: busyReason(be)}
}

// busyReason says which migration holds a mailbox, in the panel's words.
func busyReason(be *store.BusyError) i18n.Message {
	return catalog.M("errors.busy", be.Mailbox, be.MigrationID)
}

// report serves a task's per-folder report as JSON or CSV.
func (a *API) report(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	task, err := a.task(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeTaskReport(w, r, task)
}

// writeTaskReport sends a task's report as a JSON or (?format=csv) CSV
// download.
func writeTaskReport(w http.ResponseWriter, r *http.Request, task store.Task) error {
	p := printerOf(r)
	rep := task.Report.Localize(p)
	if rep == nil {
		return failWith(http.StatusNotFound, "no_report", "api.no_report")
	}
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="migration-%d-%s.csv"`, task.ID, safeName(task.DestUser)))
		return writeReportCSV(w, rep, p)
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="migration-%d-%s.json"`, task.ID, safeName(task.DestUser)))
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '@' || r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// events streams a migration's tasks as Server-Sent Events while they
// change; "done" ends the stream when every task has finished.
func (a *API) events(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	m, d, err := a.migration(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.stream(w, r, t.ID, m, d)
}

// maxStreams is how many live event streams one customer may hold open
// at once: each polls the database, so their number is bounded.
const maxStreams = 16

// stream writes the event stream of a migration until it has finished or
// the client goes away.
func (a *API) stream(w http.ResponseWriter, r *http.Request, tenantID int64, m store.Migration, d store.Domain) error {
	a.streamsMu.Lock()
	if a.streams[tenantID] >= maxStreams {
		a.streamsMu.Unlock()
		return failWith(http.StatusTooManyRequests, "too_many_streams", "api.streams", maxStreams)
	}
	a.streams[tenantID]++
	a.streamsMu.Unlock()
	defer func() {
		a.streamsMu.Lock()
		if a.streams[tenantID]--; a.streams[tenantID] <= 0 {
			delete(a.streams, tenantID)
		}
		a.streamsMu.Unlock()
	}()
	rc := http.NewResponseController(w)
	// The server's timeouts bound slow requests; a stream lives on.
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last []byte
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	ping := time.Now()
	for {
		v, err := a.view(r.Context(), printerOf(r), m, d)
		if err != nil {
			return nil
		}
		data, _ := json.Marshal(v)
		if string(data) != string(last) {
			fmt.Fprintf(w, "event: progress\ndata: %s\n\n", data)
			last = data
		} else if time.Since(ping) > 20*time.Second {
			fmt.Fprint(w, ": ping\n\n")
			ping = time.Now()
		}
		if v.State != store.StateRunning {
			fmt.Fprint(w, "event: done\ndata: {}\n\n")
			rc.Flush()
			return nil
		}
		if rc.Flush() != nil {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// inputError is a customer's mistake, said in both languages.
type inputError struct{ text i18n.Message }

func (e inputError) Error() string { return e.text.String() }

// Message is the sentence for the customer.
func (e inputError) Message() i18n.Message { return e.text }
