package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// A folder name or subject that starts like a formula stays text when a
// spreadsheet opens the report.
func TestReportCSVIsNotAFormula(t *testing.T) {
	rep := &engine.Report{Folders: []engine.FolderReport{
		{Source: "=HYPERLINK(\"http://evil.example\",\"klik\")", Dest: "+cmd|' /C calc'!A0", SourceMessages: 1,
			Skipped: []engine.MessageIssue{{Subject: "@SUM(1+1)", Reason: i18n.Literal("too big")}}},
		{Source: "-2+3", Dest: "\tTab"},
		{Source: "Doručená pošta", Dest: "INBOX"},
	}}
	var b bytes.Buffer
	if err := writeReportCSV(&b, rep, i18n.New(i18n.English)); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		for _, c := range row {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q would be a formula", c)
			}
		}
	}
	if rows[3][0] != "Doručená pošta" {
		t.Errorf("an ordinary name changed: %q", rows[3][0])
	}
}

// One customer can hold only so many live progress streams open; the
// next is refused until one closes.
func TestEventStreamsPerCustomer(t *testing.T) {
	st, d, tok := customerAPI(t)
	ctx := context.Background()
	m, _, err := st.CreateMigration(ctx, store.Migration{DomainID: d.ID, SourceHost: "imap.old.test", SourcePort: 993, SourceSecurity: "tls"},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "jana@old.test", DestUser: "jana@firma.test"}},
		func(tx *sql.Tx, tasks []store.Task) error { return noJobs{}.QueueTx(ctx, tx, tasks) })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: fakeDriver{}}}).Handler())
	defer srv.Close()
	open := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", srv.URL+fmt.Sprintf("/api/v1/migrations/%d/events", m.ID), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return http.DefaultClient.Do(req)
	}
	var held []*http.Response
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		for _, r := range held {
			r.Body.Close()
		}
		mu.Unlock()
	}()
	for i := range maxStreams {
		resp, err := open()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp.StatusCode, err)
		}
		held = append(held, resp)
	}
	resp, err := open()
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream over the cap: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	held[0].Body.Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := open()
		if err == nil && resp.StatusCode == 200 {
			held = append(held, resp)
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's place was not given back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// What would fail later is refused at submission, with nothing stored:
// a host with a second port, data after the JSON body, and new passwords
// that IMAP cannot carry.
func TestSubmissionRefusesBadInput(t *testing.T) {
	st, _, tok := customerAPI(t)
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, AllowPrivate: true, Hosting: jobs.Hosting{MasterUser: "master", Driver: fakeDriver{}}})
	api.tryLogin = acceptAll
	h := api.Handler()
	source := `{"host": "imap.old.test", "port": 993, "security": "tls"}`
	for _, c := range []struct {
		name, body, code, want string
	}{
		{"second port", `{"source": {"host": "127.0.0.1:1:2"}, "new_mailboxes": "ema@old.test Ema-stare-heslo-1"}`, "invalid", "is not a server name"},
		{"path in host", `{"source": {"host": "imap.old.test/x"}, "new_mailboxes": "ema@old.test Ema-stare-heslo-1"}`, "invalid", "is not a server name"},
		{"trailing data", `{"source": ` + source + `, "new_mailboxes": "ema@old.test Ema-stare-heslo-1"} {"x": 1}`, "invalid", "more than one JSON object"},
		{"NUL in new password", `{"source": ` + source + `, "new_mailboxes": "ema@old.test\tEma-stare-heslo-1\tNove-heslo-\u0000-99"}`, "invalid", "NUL"},
		{"NUL in the old password", `{"source": ` + source + `, "new_mailboxes": "source_user,source_password,dest_user,dest_password\nema@old.test,\"Ema\u0000heslo-1\",,"}`, "invalid", "NUL"},
		{"long new password", `{"source": ` + source + `, "new_mailboxes": "ema@old.test\tEma-stare-heslo-1\t` + strings.Repeat("x", 1100) + `"}`, "invalid", "longer than"},
	} {
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error": "`+c.code+`"`) || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
	}
	if ms, _ := st.Migrations(context.Background(), 1); len(ms) != 0 {
		t.Errorf("%d migrations stored from refused submissions", len(ms))
	}
}

// Logins checked through the hosting are capped per check and per
// customer and hour, and one customer's use leaves another's allowance
// whole. Two web servers on one database count together.
func TestLoginChecksCapped(t *testing.T) {
	st, _, tok := customerAPI(t)
	ctx := context.Background()
	other, _ := st.CreateTenant(ctx, "Jiná", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: other.ID, Name: "jina.test"})
	otherTok := NewToken()
	st.CreateToken(ctx, other.ID, "api", HashToken(otherTok))
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, AllowPrivate: true, CheckLines: 3, ChecksPerHour: 5,
		Hosting: jobs.Hosting{MasterUser: "master", Driver: fakeDriver{}}})
	api.tryLogin = acceptAll
	second := NewAPI(Config{Store: st, Jobs: noJobs{}, AllowPrivate: true, CheckLines: 3, ChecksPerHour: 5,
		Hosting: jobs.Hosting{MasterUser: "master", Driver: fakeDriver{}}})
	second.tryLogin = acceptAll
	h := api.Handler()
	check := func(token, domain string, n int) (int, string) {
		var lines []string
		for i := range n {
			lines = append(lines, fmt.Sprintf("u%d@old.test Stare-heslo-%d-xyz", i, i))
		}
		body := fmt.Sprintf(`{"source": {"host": "imap.old.test"}, "new_mailboxes": %q}`, strings.Join(lines, "\n"))
		req := httptest.NewRequest("POST", "/api/v1/domains/"+domain+"/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := check(tok, "firma.test", 4); code != http.StatusBadRequest || !strings.Contains(body, "at most 3") {
		t.Errorf("4 lines: %d %s", code, body)
	}
	if code, body := check(tok, "firma.test", 3); code != 200 {
		t.Fatalf("3 lines: %d %s", code, body)
	}
	if code, body := check(tok, "firma.test", 3); code != http.StatusTooManyRequests || !strings.Contains(body, "too_many_checks") {
		t.Errorf("over the hourly allowance: %d %s", code, body)
	}
	h = second.Handler()
	if code, body := check(tok, "firma.test", 3); code != http.StatusTooManyRequests || !strings.Contains(body, "too_many_checks") {
		t.Errorf("over the hourly allowance, at another web server: %d %s", code, body)
	}
	if code, body := check(tok, "firma.test", 2); code != 200 {
		t.Errorf("what is left of the allowance, at another web server: %d %s", code, body)
	}
	h = api.Handler()
	if code, body := check(otherTok, "jina.test", 3); code != 200 {
		t.Errorf("another customer's check: %d %s", code, body)
	}
}

// An old server on a port other than IMAP's (and the configured ones) is
// refused at submission: the service must not map the ports of others.
func TestSubmissionRefusesOtherPorts(t *testing.T) {
	st, _, tok := customerAPI(t)
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, AllowedPorts: []int{10993}, Hosting: jobs.Hosting{MasterUser: "master", Driver: fakeDriver{}}})
	api.tryLogin = acceptAll
	h := api.Handler()
	for port, refused := range map[int]bool{22: true, 8080: true, 993: false, 10993: false} {
		body := fmt.Sprintf(`{"source": {"host": "imap.old.test", "port": %d}, "new_mailboxes": "ema@old.test Ema-stare-heslo-1"}`, port)
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "port"); got != refused {
			t.Errorf("port %d: %d %s", port, rec.Code, rec.Body)
		}
	}
}
