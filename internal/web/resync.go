package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// correctIn corrects a finished migration and restarts it: the source
// server (all fields, as at submission) and, per task, passwords. An
// empty password keeps the stored one; where none is stored any more
// (after secret_retention) it must be given.
type correctIn struct {
	Source struct {
		Host             string `json:"host"`
		Port             int    `json:"port"`
		Security         string `json:"security"`
		TrustFingerprint string `json:"trust_fingerprint"`
	} `json:"source"`
	Tasks []struct {
		TaskID          int64  `json:"task_id"`
		SourcePassword  string `json:"source_password"`
		HostingPassword string `json:"hosting_password"`
	} `json:"tasks"`
}

// needsHostingPassword says whether a task logs in to the hosting with the
// mailbox's own password: always without a master user, and for created
// mailboxes also with one (the creation uses it).
func (a *API) needsHostingPassword(task store.Task) bool {
	return a.cfg.Hosting.MasterUser == "" || task.Kind == store.TaskCreate
}

// missingSecrets says whether a task cannot run again without passwords
// entered anew.
func (a *API) missingSecrets(task store.Task) bool {
	return task.SourceSecret == nil || (a.needsHostingPassword(task) && task.DestSecret == nil)
}

// correct applies a correction to a migration's finished tasks and
// restarts them. A task queued or copying refuses the whole correction:
// its run would continue with the old server half-way.
//
// The ledger is keyed by the source server's address and the login, so a
// changed server starts a new ledger: the next run finds every message
// unknown, and matches it against the mailbox by content (Message-ID,
// Date, From, To, Cc, Subject and size), so nothing already copied is
// copied again, but that first run reads every message's headers once.
func (a *API) correct(ctx context.Context, m store.Migration, in *correctIn, by actor) error {
	bad := badRequest("correct.invalid")
	field := func(f string, reason i18n.Message) { bad.Fields = append(bad.Fields, fieldError{f, reason}) }
	var mi migrationIn
	mi.Source = in.Source
	ep, err := a.sourceEndpoint(&mi)
	if err != nil {
		field("source", messageOf(err))
	}
	tasks, err := a.cfg.Store.Tasks(ctx, m.ID)
	if err != nil {
		return err
	}
	byID := map[int64]int{}
	for i, tk := range in.Tasks {
		byID[tk.TaskID] = i
	}
	var secrets []store.TaskSecrets
	var failed []checkResult
	for _, task := range tasks {
		if !store.Finished(task.State) {
			return runningError(&store.RunningError{TaskID: task.ID, Mailbox: task.DestUser})
		}
		var src, host string
		if i, ok := byID[task.ID]; ok {
			src, host = in.Tasks[i].SourcePassword, in.Tasks[i].HostingPassword
			delete(byID, task.ID)
		}
		f := fmt.Sprintf("tasks[%d]", task.ID)
		if strings.ContainsAny(src+host, "\r\n\x00") {
			field(f, catalog.M("correct.linebreak", task.DestUser))
			continue
		}
		switch {
		case task.SourceSignIn != "" && (src != "" || task.SourceSecret == nil):
			// Its source secret is a refresh token: only a new sign-in
			// (the migration page's button) renews it.
			field(f+".source_password", catalog.M("oauth.correct", task.SourceUser))
		case src == "" && task.SourceSecret == nil:
			field(f+".source_password", catalog.M("correct.need.source", task.SourceUser))
		}
		if !a.needsHostingPassword(task) {
			host = ""
		} else if host == "" && task.DestSecret == nil {
			field(f+".hosting_password", catalog.M("correct.need.hosting", task.DestUser))
		}
		if host != "" {
			// A typo here would fail the copy: the hosting checks it now,
			// as at submission.
			if fl, _ := a.login(ctx, a.cfg.Hosting.IMAP, engine.SideDest, task.DestUser, host); fl != nil {
				failed = append(failed, checkResult{Row: f, Mailbox: task.DestUser, Hosting: fl})
			}
		}
		if src == "" && host == "" {
			continue
		}
		s := store.TaskSecrets{TaskID: task.ID}
		if src != "" {
			s.SourceSecret = a.cfg.Box.Seal(src, jobs.SecretContext(task.ID, "source"))
		}
		if host != "" {
			s.DestSecret = a.cfg.Box.Seal(host, jobs.SecretContext(task.ID, "destination"))
		}
		secrets = append(secrets, s)
	}
	for id := range byID {
		field(fmt.Sprintf("tasks[%d]", id), catalog.M("correct.notask", id))
	}
	if len(bad.Fields) > 0 {
		return bad
	}
	if len(failed) > 0 {
		ae := failWith(http.StatusBadRequest, "hosting_login", "correct.hosting")
		ae.Checks = failed
		return ae
	}
	err = a.cfg.Store.CorrectMigration(ctx, m.ID, store.Correction{SourceHost: ep.Host, SourcePort: ep.Port,
		SourceSecurity: jobs.SecurityName(ep.Security), SourceFingerprint: ep.TrustFingerprint, Secrets: secrets})
	var re *store.RunningError
	if errors.As(err, &re) {
		return runningError(re)
	}
	if err != nil {
		return err
	}
	a.cfg.Logf("migration %d corrected: source %s:%d, new passwords for %d mailbox(es)", m.ID, ep.Host, ep.Port, len(secrets))
	return a.actAll(ctx, m, "restart", by)
}

// runningError is the answer to a change refused because a task runs.
func runningError(re *store.RunningError) *apiError {
	ae := failWith(http.StatusConflict, "task_running", "correct.running", re.Mailbox)
	ae.TaskID = re.TaskID
	return ae
}

func (a *API) correctMigration(w http.ResponseWriter, r *http.Request, tn store.Tenant) error {
	m, d, err := a.migration(r.Context(), tn, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in correctIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := a.correct(r.Context(), m, &in, actor{Tenant: tn}); err != nil {
		return err
	}
	m, err = a.cfg.Store.Migration(r.Context(), m.ID)
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

// scheduleView is a migration's re-sync schedule as the API and the page
// show it.
type scheduleView struct {
	Active bool `json:"active"`
	store.Schedule
	// StopsOn is when it stops by itself (zero until the MX points here).
	StopsOn time.Time `json:"stops_on,omitzero"`
	// StopDays is how long after the MX change it runs.
	StopDays int `json:"stop_days"`
}

// scheduleOf returns a migration's schedule.
func (a *API) scheduleOf(ctx context.Context, migrationID int64) (scheduleView, error) {
	v := scheduleView{StopDays: a.cfg.ResyncStopDays}
	s, err := a.cfg.Store.Schedule(ctx, migrationID)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.Active, v.Schedule = true, s
	if !s.MXSince.IsZero() {
		v.StopsOn = s.MXSince.Add(time.Duration(a.cfg.ResyncStopDays) * 24 * time.Hour)
	}
	return v, nil
}

// startSchedule starts the daily re-sync; the passwords of every copied
// mailbox must be stored (they are kept while it runs).
func (a *API) startSchedule(ctx context.Context, m store.Migration) error {
	tasks, err := a.cfg.Store.Tasks(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, task := range tasks {
		if a.missingSecrets(task) {
			return failWith(http.StatusConflict, "no_passwords", "schedule.nopasswords")
		}
	}
	if _, err := a.cfg.Store.StartSchedule(ctx, m.ID); err != nil {
		return err
	}
	a.cfg.Logf("migration %d: daily re-sync started", m.ID)
	return nil
}

func (a *API) schedule(w http.ResponseWriter, r *http.Request, tn store.Tenant) error {
	m, _, err := a.migration(r.Context(), tn, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPost:
		err = a.startSchedule(r.Context(), m)
	case http.MethodDelete:
		_, err = a.cfg.Store.StopSchedule(r.Context(), m.ID)
	}
	if err != nil {
		return err
	}
	v, err := a.scheduleOf(r.Context(), m.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
