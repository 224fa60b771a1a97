package notify

import (
	"context"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/notify/smtptest"
	"mailmigrate/internal/store"
)

var missingText = regexp.MustCompile(`\[[a-z_]+\.[a-z_.]+\]`)

func event(kind string) Event {
	return Event{ID: 7, MigrationID: 12, SourceUser: "jana@old.cz",
		Summary: Summary{Kind: kind, Domain: "firma.cz", SourceHost: "imap.old.cz", Mailbox: "jana@firma.cz"},
		Mailboxes: []Mailbox{
			{Address: "jana@firma.cz", SourceUser: "jana@old.cz", State: store.StatePaused},
			{Address: "petr@firma.cz", SourceUser: "petr@old.cz", State: store.StateFailed,
				Failure: petrFailed()},
			{Address: "eva@firma.cz", SourceUser: "eva@old.cz", State: store.StateDone},
		}}
}

// petrFailed is a refused old login as the engine explains it (its detail
// must stay out of mails), with a likely cause.
func petrFailed() *engine.Failure {
	f := engine.Explain(&engine.SideError{Side: engine.SideSource, User: "petr@old.cz",
		Err: &imapconn.Error{Kind: imapconn.ErrAuth, Op: "login", Text: "LOGIN failed: tajne-detaily"}})
	f.Reasons = []string{"The password is old or mistyped."}
	return f
}

// Each kind's mail names the migration, the mailboxes, what happened and
// what to do, and links to the migration's page; the technical detail of
// a failure stays out.
func TestCompose(t *testing.T) {
	m, err := New(Config{Addr: "relay.test:25", From: "Hosting <noreply@hosting.test>", BaseURL: "https://panel.hosting.test/"})
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string][]string{
		store.NotifyFinished: {"Your migration from imap.old.cz to firma.cz has finished – some mailboxes need your action",
			"jana@firma.cz (from jana@old.cz): paused: out of space", "Enlarge the mailbox's quota", "petr@firma.cz (from petr@old.cz): stopped with an error",
			"rejected the login", "The password is old or mistyped.", "eva@firma.cz (from eva@old.cz): copied"},
		store.NotifyPaused:             {"jana@firma.cz is out of space: its migration from imap.old.cz is paused", "press Resume"},
		store.NotifyLoginFailed:        {"The old server imap.old.cz refused the login for jana@firma.cz", "refused the login jana@old.cz", "press Restart"},
		store.NotifyHostingLoginFailed: {"The mailbox jana@firma.cz refused the migration's login", "current password", "press Restart"},
		store.NotifySignInAgain:        {"The copy into jana@firma.cz from imap.old.cz stopped: sign in", "sign-in of jana@old.cz", "sign in with the provider again"},
	} {
		msg := m.Compose(event(kind), en)
		all := msg.Subject + "\n" + msg.Body
		for _, w := range append(want, "https://panel.hosting.test/migrations/12", "for firma.cz") {
			if !strings.Contains(all, w) {
				t.Errorf("%s: mail lacks %q:\n%s", kind, w, all)
			}
		}
		if strings.Contains(all, "tajne") || missingText.MatchString(all) {
			t.Errorf("%s: mail has a failure's detail or a missing text:\n%s", kind, all)
		}
		if msg.ID != "<notification-7.migration-12.en@panel.hosting.test>" {
			t.Errorf("Message-ID %s", msg.ID)
		}
	}
	done := event(store.NotifyFinished)
	done.Mailboxes = done.Mailboxes[2:]
	if s := m.Compose(done, en).Subject; s != "Your migration from imap.old.cz to firma.cz has finished" {
		t.Errorf("subject of a migration that needs nothing: %q", s)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Addr: "relay.test", From: "a@b.test", BaseURL: "https://p.test"},
		{Addr: "relay.test:25", From: "nobody", BaseURL: "https://p.test"},
		{Addr: "relay.test:25", From: "a@b.test", BaseURL: "panel.test"},
		{Addr: "relay.test:25", From: "a@b.test", BaseURL: "https://p.test", Security: "ssl"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v was taken", c)
		}
	}
}

// A mail goes through STARTTLS and AUTH PLAIN, in UTF-8, marked as
// automatic; the relay's password is not in it.
func TestSendStartTLSAuth(t *testing.T) {
	relay := smtptest.Start(t, "relay-user", "relay-heslo-123")
	m, err := New(Config{Addr: relay.Addr, From: "Migrace <noreply@hosting.test>", User: "relay-user", Password: "relay-heslo-123",
		RootCAs: relay.CAs, BaseURL: "https://panel.hosting.test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := event(store.NotifyPaused)
	e.Mailbox = "jůlie@firma.cz"
	msg := m.Compose(e, en)
	if err := m.Send(context.Background(), []string{"jana@firma.cz", "petr@firma.cz"}, msg); err != nil {
		t.Fatal(err)
	}
	got := relay.Wait(1, 5*time.Second)[0]
	if got.From != "noreply@hosting.test" || strings.Join(got.To, ",") != "jana@firma.cz,petr@firma.cz" {
		t.Errorf("envelope %s -> %v", got.From, got.To)
	}
	if got.Subject != msg.Subject || !strings.Contains(got.Subject, "jůlie@firma.cz") || got.Body != strings.ReplaceAll(msg.Body, "\r\n", "\n") {
		t.Errorf("mail arrived as %q\n%s", got.Subject, got.Body)
	}
	for _, h := range []string{"Auto-Submitted: auto-generated", "Content-Type: text/plain; charset=utf-8", "Message-ID: " + msg.ID} {
		if !strings.Contains(got.Data, h) {
			t.Errorf("header %q missing:\n%s", h, got.Data)
		}
	}
	if strings.Contains(got.Data, "relay-heslo") {
		t.Error("the relay's password is in the mail")
	}
}

// Implicit TLS (port 465) carries the login and the mail; a relay whose
// certificate is not trusted gets neither.
func TestSendImplicitTLS(t *testing.T) {
	relay := smtptest.StartTLS(t, "relay-user", "relay-heslo-465")
	cfg := Config{Addr: relay.Addr, From: "noreply@hosting.test", Security: TLS, User: "relay-user", Password: "relay-heslo-465",
		RootCAs: relay.CAs, BaseURL: "https://panel.hosting.test", Timeout: 10 * time.Second}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	msg := m.Compose(event(store.NotifyFinished), en)
	if err := m.Send(context.Background(), []string{"jana@firma.cz"}, msg); err != nil {
		t.Fatal(err)
	}
	if got := relay.Wait(1, 5*time.Second)[0]; got.Subject != msg.Subject {
		t.Errorf("mail arrived as %q", got.Subject)
	}
	cfg.RootCAs = nil
	untrusting, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = untrusting.Send(context.Background(), []string{"jana@firma.cz"}, msg)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted relay: %v", err)
	}
	if n := relay.Tries(); n != 1 {
		t.Errorf("the relay was offered %d mails, want 1", n)
	}
}

// A relay that refuses is an error that names the relay; STARTTLS is
// required unless security is none.
func TestSendErrors(t *testing.T) {
	relay := smtptest.Start(t, "", "")
	relay.Refuse(1)
	m, _ := New(Config{Addr: relay.Addr, From: "noreply@hosting.test", Security: None, BaseURL: "https://p.test"})
	msg := m.Compose(event(store.NotifyFinished), en)
	err := m.Send(context.Background(), []string{"jana@firma.cz"}, msg)
	if err == nil || !strings.Contains(err.Error(), relay.Addr) {
		t.Fatalf("refused mail: %v", err)
	}
	m, _ = New(Config{Addr: relay.Addr, From: "noreply@hosting.test", BaseURL: "https://p.test"})
	if err := m.Send(context.Background(), []string{"jana@firma.cz"}, msg); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("relay without STARTTLS: %v", err)
	}
	m, _ = New(Config{Addr: relay.Addr, From: "noreply@hosting.test", Security: None, BaseURL: "https://p.test"})
	if err := m.Send(context.Background(), []string{"jana@firma.cz"}, msg); err != nil {
		t.Errorf("second attempt: %v", err)
	}
	if n := len(relay.Mails()); n != 1 {
		t.Errorf("%d mails taken", n)
	}
}

var en = i18n.New(i18n.English)

// The same event reads in Czech to a Czech reader, with its own
// Message-ID, and a stored failure's sentence in Czech too.
func TestComposeCzech(t *testing.T) {
	m, err := New(Config{Addr: "relay.test:25", From: "Hosting <noreply@hosting.test>", BaseURL: "https://panel.hosting.test/"})
	if err != nil {
		t.Fatal(err)
	}
	cs := i18n.New(i18n.Czech)
	for _, kind := range []string{store.NotifyFinished, store.NotifyPaused, store.NotifyLoginFailed, store.NotifyHostingLoginFailed, store.NotifySignInAgain} {
		msg := m.Compose(event(kind), cs)
		all := msg.Subject + "\n" + msg.Body
		if !strings.Contains(all, "Dobrý den") || missingText.MatchString(all) || msg.ID != "<notification-7.migration-12.cs@panel.hosting.test>" {
			t.Errorf("%s in Czech (%s):\n%s", kind, msg.ID, all)
		}
	}
	if body := m.Compose(event(store.NotifyFinished), cs).Body; !strings.Contains(body, "odmítl přihlašovací jméno") {
		t.Errorf("the failure is not in Czech:\n%s", body)
	}
}
