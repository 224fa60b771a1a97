package web

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"mailmigrate/internal/jobs"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
)

// A correction is refused while a mailbox of the migration copies, asks
// for the passwords that expired, and changes the server and passwords
// of a finished one; the daily re-sync starts only with stored passwords
// and stops on request.
func TestCorrectAndScheduleAPI(t *testing.T) {
	st, d, tok := customerAPI(t)
	ctx := context.Background()
	box, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	h := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, Hosting: jobs.Hosting{MasterUser: "master"}, ResyncStopDays: 5}).Handler()
	m, tasks, err := st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: "imap.old.test", SourcePort: 993, SourceSecurity: "tls"},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@old.test", DestUser: "jana@firma.test"}},
		func(tx *sql.Tx, tasks []store.Task) error {
			tasks[0].SourceSecret = box.Seal("old", jobs.SecretContext(tasks[0].ID, "source"))
			return noJobs{}.QueueTx(ctx, tx, tasks)
		})
	if err != nil {
		t.Fatal(err)
	}
	task := tasks[0]
	base := fmt.Sprintf("/api/v1/migrations/%d", m.ID)
	body := func(password string) map[string]any {
		return map[string]any{"source": map[string]any{"host": "imap.right.test", "port": 143, "security": "starttls"},
			"tasks": []map[string]any{{"task_id": task.ID, "source_password": password}}}
	}

	if code, ae, _ := callAPI(t, h, tok, "POST", base+"/correct", body("new")); code != http.StatusConflict || ae.Code != "task_running" ||
		ae.TaskID != task.ID {
		t.Errorf("correction while queued: %d %+v", code, ae)
	}
	finish(t, st, task)
	if code, _, out := callAPI(t, h, tok, "POST", base+"/schedule", nil); code != 200 || !bytes.Contains([]byte(out), []byte(`"active": true`)) {
		t.Errorf("start the schedule: %d %s", code, out)
	}
	if code, _, out := callAPI(t, h, tok, "DELETE", base+"/schedule", nil); code != 200 || !bytes.Contains([]byte(out), []byte(`"active": false`)) {
		t.Errorf("stop the schedule: %d %s", code, out)
	}

	// The passwords expire: the schedule needs them, and so does the
	// correction.
	if n, _ := st.ExpireSecrets(ctx, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("expired %d", n)
	}
	if code, ae, _ := callAPI(t, h, tok, "POST", base+"/schedule", nil); code != http.StatusConflict || ae.Code != "no_passwords" {
		t.Errorf("schedule without passwords: %d %+v", code, ae)
	}
	code, ae, _ := callAPI(t, h, tok, "POST", base+"/correct", body(""))
	if code != http.StatusBadRequest || len(ae.Fields) != 1 || ae.Fields[0].Field != fmt.Sprintf("tasks[%d].source_password", task.ID) {
		t.Errorf("correction without the expired password: %d %+v", code, ae)
	}
	if code, ae, out := callAPI(t, h, tok, "POST", base+"/correct", body("new")); code != 200 {
		t.Fatalf("correction: %d %+v %s", code, ae, out)
	}
	got, _ := st.Migration(ctx, m.ID)
	tk, _ := st.Task(ctx, task.ID)
	if got.SourceHost != "imap.right.test" || got.SourcePort != 143 || got.SourceSecurity != "starttls" {
		t.Errorf("migration after the correction: %+v", got)
	}
	if pw, err := box.Open(tk.SourceSecret, jobs.SecretContext(task.ID, "source")); err != nil || pw != "new" {
		t.Errorf("stored password after the correction: %v", err)
	}
	if code, _, _ := callAPI(t, h, tok, "POST", base+"/schedule", nil); code != 200 {
		t.Errorf("schedule with the passwords entered again: %d", code)
	}
}
