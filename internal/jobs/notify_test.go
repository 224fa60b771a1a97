package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/notify"
	"mailmigrate/internal/notify/smtptest"
	"mailmigrate/internal/store"
)

const oldPassword = "stare-heslo-tajne"

// notifyBench is a started runner whose engine ends each mailbox as
// outcomes says, mailing through an in-process relay.
type notifyBench struct {
	*bench
	relay *smtptest.Server
	logs  *strings.Builder
	mu    *sync.Mutex
}

func newNotifyBench(t *testing.T, st *store.DB, outcomes map[string]*engine.Report) *notifyBench {
	relay := smtptest.Start(t, "", "")
	mailer, err := notify.New(notify.Config{Addr: relay.Addr, From: "Migrace <noreply@hosting.test>", Security: notify.None,
		BaseURL: "https://panel.hosting.test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nb := &notifyBench{relay: relay, logs: &strings.Builder{}, mu: &sync.Mutex{}}
	nb.bench = newBench(t, st, Config{Notify: mailer, NotifyRetry: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(lockedWriter{nb.mu, nb.logs}, nil))})
	nb.r.run = func(_ context.Context, a engine.Account, _ engine.Ledger, _ engine.Options) (*engine.Report, error) {
		if a.SourcePassword != oldPassword {
			t.Errorf("the run got password %q", a.SourcePassword)
		}
		rep := *outcomes[strings.Split(a.DestUser, "*")[0]]
		if rep.Failure != nil {
			return &rep, fmt.Errorf("%s", rep.Failure.Detail)
		}
		return &rep, nil
	}
	ctx := context.Background()
	if _, err := nb.st.CreateUser(ctx, nb.d.TenantID, "jana@firma.test", "x"); err != nil {
		t.Fatal(err)
	}
	return nb
}

func (nb *notifyBench) start() {
	ctx := context.Background()
	if err := nb.r.Start(ctx); err != nil {
		nb.t.Fatal(err)
	}
	r := nb.r
	nb.t.Cleanup(func() { r.Stop(context.Background()) })
}

// migrate submits one migration with a task per mailbox.
func (nb *notifyBench) migrate(mailboxes ...string) store.Migration {
	ctx := context.Background()
	var tasks []store.Task
	for _, mb := range mailboxes {
		tasks = append(tasks, store.Task{Kind: store.TaskSync, SourceUser: "old-" + mb, DestUser: mb})
	}
	m, _, err := nb.st.CreateMigration(ctx, store.Migration{DomainID: nb.d.ID, SourceHost: "imap.old.test", SourcePort: 993, SourceSecurity: "tls"},
		tasks, func(tx *sql.Tx, tasks []store.Task) error {
			for i := range tasks {
				tasks[i].SourceSecret = nb.box.Seal(oldPassword, SecretContext(tasks[i].ID, "source"))
			}
			return nb.r.QueueTx(ctx, tx, tasks)
		})
	if err != nil {
		nb.t.Fatal(err)
	}
	return m
}

func (nb *notifyBench) log() string {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	return nb.logs.String()
}

// One mail per event: a mailbox out of space and a refused login while the
// migration goes on, then its end; none carries a password or a failure's
// technical detail; a restart sends nothing again.
func TestNotificationMails(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		login := &engine.Failure{Kind: "auth", Side: engine.SideSource, Message: "The old server rejected the login.",
			Detail: "LOGIN rejected: [AUTHENTICATIONFAILED]"}
		hold := make(chan struct{})
		outcomes := map[string]*engine.Report{
			"full@firma.test":  {Status: engine.StatusOverQuota},
			"wrong@firma.test": {Status: engine.StatusFailed, Failure: login},
			"slow@firma.test":  {Status: engine.StatusDone},
		}
		nb := newNotifyBench(t, st, outcomes)
		run := nb.r.run
		nb.r.run = func(ctx context.Context, a engine.Account, l engine.Ledger, o engine.Options) (*engine.Report, error) {
			if a.DestUser == "slow@firma.test*master" {
				<-hold // the migration stays open until both events were mailed
			}
			return run(ctx, a, l, o)
		}
		nb.start()
		m := nb.migrate("full@firma.test", "wrong@firma.test", "slow@firma.test")
		mails := nb.relay.Wait(2, 20*time.Second)
		subjects := map[string]string{}
		for _, ml := range mails {
			subjects[ml.Subject] = ml.Body
			if strings.Join(ml.To, ",") != "jana@firma.test" {
				t.Errorf("mail to %v", ml.To)
			}
		}
		paused := subjects["full@firma.test is out of space: its migration from imap.old.test is paused"]
		refused := subjects["The old server imap.old.test refused the login for wrong@firma.test"]
		if !strings.Contains(paused, "press Resume") || !strings.Contains(refused, "rejected the login") ||
			!strings.Contains(refused, fmt.Sprintf("https://panel.hosting.test/migrations/%d", m.ID)) {
			t.Fatalf("mails:\n%v", subjects)
		}
		close(hold)
		mails = nb.relay.Wait(3, 20*time.Second)
		last := mails[2]
		if !strings.Contains(last.Subject, "has finished – some mailboxes need your action") || !strings.Contains(last.Body, "slow@firma.test (from old-slow@firma.test): copied") {
			t.Errorf("last mail %q:\n%s", last.Subject, last.Body)
		}
		for _, ml := range mails {
			if strings.Contains(ml.Data, oldPassword) || strings.Contains(ml.Data, "LOGIN rejected") {
				t.Errorf("a mail carries a secret or a technical detail:\n%s", ml.Data)
			}
		}
		// The relay has the mails a moment before the sender records them
		// as sent.
		ns, _ := nb.st.Notifications(context.Background(), 0, 10)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			sent := 0
			for _, n := range ns {
				if full, _ := nb.st.Notification(context.Background(), n.ID); !full.Sent.IsZero() {
					sent++
				}
			}
			if sent == len(ns) {
				break
			}
		}
		for _, n := range ns {
			full, _ := nb.st.Notification(context.Background(), n.ID)
			if full.Sent.IsZero() || full.Attempts != 1 {
				t.Errorf("notification %+v", full)
			}
		}
		if len(ns) != 3 {
			t.Errorf("%d notifications", len(ns))
		}

		// Restart: a new runner on the same database; and a mail job run again
		// (as River's rescuer might) sends nothing.
		if err := nb.r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		r2, err := Open(context.Background(), nb.st, nb.r.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r2.Stop(context.Background()) })
		w := &notifyWorker{r: r2}
		for _, n := range ns {
			if err := w.Work(context.Background(), &river.Job[NotifyArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: notifyAttempts},
				Args: NotifyArgs{NotificationID: n.ID}}); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(time.Second)
		if n := len(nb.relay.Mails()); n != 3 {
			t.Errorf("%d mails after the restart", n)
		}
		if l := nb.log(); strings.Contains(l, oldPassword) {
			t.Errorf("a password is in the log:\n%s", l)
		}
	})
}

// A relay that refuses is tried again with backoff until it takes the
// mail; the migration ends as it would without mail.
func TestNotificationRetried(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		nb := newNotifyBench(t, st, map[string]*engine.Report{"a@firma.test": {Status: engine.StatusDone}})
		nb.relay.Refuse(3)
		nb.start()
		m := nb.migrate("a@firma.test")
		mails := nb.relay.Wait(1, 30*time.Second)
		if !strings.Contains(mails[0].Subject, "has finished") || strings.Contains(mails[0].Subject, "action") {
			t.Errorf("subject %q", mails[0].Subject)
		}
		if tries := nb.relay.Tries(); tries != 4 {
			t.Errorf("%d tries", tries)
		}
		tasks, _ := nb.st.Tasks(context.Background(), m.ID)
		if tasks[0].State != store.StateDone {
			t.Errorf("task %s", tasks[0].State)
		}
		ns, _ := nb.st.Notifications(context.Background(), 0, 10)
		n, _ := nb.st.Notification(context.Background(), ns[0].ID)
		if n.Attempts != 4 || n.Sent.IsZero() || n.Error != "" {
			t.Errorf("notification after retries: %+v", n)
		}
		if l := nb.log(); !strings.Contains(l, "mail not sent") || !strings.Contains(l, "attempt=3 of=12") || !strings.Contains(l, "451") {
			t.Errorf("log:\n%s", l)
		}
	})
}

// lockedWriter serialises the log's writes into a builder the test reads.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
