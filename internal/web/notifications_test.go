package web

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"strings"
	"testing"

	"mailmigrate/internal/store"
)

// The home page lists the customer's notifications, what needs their
// action first, with what to do.
func TestHomeShowsNotifications(t *testing.T) {
	p, cookie, st := signedIn(t)
	ctx := context.Background()
	d, _ := st.DomainByName(ctx, "firma.test")
	_, tasks, err := st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: "imap.old.test", SourcePort: 993},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@old.test", DestUser: "jana@firma.test"},
			{Kind: store.TaskSync, SourceUser: "petr@old.test", DestUser: "petr@firma.test"}},
		func(tx *sql.Tx, tasks []store.Task) error { return noJobs{}.QueueTx(ctx, tx, tasks) })
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		st.ClaimTask(ctx, task.ID, task.JobID)
	}
	st.FinishTask(ctx, tasks[0].ID, store.TaskEnd{State: store.StatePaused})
	st.FinishTask(ctx, tasks[1].ID, store.TaskEnd{State: store.StateDone})

	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	first := strings.Index(body, "has finished – some mailboxes need your action")
	second := strings.Index(body, "jana@firma.test is out of space")
	if rec.Code != 200 || first < 0 || second < first || !strings.Contains(body, "Needs your action") ||
		!strings.Contains(body, "press Resume") || !strings.Contains(body, `href="/migrations/`) {
		t.Fatalf("home page %d:\n%s", rec.Code, body)
	}
}
