package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"mailmigrate/internal/config"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

// Mailbox management after a migration: change a password, raise a quota
// up to the plan limit, add and remove aliases. The same functions serve
// the API and the panel; each operation exists only where the hosting
// driver offers it.

var errNotSupported = failWith(http.StatusNotImplemented, "not_supported", "manage.unsupported")

// hostedMailbox returns the mailbox address of domain d, or a 404 when
// the address is not in d or the hosting has no such mailbox.
func (a *API) hostedMailbox(ctx context.Context, d store.Domain, address string) (hosting.Mailbox, error) {
	addr, err := hosting.NormalizeAddress(address)
	if err != nil || addr[strings.LastIndexByte(addr, '@')+1:] != d.Name {
		return hosting.Mailbox{}, store.ErrNotFound
	}
	mb, err := a.cfg.Hosting.Driver.Quota(ctx, addr)
	if errors.Is(err, hosting.ErrNotFound) {
		return mb, store.ErrNotFound
	}
	if err != nil {
		return mb, fmt.Errorf("read mailbox %s: %w", addr, err)
	}
	return mb, nil
}

// driverError turns a refusal of the hosting driver into an answer for
// the customer.
func driverError(err error) error {
	var ae *apiError
	switch {
	case err == nil, errors.As(err, &ae):
		return err
	case errors.Is(err, hosting.ErrInvalid):
		return invalidErr(err)
	case errors.Is(err, hosting.ErrNotFound):
		return store.ErrNotFound
	}
	return err
}

// changePassword applies the password policy and sets the new password.
func (a *API) changePassword(ctx context.Context, d store.Domain, address, password string) error {
	ps := hosting.PasswordSetterOf(a.cfg.Hosting.Driver)
	if ps == nil {
		return errNotSupported
	}
	mb, err := a.hostedMailbox(ctx, d, address)
	if err != nil {
		return err
	}
	if err := hosting.CheckNewPassword(mb.Address, password); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "weak_password", Text: messageOf(err)}
	}
	return driverError(ps.SetPassword(ctx, mb.Address, password))
}

// quotaOffered says whether customers may change quotas: the driver can,
// and the operator set a plan limit.
func (a *API) quotaOffered() bool {
	return a.cfg.MaxQuota > 0 && hosting.QuotaSetterOf(a.cfg.Hosting.Driver) != nil
}

// raiseQuota sets a mailbox's quota to a larger size within the plan.
func (a *API) raiseQuota(ctx context.Context, d store.Domain, address string, quotaBytes int64) (hosting.Mailbox, error) {
	if !a.quotaOffered() {
		return hosting.Mailbox{}, errNotSupported
	}
	mb, err := a.hostedMailbox(ctx, d, address)
	if err != nil {
		return mb, err
	}
	switch {
	case quotaBytes <= 0:
		return mb, badRequest("manage.quota.size")
	case quotaBytes > a.cfg.MaxQuota:
		return mb, failWith(http.StatusBadRequest, "over_plan_limit", "manage.quota.limit", i18n.Size(a.cfg.MaxQuota))
	case mb.QuotaBytes == 0:
		return mb, badRequest("manage.quota.unlimited", mb.Address)
	case mb.QuotaBytes > 0 && quotaBytes <= mb.QuotaBytes:
		return mb, badRequest("manage.quota.larger", mb.Address, i18n.Size(mb.QuotaBytes))
	}
	if err := driverError(hosting.QuotaSetterOf(a.cfg.Hosting.Driver).SetQuota(ctx, mb.Address, quotaBytes)); err != nil {
		return mb, err
	}
	mb.QuotaBytes = quotaBytes
	return mb, nil
}

// aliasesOf returns the domain's aliases that deliver to the mailbox.
func aliasesOf(all []hosting.Alias, address string) []hosting.Alias {
	out := []hosting.Alias{}
	for _, al := range all {
		if slices.ContainsFunc(al.Targets, func(t string) bool { return strings.EqualFold(t, address) }) {
			out = append(out, al)
		}
	}
	return out
}

// mailboxAliases lists the aliases that deliver to a mailbox.
func (a *API) mailboxAliases(ctx context.Context, d store.Domain, address string) (hosting.Mailbox, []hosting.Alias, error) {
	am := hosting.AliasManagerOf(a.cfg.Hosting.Driver)
	if am == nil {
		return hosting.Mailbox{}, nil, errNotSupported
	}
	mb, err := a.hostedMailbox(ctx, d, address)
	if err != nil {
		return mb, nil, err
	}
	all, err := am.Aliases(ctx, d.Name)
	if err != nil {
		return mb, nil, err
	}
	return mb, aliasesOf(all, mb.Address), nil
}

// addAlias makes alias (a name or a whole address in the domain) deliver
// to the mailbox and to the further addresses in also.
func (a *API) addAlias(ctx context.Context, d store.Domain, address, alias string, also []string) (hosting.Alias, error) {
	am := hosting.AliasManagerOf(a.cfg.Hosting.Driver)
	if am == nil {
		return hosting.Alias{}, errNotSupported
	}
	mb, err := a.hostedMailbox(ctx, d, address)
	if err != nil {
		return hosting.Alias{}, err
	}
	alias = strings.TrimSpace(alias)
	if alias != "" && !strings.Contains(alias, "@") {
		alias += "@" + d.Name
	}
	al, err := hosting.NormalizeAlias(hosting.Alias{Address: alias, Targets: append([]string{mb.Address}, also...)})
	if err != nil {
		return al, invalidErr(err)
	}
	if al.Address[strings.LastIndexByte(al.Address, '@')+1:] != d.Name {
		return al, badRequest("manage.alias.domain", d.Name)
	}
	// An alias for an existing mailbox would take its mail away from it.
	mbs, err := a.cfg.Hosting.Driver.List(ctx, d.Name)
	if err != nil {
		return al, err
	}
	if slices.ContainsFunc(mbs, func(m hosting.Mailbox) bool { return strings.EqualFold(m.Address, al.Address) }) {
		return al, badRequest("manage.alias.mailbox", al.Address)
	}
	err = am.AddAlias(ctx, al)
	if errors.Is(err, hosting.ErrExists) {
		return al, failWith(http.StatusConflict, "exists", "manage.alias.exists", al.Address)
	}
	return al, driverError(err)
}

// removeAlias removes an alias that delivers to the mailbox.
func (a *API) removeAlias(ctx context.Context, d store.Domain, address, alias string) error {
	mb, aliases, err := a.mailboxAliases(ctx, d, address)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(aliases, func(al hosting.Alias) bool { return strings.EqualFold(al.Address, strings.TrimSpace(alias)) })
	if i < 0 {
		return failWith(http.StatusNotFound, "not_found", "manage.alias.none", alias, mb.Address)
	}
	return driverError(hosting.AliasManagerOf(a.cfg.Hosting.Driver).RemoveAlias(ctx, aliases[i].Address))
}

// apiMailbox resolves the domain of a mailbox route for the tenant.
func (a *API) apiMailbox(r *http.Request, t store.Tenant) (store.Domain, string, error) {
	d, err := a.domain(r.Context(), t, r.PathValue("domain"))
	return d, r.PathValue("address"), err
}

func (a *API) setPassword(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, addr, err := a.apiMailbox(r, t)
	if err != nil {
		return err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := a.changePassword(r.Context(), d, addr, in.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setQuota(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, addr, err := a.apiMailbox(r, t)
	if err != nil {
		return err
	}
	var in struct {
		QuotaBytes int64 `json:"quota_bytes"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	mb, err := a.raiseQuota(r.Context(), d, addr, in.QuotaBytes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"address": mb.Address, "quota_bytes": mb.QuotaBytes, "max_quota_bytes": a.cfg.MaxQuota})
	return nil
}

func (a *API) listAliases(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, addr, err := a.apiMailbox(r, t)
	if err != nil {
		return err
	}
	_, aliases, err := a.mailboxAliases(r.Context(), d, addr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"aliases": aliases})
	return nil
}

func (a *API) createAlias(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, addr, err := a.apiMailbox(r, t)
	if err != nil {
		return err
	}
	var in struct {
		Alias string   `json:"alias"`
		Also  []string `json:"also"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	al, err := a.addAlias(r.Context(), d, addr, in.Alias, in.Also)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, al)
	return nil
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	d, addr, err := a.apiMailbox(r, t)
	if err != nil {
		return err
	}
	if err := a.removeAlias(r.Context(), d, addr, r.PathValue("alias")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// manageRow is one mailbox in the panel's management section.
type manageRow struct {
	hosting.Mailbox
	Aliases []hosting.Alias
	Paused  bool // a copy into it waits for more space
}

// manageView is the management section of a page.
type manageView struct {
	Domain                    string
	Back                      string // the page the forms return to
	Rows                      []manageRow
	Password, Quota, Aliasing bool
	MaxQuota                  int64
	Notice, Error, ErrorFor   string
}

// manageData builds the management section for the given mailboxes;
// paused names those whose copy is paused for lack of space.
func (a *API) manageData(ctx context.Context, p *i18n.Printer, d store.Domain, mbs []hosting.Mailbox, paused map[string]bool, back string, q url.Values) (*manageView, error) {
	am := hosting.AliasManagerOf(a.cfg.Hosting.Driver)
	mv := &manageView{Domain: d.Name, Back: back, Password: hosting.PasswordSetterOf(a.cfg.Hosting.Driver) != nil,
		Quota: a.quotaOffered(), Aliasing: am != nil, MaxQuota: a.cfg.MaxQuota}
	if !mv.Password && !mv.Quota && !mv.Aliasing {
		return nil, nil
	}
	var all []hosting.Alias
	if am != nil {
		var err error
		if all, err = am.Aliases(ctx, d.Name); err != nil {
			return nil, err
		}
	}
	for _, mb := range mbs {
		mv.Rows = append(mv.Rows, manageRow{Mailbox: mb, Aliases: aliasesOf(all, mb.Address), Paused: paused[strings.ToLower(mb.Address)]})
	}
	// The notice names only a mailbox of the page, so that a crafted
	// link cannot put other words into it.
	op, mb := q.Get("changed"), q.Get("mailbox")
	if slices.Contains([]string{"password", "quota", "alias", "unalias"}, op) &&
		slices.ContainsFunc(mv.Rows, func(r manageRow) bool { return r.Address == mb }) {
		mv.Notice = catalog.T(p, "manage.done."+op, mb)
	}
	return mv, nil
}

// mailboxPage shows the management of one mailbox, alone: where the
// forms of the other pages land when something has to be corrected.
func (p *Panel) mailboxPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	d, err := p.api.domain(r.Context(), v.Tenant, r.PathValue("domain"))
	if err != nil {
		return err
	}
	mb, err := p.api.hostedMailbox(r.Context(), d, r.PathValue("address"))
	if err != nil {
		return err
	}
	return p.renderMailbox(w, r, v, d, mb, safeNext(cmp.Or(r.URL.Query().Get("back"), "/domains/"+d.Name)), "", r.URL.Query())
}

func (p *Panel) renderMailbox(w http.ResponseWriter, r *http.Request, v viewer, d store.Domain, mb hosting.Mailbox, back, errText string, q url.Values) error {
	paused := map[string]bool{strings.ToLower(mb.Address): r.PostFormValue("paused") == "1"}
	mv, err := p.api.manageData(r.Context(), printerOf(r), d, []hosting.Mailbox{mb}, paused, back, q)
	if err != nil {
		return err
	}
	if mv == nil {
		return store.ErrNotFound
	}
	mv.Error, mv.ErrorFor = errText, mb.Address
	if errText != "" {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	p.render(w, r, "mailbox", map[string]any{"Title": mb.Address, "User": v.User, "Domain": d, "Manage": mv})
	return nil
}

// mailboxPost applies one of the management forms, then returns to the
// page it came from, or shows the mailbox alone with what to correct.
func (p *Panel) mailboxPost(w http.ResponseWriter, r *http.Request, v viewer) error {
	ctx := r.Context()
	d, err := p.api.domain(ctx, v.Tenant, r.PathValue("domain"))
	if err != nil {
		return err
	}
	mb, err := p.api.hostedMailbox(ctx, d, r.PathValue("address"))
	if err != nil {
		return err
	}
	back := safeNext(cmp.Or(r.PostFormValue("back"), "/domains/"+d.Name))
	op := r.PathValue("op")
	switch op {
	case "password":
		err = p.api.changePassword(ctx, d, mb.Address, r.PostFormValue("password"))
	case "quota":
		var size int64
		size, err = parseQuotaInput(r.PostFormValue("quota"))
		if err == nil {
			_, err = p.api.raiseQuota(ctx, d, mb.Address, size)
		}
	case "alias":
		also := strings.FieldsFunc(r.PostFormValue("also"), func(r rune) bool { return r == ',' || r == ' ' || r == ';' })
		_, err = p.api.addAlias(ctx, d, mb.Address, r.PostFormValue("alias"), also)
	case "unalias":
		err = p.api.removeAlias(ctx, d, mb.Address, r.PostFormValue("alias"))
	default:
		return store.ErrNotFound
	}
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict ||
		ae.Code == "not_found" && op == "unalias") {
		return p.renderMailbox(w, r, v, d, mb, back, ae.shown(v.Printer).Message, nil)
	}
	if err != nil {
		return err
	}
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("changed", op)
	q.Set("mailbox", mb.Address)
	u.RawQuery, u.Fragment = q.Encode(), "manage"
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return nil
}

// parseQuotaInput reads a size as a customer types it: "5G", "5 GB",
// "500m".
func parseQuotaInput(s string) (int64, error) {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if len(s) > 2 && strings.HasSuffix(s, "B") && strings.ContainsAny(s[len(s)-2:len(s)-1], "KMGT") {
		s = s[:len(s)-1]
	}
	n, err := config.ParseSize(s)
	if err != nil || n <= 0 {
		return 0, badRequest("manage.quota.size")
	}
	return n, nil
}

// manageBox pairs a row with its section for the "managebox" template.
func manageBox(m *manageView, row manageRow) map[string]any {
	return map[string]any{"M": m, "Row": row}
}

// withDomainManage adds the management section of the domain's mailboxes
// to the data of a domain page.
func (p *Panel) withDomainManage(r *http.Request, data map[string]any, d store.Domain) error {
	mbs, _ := data["Mailboxes"].([]hosting.Mailbox)
	mv, err := p.api.manageData(r.Context(), printerOf(r), d, mbs, nil, "/domains/"+d.Name, r.URL.Query())
	data["Manage"] = mv
	return err
}

// migrationManage is the management section of a migration page: the
// mailboxes it copied into, those paused for lack of space marked.
func (p *Panel) migrationManage(r *http.Request, m migrationView, d store.Domain) (*manageView, error) {
	wanted, paused := map[string]bool{}, map[string]bool{}
	for _, task := range m.Tasks {
		wanted[strings.ToLower(task.DestUser)] = true
		if task.State == store.StatePaused {
			paused[strings.ToLower(task.DestUser)] = true
		}
	}
	all, err := p.api.cfg.Hosting.Driver.List(r.Context(), d.Name)
	if err != nil {
		return nil, err
	}
	var mbs []hosting.Mailbox
	for _, mb := range all {
		if wanted[strings.ToLower(mb.Address)] {
			mbs = append(mbs, mb)
		}
	}
	return p.api.manageData(r.Context(), printerOf(r), d, mbs, paused, fmt.Sprintf("/migrations/%d", m.ID), r.URL.Query())
}
