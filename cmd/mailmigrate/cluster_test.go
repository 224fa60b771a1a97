package main

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"mailmigrate/internal/testbed"
)

// sourceProxy stands between the service and the old server: it counts
// the connections open at once (what the old provider would see) and
// passes the server's answers on at a bounded rate, so that copies last
// long enough to be killed midway on any machine.
type sourceProxy struct {
	ln   net.Listener
	rate int // bytes per second and connection, from the server
	mu   sync.Mutex
	open int
	most int
}

func startSourceProxy(t *testing.T, target string, rate int) *sourceProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &sourceProxy{ln: ln, rate: rate}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	return p
}

func (p *sourceProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// peak is the most connections open at once since the last reset.
func (p *sourceProxy) peak(reset bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	most := p.most
	if reset {
		p.most = p.open
	}
	return most
}

func (p *sourceProxy) serve(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	p.mu.Lock()
	p.open++
	p.most = max(p.most, p.open)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(s, c)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
				time.Sleep(time.Duration(n) * time.Second / time.Duration(p.rate))
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	// Either side's end ends both: a killed client's connection is gone
	// for the server at once.
	<-done
}

// process is one `mailmigrate serve` of a cluster.
type process struct {
	name string
	args []string
	url  string // where its /healthz answers
	cmd  *exec.Cmd
}

// startProcess runs serve with args and waits until its /healthz answers.
func (s *service) startProcess(p *process, env []string) {
	s.t.Helper()
	p.cmd = exec.Command(binary, append([]string{"serve", "--config", s.conf}, p.args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	w := &prefixWriter{prefix: p.name + ": ", out: s.logs}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd := p.cmd
	s.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
	}
	s.t.Fatalf("%s did not come up:\n%s", p.name, s.logs.String())
}

// prefixWriter marks each write with the process it came from.
type prefixWriter struct {
	prefix string
	out    io.Writer
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	var sb strings.Builder
	for _, l := range lines {
		if l != "" {
			sb.WriteString(w.prefix + l)
		}
	}
	w.out.Write([]byte(sb.String()))
	return len(b), nil
}

// jobsOf lists the tasks that are not done with their River jobs, and
// River's leader: what a stalled cluster test needs to be understood.
func jobsOf(t *testing.T, dbURL string) string {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.Query(`SELECT t.id, t.state, j.id, j.state, j.attempt, j.max_attempts, j.scheduled_at, j.attempted_at,
		COALESCE(array_length(j.errors, 1), 0), j.metadata FROM task t LEFT JOIN river_job j ON j.id = t.job_id WHERE t.state <> 'done'`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var tid, jid sql.NullInt64
		var tstate, jstate, meta sql.NullString
		var attempt, maxAttempts, errs sql.NullInt64
		var scheduled, attempted sql.NullTime
		if err := rows.Scan(&tid, &tstate, &jid, &jstate, &attempt, &maxAttempts, &scheduled, &attempted, &errs, &meta); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "task %d %s: job %d %s attempt %d/%d scheduled %s attempted %s errors %d %s\n", tid.Int64, tstate.String,
			jid.Int64, jstate.String, attempt.Int64, maxAttempts.Int64, scheduled.Time.Format(time.TimeOnly),
			attempted.Time.Format(time.TimeOnly), errs.Int64, meta.String)
	}
	var leader string
	var expires time.Time
	db.QueryRow(`SELECT leader_id, expires_at FROM river_leader`).Scan(&leader, &expires)
	fmt.Fprintf(&b, "leader %s until %s, now %s\n", leader, expires.Format(time.TimeOnly), time.Now().Format(time.TimeOnly))
	return b.String()
}

// privatePostgres is a PostgreSQL cluster of the test's own, which it may
// restart, with a new database in it.
func privatePostgres(t *testing.T) (*testbed.Postgres, string) {
	pg, err := testbed.StartPostgres()
	if errors.Is(err, testbed.ErrPostgresNotFound) && os.Getenv("MAILMIGRATE_REQUIRE_POSTGRES") != "1" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	_, url, err := pg.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pg, url
}

// A hosting's cluster: a web server and three workers on one PostgreSQL
// database copy 20 mailboxes from one old server while workers are killed
// (SIGKILL) and started again five times and PostgreSQL restarts once.
// Every mailbox ends done with every message exactly once, the old server
// never sees more copies at once than sources.host_limit allows, and the
// web server shows the workers' progress.
func TestClusterSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of copying")
	}
	pg, dbURL := privatePostgres(t)
	const hostLimit, mailboxes = 3, 20
	s := newServiceWith(t, "10s", false, fmt.Sprintf(`database = %s
sources.host_limit = %d
jobs.workers = 4
jobs.rescue_after = 25s
jobs.lease = 6s
`, dbURL, hostLimit))
	ctx := context.Background()
	key := make([]byte, 32)
	crand.Read(key)
	env := []string{"MAILMIGRATE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}
	firma := s.customer("Firma", "firma.test", 0)

	// The old server's 20 mailboxes, small messages, loaded 4 at a time.
	accts := make([]account, mailboxes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range accts {
		a := account{srcUser: fmt.Sprintf("user%02d@old.test", i), srcPass: fmt.Sprintf("heslo-%02d", i),
			mailbox: fmt.Sprintf("user%02d@firma.test", i), hostPW: fmt.Sprintf("host-%02d", i)}
		if err := s.src.AddUser(a.srcUser, a.srcPass, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.driver.Create(ctx, a.mailbox, a.hostPW, 0); err != nil {
			t.Fatal(err)
		}
		s.secrets = append(s.secrets, a.srcPass, a.hostPW)
		c := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: uint64(100 + i), Messages: 60, AttachmentMax: 8 << 10})
		a.messages = len(c.Messages)
		accts[i] = a
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.Load(ctx, s.src.LoginT(t, a.srcUser, a.srcPass)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	proxy := startSourceProxy(t, fmt.Sprintf("127.0.0.1:%d", s.src.IMAPPort), 400<<10)

	web := &process{name: "web", args: []string{"--role", "web"}, url: s.url}
	s.startProcess(web, env)
	workers := make([]*process, 3)
	for i := range workers {
		port := freePort(t)
		workers[i] = &process{name: fmt.Sprintf("worker%d", i+1), url: fmt.Sprintf("http://127.0.0.1:%d", port),
			args: []string{"--role", "worker", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}}
		s.startProcess(workers[i], env)
	}
	// A worker answers for its health, not for customers.
	if resp, err := http.Get(workers[0].url + "/api/v1/domains"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a worker served the API: %v %v", resp.StatusCode, err)
	}

	var lines []map[string]string
	for _, a := range accts {
		lines = append(lines, map[string]string{"mailbox": a.mailbox, "hosting_password": a.hostPW, "source_user": a.srcUser, "source_password": a.srcPass})
	}
	source := map[string]any{"host": "127.0.0.1", "port": proxy.port(), "security": "plain"}
	var m migrationOut
	if code, body := s.call(firma, "POST", "/domains/firma.test/migrations", map[string]any{"source": source, "sync": lines}, &m); code != 201 {
		t.Fatalf("start: %d %s", code, body)
	}
	// The submission's own login checks are not copies.
	proxy.peak(true)

	progress := func() (done, copied int) {
		var now migrationOut
		s.call(firma, "GET", fmt.Sprintf("/migrations/%d", m.ID), nil, &now)
		for _, task := range now.Tasks {
			copied += int(task.MessagesDone)
			if task.State == "done" {
				done++
			}
		}
		return done, copied
	}
	for i := range 5 {
		time.Sleep(4 * time.Second)
		done, copied := progress()
		if done == mailboxes {
			t.Fatalf("all mailboxes were copied before kill %d; the test needs slower copies", i+1)
		}
		if i == 0 && copied == 0 {
			_, body := s.call(firma, "GET", fmt.Sprintf("/migrations/%d", m.ID), nil, nil)
			t.Fatalf("the web server shows no progress after 4 s: %s\n%s", body, s.logs.String())
		}
		w := workers[rand.IntN(len(workers))]
		t.Logf("kill %d: %s (%d of %d mailboxes done, %d messages copied)", i+1, w.name, done, mailboxes, copied)
		w.cmd.Process.Signal(syscall.SIGKILL)
		w.cmd.Wait()
		if i == 2 {
			t.Log("restarting PostgreSQL")
			if err := pg.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(500 * time.Millisecond)
		s.startProcess(w, env)
	}

	// The old server's count is checked however the copy ends.
	defer func() {
		if most := proxy.peak(false); most > hostLimit {
			t.Errorf("the old server had %d connections at once, the limit is %d", most, hostLimit)
		} else {
			t.Logf("at most %d connections at once to the old server (limit %d)", most, hostLimit)
		}
	}()
	var end migrationOut
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		s.call(firma, "GET", fmt.Sprintf("/migrations/%d", m.ID), nil, &end)
		if end.State != "copying" && len(end.Tasks) == mailboxes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the migration did not finish: %+v\njobs:\n%s\n%s", end, jobsOf(t, dbURL), s.logs.String())
		}
	}
	for i, task := range end.Tasks {
		if task.State != "done" {
			t.Errorf("%s: %s", task.Destination, task.State)
			continue
		}
		var rep reportOut
		s.call(firma, "GET", fmt.Sprintf("/tasks/%d/report", task.ID), nil, &rep)
		a := accts[i]
		if a.mailbox != task.Destination {
			t.Fatalf("task %d is %s, want %s", i, task.Destination, a.mailbox)
		}
		s.verify(a, rep)
	}
	for _, p := range append([]*process{web}, workers...) {
		if resp, err := http.Get(p.url + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s not ready after the restart of PostgreSQL: %v", p.name, err)
		}
	}
	logs := s.logs.String()
	for _, sec := range s.secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("a password is in the servers' logs")
		}
	}
	t.Logf("%d log lines of the servers, none with any of the %d passwords", strings.Count(logs, "\n"), len(s.secrets))
}
