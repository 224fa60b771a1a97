package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"mailmigrate/internal/store"
)

// correctRow is one mailbox of the correction form.
type correctRow struct {
	Task store.Task
	// NeedsHosting asks for the mailbox's hosting password; Missing says
	// the stored passwords are gone, so the fields must be filled.
	NeedsHosting, Missing bool
}

// correctData is the correction form: the migration's source (or what was
// entered), its mailboxes, and what went wrong. Passwords are never put
// back into the page.
func (p *Panel) correctData(r *http.Request, v viewer, m store.Migration, d store.Domain, f toolForm) (map[string]any, error) {
	tasks, err := p.api.cfg.Store.Tasks(r.Context(), m.ID)
	if err != nil {
		return nil, err
	}
	var rows []correctRow
	missing, running := false, false
	for _, task := range tasks {
		row := correctRow{Task: task, NeedsHosting: p.api.needsHostingPassword(task), Missing: p.api.missingSecrets(task)}
		missing = missing || row.Missing
		running = running || !store.Finished(task.State)
		rows = append(rows, row)
	}
	if f.Security == "" {
		f.Security = "tls"
	}
	return map[string]any{"Title": d.Name, "User": v.User, "M": m, "Domain": d, "Form": f, "Rows": rows,
		"Missing": missing, "Running": running, "AllowPlaintext": p.api.cfg.AllowPlaintext,
		"Expired": r.URL.Query().Get("expired") != "", "Schedule": r.URL.Query().Get("schedule") != ""}, nil
}

// correctPage shows the form that corrects a finished migration and runs
// it again; Restart without stored passwords leads here.
func (p *Panel) correctPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	m, d, err := p.api.migration(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := toolForm{Host: m.SourceHost, Port: strconv.Itoa(m.SourcePort), Security: m.SourceSecurity, Trust: m.SourceFingerprint}
	data, err := p.correctData(r, v, m, d, f)
	if err != nil {
		return err
	}
	p.render(w, r, "correct", data)
	return nil
}

func (p *Panel) correctPost(w http.ResponseWriter, r *http.Request, v viewer) error {
	ctx := r.Context()
	m, d, err := p.api.migration(ctx, v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("invalid.form")
	}
	f := toolForm{Host: r.PostFormValue("source_host"), Port: r.PostFormValue("source_port"),
		Security: r.PostFormValue("source_security"), Trust: strings.TrimSpace(r.PostFormValue("trust_fingerprint"))}
	var in correctIn
	in.Source.Host, in.Source.Security, in.Source.TrustFingerprint = f.Host, f.Security, f.Trust
	if strings.TrimSpace(f.Port) != "" {
		port, err := strconv.Atoi(strings.TrimSpace(f.Port))
		if err != nil {
			port = -1 // reported by validation as an invalid port
		}
		in.Source.Port = port
	}
	tasks, err := p.api.cfg.Store.Tasks(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, task := range tasks {
		id := strconv.FormatInt(task.ID, 10)
		in.Tasks = append(in.Tasks, struct {
			TaskID          int64  `json:"task_id"`
			SourcePassword  string `json:"source_password"`
			HostingPassword string `json:"hosting_password"`
		}{task.ID, r.PostFormValue("sp:" + id), r.PostFormValue("hp:" + id)})
	}
	err = p.api.correct(ctx, m, &in, v.actor())
	if err == nil && r.PostFormValue("schedule") != "" {
		err = p.api.startSchedule(ctx, m)
	}
	var ae *apiError
	if err == nil || errors.As(err, &ae) && ae.Code == "mailbox_busy" {
		// A busy mailbox waits for the other migration; the rest runs.
		http.Redirect(w, r, fmt.Sprintf("/migrations/%d", m.ID), http.StatusSeeOther)
		return nil
	}
	if !errors.As(err, &ae) || ae.Status == http.StatusNotFound {
		return err
	}
	var errs []string
	for _, fe := range ae.Fields {
		errs = append(errs, fe.Reason.In(v.Printer))
	}
	for _, c := range ae.Checks {
		if c.Hosting != nil {
			errs = append(errs, c.Mailbox+": "+c.Hosting.Localize(v.Printer).Message)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, ae.shown(v.Printer).Message)
	}
	data, err := p.correctData(r, v, m, d, f)
	if err != nil {
		return err
	}
	data["Errors"], data["Schedule"] = errs, r.PostFormValue("schedule") != ""
	w.WriteHeader(http.StatusUnprocessableEntity)
	p.render(w, r, "correct", data)
	return nil
}

// schedulePost starts or stops the daily re-sync from the migration page;
// a start without stored passwords leads to the form that asks for them.
func (p *Panel) schedulePost(w http.ResponseWriter, r *http.Request, v viewer) error {
	m, _, err := p.api.migration(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch r.PathValue("op") {
	case "start":
		err = p.api.startSchedule(r.Context(), m)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "no_passwords" {
			http.Redirect(w, r, fmt.Sprintf("/migrations/%d/correct?expired=1&schedule=1", m.ID), http.StatusSeeOther)
			return nil
		}
	case "stop":
		_, err = p.api.cfg.Store.StopSchedule(r.Context(), m.ID)
	default:
		return errNotFound
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/migrations/%d#schedule", m.ID), http.StatusSeeOther)
	return nil
}

// noPasswords sends a Restart whose passwords expired to the form that
// asks for them again; it reports whether it did.
func noPasswords(w http.ResponseWriter, r *http.Request, migrationID int64, err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "no_passwords" {
		return false
	}
	http.Redirect(w, r, fmt.Sprintf("/migrations/%d/correct?expired=1", migrationID), http.StatusSeeOther)
	return true
}
