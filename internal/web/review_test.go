package web

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/store"
)

// The hostile review's sweeps, kept as a test: one customer's API token
// and panel session against every route with the other customer's
// domains, mailboxes, migrations, tasks and runs, written several ways;
// and every panel form posted from another site. Nothing of the other
// customer may come back and nothing may change; the counts are logged
// for the closing note.
func TestReviewSweeps(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	firma, _ := st.CreateTenant(ctx, "Firma", store.KindCustomer)
	jina, _ := st.CreateTenant(ctx, "Jina", store.KindCustomer)
	st.CreateDomain(ctx, store.Domain{TenantID: firma.ID, Name: "firma.test"})
	jd, _ := st.CreateDomain(ctx, store.Domain{TenantID: jina.ID, Name: "jina.test"})
	// What must never be seen by Firma: Jina's old server, login and
	// mailbox.
	const secretHost, secretUser, secretBox = "imap.tajny-server.test", "tajny@tajny-server.test", "schranka@jina.test"
	m, tasks, err := st.CreateMigration(ctx, store.Migration{DomainID: jd.ID, SourceHost: secretHost, SourcePort: 993, SourceSecurity: "tls"},
		[]store.Task{{Kind: store.TaskSync, SourceUser: secretUser, DestUser: secretBox}},
		func(tx *sql.Tx, ts []store.Task) error { return noJobs{}.QueueTx(ctx, tx, ts) })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.ClaimTask(ctx, tasks[0].ID, tasks[0].JobID); !ok || err != nil {
		t.Fatal("claim", err)
	}
	st.FinishTask(ctx, tasks[0].ID, store.TaskEnd{State: store.StateDone})
	token := NewToken()
	st.CreateToken(ctx, firma.ID, "api", HashToken(token))
	u, _ := st.CreateUser(ctx, firma.ID, "jana@firma.test", HashPassword("dlouhe heslo"))
	sess := NewToken()
	st.CreateSession(ctx, HashToken(sess), u.ID, time.Now().Add(time.Hour))
	driver := domainDriver{"jina.test": {{Address: secretBox}}, "firma.test": {{Address: "jana@firma.test"}}}
	a := NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: driver}, MaxQuota: 10 << 30})
	api, panel := a.Handler(), NewPanel(a).Handler()
	cookie := &http.Cookie{Name: sessionCookie, Value: sess}

	// Jina's identifiers, as typed by someone who tries.
	id := strconv.FormatInt(m.ID, 10)
	tid := strconv.FormatInt(tasks[0].ID, 10)
	spellings := []map[string]string{
		{"domain": "jina.test", "id": id, "task": tid, "address": secretBox},
		{"domain": "JINA.TEST", "id": "0" + id, "task": "0" + tid, "address": strings.ToUpper(secretBox)},
		{"domain": "jina.test.", "id": id + "/", "task": tid + "/", "address": secretBox + "."},
		{"domain": "firma.test", "id": id, "task": tid, "address": secretBox}, // own domain, Jina's mailbox and ids
		{"domain": "jina%2etest", "id": "+" + id, "task": "+" + tid, "address": "schranka%40jina.test"},
	}
	param := regexp.MustCompile(`\{[a-z]+\}`)
	fill := func(route string, sp map[string]string) (method, path string) {
		method, path, _ = strings.Cut(route, " ")
		isTask := strings.Contains(path, "/tasks/")
		path = param.ReplaceAllStringFunc(path, func(p string) string {
			switch p {
			case "{domain}":
				return sp["domain"]
			case "{id}":
				if isTask {
					return sp["task"]
				}
				return sp["id"]
			case "{address}":
				return sp["address"]
			case "{alias}":
				return "alias@jina.test"
			case "{run}":
				return "1"
			}
			return p
		})
		return method, path
	}
	leaked := func(body string) bool {
		return strings.Contains(body, secretHost) || strings.Contains(body, secretUser) || strings.Contains(body, secretBox)
	}
	before, _ := st.Task(ctx, tasks[0].ID)
	served, _ := servedRoutes(t)
	bodies := []string{"", "{}", `{"sync":[{"mailbox":"druha@jina.test","source_user":"x","source_password":"y"}],"source":{"host":"imap.x.test"}}`}
	apiRequests, leaks := 0, 0
	for _, route := range served {
		for _, sp := range spellings {
			for _, body := range bodies {
				method, path := fill(route, sp)
				if method == "GET" && body != "" {
					continue
				}
				req := httptest.NewRequest(method, path+"?domain=jina.test&customer="+strconv.FormatInt(jina.ID, 10), strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				api.ServeHTTP(rec, req.WithContext(ctx))
				cancel()
				apiRequests++
				if leaked(rec.Body.String()) {
					leaks++
					t.Errorf("%s %s (%q): %d shows Jina's data:\n%s", method, path, body, rec.Code, rec.Body.String())
				}
			}
		}
	}
	// The panel, signed in as Firma.
	panelRoutes := []string{"GET /domains/{domain}", "POST /domains/{domain}", "GET /domains/{domain}/dns", "GET /migrations/{id}",
		"GET /migrations/{id}/events", "POST /tasks/{id}/restart", "POST /tasks/{id}/cancel", "POST /migrations/{id}/restart",
		"POST /migrations/{id}/cancel", "GET /migrations/{id}/correct", "POST /migrations/{id}/correct", "POST /migrations/{id}/schedule/start",
		"GET /tasks/{id}/report", "GET /tasks/{id}/runs/{run}/report", "GET /domains/{domain}/mailboxes/{address}",
		"POST /domains/{domain}/mailboxes/{address}/password", "GET /operator/tasks", "GET /operator/tasks/{id}",
		"GET /operator/customers", "POST /operator/customers/{id}/disable"}
	panelRequests := 0
	for _, route := range panelRoutes {
		for _, sp := range spellings {
			method, path := fill(route, sp)
			req := httptest.NewRequest(method, path, strings.NewReader("action=start&password=dlouhe+heslo+123&new_password=dlouhe+heslo+123"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			panel.ServeHTTP(rec, req.WithContext(ctx))
			cancel()
			panelRequests++
			if leaked(rec.Body.String()) {
				leaks++
				t.Errorf("panel %s %s: %d shows Jina's data", method, path, rec.Code)
			}
		}
	}
	if after, _ := st.Task(ctx, tasks[0].ID); after.State != before.State || after.JobID != before.JobID {
		t.Errorf("Jina's task changed: %s job %d, was %s job %d", after.State, after.JobID, before.State, before.JobID)
	}
	if tn, _ := st.Tenant(ctx, jina.ID); !tn.Disabled.IsZero() {
		t.Error("Firma disabled Jina")
	}

	// Every form of the panel, posted from another site with Firma's
	// cookie: refused before it does anything.
	forms := []string{"/login", "/logout", "/domains/firma.test", "/tasks/" + tid + "/restart", "/tasks/" + tid + "/cancel",
		"/migrations/" + id + "/restart", "/migrations/" + id + "/cancel", "/migrations/" + id + "/correct",
		"/migrations/" + id + "/schedule/start", "/migrations/" + id + "/schedule/stop",
		"/domains/firma.test/mailboxes/jana@firma.test/password", "/domains/firma.test/mailboxes/jana@firma.test/quota",
		"/operator/tasks/" + tid + "/restart", "/operator/customers/" + strconv.FormatInt(jina.ID, 10) + "/disable", "/operator/tokens/1/revoke"}
	crossSite, refused := 0, 0
	for _, form := range forms {
		for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"},
			{"Sec-Fetch-Site": "same-site", "Origin": "https://sub.firma.test"}} {
			req := httptest.NewRequest("POST", form, strings.NewReader("action=start&email=jana@firma.test&password=dlouhe+heslo"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			panel.ServeHTTP(rec, req)
			crossSite++
			if rec.Code == http.StatusForbidden {
				refused++
			} else {
				t.Errorf("cross-site POST %s (%v): %d", form, h, rec.Code)
			}
		}
	}
	t.Log(fmt.Sprintf("%d API requests and %d panel requests of one customer against another's data: %d leaks; "+
		"%d cross-site form posts: %d refused", apiRequests, panelRequests, leaks, crossSite, refused))
}

// domainDriver lists each domain's own mailboxes.
type domainDriver map[string][]hosting.Mailbox

func (d domainDriver) List(_ context.Context, domain string) ([]hosting.Mailbox, error) {
	return d[domain], nil
}
func (d domainDriver) Create(context.Context, string, string, int64) error { return nil }
func (d domainDriver) Quota(_ context.Context, address string) (hosting.Mailbox, error) {
	for _, mbs := range d {
		for _, mb := range mbs {
			if mb.Address == address {
				return mb, nil
			}
		}
	}
	return hosting.Mailbox{}, hosting.ErrNotFound
}
