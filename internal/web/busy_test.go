package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
)

// finish ends a task's run as done, as a worker would.
func finish(t *testing.T, st store.Store, task store.Task) {
	ctx := context.Background()
	if _, ok, err := st.ClaimTask(ctx, task.ID, task.JobID); !ok || err != nil {
		t.Fatalf("claim task %d: %v", task.ID, err)
	}
	if ok, err := st.FinishTask(ctx, task.ID, store.TaskEnd{State: store.StateDone}); !ok || err != nil {
		t.Fatalf("finish task %d: %v", task.ID, err)
	}
}

// A mailbox takes one task at a time: concurrent submissions of it are
// refused but one, a re-sync while it copies is refused with the task it
// waits for, and allowed once that has finished.
func TestSubmissionMailboxBusy(t *testing.T) {
	st, _, tok := customerAPI(t)
	ctx := context.Background()
	box, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, Hosting: jobs.Hosting{MasterUser: "master",
		Driver: fakeDriver{[]hosting.Mailbox{{Address: "jana@firma.test"}}}}})
	api.tryLogin = acceptAll
	h := api.Handler()
	post := func(body map[string]any) (int, apiError) {
		data, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ae apiError
		json.Unmarshal(rec.Body.Bytes(), &ae)
		return rec.Code, ae
	}
	source := map[string]any{"host": "imap.old.test"}

	// A double click, a retried call: many submissions of one new mailbox
	// at once (in any letter case) create exactly one task.
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		line := "novy@firma.test dlouhe-heslo-1"
		if i%2 == 1 {
			line = "Novy@Firma.test dlouhe-heslo-1"
		}
		wg.Go(func() { codes[i], _ = post(map[string]any{"source": source, "new_mailboxes": line}) })
	}
	wg.Wait()
	created := 0
	for _, code := range codes {
		switch code {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Errorf("concurrent submission answered %d", code)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent submissions of one mailbox were accepted: %v", created, len(codes), codes)
	}
	ms, _ := st.Migrations(ctx, 1)
	if len(ms) != 1 {
		t.Errorf("refused submissions left %d migrations", len(ms))
	}

	// A re-sync of a mailbox while its first copy runs is refused, naming
	// the task that runs.
	sync := []map[string]string{{"mailbox": "jana@firma.test", "source_user": "jana@old.test", "source_password": "stare"}}
	code, _ := post(map[string]any{"source": source, "sync": sync})
	if code != http.StatusCreated {
		t.Fatalf("first sync: %d", code)
	}
	ms, _ = st.Migrations(ctx, 1)
	first, _ := st.Tasks(ctx, ms[0].ID)
	code, ae := post(map[string]any{"source": source, "sync": sync})
	if code != http.StatusConflict || ae.Code != "mailbox_busy" || ae.TaskID != first[0].ID || ae.MigrationID != ms[0].ID ||
		len(ae.Fields) != 1 || ae.Fields[0].Field != "sync[0].mailbox" {
		t.Fatalf("re-sync while running: %d %+v", code, ae)
	}
	finish(t, st, first[0])
	if code, ae := post(map[string]any{"source": source, "sync": sync}); code != http.StatusCreated {
		t.Fatalf("re-sync after the first finished: %d %+v", code, ae)
	}

	// A pasted line of a busy mailbox is refused on its line.
	code, ae = post(map[string]any{"source": source, "new_mailboxes": "eva@firma.test eva-heslo-12\nNOVY@firma.test dlouhe-heslo-1\n"})
	if code != http.StatusConflict || ae.Code != "mailbox_busy" || len(ae.Lines) != 1 || ae.Lines[0].Line != 2 ||
		!strings.Contains(ae.Message, "NOVY@firma.test is already being migrated") {
		t.Fatalf("busy line: %d %+v", code, ae)
	}
	if _, err := st.DomainByName(ctx, "firma.test"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := st.Migrations(ctx, 1); len(ms) != 3 {
		t.Errorf("%d migrations, want 3: a refused one was stored", len(ms))
	}
}

// The panel shows the refusal on the line of the busy mailbox.
func TestPanelMailboxBusy(t *testing.T) {
	p, cookie, st := signedIn(t)
	ctx := context.Background()
	d, _ := st.DomainByName(ctx, "firma.test")
	m, _, err := st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: "imap.old.test"},
		[]store.Task{{Kind: store.TaskCreate, DestUser: "novy@firma.test"}},
		func(tx *sql.Tx, tasks []store.Task) error { return noJobs{}.QueueTx(ctx, tx, tasks) })
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"action": {"start"}, "source_host": {"imap.old.test"}, "new_mailboxes": {"Novy@firma.test dlouhe-heslo-1"}}
	req := httptest.NewRequest("POST", "/domains/firma.test", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	want := fmt.Sprintf("Line 1: Novy@firma.test is already being migrated (migration %d).", m.ID)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("panel refusal: %d, want %q in:\n%s", rec.Code, want, rec.Body.String())
	}
}
