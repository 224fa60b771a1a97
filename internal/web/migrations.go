package web

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// migrationIn is a submitted migration: the seed's two modes, usable
// together.
type migrationIn struct {
	Source struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Security string `json:"security"` // tls (default), starttls, plain
		// TrustFingerprint accepts exactly this certificate (SHA-256 hex,
		// from a check's diagnosis) for this migration.
		TrustFingerprint string `json:"trust_fingerprint"`
	} `json:"source"`
	// Sync copies into mailboxes that exist on the hosting.
	Sync []syncRow `json:"sync"`
	// NewMailboxes is "old-login old-password [new-password]" per line
	// (or the CSV format): each mailbox is created with the old login's
	// name in the domain, then filled from the old login.
	NewMailboxes string `json:"new_mailboxes"`
	// GmailOnce copies each message of a Gmail account once, into the
	// folder of its first label, its other labels as keywords, instead of
	// once into the folder of each label.
	GmailOnce bool `json:"gmail_once"`
	// signIns are the existing mailboxes (lower case) whose old login the
	// customer signed in to with its provider in the panel.
	signIns map[string]*providerSignIn
	// lineSignIns are the old logins (lower case) of new-mailbox lines
	// signed in to with their provider, in the panel or through the API
	// (new_mailbox_sign_ins): the old mailbox is read with the sign-in,
	// the line's passwords still give the new mailbox's.
	lineSignIns map[string]*providerSignIn
	// apiSignIns are the API's sign-ins behind signIns and lineSignIns, by
	// the hash of their ID: a submission that starts their rows uses them up.
	apiSignIns map[*providerSignIn][]byte
	// signInProblems are why the API's sign-ins of rows were refused.
	signInProblems []fieldError
}

// syncRow is an existing mailbox of a submission and its old login.
type syncRow struct {
	Mailbox         string `json:"mailbox"`
	HostingPassword string `json:"hosting_password"`
	SourceUser      string `json:"source_user"`
	SourcePassword  string `json:"source_password"`
}

// planned is one validated row: a task to be.
type planned struct {
	field      string // "sync[0]" or "line 3", for messages
	kind       string
	sourceUser string
	sourcePass string
	mailbox    string
	hostPass   string
	signIn     *providerSignIn // instead of sourcePass
}

// validate checks a whole submission and returns every problem at once.
func (a *API) validate(ctx context.Context, d store.Domain, in *migrationIn) (imapconn.Endpoint, []planned, error) {
	bad := badRequest("invalid.migration")
	field := func(f, key string, args ...any) {
		bad.Fields = append(bad.Fields, fieldError{f, catalog.M(key, args...)})
	}
	fieldErr := func(f string, err error) { bad.Fields = append(bad.Fields, fieldError{f, messageOf(err)}) }
	bad.Fields = append(bad.Fields, in.signInProblems...)
	ep, err := a.sourceEndpoint(in)
	if err != nil {
		fieldErr("source", err)
	}
	existing, err := a.cfg.Hosting.Driver.List(ctx, d.Name)
	if err != nil {
		return ep, nil, fmt.Errorf("list mailboxes of %s: %w", d.Name, err)
	}
	exists := map[string]bool{}
	for _, m := range existing {
		exists[strings.ToLower(m.Address)] = true
	}
	var rows []planned
	used := map[string]string{} // mailbox -> where it is used
	master := a.cfg.Hosting.MasterUser != ""
	for i, s := range in.Sync {
		f := fmt.Sprintf("sync[%d]", i)
		mb, err := hosting.NormalizeAddress(strings.TrimSpace(s.Mailbox))
		switch {
		case err != nil:
			fieldErr(f+".mailbox", err)
			continue
		case !strings.HasSuffix(strings.ToLower(mb), "@"+d.Name):
			field(f+".mailbox", "invalid.sync.domain", mb, d.Name)
			continue
		case !exists[strings.ToLower(mb)]:
			field(f+".mailbox", "invalid.sync.missing", mb)
			continue
		case used[strings.ToLower(mb)] != "":
			field(f+".mailbox", "invalid.sync.twice", mb, used[strings.ToLower(mb)])
			continue
		}
		used[strings.ToLower(mb)] = f
		row := planned{field: f, kind: store.TaskSync, mailbox: mb, hostPass: s.HostingPassword,
			sourceUser: strings.TrimSpace(s.SourceUser), sourcePass: s.SourcePassword}
		if row.sourcePass == "" {
			row.signIn = in.signIns[strings.ToLower(mb)]
		}
		if !master && row.hostPass == "" {
			field(f+".hosting_password", "invalid.sync.hostpw", mb)
		}
		if row.sourceUser == "" {
			field(f+".source_user", "invalid.sync.srcuser")
		}
		if row.sourcePass == "" && row.signIn == nil {
			field(f+".source_password", "invalid.sync.srcpw")
		}
		for _, v := range []string{row.hostPass, row.sourceUser, row.sourcePass} {
			if strings.ContainsAny(v, "\r\n\x00") {
				field(f, "invalid.linebreak")
				break
			}
		}
		rows = append(rows, row)
	}
	if strings.TrimSpace(in.NewMailboxes) != "" {
		entries, lineErrs, err := bulk.ParseNewMailboxes(strings.NewReader(in.NewMailboxes), d.Name)
		if err != nil {
			return ep, nil, err
		}
		for _, e := range lineErrs {
			bad.Lines = append(bad.Lines, lineError{e.Line, e.Reason})
		}
		limitLeft := -1
		if d.MailboxLimit > 0 {
			limitLeft = d.MailboxLimit - len(existing)
		}
		for _, e := range entries {
			line := func(key string, args ...any) {
				bad.Lines = append(bad.Lines, lineError{e.Line, catalog.M(key, args...)})
			}
			mb, err := hosting.NormalizeAddress(e.DestUser)
			switch {
			case err != nil:
				bad.Lines = append(bad.Lines, lineError{e.Line, messageOf(err)})
			case strings.ContainsAny(e.SourceUser+e.SourcePassword+e.DestPassword, "\r\n\x00"):
				// A CSV cell may hold them; IMAP cannot send them.
				line("invalid.linebreak")
			case !strings.HasSuffix(strings.ToLower(mb), "@"+d.Name):
				line("invalid.new.domain", mb, d.Name, d.Name)
			case !newPasswordProblem(mb, e).IsZero():
				bad.Lines = append(bad.Lines, lineError{e.Line, newPasswordProblem(mb, e)})
			case exists[strings.ToLower(mb)]:
				line("invalid.new.exists", mb)
			case used[strings.ToLower(mb)] != "":
				line("invalid.new.twice", mb, used[strings.ToLower(mb)])
			case limitLeft == 0:
				line("invalid.new.limit", mb, d.MailboxLimit, d.Name)
			default:
				if limitLeft > 0 {
					limitLeft--
				}
				used[strings.ToLower(mb)] = fmt.Sprintf("line %d", e.Line)
				rows = append(rows, planned{field: fmt.Sprintf("line %d", e.Line), kind: store.TaskCreate,
					mailbox: mb, hostPass: e.DestPassword, sourceUser: e.SourceUser, sourcePass: e.SourcePassword,
					signIn: in.lineSignIns[strings.ToLower(e.SourceUser)]})
			}
		}
	}
	for _, row := range a.selfCopies(ctx, ep, rows) {
		rowError(bad, row, ".source_user", catalog.M("source.self", ep.Host, row.mailbox))
	}
	sortLines(bad.Lines)
	if len(in.Sync) == 0 && strings.TrimSpace(in.NewMailboxes) == "" {
		field("sync", "invalid.nothing")
	}
	if len(bad.Fields) > 0 || len(bad.Lines) > 0 {
		return ep, nil, bad
	}
	return ep, rows, nil
}

func sortLines(ls []lineError) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Line < ls[j-1].Line; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// sourceEndpoint reads the source server fields.
func (a *API) sourceEndpoint(in *migrationIn) (imapconn.Endpoint, error) {
	host := strings.TrimSpace(in.Source.Host)
	if host == "" {
		return imapconn.Endpoint{}, inputError{catalog.M("invalid.source.host")}
	}
	// A name or an address, nothing else: "host:1:2" must not become the
	// host "host:1" with another port.
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = "[" + host + "]" // an IPv6 address, for the URL below
		}
	} else if strings.ContainsAny(host, ":/?#@[]\\ \t") {
		return imapconn.Endpoint{}, inputError{catalog.M("invalid.source.hostname", host)}
	}
	scheme := "imaps"
	switch strings.ToLower(in.Source.Security) {
	case "", "tls", "ssl":
	case "starttls":
		scheme = "imap"
	case "plain":
		if !a.cfg.AllowPlaintext {
			return imapconn.Endpoint{}, inputError{catalog.M("invalid.source.plain")}
		}
		scheme = "imap"
	default:
		return imapconn.Endpoint{}, inputError{catalog.M("invalid.source.security", in.Source.Security)}
	}
	raw := scheme + "://" + host
	if in.Source.Port != 0 {
		raw += ":" + strconv.Itoa(in.Source.Port)
	}
	ep, err := imapconn.ParseEndpoint(raw, strings.EqualFold(in.Source.Security, "plain"))
	if err != nil {
		return ep, err
	}
	ep.Untrusted = !a.cfg.AllowPrivate
	if ep.Untrusted {
		if err := imapconn.CheckPort(ep.Port, a.cfg.AllowedPorts); err != nil {
			return ep, err
		}
	}
	ep.TrustFingerprint = strings.TrimSpace(in.Source.TrustFingerprint)
	return ep, nil
}

// decode reads a request body that is exactly one JSON object of v's
// fields: unknown fields and anything after the object are refused, so
// that a client's mistake is not silently half-read.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid.json", err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid.json.trailing")
	}
	return nil
}

// checkResult is the pre-flight result of one row.
type checkResult struct {
	Row     string `json:"row"`
	Mailbox string `json:"mailbox"`
	// SourceUser is the old login tried.
	SourceUser string          `json:"source_user"`
	Source     *engine.Failure `json:"source_failure,omitempty"`
	// SourceDiagnosis ranks the likely causes of a source failure.
	SourceDiagnosis *diagnose.Diagnosis `json:"source_diagnosis,omitempty"`
	Hosting         *engine.Failure     `json:"hosting_failure,omitempty"`
	OK              bool                `json:"ok"`
	// Plan is what the copy of an existing mailbox will do, once both
	// logins work.
	Plan *checkPlan `json:"plan,omitempty"`
}

// login tries one login and explains a failure.
func (a *API) login(ctx context.Context, ep imapconn.Endpoint, side engine.Side, user, pass string) (*engine.Failure, error) {
	c, err := imapconn.Dial(ctx, ep, a.cfg.Engine.Conn)
	if err == nil {
		err = c.Login(ctx, user, pass)
		c.Logout(ctx)
	}
	if err != nil {
		return engine.Explain(&engine.SideError{Side: side, User: user, Err: err}), err
	}
	return nil, nil
}

// sourceLogin tries a login at the old server, unless that login or server
// failed too often lately, and diagnoses a failure.
func (a *API) sourceLogin(ctx context.Context, tenant int64, ep imapconn.Endpoint, user, pass string) (*engine.Failure, *diagnose.Diagnosis) {
	done, wait, err := a.failed.Begin(ctx, tenant, a.failed.Server(ctx, ep.Host, ep.Port), user)
	if err != nil {
		a.cfg.Logf("counting logins to %s: %v", ep.Host, err)
		text := catalog.M("error.server")
		return &engine.Failure{Kind: "internal", Side: engine.SideSource, Text: text, Detail: text.String()}, nil
	}
	if done == nil {
		text := catalog.M("check.rate_limited", user, catalog.M("n.minutes", i18n.Count(int(wait.Minutes())+1)))
		return &engine.Failure{Kind: "rate_limited", Side: engine.SideSource, Text: text, Detail: text.String()}, nil
	}
	f, err := a.tryLogin(ctx, ep, engine.SideSource, user, pass)
	done(imapconn.KindOf(err) == imapconn.ErrAuth)
	if f == nil {
		return nil, nil
	}
	at := a.cfg.Diagnose
	at.Server, at.User, at.Err = ep, user, err
	return f, diagnose.Login(ctx, at)
}

// checkRows logs in to the source (and, for existing mailboxes, to the
// hosting) for every row, as many at a time as the old server's limit
// allows (at least four, at most half its allowance of failed logins).
func (a *API) checkRows(ctx context.Context, tenant int64, ep imapconn.Endpoint, rows []planned, hostingToo bool) []checkResult {
	out := make([]checkResult, len(rows))
	// Logins under way count against the old server's allowance of
	// failures (diagnose.FailedLogins): more at once than half of it
	// would refuse the rest as if they had failed.
	sem := make(chan struct{}, max(1, min(max(4, a.cfg.SourceHostLimit), a.failed.PerHost/2)))
	var wg sync.WaitGroup
	for i, row := range rows {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res := checkResult{Row: row.field, Mailbox: row.mailbox, SourceUser: row.sourceUser}
			// The two servers are asked at once: a row waits for the
			// slower, not for both one after the other.
			var hosting sync.WaitGroup
			if hostingToo && row.kind == store.TaskSync && a.cfg.Hosting.MasterUser == "" {
				hosting.Go(func() {
					res.Hosting, _ = a.tryLogin(ctx, a.cfg.Hosting.IMAP, engine.SideDest, row.mailbox, row.hostPass)
				})
			}
			switch {
			case ep.Host == "":
			case row.signIn != nil:
				res.Source, _ = a.tokenLogin(ctx, ep, row.sourceUser, row.signIn)
			default:
				res.Source, res.SourceDiagnosis = a.sourceLogin(ctx, tenant, ep, row.sourceUser, row.sourcePass)
			}
			hosting.Wait()
			res.OK = res.Source == nil && res.Hosting == nil
			out[i] = res
		})
	}
	wg.Wait()
	return out
}

func (a *API) check(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	if err != nil {
		return err
	}
	var in migrationIn
	if err := a.decodeMigration(r, t, d, &in); err != nil {
		return err
	}
	results, _, ok, err := a.runCheck(r.Context(), d, &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": ok, "checks": localizeChecks(results, printerOf(r))})
	return nil
}

// runCheck validates a submission and tries every login in it; the
// results are in the order of the rows.
func (a *API) runCheck(ctx context.Context, d store.Domain, in *migrationIn) ([]checkResult, []planned, bool, error) {
	ep, rows, err := a.validate(ctx, d, in)
	if err != nil {
		return nil, nil, false, err
	}
	if err := a.allowChecks(ctx, d.TenantID, len(rows)); err != nil {
		return nil, nil, false, err
	}
	results := a.checkRows(ctx, d.TenantID, ep, rows, true)
	a.addPlans(ctx, ep, rows, results)
	ok := true
	for _, c := range results {
		ok = ok && c.OK
	}
	return results, rows, ok, nil
}

func (a *API) createMigration(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	if err != nil {
		return err
	}
	var in migrationIn
	if err := a.decodeMigration(r, t, d, &in); err != nil {
		return err
	}
	v, notStarted, err := a.submit(r.Context(), printerOf(r), d, &in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		migrationView
		// NotStarted are the rows whose old login failed: nothing was
		// created for them; corrected, they can be submitted again.
		NotStarted []checkResult `json:"not_started,omitempty"`
	}{v, notStarted})
	return nil
}

// submit validates a migration, checks every login, stores it with its
// sealed secrets and queues the tasks of the rows whose logins work; the
// rows whose old login failed are returned, not started.
func (a *API) submit(ctx context.Context, p *i18n.Printer, d store.Domain, in *migrationIn) (migrationView, []checkResult, error) {
	ep, rows, err := a.validate(ctx, d, in)
	if err != nil {
		return migrationView{}, nil, err
	}
	rows, notStarted, err := a.startable(ctx, d.TenantID, ep, rows)
	if err != nil {
		return migrationView{}, nil, err
	}
	sec := jobs.SecurityName(ep.Security)
	tasks := make([]store.Task, len(rows))
	for i, row := range rows {
		tasks[i] = store.Task{Kind: row.kind, SourceUser: row.sourceUser, DestUser: row.mailbox}
		if row.signIn != nil {
			tasks[i].SourceSignIn = row.signIn.Provider
		}
	}
	// The migration, its tasks, their passwords and their jobs are stored
	// together or not at all.
	m, tasks, err := a.cfg.Store.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: ep.Host,
		SourcePort: ep.Port, SourceSecurity: sec, SourceFingerprint: ep.TrustFingerprint, GmailOnce: in.GmailOnce}, tasks,
		func(tx *sql.Tx, tasks []store.Task) error {
			for i := range tasks {
				// Sealed with the task's ID, known only now, so that a
				// stored secret cannot be moved to another task.
				if s := rows[i].signIn; s != nil {
					tasks[i].SourceSecret = a.cfg.Box.Seal(s.Refresh, jobs.SecretContext(tasks[i].ID, "source-oauth"))
				} else {
					tasks[i].SourceSecret = a.cfg.Box.Seal(rows[i].sourcePass, jobs.SecretContext(tasks[i].ID, "source"))
				}
				tasks[i].DestSecret = a.cfg.Box.Seal(rows[i].hostPass, jobs.SecretContext(tasks[i].ID, "destination"))
			}
			if err := a.useSignIns(ctx, tx, in, rows); err != nil {
				return err
			}
			return a.cfg.Jobs.QueueTx(ctx, tx, tasks)
		})
	if errors.Is(err, store.ErrDisabled) {
		return migrationView{}, nil, failWith(http.StatusForbidden, "disabled", "api.customer.disabled", d.Name)
	}
	var be *store.BusyError
	if errors.As(err, &be) {
		ae := busyError(be)
		for _, row := range rows {
			if store.MailboxKey(row.mailbox) != store.MailboxKey(be.Mailbox) {
				continue
			}
			if n, ok := strings.CutPrefix(row.field, "line "); ok {
				line, _ := strconv.Atoi(n)
				ae.Lines = []lineError{{line, ae.Text}}
			} else {
				ae.Fields = []fieldError{{row.field + ".mailbox", ae.Text}}
			}
		}
		return migrationView{}, nil, ae
	}
	if err != nil {
		return migrationView{}, nil, err
	}
	a.cfg.Logf("migration %d for %s: %d mailbox(es) from %s queued", m.ID, d.Name, len(tasks), ep.Host)
	v, err := a.view(ctx, p, m, d)
	return v, notStarted, err
}

// cell keeps a text that came from a mailbox (a folder name, a subject) a
// text when a spreadsheet opens the report: one that starts like a formula
// (= + - @, or a tab or carriage return before one) gets a leading
// apostrophe, which spreadsheets show as plain text (OWASP's advice).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeReportCSV writes one line per folder, its notes in the printer's
// language.
func writeReportCSV(w io.Writer, rep *engine.Report, p *i18n.Printer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"source_folder", "destination_folder", "source_messages", "copied", "already_present",
		"skipped", "failed", "bytes_copied", "note"})
	for _, f := range rep.Folders {
		notes := f.Remarks(p)
		for _, m := range f.Skipped {
			notes = append(notes, catalog.T(p, "report.note.skipped", m.Subject, p.Bytes(m.Size), m.Reason.In(p)))
		}
		for _, m := range f.Failed {
			notes = append(notes, catalog.T(p, "report.note.failed", m.Subject, m.Reason.In(p)))
		}
		cw.Write([]string{cell(f.Source), cell(f.Dest), strconv.Itoa(f.SourceMessages), strconv.Itoa(f.Copied),
			strconv.Itoa(f.AlreadyPresent), strconv.Itoa(len(f.Skipped)), strconv.Itoa(len(f.Failed)),
			strconv.FormatInt(f.BytesCopied, 10), cell(strings.Join(notes, "; "))})
	}
	cw.Flush()
	return cw.Error()
}

// operator-only calls.

func operatorOnly(t store.Tenant) error {
	if !isOperator(t) {
		return failWith(http.StatusForbidden, "forbidden", "api.forbidden")
	}
	return nil
}

func (a *API) listCustomers(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	if err := operatorOnly(t); err != nil {
		return err
	}
	ts, err := a.cfg.Store.Tenants(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"customers": nonNil(ts)})
	return nil
}

func (a *API) createCustomer(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	if err := operatorOnly(t); err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Name) == "" {
		return badRequest("invalid.customer")
	}
	c, err := a.cfg.Store.CreateTenant(r.Context(), strings.TrimSpace(in.Name), store.KindCustomer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// customer is the customer an operator-only call is about.
func (a *API) customer(r *http.Request, t store.Tenant) (store.Tenant, error) {
	if err := operatorOnly(t); err != nil {
		return store.Tenant{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.Tenant{}, store.ErrNotFound
	}
	return a.cfg.Store.Tenant(r.Context(), id)
}

func (a *API) createDomain(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	c, err := a.customer(r, t)
	if err != nil {
		return err
	}
	var in struct {
		Name         string `json:"name"`
		MailboxLimit int    `json:"mailbox_limit"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name, err := hosting.NormalizeDomain(strings.TrimSpace(in.Name))
	if err != nil {
		return invalidErr(err)
	}
	if in.MailboxLimit < 0 {
		return badRequest("invalid.limit")
	}
	d, err := a.cfg.Store.CreateDomain(r.Context(), store.Domain{TenantID: c.ID, Name: name, MailboxLimit: in.MailboxLimit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	c, err := a.customer(r, t)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	tok := NewToken()
	if err := a.cfg.Store.CreateToken(r.Context(), c.ID, in.Name, HashToken(tok)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": tok,
		"note": "shown once: store it now; only its hash is kept"})
	return nil
}
