package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailmigrate/internal/config"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// service is a running `mailmigrate serve` with its two Dovecots: the old
// provider (source) and the hosting (destination, whose passwd-file the
// service manages).
type service struct {
	t        *testing.T
	src, dst *testbed.Dovecot
	driver   *hosting.PasswdFile
	dir      string
	conf     string
	url      string
	cmd      *exec.Cmd
	logs     *syncBuffer
	opToken  string
	secrets  []string // every password the test hands out
	database string   // the PostgreSQL database's URL, or "" for SQLite in data_dir
}

// openStore opens the service's database, as the service does.
func (s *service) openStore() *store.DB {
	s.t.Helper()
	var st *store.DB
	var err error
	if s.database != "" {
		st, err = store.OpenPostgres(context.Background(), s.database)
	} else {
		st, err = store.Open(filepath.Join(s.dir, "data", "mailmigrate.db"))
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// masterUser is the Dovecot master user of the hosting when a test asks
// for one.
const masterUser, masterPassword = "migrator", "master heslo"

func newService(t *testing.T, slice string, master bool) *service {
	return newServiceWith(t, slice, master, "")
}

// newServiceWith is newService with further lines of configuration.
func newServiceWith(t *testing.T, slice string, master bool, extra string) *service {
	s := &service{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	if onPostgres && !strings.Contains(extra, "database =") {
		s.database = testbed.PostgresT(t)
		extra += "database = " + s.database + "\n"
	}
	s.src = testbed.StartDovecotT(t, testbed.DovecotOptions{})
	dopts := testbed.DovecotOptions{SharedPasswdFile: true}
	if master {
		dopts.MasterUser, dopts.MasterPassword = masterUser, masterPassword
	}
	s.dst = testbed.StartDovecotT(t, dopts)
	uid, gid := s.dst.MailOwner()
	var err error
	home := filepath.Join(s.dst.Dir, "home", "%d", "%n")
	s.driver, err = hosting.NewPasswdFile(hosting.PasswdFileConfig{Path: s.dst.PasswdFile,
		UID: strconv.Itoa(uid), GID: strconv.Itoa(gid), Home: home, Scheme: hosting.SchemeSHA512Crypt})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	s.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	// The DNS the service asks: firma.test's MX still at the old provider,
	// its imap name already at the hosting.
	// The hosting is known as imap.hosting.test (127.0.0.2 in this DNS,
	// while the test connects to it on 127.0.0.1); "localhost" stands for
	// an old server name that was already moved to the hosting.
	dnsAddr := dnsServer(t, `
firma.test. 60 IN MX 10 mx.old-provider.test.
imap.firma.test. 60 IN CNAME imap.hosting.test.
imap.hosting.test. 60 IN A 127.0.0.2
mx.hosting.test. 60 IN A 127.0.0.2
localhost. 60 IN A 127.0.0.2
`)
	s.conf = filepath.Join(s.dir, "mailmigrate.conf")
	conf := fmt.Sprintf(`listen = 127.0.0.1:%d
data_dir = %s
hosting.imap = imaps://127.0.0.1:%d
hosting.ca_file = %s
hosting.driver = passwd-file
hosting.passwd_file = %s
hosting.passwd_scheme = SHA512-CRYPT
hosting.uid = %d
hosting.gid = %d
hosting.home = %s
sources.allow_private = true
sources.allow_plaintext = true
jobs.slice = %s
dns_server = %s
hosting.mx = mx.hosting.test
hosting.imap_names = imap.hosting.test
`, port, filepath.Join(s.dir, "data"), s.dst.IMAPSPort, s.dst.CAFile, s.dst.PasswdFile, uid, gid, home, slice, dnsAddr) + extra
	if master {
		pw := filepath.Join(s.dir, "master.pw")
		if err := os.WriteFile(pw, []byte(masterPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("hosting.master_user = %s\nhosting.master_password_file = %s\n", masterUser, pw)
		s.secrets = append(s.secrets, masterPassword)
	}
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := s.admin("init", "--name", "Hosting")
	s.opToken = tokenIn(t, out)
	return s
}

// configure adds lines to the service's configuration; later lines win.
func (s *service) configure(lines string) {
	s.t.Helper()
	f, err := os.OpenFile(s.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(lines)
		f.Close()
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

var tokenRE = regexp.MustCompile(`mm_[A-Za-z0-9_-]{20,}`)

func tokenIn(t *testing.T, out string) string {
	tok := tokenRE.FindString(out)
	if tok == "" {
		t.Fatalf("no token in:\n%s", out)
	}
	return tok
}

func (s *service) admin(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(binary, append([]string{"admin", "--config", s.conf}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("admin %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// customer adds a customer with one domain and returns its token.
func (s *service) customer(name, domain string, limit int) string {
	s.admin("customer", "add", name)
	s.admin("domain", "add", "--customer", name, "--mailbox-limit", strconv.Itoa(limit), domain)
	return tokenIn(s.t, s.admin("token", "add", "--tenant", name))
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(binary, "serve", "--config", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
	}
	s.t.Fatalf("serve did not come up:\n%s", s.logs.String())
}

func (s *service) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

// apiClient gives up on a server that does not answer, instead of the
// test hanging until its binary's timeout.
var apiClient = &http.Client{Timeout: 30 * time.Second}

// call makes an API request and decodes the JSON answer into out (if not
// nil); it returns the status and the raw body.
func (s *service) call(token, method, path string, body any, out any) (int, string) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, s.url+"/api/v1"+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, sec := range s.secrets {
		if strings.Contains(string(data), sec) {
			s.t.Errorf("%s %s answered with a password in the body", method, path)
		}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil && resp.StatusCode < 300 {
			s.t.Fatalf("%s %s: %v\n%s", method, path, err, data)
		}
	}
	return resp.StatusCode, string(data)
}

// events reads a migration's event stream until it ends (or 90 s pass).
func (s *service) events(token string, id int64) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/migrations/%d/events", s.url, id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		s.t.Errorf("event stream content type %q", ct)
	}
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

type taskOut struct {
	ID           int64  `json:"id"`
	State        string `json:"state"`
	SourceUser   string `json:"source_user"`
	Destination  string `json:"destination"`
	MessagesDone int64  `json:"messages_done"`
}

type migrationOut struct {
	ID    int64     `json:"id"`
	State string    `json:"state"`
	Tasks []taskOut `json:"tasks"`
}

func (s *service) wait(token string, id int64) migrationOut {
	s.t.Helper()
	var m migrationOut
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s.call(token, "GET", fmt.Sprintf("/migrations/%d", id), nil, &m)
		if m.State != "copying" && len(m.Tasks) > 0 {
			return m
		}
	}
	s.t.Fatalf("migration %d did not finish: %+v\nlogs:\n%s\ndestination log:\n%s", id, m, s.logs.String(), s.dst.LogTail(30))
	return m
}

type reportOut struct {
	Status  string `json:"status"`
	Folders []struct {
		Source string `json:"source"`
		Dest   string `json:"destination"`
	} `json:"folders"`
	Totals struct {
		Copied         int `json:"copied"`
		AlreadyPresent int `json:"already_present"`
	} `json:"totals"`
}

// account is a source mailbox with mail.
type account struct {
	srcUser, srcPass string
	mailbox, hostPW  string
	messages         int
}

// syncMigration starts, through the API, a migration of existing
// mailboxes of firma.test from the test's old server, and returns it.
func (s *service) syncMigration(token string, accts ...account) migrationOut {
	s.t.Helper()
	var sync []map[string]string
	for _, a := range accts {
		sync = append(sync, map[string]string{"mailbox": a.mailbox, "hosting_password": a.hostPW, "source_user": a.srcUser, "source_password": a.srcPass})
	}
	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	var m migrationOut
	if code, body := s.call(token, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": sync}, &m); code != 201 {
		s.t.Fatalf("start: %d %s", code, body)
	}
	return m
}

func (s *service) sourceAccount(user, pass string, seed uint64, n int) int {
	if err := s.src.AddUser(user, pass, 0); err != nil {
		s.t.Fatal(err)
	}
	c := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: seed, Messages: n})
	if err := c.Load(context.Background(), s.src.LoginT(s.t, user, pass)); err != nil {
		s.t.Fatal(err)
	}
	s.secrets = append(s.secrets, pass)
	return len(c.Messages)
}

// panelPassword is the password of every panel user the tests add.
const panelPassword = "panel heslo 123"

// panelUser adds a panel sign-in for email on behalf of tenant.
func (s *service) panelUser(tenant, email string) {
	s.t.Helper()
	pwFile := filepath.Join(s.dir, "panel.pw")
	if err := os.WriteFile(pwFile, []byte(panelPassword+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.admin("user", "add", "--tenant", tenant, "--password-file", pwFile, email)
	s.secrets = append(s.secrets, panelPassword)
}

// halfQuota is a quota that holds about half of sourceAccount's corpus of
// n messages from seed, so that its copy pauses midway for lack of space.
func halfQuota(seed uint64, n int) int64 {
	var size int64
	for _, m := range testbed.GenerateCorpus(testbed.CorpusOptions{Seed: seed, Messages: n}).Messages {
		size += int64(len(m.Body))
	}
	return (size / 2) &^ 1023
}

// midCopySource starts a way to the source that answers the first chunk
// of bodies, then falls silent, and returns its port: a copy through it
// is caught part-way however fast it is (with MULTIAPPEND, 600 messages
// were sometimes all in before a test's kill or cancel). A task started
// after the kill or cancel reads through it as usual.
func (s *service) midCopySource() int {
	proxy := testbed.StartProxy(s.t, fmt.Sprintf("127.0.0.1:%d", s.src.IMAPPort))
	proxy.StallOnNth([]byte("BODY.PEEK[]"), 2)
	return proxy.Port()
}

// held counts the messages in every folder of a destination mailbox.
func (s *service) held(dst *imapclient.Client) int {
	s.t.Helper()
	snap, err := testbed.Snapshot(context.Background(), dst)
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, f := range snap {
		n += int(f.Messages)
	}
	return n
}

// waitHeld waits until a destination mailbox holds a message, for less
// than the service's 60 s timeout, after which a stalled copy would read
// on a new connection; it returns how many it holds.
func (s *service) waitHeld(dst *imapclient.Client) int {
	s.t.Helper()
	n := 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && n == 0; time.Sleep(5 * time.Millisecond) {
		n = s.held(dst)
	}
	return n
}

func (s *service) verify(a account, rep reportOut) {
	s.t.Helper()
	m := map[string]string{}
	for _, f := range rep.Folders {
		m[f.Source] = f.Dest
	}
	src := s.src.LoginT(s.t, a.srcUser, a.srcPass)
	dst := s.dst.LoginT(s.t, a.mailbox, a.hostPW)
	if err := testbed.Verify(context.Background(), src, dst, m); err != nil {
		s.t.Fatalf("%s: destination differs:\n%v", a.mailbox, err)
	}
}

func TestServeAPI(t *testing.T) {
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	other := s.customer("Jiná firma", "jina.test", 0)

	// Two existing mailboxes on the hosting, synced from differently named
	// old ones; three new ones from pasted lines.
	accts := []account{
		{srcUser: "jana@old.test", srcPass: "stare heslo 1", mailbox: "jana@firma.test", hostPW: "nove-heslo-1"},
		{srcUser: "petr.novak@old.test", srcPass: `st"are\2`, mailbox: "petr@firma.test", hostPW: "nove-heslo-2"},
		{srcUser: "eva@firma.test", srcPass: "eva heslo 3", mailbox: "eva@firma.test", hostPW: "eva heslo 3"},
		{srcUser: "adam@firma.test", srcPass: "adam-heslo-4", mailbox: "adam@firma.test", hostPW: "adam-heslo-4"},
		{srcUser: "olga@firma.test", srcPass: "olga-heslo-5", mailbox: "olga@firma.test", hostPW: "olga-heslo-5"},
	}
	for i := range accts {
		a := &accts[i]
		a.messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(30+i), 25+5*i)
		s.secrets = append(s.secrets, a.hostPW)
		if i < 2 {
			if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.start()

	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}
	sync := []map[string]string{
		{"mailbox": "jana@firma.test", "hosting_password": accts[0].hostPW, "source_user": accts[0].srcUser, "source_password": accts[0].srcPass},
		{"mailbox": "petr@firma.test", "hosting_password": accts[1].hostPW, "source_user": accts[1].srcUser, "source_password": accts[1].srcPass},
	}
	// Tab-separated: the old passwords hold spaces.
	lines := func(second string) string {
		return fmt.Sprintf("%s\t%s\n%s\n%s\t%s\n", accts[2].srcUser, accts[2].srcPass, second, accts[4].srcUser, accts[4].srcPass)
	}

	// The mailboxes of the domain come from the hosting driver.
	var mbs struct{ Mailboxes []struct{ Address string } }
	if code, body := s.call(firma, "GET", "/domains/firma.test/mailboxes", nil, &mbs); code != 200 || len(mbs.Mailboxes) != 2 {
		t.Fatalf("mailboxes: %d %s", code, body)
	}

	// Check logins: one wrong source password is explained.
	bad := append([]map[string]string{}, sync...)
	bad[1] = map[string]string{"mailbox": "petr@firma.test", "hosting_password": accts[1].hostPW, "source_user": accts[1].srcUser, "source_password": "wrong"}
	var check struct {
		OK     bool
		Checks []struct {
			Row            string
			OK             bool
			SourceFailure  *struct{ Kind, Message string } `json:"source_failure"`
			HostingFailure *struct{ Kind, Message string } `json:"hosting_failure"`
		}
	}
	code, body := s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": source, "sync": bad}, &check)
	if code != 200 || check.OK || len(check.Checks) != 2 || !check.Checks[0].OK || check.Checks[1].SourceFailure == nil ||
		check.Checks[1].SourceFailure.Kind != "auth" || !strings.Contains(check.Checks[1].SourceFailure.Message, "rejected the login") {
		t.Fatalf("check: %d %s", code, body)
	}

	// An old server name that already leads to the hosting is refused
	// when the old login is the mailbox itself: it would copy into itself.
	// "localhost" at the hosting's own IMAP port: the same service.
	movedSource := map[string]any{"host": "localhost", "port": s.dst.IMAPSPort, "security": "tls"}
	self := []map[string]string{{"mailbox": sync[0]["mailbox"], "hosting_password": sync[0]["hosting_password"],
		"source_user": sync[0]["mailbox"], "source_password": sync[0]["hosting_password"]}}
	if code, body := s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": movedSource, "sync": self}, nil); code != 400 ||
		!strings.Contains(body, "into itself") {
		t.Errorf("check of a moved name: %d %s", code, body)
	}

	// Over TLS the old server's self-signed certificate is refused and
	// described; once the customer trusts that certificate, the login works.
	var tlsCheck struct {
		OK     bool
		Checks []struct {
			SourceDiagnosis *struct {
				Kind        string
				Reasons     []struct{ Code string }
				Certificate *struct {
					Fingerprint string `json:"sha256_fingerprint"`
				}
			} `json:"source_diagnosis"`
		}
	}
	tlsSource := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPSPort, "security": "tls"}
	code, body = s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": tlsSource, "sync": sync[:1]}, &tlsCheck)
	if code != 200 || tlsCheck.OK || tlsCheck.Checks[0].SourceDiagnosis == nil || tlsCheck.Checks[0].SourceDiagnosis.Kind != "tls" ||
		tlsCheck.Checks[0].SourceDiagnosis.Certificate == nil {
		t.Fatalf("TLS check: %d %s", code, body)
	}
	tlsSource["trust_fingerprint"] = tlsCheck.Checks[0].SourceDiagnosis.Certificate.Fingerprint
	if code, body := s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": tlsSource, "sync": sync[:1]}, &tlsCheck); code != 200 || !tlsCheck.OK {
		t.Fatalf("TLS check with the trusted certificate: %d %s", code, body)
	}

	// A bad line refuses the whole submission, naming the line; nothing is created.
	var apiErr struct {
		Error string
		Lines []struct {
			Line   int
			Reason string
		}
	}
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations",
		map[string]any{"source": source, "sync": sync, "new_mailboxes": lines("adam " + accts[3].srcPass)}, &apiErr)
	if code != 400 || len(apiErr.Lines) != 1 || apiErr.Lines[0].Line != 2 || !strings.Contains(apiErr.Lines[0].Reason, "no domain") {
		t.Fatalf("bad line: %d %s", code, body)
	}
	if mbs, _ := s.driver.List(ctx, "firma.test"); len(mbs) != 2 {
		t.Errorf("a refused submission created mailboxes: %v", mbs)
	}
	// An old login whose mailbox exists here, a weak new password, and a wrong hosting password are refused too.
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations",
		map[string]any{"source": source, "new_mailboxes": "x@jina.test pw\njana@old.test dlouhe-heslo-j\n"}, &apiErr)
	if code != 400 || len(apiErr.Lines) != 2 || !strings.Contains(body, "new-password") || !strings.Contains(body, "Sync Existing Mailboxes") {
		t.Fatalf("domain and existing lines: %d %s", code, body)
	}
	wrongHost := append([]map[string]string{}, sync...)
	wrongHost[0] = map[string]string{"mailbox": "jana@firma.test", "hosting_password": "nope", "source_user": accts[0].srcUser, "source_password": accts[0].srcPass}
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": wrongHost}, nil); code != 400 || !strings.Contains(body, "hosting_login") {
		t.Fatalf("wrong hosting password: %d %s", code, body)
	}

	// Fixed: accepted and run to completion.
	var m migrationOut
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations",
		map[string]any{"source": source, "sync": sync, "new_mailboxes": lines(accts[3].srcUser + "\t" + accts[3].srcPass)}, &m)
	if code != 201 || len(m.Tasks) != 5 {
		t.Fatalf("create: %d %s", code, body)
	}
	// The progress stream shows the copy advancing and ends with "done".
	events := s.events(firma, m.ID)
	if !strings.Contains(events, `"state": "copying"`) && !strings.Contains(events, `"state":"copying"`) ||
		!strings.HasSuffix(strings.TrimSpace(events), "event: done\ndata: {}") || strings.Count(events, "event: progress") < 2 {
		t.Errorf("event stream:\n%.2000s", events)
	}
	m = s.wait(firma, m.ID)
	if m.State != "done" {
		t.Fatalf("migration ended %s: %+v\n%s", m.State, m, s.logs.String())
	}
	byMailbox := map[string]taskOut{}
	for _, task := range m.Tasks {
		byMailbox[task.Destination] = task
	}
	for _, a := range accts {
		task := byMailbox[a.mailbox]
		var rep reportOut
		if code, body := s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", task.ID), nil, &rep); code != 200 ||
			rep.Totals.Copied != a.messages || rep.Status != "done" {
			t.Fatalf("%s report: %d %s", a.mailbox, code, body)
		}
		s.verify(a, rep)
	}
	code, body = s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report?format=csv", m.Tasks[0].ID), nil, nil)
	if code != 200 || !strings.HasPrefix(body, "source_folder,destination_folder,") || strings.Count(body, "\n") < 5 {
		t.Errorf("CSV report: %d\n%s", code, body)
	}

	// Restart: every task runs again and copies nothing.
	if code, body := s.call(firma, "POST", fmt.Sprintf("/migrations/%d/restart", m.ID), nil, nil); code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	m = s.wait(firma, m.ID)
	for _, task := range m.Tasks {
		var rep reportOut
		s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", task.ID), nil, &rep)
		if task.State != "done" || rep.Totals.Copied != 0 || rep.Totals.AlreadyPresent == 0 {
			t.Errorf("after restart %s: %s, copied %d", task.Destination, task.State, rep.Totals.Copied)
		}
	}

	// Tenant isolation: the other customer sees none of it, on every route.
	taskID := m.Tasks[0].ID
	for _, r := range []struct{ method, path string }{
		{"GET", "/domains/firma.test/mailboxes"},
		{"GET", "/domains/firma.test/dnscheck"},
		{"POST", "/domains/firma.test/check"},
		{"POST", "/domains/firma.test/migrations"},
		{"GET", "/domains/firma.test/migrations"},
		{"GET", fmt.Sprintf("/migrations/%d", m.ID)},
		{"POST", fmt.Sprintf("/migrations/%d/restart", m.ID)},
		{"POST", fmt.Sprintf("/migrations/%d/cancel", m.ID)},
		{"GET", fmt.Sprintf("/migrations/%d/events", m.ID)},
		{"GET", fmt.Sprintf("/tasks/%d", taskID)},
		{"POST", fmt.Sprintf("/tasks/%d/restart", taskID)},
		{"POST", fmt.Sprintf("/tasks/%d/cancel", taskID)},
		{"GET", fmt.Sprintf("/tasks/%d/report", taskID)},
	} {
		var body any
		if r.method == "POST" {
			body = map[string]any{"source": source, "sync": sync}
		}
		if code, resp := s.call(other, r.method, r.path, body, nil); code != 404 {
			t.Errorf("other customer %s %s: %d %s", r.method, r.path, code, resp)
		}
		if code, _ := s.call("", r.method, r.path, body, nil); code != 401 {
			t.Errorf("no token %s %s: %d", r.method, r.path, code)
		}
	}
	for _, r := range []struct{ method, path string }{{"GET", "/customers"}, {"POST", "/customers"}, {"POST", "/customers/1/domains"}, {"POST", "/customers/1/tokens"}} {
		if code, _ := s.call(firma, r.method, r.path, map[string]string{"name": "x"}, nil); code != 403 {
			t.Errorf("customer on operator route %s %s: %d", r.method, r.path, code)
		}
	}
	var doms struct{ Domains []struct{ Name string } }
	if s.call(other, "GET", "/domains", nil, &doms); len(doms.Domains) != 1 || doms.Domains[0].Name != "jina.test" {
		t.Errorf("other customer's domains: %+v", doms)
	}
	if s.call(s.opToken, "GET", "/domains", nil, &doms); len(doms.Domains) != 2 {
		t.Errorf("operator's domains: %+v", doms)
	}
	// The DNS check answers as JSON too.
	var dnsOut struct {
		Rows []struct{ Record, Name, Verdict, Advice string }
	}
	if code, body := s.call(firma, "GET", "/domains/firma.test/dnscheck", nil, &dnsOut); code != 200 || len(dnsOut.Rows) == 0 ||
		dnsOut.Rows[0].Record != "MX" || dnsOut.Rows[0].Verdict != "fail" || !strings.Contains(dnsOut.Rows[0].Advice, "mx.hosting.test") {
		t.Errorf("dnscheck: %d %s", code, body)
	}
	// The operator manages customers, domains and tokens over the API.
	var cust struct{ ID int64 }
	if code, body := s.call(s.opToken, "POST", "/customers", map[string]string{"name": "Třetí firma"}, &cust); code != 201 {
		t.Fatalf("create customer: %d %s", code, body)
	}
	if code, body := s.call(s.opToken, "POST", fmt.Sprintf("/customers/%d/domains", cust.ID),
		map[string]any{"name": "treti.test", "mailbox_limit": 5}, nil); code != 201 {
		t.Fatalf("create domain: %d %s", code, body)
	}
	if code, _ := s.call(s.opToken, "POST", fmt.Sprintf("/customers/%d/domains", cust.ID), map[string]any{"name": "firma.test"}, nil); code != 409 {
		t.Errorf("a domain of another customer was given again: %d", code)
	}
	var tok struct{ Token string }
	if code, body := s.call(s.opToken, "POST", fmt.Sprintf("/customers/%d/tokens", cust.ID), map[string]string{"name": "panel"}, &tok); code != 201 {
		t.Fatalf("create token: %d %s", code, body)
	}
	if s.call(tok.Token, "GET", "/domains", nil, &doms); len(doms.Domains) != 1 || doms.Domains[0].Name != "treti.test" {
		t.Errorf("new customer's domains: %+v", doms)
	}
	// The operator can see the customer's migration.
	if code, _ := s.call(s.opToken, "GET", fmt.Sprintf("/migrations/%d", m.ID), nil, nil); code != 200 {
		t.Errorf("operator: %d", code)
	}

	// No password in the logs or, in clear, in the database.
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	logs := s.logs.String()
	dbFiles, _ := filepath.Glob(filepath.Join(s.dir, "data", "mailmigrate.db*"))
	for _, sec := range s.secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("a password appears in the logs")
		}
		for _, f := range dbFiles {
			data, _ := os.ReadFile(f)
			if bytes.Contains(data, []byte(sec)) {
				t.Errorf("a password is stored in clear in %s", filepath.Base(f))
			}
		}
	}
}

// A server killed with SIGKILL mid-copy resumes when started again; the
// mailbox ends with every message exactly once.
func TestServeKilledMidCopy(t *testing.T) {
	if onPostgres {
		// A killed server's copies on a shared database are taken over
		// after jobs.rescue_after (the slice and 5 minutes here), by any
		// server: TestClusterSurvivesKills.
		t.Skip("on PostgreSQL, kills are TestClusterSurvivesKills' matter")
	}
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma", "firma.test", 0)
	a := account{srcUser: "big@old.test", srcPass: "big-heslo", mailbox: "big@firma.test", hostPW: "big-host"}
	a.messages = s.sourceAccount(a.srcUser, a.srcPass, 99, 600)
	if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	port := s.midCopySource()
	s.start()
	var m migrationOut
	submission := map[string]any{
		"source": map[string]any{"host": "127.0.0.1", "port": port, "security": "plain"},
		"sync":   []map[string]string{{"mailbox": a.mailbox, "hosting_password": a.hostPW, "source_user": a.srcUser, "source_password": a.srcPass}},
	}
	code, body := s.call(firma, "POST", "/domains/firma.test/migrations", submission, &m)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	dst := s.dst.LoginT(t, a.mailbox, a.hostPW)
	copied := s.waitHeld(dst)
	// A "final re-sync" started while the first copy runs is refused.
	var busy struct {
		Error       string
		TaskID      int64 `json:"task_id"`
		MigrationID int64 `json:"migration_id"`
	}
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", submission, &busy); code != 409 ||
		busy.Error != "mailbox_busy" || busy.TaskID != m.Tasks[0].ID || busy.MigrationID != m.ID {
		t.Errorf("re-sync while copying: %d %s", code, body)
	}
	s.kill()
	if copied == 0 {
		t.Fatalf("the copy did not start:\n%s\n%s", s.logs.String(), s.dst.LogTail(30))
	}
	if n := s.held(dst); n >= a.messages {
		t.Fatalf("the mailbox was complete (%d) before the kill", n)
	}
	var now migrationOut
	s.start()
	now = s.wait(firma, m.ID)
	if now.State != "done" {
		t.Fatalf("after restart: %+v\n%s", now, s.logs.String())
	}
	var rep reportOut
	s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", now.Tasks[0].ID), nil, &rep)
	if rep.Totals.Copied+rep.Totals.AlreadyPresent != a.messages {
		t.Errorf("report after resume: %+v, want %d in all", rep.Totals, a.messages)
	}
	s.verify(a, rep)

	// Once it has finished, the re-sync runs, and copies nothing twice.
	var again migrationOut
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", submission, &again); code != 201 {
		t.Fatalf("re-sync after the copy: %d %s", code, body)
	}
	again = s.wait(firma, again.ID)
	s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", again.Tasks[0].ID), nil, &rep)
	if again.State != "done" || rep.Totals.Copied != 0 {
		t.Errorf("re-sync: %s, copied %d", again.State, rep.Totals.Copied)
	}
}

// With a Dovecot master user no hosting password is needed; a mailbox that
// runs out of space pauses and, after its quota is raised, resumes with the
// rest; a cancelled copy stops; the domain's mailbox limit is enforced.
func TestServeMasterQuotaCancel(t *testing.T) {
	s := newService(t, "10m", true)
	ctx := context.Background()
	firma := s.customer("Firma", "firma.test", 3)
	small := account{srcUser: "small@old.test", srcPass: "small-heslo", mailbox: "small@firma.test", hostPW: "small-host"}
	small.messages = s.sourceAccount(small.srcUser, small.srcPass, 7, 40)
	big := account{srcUser: "big@old.test", srcPass: "big-heslo", mailbox: "big@firma.test", hostPW: "big-host"}
	big.messages = s.sourceAccount(big.srcUser, big.srcPass, 8, 600)
	if err := s.driver.Create(ctx, small.mailbox, small.hostPW, 300<<10); err != nil {
		t.Fatal(err)
	}
	if err := s.driver.Create(ctx, big.mailbox, big.hostPW, 0); err != nil {
		t.Fatal(err)
	}
	// The hosting's server is on this machine: reached without TLS.
	s.configure(fmt.Sprintf("hosting.imap = imap://127.0.0.1:%d\nhosting.allow_plaintext = true\n", s.dst.IMAPPort))
	s.start()
	source := map[string]any{"host": "127.0.0.1", "port": s.src.IMAPPort, "security": "plain"}

	// Two existing mailboxes and a limit of three: the second new line is one too many.
	var apiErr struct {
		Lines []struct {
			Line   int
			Reason string
		}
	}
	code, body := s.call(firma, "POST", "/domains/firma.test/migrations",
		map[string]any{"source": source, "new_mailboxes": "n1@firma.test n1-heslo-1234\nn2@firma.test n2-heslo-1234\n"}, &apiErr)
	if code != 400 || len(apiErr.Lines) != 1 || apiErr.Lines[0].Line != 2 || !strings.Contains(apiErr.Lines[0].Reason, "limit of 3") {
		t.Fatalf("mailbox limit: %d %s", code, body)
	}

	// No hosting password: the master user logs in.
	var m migrationOut
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source,
		"sync": []map[string]string{{"mailbox": small.mailbox, "source_user": small.srcUser, "source_password": small.srcPass}}}, &m)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	m = s.wait(firma, m.ID)
	var task struct {
		State   string
		Failure *struct{ Kind, Message string }
	}
	s.call(firma, "GET", fmt.Sprintf("/tasks/%d", m.Tasks[0].ID), nil, &task)
	if task.State != "paused_over_quota" || task.Failure == nil || !strings.Contains(task.Failure.Message, "Enlarge the mailbox quota") {
		t.Fatalf("over quota: %+v", task)
	}
	// The operator raises the quota (drops the rule), then the customer resumes.
	data, err := os.ReadFile(s.dst.PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.dst.PasswdFile, []byte(strings.Replace(string(data), "userdb_quota_rule=*:storage=300K", "", 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // Dovecot re-reads a passwd-file at most once a second
	if code, body := s.call(firma, "POST", fmt.Sprintf("/tasks/%d/resume", m.Tasks[0].ID), nil, nil); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	m = s.wait(firma, m.ID)
	var rep reportOut
	s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", m.Tasks[0].ID), nil, &rep)
	if m.State != "done" || rep.Totals.Copied+rep.Totals.AlreadyPresent != small.messages {
		t.Fatalf("after resume: %s, %+v", m.State, rep.Totals)
	}
	s.verify(small, rep)

	// A wrong old password is refused at the start with the ranked
	// causes; nothing is queued for it.
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source,
		"sync": []map[string]string{{"mailbox": small.mailbox, "source_user": small.srcUser, "source_password": "wrong"}}}, nil)
	if code != 400 || !strings.Contains(body, "source_login") || !strings.Contains(body, "old or mistyped") {
		t.Fatalf("wrong source password: %d %s", code, body)
	}

	// Cancel a copy in flight: it stops and stays cancelled.
	midCopy := map[string]any{"host": "127.0.0.1", "port": s.midCopySource(), "security": "plain"}
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": midCopy,
		"sync": []map[string]string{{"mailbox": big.mailbox, "source_user": big.srcUser, "source_password": big.srcPass}}}, &m)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	dst := s.dst.LoginT(t, big.mailbox, big.hostPW)
	if s.waitHeld(dst) == 0 {
		t.Fatalf("the copy did not start:\n%s", s.logs.String())
	}
	if code, body := s.call(firma, "POST", fmt.Sprintf("/tasks/%d/cancel", m.Tasks[0].ID), nil, nil); code != 200 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	m = s.wait(firma, m.ID)
	time.Sleep(500 * time.Millisecond)
	n1 := s.held(dst)
	time.Sleep(500 * time.Millisecond)
	n2 := s.held(dst)
	if m.State != "cancelled" || m.Tasks[0].State != "cancelled" || n1 != n2 || n2 >= big.messages {
		t.Errorf("after cancel: %s, %d then %d of %d messages", m.State, n1, n2, big.messages)
	}
	// Dovecot marks a login over TLS with "TLS"; the service's were plain
	// (the test's own logins are too).
	logins := 0
	for _, line := range strings.Split(s.dst.LogTail(2000), "\n") {
		if strings.Contains(line, "imap-login: Info: Login: user=<") {
			logins++
			if strings.Contains(line, "TLS") {
				t.Errorf("the service logged in to the hosting over TLS: %s", line)
			}
		}
	}
	if logins == 0 {
		t.Errorf("no login in the hosting's log:\n%s", s.dst.LogTail(30))
	}
}

// The hosting's IMAP server may be reached without TLS only on this
// machine, and only when the configuration says so.
func TestHostingPlaintext(t *testing.T) {
	passwd := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(passwd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		imap  string
		allow bool
		want  imapconn.Security
		err   string
	}{
		{"imaps://mail.hosting.example", false, imapconn.TLS, ""},
		{"imap://mail.hosting.example", false, imapconn.StartTLS, ""},
		{"imap://127.0.0.1:143", false, imapconn.StartTLS, ""},
		{"imap://127.0.0.1:143", true, imapconn.Plain, ""},
		{"imap://[::1]", true, imapconn.Plain, ""},
		{"imap://localhost", true, imapconn.Plain, ""},
		{"imaps://mail.hosting.example", true, imapconn.TLS, ""},
		{"imap://mail.hosting.example", true, 0, "mail.hosting.example is not this machine"},
		{"imap://10.0.0.5", true, 0, "10.0.0.5 is not this machine"},
	} {
		h, err := buildHosting(config.Hosting{IMAP: c.imap, AllowPlaintext: c.allow, PasswdFile: passwd,
			UID: "1000", GID: "1000", Home: "/var/vmail/%d/%n"})
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s allow=%v: error %v, want one saying %q", c.imap, c.allow, err, c.err)
			}
		case err != nil:
			t.Errorf("%s allow=%v: %v", c.imap, c.allow, err)
		case h.IMAP.Security != c.want:
			t.Errorf("%s allow=%v: security %v, want %v", c.imap, c.allow, h.IMAP.Security, c.want)
		}
	}
}
