package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// storeJobs restarts and cancels tasks in the store as the job queue
// does: a restart gives the task a new job, and needs its passwords.
type storeJobs struct {
	noJobs
	st   store.Store
	jobs *atomic.Int64
}

func (j storeJobs) Requeue(ctx context.Context, id int64) error {
	t, err := j.st.Task(ctx, id)
	if err != nil || !store.Finished(t.State) {
		return err
	}
	if t.SourceSecret == nil {
		return jobs.ErrNoSecrets
	}
	_, err = j.st.QueueTask(ctx, id, []string{store.StateDone, store.StateWarnings, store.StateFailed, store.StatePaused,
		store.StateCancelled}, func(*sql.Tx, store.Task) (int64, error) { return j.jobs.Add(1), nil })
	return err
}

func (j storeJobs) Cancel(ctx context.Context, id int64) error {
	_, err := j.st.TransitionTask(ctx, id, []string{store.StateQueued, store.StateRunning}, store.StateCancelled, nil)
	return err
}

// operatorWorld is two customers with a migration each, an operator, and
// everybody's ways in: Firma (firma.test, from imap.old.test: a failed,
// b queued) and Jiná (jina.test, from IMAP.Seznam.test: c paused, d done,
// e failed without its passwords).
type operatorWorld struct {
	t             *testing.T
	p             *Panel
	st            store.Store
	api, panel    http.Handler
	firma, jina   store.Tenant
	custTok       string // Firma's
	jinaTok       string
	opTok         string
	jana, op      *http.Cookie // sign-ins of Firma's person and of the operator
	tasks         map[string]store.Task
	migrationOf   map[string]int64
	operatorEmail string
}

func newOperatorWorld(t *testing.T) *operatorWorld {
	t.Helper()
	ctx := context.Background()
	p, st, customer, custTok, opTok := operatorSetup(t)
	p.api.cfg.Jobs = storeJobs{st: st, jobs: new(atomic.Int64)}
	w := &operatorWorld{t: t, p: p, st: st, api: p.api.Handler(), panel: p.Handler(), custTok: custTok, opTok: opTok,
		tasks: map[string]store.Task{}, migrationOf: map[string]int64{}, operatorEmail: "petr@hosting.test"}
	w.firma, _ = st.Tenant(ctx, customer)
	w.jina, _ = st.CreateTenant(ctx, "Jiná", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: w.jina.ID, Name: "jina.test"})
	w.jinaTok = NewToken()
	st.CreateToken(ctx, w.jina.ID, "hosting panel", HashToken(w.jinaTok))
	tenants, _ := st.Tenants(ctx)
	op := tenants[slices.IndexFunc(tenants, func(t store.Tenant) bool { return t.Kind == store.KindOperator })]
	users, _ := st.Users(ctx, customer)
	w.jana = w.session(users[0])
	opUser, err := st.CreateUser(ctx, op.ID, w.operatorEmail, HashPassword("heslo provozovatele"))
	if err != nil {
		t.Fatal(err)
	}
	w.op = w.session(opUser)

	cause := i18n.Message{Catalog: "diagnose", Key: "reason.busy"}
	authFailed := engine.Explain(&engine.SideError{Side: engine.SideSource, User: "a@old.test",
		Err: &imapconn.Error{Kind: imapconn.ErrAuth, Op: "login", Server: "imap.old.test:993"}})
	authFailed.Causes = []i18n.Message{cause}
	w.migrate("firma.test", "imap.old.test", true, "a@firma.test", "b@firma.test")
	w.migrate("jina.test", "IMAP.Seznam.test", true, "c@jina.test", "d@jina.test")
	w.migrate("jina.test", "IMAP.Seznam.test", false, "e@jina.test")
	w.end("a@firma.test", store.StateFailed, authFailed)
	w.end("c@jina.test", store.StatePaused, nil)
	w.end("d@jina.test", store.StateDone, nil)
	w.end("e@jina.test", store.StateFailed, authFailed)
	return w
}

func (w *operatorWorld) session(u store.User) *http.Cookie {
	tok := NewToken()
	if err := w.st.CreateSession(context.Background(), HashToken(tok), u.ID, time.Now().Add(time.Hour)); err != nil {
		w.t.Fatal(err)
	}
	return &http.Cookie{Name: sessionCookie, Value: tok}
}

// migrate stores a migration of the mailboxes, queued, with their
// passwords sealed or none.
func (w *operatorWorld) migrate(domain, host string, passwords bool, mailboxes ...string) {
	w.t.Helper()
	ctx := context.Background()
	d, _ := w.st.DomainByName(ctx, domain)
	var tasks []store.Task
	for _, mb := range mailboxes {
		tasks = append(tasks, store.Task{Kind: store.TaskSync, SourceUser: strings.Replace(mb, "@", "@old.", 1), DestUser: mb})
	}
	m, tasks, err := w.st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: host, SourcePort: 993, SourceSecurity: "tls"},
		tasks, func(_ *sql.Tx, tasks []store.Task) error {
			for i := range tasks {
				tasks[i].JobID = 1000 + tasks[i].ID
				if passwords {
					tasks[i].SourceSecret = w.p.api.cfg.Box.Seal("stare heslo", jobs.SecretContext(tasks[i].ID, "source"))
					tasks[i].DestSecret = w.p.api.cfg.Box.Seal("nove heslo", jobs.SecretContext(tasks[i].ID, "destination"))
				}
			}
			return nil
		})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, task := range tasks {
		w.tasks[task.DestUser], w.migrationOf[task.DestUser] = task, m.ID
	}
}

// end runs a task to a final state, as a worker would.
func (w *operatorWorld) end(mailbox, state string, failure *engine.Failure) {
	w.t.Helper()
	ctx := context.Background()
	task := w.task(mailbox)
	if _, ok, err := w.st.ClaimTask(ctx, task.ID, task.JobID); !ok || err != nil {
		w.t.Fatalf("claim %s: %v %v", mailbox, ok, err)
	}
	if ok, err := w.st.FinishTask(ctx, task.ID, store.TaskEnd{State: state, Failure: failure}); !ok || err != nil {
		w.t.Fatalf("finish %s: %v %v", mailbox, ok, err)
	}
}

// task is a mailbox's task as it is now.
func (w *operatorWorld) task(mailbox string) store.Task {
	w.t.Helper()
	task, err := w.st.Task(context.Background(), w.tasks[mailbox].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return task
}

// actions are the operator's recorded actions on a mailbox's task.
func (w *operatorWorld) actions(mailbox string) []store.TaskAction {
	w.t.Helper()
	as, err := w.st.TaskActions(context.Background(), w.tasks[mailbox].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return as
}

// get asks the panel for a page in a language; a redirect's target is
// appended to the body.
func (w *operatorWorld) get(c *http.Cookie, path string, lang i18n.Lang) (int, string) {
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(c)
	req.Header.Set("Accept-Language", string(lang))
	rec := httptest.NewRecorder()
	w.panel.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String() + rec.Header().Get("Location")
}

// post sends a panel form with no fields, as its button does.
func (w *operatorWorld) post(c *http.Cookie, path string) (int, string) {
	req := httptest.NewRequest("POST", path, strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	w.panel.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String() + rec.Header().Get("Location")
}

// list asks the API for the operator's list of tasks.
func (w *operatorWorld) list(token, query string, lang i18n.Lang) (int, []store.TaskRow, int, string) {
	w.t.Helper()
	req := httptest.NewRequest("GET", "/api/v1/tasks"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", string(lang))
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, req)
	var out struct {
		Tasks      []store.TaskRow `json:"tasks"`
		NextOffset int             `json:"next_offset"`
	}
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			w.t.Fatalf("%s: %v", rec.Body, err)
		}
	}
	return rec.Code, out.Tasks, out.NextOffset, rec.Body.String()
}

func mailboxes(rows []store.TaskRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.DestUser)
	}
	return out
}

// The operator lists every customer's tasks through the API, newest
// first, filtered and in pages, with each failure in the reader's
// language and no password; a customer's token is refused.
func TestOperatorTasksAPI(t *testing.T) {
	w := newOperatorWorld(t)
	if code, _, _, body := w.list(w.custTok, "", i18n.English); code != http.StatusForbidden || !strings.Contains(body, "only the hosting's operator") {
		t.Errorf("a customer's token: %d %s", code, body)
	}
	code, rows, next, body := w.list(w.opTok, "", i18n.English)
	if code != http.StatusOK || !slices.Equal(mailboxes(rows), []string{"e@jina.test", "d@jina.test", "c@jina.test", "b@firma.test", "a@firma.test"}) || next != 0 {
		t.Fatalf("every task: %d %v next %d", code, mailboxes(rows), next)
	}
	if c := rows[2]; c.Customer != "Jiná" || c.CustomerID != w.jina.ID || c.Domain != "jina.test" || c.SourceHost != "IMAP.Seznam.test" ||
		c.State != store.StatePaused {
		t.Errorf("a row: %+v", c)
	}
	for _, secret := range []string{"secret", "stare heslo", "nove heslo"} {
		if strings.Contains(body, secret) {
			t.Errorf("the list holds %q:\n%s", secret, body)
		}
	}
	for _, c := range []struct{ query, want string }{
		{"?state=failed", "e@jina.test a@firma.test"},
		{"?state=running", "b@firma.test"},
		{"?state=paused", "c@jina.test"},
		{"?state=done", "d@jina.test"},
		{fmt.Sprintf("?customer=%d", w.firma.ID), "b@firma.test a@firma.test"},
		{"?domain=jina.test", "e@jina.test d@jina.test c@jina.test"},
		{"?source_host=seznam", "e@jina.test d@jina.test c@jina.test"},
		{fmt.Sprintf("?state=failed&customer=%d&source_host=old", w.firma.ID), "a@firma.test"},
		{"?source_host=nowhere", ""},
		{"?limit=2&offset=2", "c@jina.test b@firma.test"},
	} {
		code, rows, _, body := w.list(w.opTok, c.query, i18n.English)
		if got := strings.Join(mailboxes(rows), " "); code != http.StatusOK || got != c.want {
			t.Errorf("%s: %d %q, want %q %s", c.query, code, got, c.want, body)
		}
	}
	if _, _, next, _ := w.list(w.opTok, "?limit=2&offset=2", i18n.English); next != 4 {
		t.Errorf("the next page of the middle one starts at %d, want 4", next)
	}
	if _, rows, next, _ := w.list(w.opTok, "?limit=2&offset=4", i18n.English); next != 0 || len(rows) != 1 {
		t.Errorf("the last page: %v next %d", mailboxes(rows), next)
	}
	for lang, want := range map[i18n.Lang]string{i18n.English: "The old server rejected the login", i18n.Czech: "Původní server odmítl"} {
		_, rows, _, _ := w.list(w.opTok, "?state=failed&domain=firma.test", lang)
		if len(rows) != 1 || rows[0].Failure == nil || !strings.HasPrefix(rows[0].Failure.Message, want) {
			t.Errorf("the failure in %s: %+v", lang, rows)
		}
	}
	for _, query := range []string{"?state=broken", "?limit=0", "?limit=501", "?offset=-1", "?customer=Firma"} {
		if code, _, _, body := w.list(w.opTok, query, i18n.English); code != http.StatusBadRequest || !strings.Contains(body, `"invalid"`) {
			t.Errorf("%s: %d %s", query, code, body)
		}
	}
	if _, _, _, body := w.list(w.opTok, "?state=broken", i18n.Czech); !strings.Contains(body, "neznámý stav") {
		t.Errorf("a refusal in Czech: %s", body)
	}
}

// What the operator restarts or cancels on a customer's behalf, through
// the API or the panel, is recorded as the operator's, and the customer's
// page says so in the customer's language until the mailbox runs again
// by the customer's own hand; what the customer does is not recorded, nor
// an action that changed nothing.
func TestOperatorActsOnCustomersBehalf(t *testing.T) {
	w := newOperatorWorld(t)
	migrationPage := fmt.Sprintf("/migrations/%d", w.migrationOf["a@firma.test"])
	acted := func(mailbox string, lang i18n.Lang) string {
		t.Helper()
		code, page := w.get(w.jana, migrationPage, lang)
		if code != http.StatusOK {
			t.Fatalf("the customer's page: %d %s", code, page)
		}
		row := page[strings.Index(page, fmt.Sprintf(`id="task-%d"`, w.tasks[mailbox].ID)):]
		row = row[:strings.Index(row, "</tr>")]
		if i := strings.Index(row, `class="acted"`); i >= 0 {
			return row[i:]
		}
		return ""
	}
	a := w.tasks["a@firma.test"]

	// Through the API with the operator's token.
	code, _, body := callAPI(t, w.api, w.opTok, "POST", fmt.Sprintf("/api/v1/tasks/%d/restart", a.ID), nil)
	if code != http.StatusOK || w.task("a@firma.test").State != store.StateQueued {
		t.Fatalf("the operator's restart: %d %s", code, body)
	}
	as := w.actions("a@firma.test")
	if len(as) != 1 || as[0].Action != store.ActionRestart || as[0].UserID != 0 || as[0].JobID != w.task("a@firma.test").JobID {
		t.Fatalf("recorded: %+v", as)
	}
	if got := acted("a@firma.test", i18n.English); !strings.Contains(got, "Restarted by the hosting") {
		t.Errorf("the customer's page after the operator's restart: %q", got)
	}
	if got := acted("a@firma.test", i18n.Czech); !strings.Contains(got, "Znovu spustil hosting") {
		t.Errorf("the customer's page in Czech: %q", got)
	}
	if got := acted("b@firma.test", i18n.English); got != "" {
		t.Errorf("a mailbox the operator did not touch: %q", got)
	}
	// A restart of a task queued already changes nothing.
	if code, _, _ := callAPI(t, w.api, w.opTok, "POST", fmt.Sprintf("/api/v1/tasks/%d/restart", a.ID), nil); code != http.StatusOK ||
		len(w.actions("a@firma.test")) != 1 {
		t.Errorf("a restart that did nothing: %d %+v", code, w.actions("a@firma.test"))
	}

	// Through the panel, signed in: the person is recorded.
	if code, to := w.post(w.op, fmt.Sprintf("/operator/tasks/%d/cancel", a.ID)); code != http.StatusSeeOther ||
		to != fmt.Sprintf("/operator/tasks/%d", a.ID) {
		t.Fatalf("the operator's cancel: %d %s", code, to)
	}
	as = w.actions("a@firma.test")
	if len(as) != 2 || as[1].Action != store.ActionCancel || as[1].UserEmail != w.operatorEmail || w.task("a@firma.test").State != store.StateCancelled {
		t.Fatalf("recorded: %+v", as)
	}
	if got := acted("a@firma.test", i18n.English); !strings.Contains(got, "Cancelled by the hosting") {
		t.Errorf("the customer's page after the operator's cancel: %q", got)
	}
	_, detail := w.get(w.op, fmt.Sprintf("/operator/tasks/%d", a.ID), i18n.English)
	if !strings.Contains(detail, "Cancelled by the hosting ("+w.operatorEmail+")") || !strings.Contains(detail, "Restarted by the hosting (through the API)") {
		t.Errorf("the operator's history on the task's page:\n%s", detail)
	}

	// The customer's own actions are the customer's.
	if code, _ := w.post(w.jana, fmt.Sprintf("/tasks/%d/restart", a.ID)); code != http.StatusSeeOther || w.task("a@firma.test").State != store.StateQueued {
		t.Fatalf("the customer's restart: %d", code)
	}
	if got := acted("a@firma.test", i18n.English); got != "" || len(w.actions("a@firma.test")) != 2 {
		t.Errorf("after the customer's own restart: %q %+v", got, w.actions("a@firma.test"))
	}
	if code, _ := w.post(w.jana, fmt.Sprintf("/tasks/%d/cancel", w.tasks["b@firma.test"].ID)); code != http.StatusSeeOther ||
		len(w.actions("b@firma.test")) != 0 {
		t.Errorf("the customer's cancel was recorded: %d %+v", code, w.actions("b@firma.test"))
	}

	// The operator resumes another customer's paused mailbox; that
	// customer cannot act on it, nor on Firma's.
	c := w.tasks["c@jina.test"]
	if code, _ := w.post(w.op, fmt.Sprintf("/operator/tasks/%d/resume", c.ID)); code != http.StatusSeeOther ||
		len(w.actions("c@jina.test")) != 1 || w.actions("c@jina.test")[0].Action != store.ActionResume {
		t.Errorf("the operator's resume: %d %+v", code, w.actions("c@jina.test"))
	}
	if code, _, _ := callAPI(t, w.api, w.jinaTok, "POST", fmt.Sprintf("/api/v1/tasks/%d/cancel", a.ID), nil); code != http.StatusNotFound {
		t.Errorf("another customer cancels Firma's task: %d", code)
	}

	// Without passwords nothing restarts, and the page says why.
	e := w.tasks["e@jina.test"]
	code, page := w.post(w.op, fmt.Sprintf("/operator/tasks/%d/restart", e.ID))
	if code != http.StatusConflict || !strings.Contains(page, "no longer stored") || len(w.actions("e@jina.test")) != 0 ||
		w.task("e@jina.test").State != store.StateFailed {
		t.Errorf("a restart without passwords: %d %+v\n%s", code, w.actions("e@jina.test"), page)
	}
}

// Only the operator sees the operator's pages: for a customer they do not
// exist, and its forms change nothing.
func TestOperatorPagesHiddenFromCustomers(t *testing.T) {
	w := newOperatorWorld(t)
	ctx := context.Background()
	tokens, _ := w.st.Tokens(ctx, w.jina.ID)
	for _, path := range []string{"/operator/tasks", "/operator/tasks?state=failed", fmt.Sprintf("/operator/tasks/%d", w.tasks["a@firma.test"].ID),
		"/operator/customers"} {
		if code, page := w.get(w.jana, path, i18n.English); code != http.StatusNotFound || !strings.Contains(page, "not yours") {
			t.Errorf("a customer opens %s: %d", path, code)
		}
	}
	for _, path := range []string{fmt.Sprintf("/operator/tasks/%d/cancel", w.tasks["b@firma.test"].ID), fmt.Sprintf("/operator/customers/%d/disable", w.jina.ID),
		fmt.Sprintf("/operator/tokens/%d/revoke", tokens[0].ID)} {
		if code, _ := w.post(w.jana, path); code != http.StatusNotFound {
			t.Errorf("a customer posts %s: %d", path, code)
		}
	}
	if jina, _ := w.st.Tenant(ctx, w.jina.ID); !jina.Disabled.IsZero() {
		t.Error("a customer disabled another")
	}
	if ks, _ := w.st.Tokens(ctx, w.jina.ID); len(ks) != 1 {
		t.Error("a customer revoked another's token")
	}
	if w.task("b@firma.test").State != store.StateQueued || len(w.actions("b@firma.test")) != 0 {
		t.Error("a customer's post to the operator's form changed its task")
	}
	if _, home := w.get(w.jana, "/", i18n.English); strings.Contains(home, "/operator/") {
		t.Error("the customer's home page links to the operator's pages")
	}
}

// The operator's list filters with a GET form and links each mailbox to
// its page, which shows the failure and its causes as the customer reads
// them; every page is whole in both languages.
func TestOperatorTaskPages(t *testing.T) {
	w := newOperatorWorld(t)
	if _, home := w.get(w.op, "/", i18n.English); !strings.Contains(home, `href="/operator/tasks"`) || !strings.Contains(home, `href="/operator/customers"`) {
		t.Errorf("the operator's home page lacks the links:\n%s", home)
	}
	rowsOf := func(page string) []string {
		var out []string
		for _, part := range strings.Split(page, `<a href="/operator/tasks/`)[1:] {
			out = append(out, part[strings.Index(part, ">")+1:strings.Index(part, "<")])
		}
		return out
	}
	code, page := w.get(w.op, "/operator/tasks", i18n.English)
	if code != http.StatusOK || !slices.Equal(rowsOf(page), []string{"e@jina.test", "d@jina.test", "c@jina.test", "b@firma.test", "a@firma.test"}) {
		t.Fatalf("the list: %d %v\n%s", code, rowsOf(page), page)
	}
	for _, want := range []string{"<td>Jiná</td>", "<td>IMAP.Seznam.test</td>", "The old server rejected the login", `class="badge paused_over_quota"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if strings.Contains(page, "app password") {
		t.Error("the list shows whole failures, not their first sentence")
	}
	_, page = w.get(w.op, fmt.Sprintf("/operator/tasks?state=failed&customer=%d&domain=&source_host=old", w.firma.ID), i18n.English)
	if got := rowsOf(page); !slices.Equal(got, []string{"a@firma.test"}) || !strings.Contains(page, `<option value="failed" selected>`) ||
		!strings.Contains(page, fmt.Sprintf(`<option value="%d" selected>Firma</option>`, w.firma.ID)) || !strings.Contains(page, `name="source_host" value="old"`) {
		t.Errorf("the filtered list: %v\n%s", got, page)
	}
	if code, page := w.get(w.op, "/operator/tasks?state=broken", i18n.Czech); code != http.StatusBadRequest || !strings.Contains(page, "neznámý stav") {
		t.Errorf("a broken filter: %d", code)
	}

	a := w.tasks["a@firma.test"]
	for lang, want := range map[i18n.Lang][]string{
		i18n.English: {"The old server rejected the login", "app password", "The server may be overloaded", "authentication failed", "Restart", "Failure"},
		i18n.Czech:   {"Původní server odmítl", "Server může být přetížený", "authentication failed", "Spustit znovu", "Chyba"},
	} {
		code, page := w.get(w.op, fmt.Sprintf("/operator/tasks/%d", a.ID), lang)
		if code != http.StatusOK {
			t.Fatalf("the task's page: %d", code)
		}
		for _, s := range want {
			if !strings.Contains(page, s) {
				t.Errorf("the task's page in %s lacks %q", lang, s)
			}
		}
		if strings.Contains(page, `action="/operator/tasks/`+fmt.Sprint(a.ID)+`/cancel"`) {
			t.Errorf("a failed task offers cancel")
		}
	}
	if _, page := w.get(w.op, fmt.Sprintf("/operator/tasks/%d", w.tasks["e@jina.test"].ID), i18n.English); !strings.Contains(page, `id="no-passwords"`) {
		t.Error("the page of a task without passwords does not say so")
	}
	if code, _ := w.get(w.op, "/operator/tasks/999999", i18n.English); code != http.StatusNotFound {
		t.Errorf("an unknown task: %d", code)
	}
	for _, lang := range i18n.All {
		for _, path := range []string{"/", "/operator/tasks", "/operator/customers", fmt.Sprintf("/operator/tasks/%d", a.ID),
			fmt.Sprintf("/operator/tasks/%d", w.tasks["b@firma.test"].ID), fmt.Sprintf("/operator/tasks/%d", w.tasks["c@jina.test"].ID)} {
			if _, page := w.get(w.op, path, lang); missingText.MatchString(page) {
				t.Errorf("%s in %s shows a missing text %s", path, lang, missingText.FindString(page))
			}
		}
	}
}

// The operator's page of customers lists each customer's state, domains,
// sign-ins and tokens, never a token itself; a token is revoked and a
// customer disabled and enabled there, from this site only.
func TestOperatorCustomersPage(t *testing.T) {
	w := newOperatorWorld(t)
	ctx := context.Background()
	code, page := w.get(w.op, "/operator/customers", i18n.English)
	if code != http.StatusOK {
		t.Fatalf("the page: %d", code)
	}
	section := func(page string, id int64) string {
		s := page[strings.Index(page, fmt.Sprintf(`id="customer-%d"`, id)):]
		return s[:strings.Index(s, "</section>")]
	}
	firma := section(page, w.firma.ID)
	for _, want := range []string{"Firma", "firma.test", `<dd class="users">1</dd>`, "<td>api</td>", "never", "Disable the customer"} {
		if !strings.Contains(firma, want) {
			t.Errorf("Firma's section lacks %q:\n%s", want, firma)
		}
	}
	if jina := section(page, w.jina.ID); !strings.Contains(jina, "jina.test") || !strings.Contains(jina, "hosting panel") ||
		!strings.Contains(jina, `<dd class="users">0</dd>`) {
		t.Errorf("Jiná's section:\n%s", jina)
	}
	if strings.Contains(page, "Hosting</h2>") {
		t.Error("the operator is listed as a customer")
	}
	for _, secret := range []string{w.custTok, w.jinaTok, w.opTok, "mm_", fmt.Sprintf("%x", HashToken(w.custTok))} {
		if strings.Contains(page, secret) {
			t.Errorf("the page shows a token or its hash (%.6s…)", secret)
		}
	}

	// A cross-site form is refused, as every form of the panel.
	ks, _ := w.st.Tokens(ctx, w.firma.ID)
	req := httptest.NewRequest("POST", fmt.Sprintf("/operator/tokens/%d/revoke", ks[0].ID), nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(w.op)
	rec := httptest.NewRecorder()
	w.panel.ServeHTTP(rec, req)
	if now, _ := w.st.Tokens(ctx, w.firma.ID); rec.Code != http.StatusForbidden || len(now) != 1 {
		t.Errorf("a cross-site revoke: %d, %d tokens left", rec.Code, len(now))
	}

	if code, to := w.post(w.op, fmt.Sprintf("/operator/tokens/%d/revoke", ks[0].ID)); code != http.StatusSeeOther ||
		to != fmt.Sprintf("/operator/customers?done=revoked#customer-%d", w.firma.ID) {
		t.Fatalf("revoke: %d %s", code, to)
	}
	if code, _, _ := callAPI(t, w.api, w.custTok, "GET", "/api/v1/domains", nil); code != http.StatusUnauthorized {
		t.Errorf("the revoked token still works: %d", code)
	}
	if _, page := w.get(w.op, "/operator/customers?done=revoked", i18n.Czech); !strings.Contains(page, "Token byl zneplatněn") ||
		strings.Contains(section(page, w.firma.ID), "<td>api</td>") {
		t.Error("the page after the revoke")
	}
	if code, _ := w.post(w.op, fmt.Sprintf("/operator/tokens/%d/revoke", ks[0].ID)); code != http.StatusNotFound {
		t.Errorf("a token revoked twice: %d", code)
	}

	if code, _ := w.post(w.op, fmt.Sprintf("/operator/customers/%d/disable", w.jina.ID)); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if code, _, _ := callAPI(t, w.api, w.jinaTok, "GET", "/api/v1/domains", nil); code != http.StatusForbidden {
		t.Errorf("a disabled customer's token: %d", code)
	}
	_, page = w.get(w.op, "/operator/customers", i18n.English)
	if jina := section(page, w.jina.ID); !strings.Contains(jina, `data-disabled="yes"`) || !strings.Contains(jina, "Disabled since") ||
		!strings.Contains(jina, fmt.Sprintf(`action="/operator/customers/%d/enable"`, w.jina.ID)) {
		t.Errorf("a disabled customer's section:\n%s", jina)
	}
	if code, _ := w.post(w.op, fmt.Sprintf("/operator/customers/%d/enable", w.jina.ID)); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	if jina, _ := w.st.Tenant(ctx, w.jina.ID); !jina.Disabled.IsZero() {
		t.Error("enabled, the customer stays disabled")
	}
	tenants, _ := w.st.Tenants(ctx)
	op := tenants[slices.IndexFunc(tenants, func(t store.Tenant) bool { return t.Kind == store.KindOperator })]
	for _, path := range []string{fmt.Sprintf("/operator/customers/%d/disable", op.ID), fmt.Sprintf("/operator/customers/%d/delete", w.jina.ID)} {
		if code, _ := w.post(w.op, path); code != http.StatusNotFound {
			t.Errorf("%s: %d", path, code)
		}
	}
}
