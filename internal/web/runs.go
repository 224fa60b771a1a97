package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

// runView is one run of a task as the API and the panel show it: the
// totals of its report; the report itself is fetched on demand.
type runView struct {
	store.Run
	Totals *engine.Totals `json:"totals,omitempty"`
}

func viewRuns(runs []store.Run, p *i18n.Printer) []runView {
	out := make([]runView, len(runs))
	for i, r := range localizeRuns(runs, p) {
		out[i] = runView{Run: r}
		if r.Report != nil {
			out[i].Totals = &r.Report.Totals
		}
	}
	return out
}

// listRuns answers a task's runs, newest first.
func (a *API) listRuns(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	task, err := a.task(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	runs, err := a.cfg.Store.Runs(r.Context(), task.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": viewRuns(runs, printerOf(r))})
	return nil
}

// run finds one run of a task by its number.
func (a *API) run(ctx context.Context, task store.Task, numberText string) (store.Run, error) {
	n, err := strconv.Atoi(numberText)
	if err != nil {
		return store.Run{}, store.ErrNotFound
	}
	runs, err := a.cfg.Store.Runs(ctx, task.ID)
	if err != nil {
		return store.Run{}, err
	}
	for _, r := range runs {
		if r.Number == n {
			return r, nil
		}
	}
	return store.Run{}, store.ErrNotFound
}

// runReport serves one run's per-folder report as JSON or CSV.
func (a *API) runReport(w http.ResponseWriter, r *http.Request, t store.Tenant) error {
	task, err := a.task(r.Context(), t, r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.writeRunReport(w, r, task)
}

// writeRunReport sends the report of the run named in the path as a JSON
// or (?format=csv) CSV download.
func (a *API) writeRunReport(w http.ResponseWriter, r *http.Request, task store.Task) error {
	run, err := a.run(r.Context(), task, r.PathValue("run"))
	if err != nil {
		return err
	}
	if run.Report == nil {
		return failWith(http.StatusNotFound, "no_report", "api.no_run_report")
	}
	p := printerOf(r)
	rep := run.Report.Localize(p)
	name := fmt.Sprintf("migration-%d-%s-run-%d", task.ID, safeName(task.DestUser), run.Number)
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, name))
		return writeReportCSV(w, rep, p)
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.json"`, name))
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// runReportPage is the panel's download of one run's report.
func (p *Panel) runReportPage(w http.ResponseWriter, r *http.Request, v viewer) error {
	task, err := p.api.task(r.Context(), v.Tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	return p.api.writeRunReport(w, r, task)
}

// taskRuns is the runs of every task of a migration, for its page.
func (a *API) taskRuns(ctx context.Context, p *i18n.Printer, tasks []store.Task) (map[int64][]runView, error) {
	out := map[int64][]runView{}
	for _, t := range tasks {
		runs, err := a.cfg.Store.Runs(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		out[t.ID] = viewRuns(runs, p)
	}
	return out, nil
}
