package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// A restart no longer overwrites what the first copy did: the API lists
// every run of a mailbox, newest first, with its totals, and serves each
// run's report; the migration page shows them too. Other customers see
// nothing of it.
func TestRunsAPIAndPage(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	c, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	other, _ := st.CreateTenant(ctx, "Jina", store.KindCustomer)
	d, _ := st.CreateDomain(ctx, store.Domain{TenantID: c.ID, Name: "firma.test"})
	token, otherToken := NewToken(), NewToken()
	st.CreateToken(ctx, c.ID, "api", HashToken(token))
	st.CreateToken(ctx, other.ID, "api", HashToken(otherToken))
	u, _ := st.CreateUser(ctx, c.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	sess := NewToken()
	st.CreateSession(ctx, HashToken(sess), u.ID, time.Now().Add(time.Hour))
	a := NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: fakeDriverWith("jana@firma.test")}})
	api, panel := a.Handler(), NewPanel(a).Handler()

	// The first copy: 150 copied, then the mailbox was full. Resumed: the
	// 150 are already there, 65 more copied.
	m, tasks, err := st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: "imap.old.test", SourcePort: 993},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@old.test", DestUser: "jana@firma.test"}},
		func(tx *sql.Tx, tasks []store.Task) error { return noJobs{}.QueueTx(ctx, tx, tasks) })
	if err != nil {
		t.Fatal(err)
	}
	task := tasks[0]
	folder := func(copied, present int) *engine.Report {
		return &engine.Report{Folders: []engine.FolderReport{{Source: "INBOX", Dest: "INBOX", SourceMessages: 215, Copied: copied, AlreadyPresent: present}},
			Totals: engine.Totals{SourceMessages: 215, Copied: copied, AlreadyPresent: present}}
	}
	st.ClaimTask(ctx, task.ID, task.JobID)
	st.FinishTask(ctx, task.ID, store.TaskEnd{State: store.StatePaused, Report: folder(150, 0),
		Failure: &engine.Failure{Kind: "over_quota", Message: "The mailbox here is full."}})
	st.QueueTask(ctx, task.ID, []string{store.StatePaused}, func(*sql.Tx, store.Task) (int64, error) { return task.JobID + 1, nil })
	st.ClaimTask(ctx, task.ID, task.JobID+1)
	st.FinishTask(ctx, task.ID, store.TaskEnd{State: store.StateDone, Report: folder(65, 150)})

	get := func(h http.Handler, tok, path string, cookie bool) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if cookie {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := get(api, token, fmt.Sprintf("/api/v1/tasks/%d/runs", task.ID), false)
	var out struct {
		Runs []struct {
			Number   int
			Kind     string
			State    string
			Started  time.Time
			Finished time.Time
			Failure  *engine.Failure
			Totals   *engine.Totals
		}
	}
	if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil || len(out.Runs) != 2 {
		t.Fatalf("runs: %d %s %v", code, body, err)
	}
	r2, r1 := out.Runs[0], out.Runs[1]
	if r2.Number != 2 || r2.Kind != store.RunResume || r2.State != store.StateDone || r2.Totals == nil ||
		r2.Totals.Copied != 65 || r2.Totals.AlreadyPresent != 150 || r2.Finished.IsZero() {
		t.Errorf("newest run: %+v", r2)
	}
	if r1.Number != 1 || r1.Kind != store.RunFirst || r1.State != store.StatePaused || r1.Totals == nil ||
		r1.Totals.Copied != 150 || r1.Failure == nil || r1.Failure.Kind != "over_quota" {
		t.Errorf("first run: %+v", r1)
	}
	if strings.Contains(body, `"folders"`) {
		t.Error("the list of runs carries the whole reports")
	}
	code, body = get(api, token, fmt.Sprintf("/api/v1/tasks/%d/runs/1/report?format=csv", task.ID), false)
	if code != 200 || !strings.Contains(body, "INBOX,INBOX,215,150,0,") {
		t.Errorf("first run's CSV: %d %s", code, body)
	}
	code, body = get(api, token, fmt.Sprintf("/api/v1/tasks/%d/report", task.ID), false)
	if code != 200 || !strings.Contains(body, `"already_present": 150`) {
		t.Errorf("the task's report is not the latest run's: %d %s", code, body)
	}
	for _, c := range []struct {
		tok, path string
	}{
		{otherToken, fmt.Sprintf("/api/v1/tasks/%d/runs", task.ID)},
		{otherToken, fmt.Sprintf("/api/v1/tasks/%d/runs/1/report", task.ID)},
		{token, fmt.Sprintf("/api/v1/tasks/%d/runs/3/report", task.ID)},
		{token, fmt.Sprintf("/api/v1/tasks/%d/runs/x/report", task.ID)},
	} {
		if code, body := get(api, c.tok, c.path, false); code != 404 {
			t.Errorf("%s: %d %s", c.path, code, body)
		}
	}

	// The page lists the runs, newest first, each with its folders.
	code, body = get(panel, "", fmt.Sprintf("/migrations/%d", m.ID), true)
	if code != 200 {
		t.Fatalf("page: %d %s", code, body)
	}
	i2, i1 := strings.Index(body, `data-kind="resume"`), strings.Index(body, `data-kind="first"`)
	if i2 < 0 || i1 < i2 || !strings.Contains(body, fmt.Sprintf(`/tasks/%d/runs/1/report?format=csv`, task.ID)) ||
		!strings.Contains(body, "150 copied, 0 already there") || !strings.Contains(body, "65 copied, 150 already there") {
		t.Errorf("runs on the page:\n%s", body)
	}
	if code, body := get(panel, "", fmt.Sprintf("/tasks/%d/runs/1/report", task.ID), true); code != 200 || !strings.Contains(body, `"copied": 150`) {
		t.Errorf("panel's run report: %d %s", code, body)
	}
}
