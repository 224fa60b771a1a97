package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log"
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
		return exitUsage
	}
	env, err := demo.Start(ctx, *n)
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	dir, err := os.MkdirTemp("", "mailmigrate-demo-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "mailmigrate.db"))
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	box, _ := secret.New(key)

	cfg := config.Default()
	cfg.Sources.AllowPlaintext, cfg.Sources.AllowPrivate = true, true
	quiet := log.New(os.Stderr, "", 0)
	handler, runner, err := buildService(ctx, st, box, jobs.Hosting{IMAP: env.Hosting, Driver: env.Driver}, cfg,
		func(string, ...any) {})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		quiet.Printf("%s is busy; taking another port", *listen)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fail(err)
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if err := runner.Start(ctx); err != nil {
		return fail(err)
	}
	defer runner.Stop(context.Background())
	url := "http://" + ln.Addr().String()

	// A customer with one domain, a panel sign-in and an API token.
	cust, err := st.CreateTenant(ctx, "Firma s.r.o.", store.KindCustomer)
	if err != nil {
		return fail(err)
	}
	if _, err := st.CreateDomain(ctx, store.Domain{TenantID: cust.ID, Name: demo.Domain, MailboxLimit: 20}); err != nil {
		return fail(err)
	}
	if _, err := st.CreateUser(ctx, cust.ID, demoUser, web.HashPassword(demoPassword)); err != nil {
		return fail(err)
	}
	token := web.NewToken()
	if err := st.CreateToken(ctx, cust.ID, "demo", web.HashToken(token)); err != nil {
		return fail(err)
	}

	// The sample migration, submitted through the API like any other:
	// one existing mailbox synced, one created from a pasted line.
	fmt.Printf("Migrating %d sample messages from the old provider into %s ...\n", env.Messages, demo.Domain)
	body, _ := json.Marshal(map[string]any{
		"source": map[string]any{"host": env.Source.Host, "port": env.Source.Port, "security": "plain"},
		"sync": []map[string]string{{"mailbox": demo.ExistingMailbox, "hosting_password": demo.ExistingPassword,
			"source_user": demo.OldUser, "source_password": demo.OldPassword}},
		"new_mailboxes": demo.NewMailbox + " " + demo.NewPassword + "\n",
	})
	var m struct {
		ID    int64
		State string
		Tasks []struct {
			SourceUser   string `json:"source_user"`
			Destination  string
			State        string
			MessagesDone int64 `json:"messages_done"`
		}
	}
	if err := apiCall(ctx, url+"/api/v1/domains/"+demo.Domain+"/migrations", token, "POST", body, &m); err != nil {
		return fail(err)
	}
	for m.State == "" || m.State == store.StateRunning {
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(200 * time.Millisecond):
		}
		if err := apiCall(ctx, fmt.Sprintf("%s/api/v1/migrations/%d", url, m.ID), token, "GET", nil, &m); err != nil {
			return fail(err)
		}
	}
	for _, t := range m.Tasks {
		fmt.Printf("  %s -> %s: %s, %d messages\n", t.SourceUser, t.Destination, t.State, t.MessagesDone)
	}
	fmt.Printf(`
The Email Migration Tool runs at %s/
  Sign in as %s with the password %s.
  The finished sample migration: %s/migrations/%d
  Try your own: the old server is %s (no encryption), with the mailboxes
  %s / %s and %s / %s; the hosting's mailbox %s has the password %s.
  The JSON API answers at %s/api/v1/ with the token %s

Press Ctrl-C to stop.
`, url, demoUser, demoPassword, url, m.ID, env.Source.Addr(), demo.OldUser, demo.OldPassword,
		demo.NewMailbox, demo.NewPassword, demo.ExistingMailbox, demo.ExistingPassword, url, token)
	<-ctx.Done()
	fmt.Println("Stopped.")
	return exitOK
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
