package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

// The operator's side: every customer's tasks, with filters, a task's
// failure, restart and cancel on a customer's behalf (recorded, see
// actAs), and the customers with their tokens.

// Page sizes of the operator's list of tasks.
const (
	defaultTaskPage = 50
	maxTaskPage     = 500
)

// taskFilter reads the operator's filters of the list of tasks from a
// query: state, customer, domain, source_host, limit and offset.
func taskFilter(q url.Values) (store.TaskFilter, error) {
	f := store.TaskFilter{Limit: defaultTaskPage, Domain: strings.TrimSpace(q.Get("domain")),
		SourceHost: strings.TrimSpace(q.Get("source_host"))}
	var ok bool
	if f.States, ok = store.FilterStates(q.Get("state")); !ok {
		return f, badRequest("invalid.state", q.Get("state"))
	}
	number := func(name string, least, most int64, into func(int64)) error {
		text := strings.TrimSpace(q.Get(name))
		if text == "" {
			return nil
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < least || n > most {
			return badRequest("invalid.number", name, least, most, text)
		}
		into(n)
		return nil
	}
	if err := number("customer", 1, 1<<62, func(n int64) { f.TenantID = n }); err != nil {
		return f, err
	}
	if err := number("limit", 1, maxTaskPage, func(n int64) { f.Limit = int(n) }); err != nil {
		return f, err
	}
	return f, number("offset", 0, 1<<31, func(n int64) { f.Offset = int(n) })
}

// listTasks is one page of the operator's list, in the printer's
// language, and whether more follow.
func (a *API) listTasks(ctx context.Context, p *i18n.Printer, f store.TaskFilter) ([]store.TaskRow, bool, error) {
	page := f
	page.Limit++ // one more tells whether there is a next page
	rows, err := a.cfg.Store.ListTasks(ctx, page)
	if err != nil {
		return nil, false, err
	}
	more := len(rows) > f.Limit
	if more {
		rows = rows[:f.Limit]
	}
	for i := range rows {
		rows[i].Task = localizeTask(rows[i].Task, p)
	}
	return nonNil(rows), more, nil
}

// listAllTasks answers GET /api/v1/tasks, for the operator only.
func (a *API) listAllTasks(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	if err := operatorOnly(t); err != nil {
		return err
	}
	f, err := taskFilter(r.URL.Query())
	if err != nil {
		return err
	}
	rows, more, err := a.listTasks(r.Context(), printerOf(r), f)
	if err != nil {
		return err
	}
	out := struct {
		Tasks      []store.TaskRow `json:"tasks"`
		NextOffset int             `json:"next_offset,omitempty"`
	}{Tasks: rows}
	if more {
		out.NextOffset = f.Offset + f.Limit
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// firstSentence is the first sentence of a text: a list names what went
// wrong, and the task's page says the rest.
func firstSentence(text string) string {
	if i := strings.Index(text, ". "); i >= 0 {
		return text[:i+1]
	}
	return text
}

// operatorPage is a panel page that only the operator may see; for
// anybody else it does not exist.
func (p *Panel) operatorPage(fn func(w http.ResponseWriter, r *http.Request, v viewer) error) func(w http.ResponseWriter, r *http.Request, v viewer) error {
	return func(w http.ResponseWriter, r *http.Request, v viewer) error {
		if !isOperator(v.Tenant) {
			return store.ErrNotFound
		}
		return fn(w, r, v)
	}
}

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// pageLink is the address of the same list from another offset.
func pageLink(q url.Values, offset int) string {
	q = maps.Clone(q) // Set and Del below replace whole entries
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	} else {
		q.Del("offset")
	}
	return "/operator/tasks?" + q.Encode()
}

// operatorTasks is the list of every customer's tasks, with the filters
// as a GET form so that a filtered list is an address to keep or share.
func (p *Panel) operatorTasks(w http.ResponseWriter, r *http.Request, v viewer) error {
	q := r.URL.Query()
	data := map[string]any{"Title": tr(r, "operator.tasks.title"), "User": v.User,
		"Domain": q.Get("domain"), "SourceHost": q.Get("source_host")}
	// The groups first, then the states no group holds alone.
	states := []option{{"", tr(r, "operator.filter.all"), false}, {store.FilterRunning, tr(r, "operator.filter.running"), false},
		{store.StateFailed, tr(r, "state.failed"), false}, {store.FilterPaused, tr(r, "state.paused_over_quota"), false}}
	for _, s := range []string{store.StateQueued, store.StateRunning, store.StateDone, store.StateWarnings, store.StateCancelled} {
		states = append(states, option{s, tr(r, "state."+s), false})
	}
	for i := range states {
		states[i].Selected = states[i].Value == q.Get("state")
	}
	tenants, err := p.api.cfg.Store.Tenants(r.Context())
	if err != nil {
		return err
	}
	customers := []option{{"", tr(r, "operator.filter.everyone"), q.Get("customer") == ""}}
	for _, t := range tenants {
		if t.Kind == store.KindCustomer {
			id := strconv.FormatInt(t.ID, 10)
			customers = append(customers, option{id, t.Name, q.Get("customer") == id})
		}
	}
	data["States"], data["Customers"] = states, customers
	f, err := taskFilter(q)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		w.WriteHeader(http.StatusBadRequest)
		data["Error"] = ae.shown(v.Printer).Message
		p.render(w, r, "operator_tasks", data)
		return nil
	}
	rows, more, err := p.api.listTasks(r.Context(), v.Printer, f)
	if err != nil {
		return err
	}
	data["Rows"] = rows
	if f.Offset > 0 {
		data["Previous"] = pageLink(q, max(f.Offset-f.Limit, 0))
	}
	if more {
		data["Next"] = pageLink(q, f.Offset+f.Limit)
	}
	p.render(w, r, "operator_tasks", data)
	return nil
}

// operatorTaskData is what a task's page shows the operator: the task
// as its customer sees it (failure and causes in the reader's language),
// where it belongs, its runs, and what the operator did to it.
func (p *Panel) operatorTaskData(ctx context.Context, v viewer, idText string) (map[string]any, store.Task, error) {
	task, err := p.api.task(ctx, v.Tenant, idText)
	if err != nil {
		return nil, task, err
	}
	m, d, err := p.api.migration(ctx, v.Tenant, strconv.FormatInt(task.MigrationID, 10))
	if err != nil {
		return nil, task, err
	}
	customer, err := p.api.cfg.Store.Tenant(ctx, d.TenantID)
	if err != nil {
		return nil, task, err
	}
	runs, err := p.api.cfg.Store.Runs(ctx, task.ID)
	if err != nil {
		return nil, task, err
	}
	actions, err := p.api.cfg.Store.TaskActions(ctx, task.ID)
	if err != nil {
		return nil, task, err
	}
	slices.Reverse(actions) // the newest first, like the runs
	return map[string]any{"Title": task.DestUser, "User": v.User, "T": localizeTask(task, v.Printer), "M": m, "Domain": d,
		"Customer": customer, "Runs": viewRuns(runs, v.Printer), "Actions": actions,
		"NoPasswords": store.Finished(task.State) && p.api.missingSecrets(task)}, task, nil
}

func (p *Panel) operatorTask(w http.ResponseWriter, r *http.Request, v viewer) error {
	data, _, err := p.operatorTaskData(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	p.render(w, r, "operator_task", data)
	return nil
}

// operatorTaskAction restarts, resumes or cancels a task on its
// customer's behalf. A refusal (no passwords, the mailbox busy) is said
// on the task's page: the operator cannot correct the customer's
// passwords, so it is not sent to the customer's form.
func (p *Panel) operatorTaskAction(w http.ResponseWriter, r *http.Request, v viewer) error {
	task, err := p.api.task(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	err = p.api.actAs(r.Context(), task, r.PathValue("action"), v.actor())
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		data, _, err := p.operatorTaskData(r.Context(), v, r.PathValue("id"))
		if err != nil {
			return err
		}
		data["Error"] = ae.shown(v.Printer).Message
		w.WriteHeader(http.StatusConflict)
		p.render(w, r, "operator_task", data)
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/operator/tasks/%d", task.ID), http.StatusSeeOther)
	return nil
}

// customerView is one customer on the operator's page of customers.
type customerView struct {
	store.Tenant
	Domains []string
	Users   int
	Tokens  []store.Token
}

// done are the confirmations the page of customers shows after a change,
// by the name the change's redirect gives.
var done = map[string]string{"revoked": "operator.done.revoked", "disabled": "operator.done.disabled",
	"enabled": "operator.done.enabled"}

// operatorCustomers lists the customers with their state, domains, number
// of sign-ins and API tokens (never a token itself: only its hash is
// kept).
func (p *Panel) operatorCustomers(w http.ResponseWriter, r *http.Request, v viewer) error {
	ctx := r.Context()
	tenants, err := p.api.cfg.Store.Tenants(ctx)
	if err != nil {
		return err
	}
	domains, err := p.api.cfg.Store.Domains(ctx, 0)
	if err != nil {
		return err
	}
	users, err := p.api.cfg.Store.Users(ctx, 0)
	if err != nil {
		return err
	}
	tokens, err := p.api.cfg.Store.Tokens(ctx, 0)
	if err != nil {
		return err
	}
	var out []customerView
	for _, t := range tenants {
		if t.Kind != store.KindCustomer {
			continue
		}
		c := customerView{Tenant: t}
		for _, d := range domains {
			if d.TenantID == t.ID {
				c.Domains = append(c.Domains, d.Name)
			}
		}
		for _, u := range users {
			if u.TenantID == t.ID {
				c.Users++
			}
		}
		for _, k := range tokens {
			if k.TenantID == t.ID {
				c.Tokens = append(c.Tokens, k)
			}
		}
		out = append(out, c)
	}
	data := map[string]any{"Title": tr(r, "operator.customers.title"), "User": v.User, "Customers": out}
	if key, ok := done[r.URL.Query().Get("done")]; ok {
		data["Done"] = tr(r, key)
	}
	p.render(w, r, "operator_customers", data)
	return nil
}

// customerOf is the customer a form of the page of customers is about;
// an operator is not on that page.
func (p *Panel) customerOf(ctx context.Context, idText string) (store.Tenant, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return store.Tenant{}, store.ErrNotFound
	}
	t, err := p.api.cfg.Store.Tenant(ctx, id)
	if err == nil && t.Kind != store.KindCustomer {
		err = store.ErrNotFound
	}
	return t, err
}

// operatorCustomerSwitch disables or enables a customer.
func (p *Panel) operatorCustomerSwitch(w http.ResponseWriter, r *http.Request, v viewer) error {
	c, err := p.customerOf(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	op := r.PathValue("op")
	if op != "disable" && op != "enable" {
		return store.ErrNotFound
	}
	if err := p.api.cfg.Store.SetTenantDisabled(r.Context(), c.ID, op == "disable"); err != nil {
		return err
	}
	p.api.cfg.Logf("customer %d (%s) %sd by %s", c.ID, c.Name, op, v.User.Email)
	http.Redirect(w, r, fmt.Sprintf("/operator/customers?done=%sd#customer-%d", op, c.ID), http.StatusSeeOther)
	return nil
}

// operatorRevokeToken revokes an API token of a customer.
func (p *Panel) operatorRevokeToken(w http.ResponseWriter, r *http.Request, v viewer) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	tokens, err := p.api.cfg.Store.Tokens(r.Context(), 0)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(tokens, func(k store.Token) bool { return k.ID == id })
	if i < 0 {
		return store.ErrNotFound
	}
	c, err := p.customerOf(r.Context(), strconv.FormatInt(tokens[i].TenantID, 10))
	if err != nil {
		return err
	}
	if _, err := p.api.cfg.Store.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	p.api.cfg.Logf("API token %d (%q) of customer %d (%s) revoked by %s", id, tokens[i].Label, c.ID, c.Name, v.User.Email)
	http.Redirect(w, r, fmt.Sprintf("/operator/customers?done=revoked#customer-%d", c.ID), http.StatusSeeOther)
	return nil
}
