package web

import (
	"net/http"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/store"
)

// The sentences of stored failures and reports are kept as keys and
// arguments (i18n.Message); every answer and page writes them in its
// reader's language just before it is sent, with these.

// printerOf is the printer of a request's language: the panel's choice,
// else the browser's (or the API client's) Accept-Language.
func printerOf(r *http.Request) *i18n.Printer { return i18n.New(langOf(r)) }

// localizeTask returns a copy of a task for showing.
func localizeTask(t store.Task, p *i18n.Printer) store.Task {
	t.Failure = t.Failure.Localize(p)
	t.Report = t.Report.Localize(p)
	return t
}

func localizeTasks(ts []store.Task, p *i18n.Printer) []store.Task {
	out := make([]store.Task, len(ts))
	for i, t := range ts {
		out[i] = localizeTask(t, p)
	}
	return out
}

// localizeChecks returns a copy of check results for showing.
func localizeChecks(cs []checkResult, p *i18n.Printer) []checkResult {
	if cs == nil {
		return nil
	}
	out := make([]checkResult, len(cs))
	for i, c := range cs {
		c.Source, c.Hosting = c.Source.Localize(p), c.Hosting.Localize(p)
		c.SourceDiagnosis = c.SourceDiagnosis.Localize(p)
		if c.Plan != nil {
			plan := *c.Plan
			plan.Failure = plan.Failure.Localize(p)
			plan.Warning = i18n.Literal(plan.Warning.In(p))
			plan.Folders = make([]planFolder, len(c.Plan.Folders))
			for j, f := range c.Plan.Folders {
				f.Note = i18n.Literal(f.Note.In(p))
				plan.Folders[j] = f
			}
			c.Plan = &plan
		}
		out[i] = c
	}
	return out
}

// localizeRuns returns a copy of runs for showing.
func localizeRuns(runs []store.Run, p *i18n.Printer) []store.Run {
	out := make([]store.Run, len(runs))
	for i, r := range runs {
		r.Report, r.Failure = r.Report.Localize(p), r.Failure.Localize(p)
		out[i] = r
	}
	return out
}

// localizeCandidates returns a copy of found servers for showing.
func localizeCandidates(cs []diagnose.Candidate, p *i18n.Printer) []diagnose.Candidate {
	if cs == nil {
		return nil
	}
	out := make([]diagnose.Candidate, len(cs))
	for i, c := range cs {
		out[i] = c.Localize(p)
	}
	return out
}

// localizeRows returns a copy of DNS check rows for showing.
func localizeRows(rows []diagnose.Row, p *i18n.Printer) []diagnose.Row {
	if rows == nil {
		return nil
	}
	out := make([]diagnose.Row, len(rows))
	for i, r := range rows {
		out[i] = r.Localize(p)
	}
	return out
}
