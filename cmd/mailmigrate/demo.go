package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"mailmigrate/internal/config"
	"mailmigrate/internal/demo"
	"mailmigrate/internal/jobs"
	"mailmigrate/internal/secret"
	"mailmigrate/internal/store"
	"mailmigrate/internal/web"
)

// The demo's panel sign-in, printed for the newcomer.
const demoUser, demoPassword = "demo@firma.example", "demo-password"

func runDemo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	n := fs.Int("messages", 150, "about how many sample messages each old mailbox holds")
	listen := fs.String("listen", "127.0.0.1:8080", "where the panel listens (another free port is taken if this one is busy)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate demo [--listen ADDR] [--messages N]\n\n"+
			"Starts the Email Migration Tool with two IMAP servers inside this process (an old\n"+
			"provider with sample mail, and the hosting), runs a sample migration, and keeps\n"+
			"the panel open for you to sign in and try it. Nothing outside the process is\n"+
			"touched. Ctrl-C stops it.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	d, err := startDemo(ctx, *listen, *n, os.Stdout)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // Ctrl-C while the sample ran
		}
		return fail(err)
	}
	defer d.Close()
	env := d.env
	fmt.Printf(`
The Email Migration Tool runs at %s/
  Sign in as %s with the password %s.
  The finished sample migration: %s/migrations/%d
  A migration that needs you: %s/migrations/%d
    (%s is paused because its quota here is too small, and the
    re-sync of %s fails because the old provider no longer accepts
    the login %s, with the likely causes)
  Try your own: the old server is %s (no encryption), with the mailboxes
  %s / %s and %s / %s; the hosting's mailbox %s has the password %s.
  The JSON API answers at %s/api/v1/ with the token %s

Press Ctrl-C to stop.
`, d.url, demoUser, demoPassword, d.url, d.sample, d.url, d.trouble, demo.FullMailbox, demo.TypoMailbox, demo.TypoUser,
		env.Source.Addr(), demo.OldUser, demo.OldPassword, demo.NewMailbox, demo.NewPassword, demo.ExistingMailbox,
		demo.ExistingPassword, d.url, d.token)
	<-ctx.Done()
	fmt.Println("Stopped.")
	return exitOK
}

// demoRun is a running demo: its servers, the panel and the sample
// migrations.
type demoRun struct {
	env   *demo.Env
	url   string // the panel's
	token string // the customer's API token
	// sample is the finished sample migration; trouble the one with a
	// mailbox paused for lack of space and a failed login.
	sample, trouble int64
	closers         []func() // in the order of starting
}

// Close stops everything, the last started first.
func (d *demoRun) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// demoMigration is what the demo reads of a migration from the API.
type demoMigration struct {
	ID    int64
	State string
	Tasks []struct {
		ID           int64
		SourceUser   string `json:"source_user"`
		Destination  string
		State        string
		MessagesDone int64 `json:"messages_done"`
	}
}

// startDemo starts the servers and the panel, and runs the sample
// migrations through the API like any other, writing their outcome to out.
// A visitor then finds every state a migration can end in: done, paused
// for lack of space, and a failed login with its explanation.
func startDemo(ctx context.Context, listen string, n int, out io.Writer) (_ *demoRun, err error) {
	d := &demoRun{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.env, err = demo.Start(ctx, n); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { d.env.Close() })
	dir, err := os.MkdirTemp("", "mailmigrate-demo-*")
	if err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	d.closers = append(d.closers, func() { os.RemoveAll(dir) })
	st, err := store.Open(filepath.Join(dir, "mailmigrate.db"))
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { st.Close() })
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	box, _ := secret.New(key)

	cfg := config.Default()
	cfg.Sources.AllowPlaintext, cfg.Sources.AllowPrivate = true, true
	// The demo's own lines say what happens; the service's stay quiet.
	handler, runner, err := buildService(ctx, st, box, jobs.Hosting{IMAP: d.env.Hosting, Driver: d.env.Driver}, cfg,
		slog.New(slog.DiscardHandler), roleAll)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s is busy; taking another port\n", listen)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("demo panel: %w", err)
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	d.closers = append(d.closers, func() { srv.Close() })
	if err := runner.Start(ctx); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { runner.Stop(context.Background()) })
	d.url = "http://" + ln.Addr().String()

	// A customer with one domain, a panel sign-in and an API token.
	cust, err := st.CreateTenant(ctx, "Firma s.r.o.", store.KindCustomer)
	if err != nil {
		return nil, err
	}
	if _, err := st.CreateDomain(ctx, store.Domain{TenantID: cust.ID, Name: demo.Domain, MailboxLimit: 20}); err != nil {
		return nil, err
	}
	if _, err := st.CreateUser(ctx, cust.ID, demoUser, web.HashPassword(demoPassword)); err != nil {
		return nil, err
	}
	d.token = web.NewToken()
	if err := st.CreateToken(ctx, cust.ID, "demo", web.HashToken(d.token)); err != nil {
		return nil, err
	}

	fmt.Fprintf(out, "Migrating %d sample messages from the old provider into %s ...\n", d.env.Messages, demo.Domain)
	source := map[string]any{"host": d.env.Source.Host, "port": d.env.Source.Port, "security": "plain"}
	syncRow := func(mailbox, password, user, userPassword string) map[string]string {
		return map[string]string{"mailbox": mailbox, "hosting_password": password, "source_user": user, "source_password": userPassword}
	}
	// One existing mailbox synced, one created from a pasted line: done.
	sample, err := d.migrate(ctx, map[string]any{"source": source,
		"sync":          []map[string]string{syncRow(demo.ExistingMailbox, demo.ExistingPassword, demo.OldUser, demo.OldPassword)},
		"new_mailboxes": demo.NewMailbox + " " + demo.NewPassword + "\n"})
	if err != nil {
		return nil, err
	}
	// A mailbox too small for its mail, and one whose old password is
	// changed at the old provider after the first copy: its re-sync fails
	// at the login, with the likely causes.
	trouble, err := d.migrate(ctx, map[string]any{"source": source, "sync": []map[string]string{
		syncRow(demo.FullMailbox, demo.FullPassword, demo.FullUser, demo.FullUserPassword),
		syncRow(demo.TypoMailbox, demo.TypoPassword, demo.TypoUser, demo.TypoUserPassword)}})
	if err != nil {
		return nil, err
	}
	d.env.RejectLogins(demo.TypoUser)
	for _, t := range trouble.Tasks {
		if t.Destination != demo.TypoMailbox {
			continue
		}
		var res map[string]any
		if err := apiCall(ctx, fmt.Sprintf("%s/api/v1/tasks/%d/restart", d.url, t.ID), d.token, "POST", nil, &res); err != nil {
			return nil, err
		}
	}
	if trouble, err = d.wait(ctx, trouble); err != nil {
		return nil, err
	}
	d.sample, d.trouble = sample.ID, trouble.ID
	for _, m := range []demoMigration{sample, trouble} {
		for _, t := range m.Tasks {
			fmt.Fprintf(out, "  %s -> %s: %s, %d messages\n", t.SourceUser, t.Destination, t.State, t.MessagesDone)
		}
	}
	return d, nil
}

// migrate submits a migration through the API and waits until it ends.
func (d *demoRun) migrate(ctx context.Context, in map[string]any) (demoMigration, error) {
	body, _ := json.Marshal(in)
	var m demoMigration
	if err := apiCall(ctx, d.url+"/api/v1/domains/"+demo.Domain+"/migrations", d.token, "POST", body, &m); err != nil {
		return m, err
	}
	return d.wait(ctx, m)
}

// wait polls a migration until none of its mailboxes is queued or copying.
func (d *demoRun) wait(ctx context.Context, m demoMigration) (demoMigration, error) {
	m.State = ""
	for m.State == "" || m.State == store.StateRunning || m.State == store.StateQueued {
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := apiCall(ctx, fmt.Sprintf("%s/api/v1/migrations/%d", d.url, m.ID), d.token, "GET", nil, &m); err != nil {
			return m, err
		}
	}
	return m, nil
}

// apiCall makes one JSON API request.
func apiCall(ctx context.Context, url, token, method string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("demo: %s %s: %d %s", method, url, resp.StatusCode, e.Message)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
