package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailmigrate/internal/testbed"
)

// submitService is a running service whose customer "Firma s.r.o." owns
// firma.test, with a browser signed in on the domain page.
func submitService(t *testing.T) (*service, page) {
	t.Helper()
	bctx := browser(t)
	s := newService(t, "10m", false)
	s.customer("Firma s.r.o.", "firma.test", 10)
	s.panelUser("Firma s.r.o.", "jana@firma.test")
	return s, page{t: t, ctx: bctx, logs: s.logs.String}
}

// openDomain signs in (once) and opens firma.test's tool.
func (p page) openDomain(s *service) {
	p.t.Helper()
	p.do(chromedp.Navigate(s.url+"/domains/firma.test"), chromedp.WaitVisible(chromedp.ID("tool")))
}

// sourceFields are the old server's fields: the test's old Dovecot.
func sourceFields(s *service, lines string) map[string]string {
	return map[string]string{"#source_host": "127.0.0.1", "#source_port": fmt.Sprint(s.src.IMAPPort),
		"#source_security": "plain", "#new_mailboxes": lines}
}

// taskRows lists the migration page's tasks as "source -> mailbox: state".
func (p page) taskRows() []string {
	p.t.Helper()
	var rows []string
	js := `JSON.stringify(Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).map(r => r.dataset.state + " " + r.textContent.replace(/\s+/g, " ")))`
	json.Unmarshal([]byte(p.eval(js)), &rows)
	return rows
}

// mailboxNames lists the hosting's mailboxes of firma.test.
func mailboxNames(t *testing.T, s *service) []string {
	t.Helper()
	mbs, err := s.driver.List(context.Background(), "firma.test")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range mbs {
		names = append(names, mb.Address)
	}
	slices.Sort(names)
	return names
}

// waitFinished waits until every task of the migration page ended and
// returns their states.
func (p page) waitFinished() string {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(`#tasks[data-finished="1"]`)))
	return p.eval(`Array.from(document.querySelectorAll("#tasks tbody tr[id^=task-]")).map(r => r.dataset.state).join(",")`)
}

// New Mailbox lines name the OLD mailbox: an address of another domain and
// a renamed service's name@w123456 each create that name in firma.test
// and get its mail; two lines that would create one mailbox are refused
// with both line numbers, before anything is created.
func TestNewMailboxesFromOldLoginsInBrowser(t *testing.T) {
	s, p := submitService(t)
	zora := account{srcUser: "zora@old-domain.test", srcPass: "Zora-stare-heslo-71", mailbox: "zora@firma.test", hostPW: "Zora-stare-heslo-71"}
	mira := account{srcUser: "mira@w123456", srcPass: "Mira-stare-heslo-72", mailbox: "mira@firma.test", hostPW: "Mira-stare-heslo-72"}
	zora.messages = s.sourceAccount(zora.srcUser, zora.srcPass, 71, 10)
	mira.messages = s.sourceAccount(mira.srcUser, mira.srcPass, 72, 10)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)

	good := fmt.Sprintf("%s %s\n%s %s\n", zora.srcUser, zora.srcPass, mira.srcUser, mira.srcPass)
	p.setForm(sourceFields(s, good+"zora@jina.test Jina-zora-heslo-73\n"))
	p.post(`button[value=start]`, "#errors")
	if e := p.text("#errors"); !strings.Contains(e, "Line 3") || !strings.Contains(e, "already used on line 1") {
		t.Fatalf("errors:\n%s", e)
	}
	if names := mailboxNames(t, s); len(names) != 0 {
		t.Fatalf("mailboxes created from a refused list: %v", names)
	}
	p.shot("new-old-logins-duplicate")

	p.setForm(sourceFields(s, good))
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done,done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	rows := strings.Join(p.taskRows(), "\n")
	for _, a := range []account{zora, mira} {
		if !strings.Contains(rows, a.mailbox) {
			t.Errorf("no task for %s:\n%s", a.mailbox, rows)
		}
	}
	if names := mailboxNames(t, s); !slices.Equal(names, []string{mira.mailbox, zora.mailbox}) {
		t.Errorf("mailboxes on the hosting: %v", names)
	}
	p.shot("new-old-logins-done")
	s.verifyByName(zora)
	s.verifyByName(mira)
}

// A line whose old login fails is left out with its ranked causes and
// nothing is created for it, while the other line starts; the form keeps
// that login, and once corrected it starts alone. A weak old password is
// refused with the hint to add a new one, and a new password on the line
// is the created mailbox's.
func TestNewMailboxFailedLoginInBrowser(t *testing.T) {
	s, p := submitService(t)
	ivo := account{srcUser: "ivo@old-domain.test", srcPass: "Ivo-stare-heslo-81", mailbox: "ivo@firma.test", hostPW: "Ivo-stare-heslo-81"}
	lea := account{srcUser: "lea@old-domain.test", srcPass: "Lea-stare-heslo-82", mailbox: "lea@firma.test", hostPW: "Lea-stare-heslo-82"}
	kim := account{srcUser: "kim@old-domain.test", srcPass: "kim12", mailbox: "kim@firma.test", hostPW: "Silne-Nove-Heslo-84"}
	for i, a := range []*account{&ivo, &lea, &kim} {
		a.messages = s.sourceAccount(a.srcUser, a.srcPass, uint64(81+i), 10)
	}
	s.secrets = append(s.secrets, kim.hostPW)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)
	p.openDomain(s)

	p.setForm(sourceFields(s, fmt.Sprintf("%s %s\n%s %s\n", ivo.srcUser, ivo.srcPass, lea.srcUser, "Spatne-heslo-89")))
	p.post(`button[value=start]`, "#started")
	if st := p.text("#started"); !strings.Contains(st, ivo.mailbox) || strings.Contains(st, lea.mailbox) {
		t.Errorf("started:\n%s", st)
	}
	failed := `#checks li[data-row="line 2"]`
	if c := p.text(failed); !strings.Contains(c, lea.mailbox) && !strings.Contains(c, lea.srcUser) {
		t.Errorf("the failed line is not named:\n%s", c)
	}
	if n := p.eval(fmt.Sprintf(`String(document.querySelectorAll('%s .reasons li').length)`, failed)); n == "0" {
		t.Errorf("no causes for the failed login:\n%s", p.text("#checks"))
	}
	if first := p.eval(fmt.Sprintf(`(document.querySelector('%s .reasons li') || {}).textContent || ""`, failed)); !strings.Contains(first, "password") {
		t.Errorf("first cause of the failed login: %q", first)
	}
	if lines := p.eval(`document.getElementById("new_mailboxes").value`); strings.TrimSpace(lines) != lea.srcUser {
		t.Errorf("the form keeps %q, want only the failed line's login", lines)
	}
	// The started line's mailbox is created by its copy, which a worker
	// takes up within a poll of the job queue.
	names := mailboxNames(t, s)
	for deadline := time.Now().Add(10 * time.Second); len(names) == 0 && time.Now().Before(deadline); names = mailboxNames(t, s) {
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(names, []string{ivo.mailbox}) {
		t.Errorf("mailboxes on the hosting after one failed login: %v", names)
	}
	p.shot("new-failed-login")

	// The customer adds the right password to the kept login.
	p.eval(fmt.Sprintf(`document.getElementById("new_mailboxes").value += %q; ""`, lea.srcPass))
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done" {
		t.Fatalf("states of the corrected line: %s\n%s", states, s.logs.String())
	}
	if rows := p.taskRows(); len(rows) != 1 || !strings.Contains(rows[0], lea.mailbox) {
		t.Errorf("tasks of the corrected line: %v", rows)
	}
	p.shot("new-failed-login-corrected")

	// A weak old password: refused with how to give a new one.
	p.openDomain(s)
	p.setForm(sourceFields(s, fmt.Sprintf("%s %s\n", kim.srcUser, kim.srcPass)))
	p.post(`button[value=start]`, "#errors")
	if e := p.text("#errors"); !strings.Contains(e, "old-password new-password") {
		t.Errorf("weak password:\n%s", e)
	}
	if slices.Contains(mailboxNames(t, s), kim.mailbox) {
		t.Error("a mailbox was created with a weak password")
	}
	p.shot("new-weak-password")
	p.setForm(sourceFields(s, fmt.Sprintf("%s %s %s\n", kim.srcUser, kim.srcPass, kim.hostPW)))
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done" {
		t.Fatalf("states with a new password: %s\n%s", states, s.logs.String())
	}
	p.shot("new-new-password")
	// The created mailbox opens with the new password over IMAP.
	if c, err := s.dst.Login(kim.mailbox, kim.hostPW); err != nil {
		t.Errorf("login with the new password: %v", err)
	} else {
		c.Close()
	}
	for _, a := range []account{ivo, lea, kim} {
		s.verifyByName(a)
	}
}

// The list uploaded as a file: a text file and a CSV file check the same
// rows as the pasted lines, and the CSV file starts them; a bad line of a
// file is named by its number in the file; a file over the limit or not
// UTF-8 is refused with what to do.
func TestNewMailboxesUploadInBrowser(t *testing.T) {
	s, p := submitService(t)
	ota := account{srcUser: "ota@old-domain.test", srcPass: "Ota-stare-heslo-91", mailbox: "ota@firma.test", hostPW: "Ota-stare-heslo-91"}
	rut := account{srcUser: "rut@w123456", srcPass: "Rut-stare-heslo-92", mailbox: "rut@firma.test", hostPW: "Rut-nove-heslo-93"}
	ota.messages = s.sourceAccount(ota.srcUser, ota.srcPass, 91, 10)
	rut.messages = s.sourceAccount(rut.srcUser, rut.srcPass, 92, 10)
	s.secrets = append(s.secrets, rut.hostPW)
	s.start()
	p.signIn(s.url, "jana@firma.test", panelPassword)

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	text := fmt.Sprintf("%s %s\n%s %s %s\n", ota.srcUser, ota.srcPass, rut.srcUser, rut.srcPass, rut.hostPW)
	csv := fmt.Sprintf("source_user,source_password,dest_user,dest_password\r\n%s,%s,,\r\n%s,%s,,%s\r\n",
		ota.srcUser, ota.srcPass, rut.srcUser, rut.srcPass, rut.hostPW)
	txtFile, csvFile := write("list.txt", []byte(text)), write("list.csv", []byte(csv))

	// checked returns the check results' rows, mailbox and verdict.
	checked := func() []string {
		var rows []string
		json.Unmarshal([]byte(p.eval(`JSON.stringify(Array.from(document.querySelectorAll("#checks ul > li")).map(li =>
			li.querySelector("strong").textContent + (li.classList.contains("okrow") ? " ok" : " failed")))`)), &rows)
		return rows
	}
	// withFile opens a fresh domain page and chooses a file for the list.
	withFile := func(path, lines string) {
		p.openDomain(s)
		p.setForm(sourceFields(s, lines))
		p.do(chromedp.SetUploadFiles(chromedp.ID("new_mailboxes_file"), []string{path}))
	}

	p.openDomain(s)
	p.setForm(sourceFields(s, text))
	p.post(`.buttons button[value=check]`, "#checks")
	pasted := checked()
	if !slices.Equal(pasted, []string{ota.mailbox + " ok", rut.mailbox + " ok"}) {
		t.Fatalf("check of the pasted lines: %v\n%s", pasted, p.text("main"))
	}
	for _, f := range []string{txtFile, csvFile} {
		withFile(f, "")
		p.post(`.buttons button[value=check]`, "#checks")
		if got := checked(); !slices.Equal(got, pasted) {
			t.Errorf("check of %s: %v, pasted %v", filepath.Base(f), got, pasted)
		}
	}
	p.shot("upload-check")

	// A bad line is named by its number in the file, for both formats.
	withFile(write("bad.txt", []byte(text+"\n# a comment\nadam Adam-heslo-94\n")), "")
	p.post(`button[value=start]`, "#errors")
	if e := p.text("#errors"); !strings.Contains(e, "Line 5") || !strings.Contains(e, "no domain") {
		t.Errorf("bad line of a text file:\n%s", e)
	}
	p.shot("upload-bad-line")
	withFile(write("bad.csv", []byte(csv+"eva@old-domain.test\r\n")), "")
	p.post(`button[value=start]`, "#errors")
	if e := p.text("#errors"); !strings.Contains(e, "Line 4") {
		t.Errorf("bad line of a CSV file:\n%s", e)
	}
	// Too big, not text, and pasted lines with a file too: refused, with what to do.
	big := strings.Repeat(fmt.Sprintf("%s %s\n", ota.srcUser, ota.srcPass), (1<<20)/40+1000)
	for _, c := range []struct {
		name  string
		data  []byte
		lines string
		want  string
	}{
		{"big.txt", []byte(big), "", "larger than"},
		// Over the form's whole bound too: the body is cut short.
		{"huge.txt", []byte(strings.Repeat(big, 3)), "", "larger than"},
		{"list.xlsx", []byte("PK\x03\x04\xff\xfe\x00\x01 binary"), "", "not text"},
		{"both.txt", []byte(text), fmt.Sprintf("%s %s", ota.srcUser, ota.srcPass), "not both"},
	} {
		withFile(write(c.name, c.data), c.lines)
		p.post(`button[value=start]`, "#errors")
		if e := p.text("#errors"); !strings.Contains(e, c.want) {
			t.Errorf("%s: errors:\n%s", c.name, e)
		}
		p.shot("upload-refused-" + strings.TrimSuffix(c.name, filepath.Ext(c.name)))
	}
	if names := mailboxNames(t, s); len(names) != 0 {
		t.Fatalf("mailboxes created from refused files: %v", names)
	}

	// The CSV file starts the same mailboxes as the pasted lines.
	withFile(csvFile, "")
	p.post(`button[value=start]`, "#tasks")
	if states := p.waitFinished(); states != "done,done" {
		t.Fatalf("states: %s\n%s", states, s.logs.String())
	}
	rows := strings.Join(p.taskRows(), "\n")
	if !strings.Contains(rows, ota.mailbox) || !strings.Contains(rows, rut.mailbox) {
		t.Errorf("tasks from the CSV file:\n%s", rows)
	}
	p.shot("upload-started")
	s.verifyByName(ota)
	s.verifyByName(rut)
}

// A hosting Dovecot holds an old service's mailbox jana@w123456; the same
// server is the old one and the hosting. Moving it into jana@firma.test is
// allowed and copies its mail; a mailbox copied into itself is refused.
func TestServeMoveBetweenServices(t *testing.T) {
	s := newService(t, "10m", false)
	ctx := context.Background()
	firma := s.customer("Firma s.r.o.", "firma.test", 10)
	const oldLogin, oldPW = "jana@w123456", "Jana-stare-heslo-61"
	s.secrets = append(s.secrets, oldPW)
	// The hosting's own provisioning made that mailbox; the driver makes
	// only mailboxes of dotted domains, so its line is renamed in the
	// passwd-file the hosting Dovecot reads.
	if err := s.driver.Create(ctx, "jana@old-service.test", oldPW, 0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.dst.PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.dst.PasswdFile, []byte(strings.ReplaceAll(string(data), "old-service.test", "w123456")), 0o600); err != nil {
		t.Fatal(err)
	}
	corpus := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: 61, Messages: 10})
	if err := corpus.Load(ctx, s.dst.LoginT(t, oldLogin, oldPW)); err != nil {
		t.Fatal(err)
	}
	s.start()

	// The hosting's own IMAPS port: the service knows it is the hosting.
	source := map[string]any{"host": "127.0.0.1", "port": s.dst.IMAPSPort, "security": "tls"}
	lines := oldLogin + " " + oldPW + "\n"
	// Its certificate is the test's own CA's: trusted by the customer once.
	var check struct {
		Checks []struct {
			OK              bool
			SourceDiagnosis *struct {
				Certificate *struct {
					Fingerprint string `json:"sha256_fingerprint"`
				}
			} `json:"source_diagnosis"`
		}
	}
	code, body := s.call(firma, "POST", "/domains/firma.test/check", map[string]any{"source": source, "new_mailboxes": lines}, &check)
	if code != 200 || len(check.Checks) != 1 {
		t.Fatalf("check: %d %s", code, body)
	}
	if c := check.Checks[0]; !c.OK && c.SourceDiagnosis != nil && c.SourceDiagnosis.Certificate != nil {
		source["trust_fingerprint"] = c.SourceDiagnosis.Certificate.Fingerprint
	}

	var m migrationOut
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "new_mailboxes": lines}, &m)
	if code != 201 || len(m.Tasks) != 1 || m.Tasks[0].Destination != "jana@firma.test" {
		t.Fatalf("move between services: %d %s", code, body)
	}
	if m = s.wait(firma, m.ID); m.Tasks[0].State != "done" {
		t.Fatalf("move between services ended %+v\n%s", m, s.logs.String())
	}
	var rep reportOut
	s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", m.Tasks[0].ID), nil, &rep)
	folders := map[string]string{}
	for _, f := range rep.Folders {
		folders[f.Source] = f.Dest
	}
	if err := testbed.Verify(ctx, s.dst.LoginT(t, oldLogin, oldPW), s.dst.LoginT(t, "jana@firma.test", oldPW), folders); err != nil {
		t.Fatalf("jana@firma.test differs from %s:\n%v", oldLogin, err)
	}

	// A mailbox's own login at the same server is a copy into itself:
	// the existing mailbox synced from itself, or a line that would
	// create the mailbox it logs in to.
	before, _ := s.driver.List(ctx, "firma.test")
	self := []map[string]string{{"mailbox": "jana@firma.test", "hosting_password": oldPW,
		"source_user": "jana@firma.test", "source_password": oldPW}}
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": self}, nil)
	if code != 400 || !strings.Contains(body, "into itself") {
		t.Errorf("an existing mailbox copied into itself: %d %s", code, body)
	}
	code, body = s.call(firma, "POST", "/domains/firma.test/migrations",
		map[string]any{"source": source, "new_mailboxes": "ema@firma.test Ema-heslo-62\n"}, nil)
	if code != 400 || !strings.Contains(body, "into itself") {
		t.Errorf("a new mailbox copied into itself: %d %s", code, body)
	}
	if after, _ := s.driver.List(ctx, "firma.test"); len(after) != len(before) {
		t.Errorf("mailboxes changed by a refused move: %v -> %v", before, after)
	}
}
