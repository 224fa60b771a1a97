package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/secret"
)

// acceptAll stands for servers that accept every login.
func acceptAll(context.Context, imapconn.Endpoint, engine.Side, string, string) (*engine.Failure, error) {
	return nil, nil
}

// New Mailbox lines name the old mailbox of any domain or a renamed
// service; a weak password is refused with how to give a new one; a line
// whose old login fails is not started (nothing created), the others are;
// a source that is this hosting is refused only for the same mailbox.
func TestSubmitNewMailboxesFromOldLogins(t *testing.T) {
	st, _, tok := customerAPI(t)
	box, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	hostingIMAP := imapconn.Endpoint{Host: "imap.hosting.test", Port: 993}
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, AllowPrivate: true, Hosting: jobs.Hosting{MasterUser: "master", IMAP: hostingIMAP,
		Driver: fakeDriver{[]hosting.Mailbox{{Address: "jana@firma.test"}}}}})
	api.tryLogin = func(_ context.Context, _ imapconn.Endpoint, side engine.Side, user, _ string) (*engine.Failure, error) {
		if user == "nobody@old-domain.cz" {
			return &engine.Failure{Kind: "auth", Side: side, Message: "rejected"}, &imapconn.Error{Kind: imapconn.ErrAuth}
		}
		return nil, nil
	}
	h := api.Handler()
	post := func(host, lines string) (int, map[string]any) {
		data, _ := json.Marshal(map[string]any{"source": map[string]any{"host": host}, "new_mailboxes": lines})
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}

	code, out := post("imap.old.test", "zora@w123456 kratke\nzora@old-domain.cz slabe nove-heslo-1234\nadam@old-domain.cz heslo-adam-1\nadam@jina.cz heslo-adam-2\n")
	body, _ := json.Marshal(out)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "old-password new-password") ||
		!strings.Contains(string(body), "already used on line 3") || strings.Contains(string(body), "not a domain") {
		t.Fatalf("answer %d: %s", code, body)
	}

	code, out = post("imap.old.test", "zora@w123456 stare-heslo-zora\nnobody@old-domain.cz stare-heslo-nikdo\n")
	body, _ = json.Marshal(out)
	if code != http.StatusCreated || !strings.Contains(string(body), `"not_started"`) || !strings.Contains(string(body), "nobody@old-domain.cz") {
		t.Fatalf("answer %d: %s", code, body)
	}
	tasks := out["tasks"].([]any)
	if len(tasks) != 1 || !strings.Contains(string(body), "zora@firma.test") || strings.Contains(string(body), "stare-heslo") {
		t.Fatalf("tasks: %s", body)
	}

	// This hosting as the old server: another login is allowed, the same
	// mailbox is refused.
	code, out = post("imap.hosting.test", "petr@w123456 stare-heslo-petr\n")
	if code != http.StatusCreated {
		t.Fatalf("between services: %d %v", code, out)
	}
	code, out = post("imap.hosting.test", "ema@firma.test stare-heslo-ema\n")
	body, _ = json.Marshal(out)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "into itself") {
		t.Fatalf("into itself: %d %s", code, body)
	}
}

// A migration from Gmail may copy each message once: the choice is stored
// with the migration and shown with it; without it, once per label.
func TestSubmitGmailOnce(t *testing.T) {
	st, _, tok := customerAPI(t)
	box, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, AllowPrivate: true, Hosting: jobs.Hosting{MasterUser: "master",
		IMAP: imapconn.Endpoint{Host: "imap.hosting.test", Port: 993}, Driver: fakeDriver{nil}}})
	api.tryLogin = acceptAll
	h := api.Handler()
	for i, once := range []bool{true, false} {
		// Each into a mailbox of its own: one mailbox takes one migration
		// at a time.
		line := []string{"eva", "adam"}[i] + "@gmail.com heslo-z-gmailu-123\n"
		body := map[string]any{"source": map[string]any{"host": "imap.gmail.com"}, "new_mailboxes": line}
		if once {
			body["gmail_once"] = true
		}
		data, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out struct {
			ID        int64 `json:"id"`
			GmailOnce bool  `json:"gmail_once"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); rec.Code != http.StatusCreated || err != nil {
			t.Fatalf("gmail_once %v: %d %s", once, rec.Code, rec.Body)
		}
		m, err := st.Migration(context.Background(), out.ID)
		if err != nil || m.GmailOnce != once || out.GmailOnce != once {
			t.Errorf("gmail_once %v: stored %v, answered %v (%v)", once, m.GmailOnce, out.GmailOnce, err)
		}
	}
}

// A check logs in to many mailboxes at once when the old server's limit
// allows it, but never so many that the logins under way would count as
// the server's allowance of failures and refuse the rest.
func TestCheckManyAtOnce(t *testing.T) {
	st, _, tok := customerAPI(t)
	box, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	api := NewAPI(Config{Store: st, Jobs: noJobs{}, Box: box, AllowPrivate: true, SourceHostLimit: 12,
		Hosting: jobs.Hosting{MasterUser: "master", IMAP: imapconn.Endpoint{Host: "imap.hosting.test", Port: 993}, Driver: fakeDriver{nil}}})
	var mu sync.Mutex
	running, most := 0, 0
	api.tryLogin = func(context.Context, imapconn.Endpoint, engine.Side, string, string) (*engine.Failure, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return nil, nil
	}
	var lines strings.Builder
	for i := range 40 {
		fmt.Fprintf(&lines, "user%d@old.test heslo-uzivatele-%d\n", i, i)
	}
	data, _ := json.Marshal(map[string]any{"source": map[string]any{"host": "imap.old.test"}, "new_mailboxes": lines.String()})
	req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated || strings.Contains(rec.Body.String(), "not_started") {
		t.Fatalf("answer %d: %.500s", rec.Code, rec.Body)
	}
	if most < 4 || most > 5 {
		t.Errorf("%d logins at once, want 4 or 5 (half the 10 attempts allowed per server)", most)
	}
}
