package jobs

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// submitSignedIn stores a task whose old mailbox is signed in to with
// Microsoft, its refresh token sealed as the submission seals it.
func (b *bench) submitSignedIn(host string, port int, refresh string) store.Task {
	b.n++
	ctx := context.Background()
	_, tasks, err := b.st.CreateMigration(ctx, store.Migration{DomainID: b.d.ID, SourceHost: host, SourcePort: port, SourceSecurity: "plain"},
		[]store.Task{{Kind: store.TaskSync, SourceUser: "eva@firma.test", DestUser: "eva@firma.test", SourceSignIn: oauth.Microsoft}},
		func(tx *sql.Tx, tasks []store.Task) error {
			tasks[0].SourceSecret = b.box.Seal(refresh, SecretContext(tasks[0].ID, "source-oauth"))
			return b.r.QueueTx(ctx, tx, tasks)
		})
	if err != nil {
		b.t.Fatal(err)
	}
	return tasks[0]
}

// A job signs in with access tokens refreshed from the task's refresh
// token and stores each refresh token the provider rotates, sealed, at
// once: the next run has the one that works.
func TestJobRefreshesAndStoresRotatedToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: "eva@firma.test", RotateRefresh: true})
		p, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
		if err != nil {
			t.Fatal(err)
		}
		b := newBench(t, st, Config{OAuth: map[string]*oauth.Provider{oauth.Microsoft: p}})
		_, refresh, _ := srv.Grant()
		task := b.submitSignedIn("imap.old.test", 993, refresh)
		var tokens []string
		b.r.run = func(ctx context.Context, a engine.Account, _ engine.Ledger, opt engine.Options) (*engine.Report, error) {
			opt.SourceLogin(nil)
			if a.SourcePassword != "" || a.SourceToken == nil {
				t.Fatal("the account signs in with a password")
			}
			first, err := a.SourceToken(ctx, "")
			if err != nil {
				return nil, err
			}
			second, err := a.SourceToken(ctx, first) // the old server refused the first
			if err != nil {
				return nil, err
			}
			tokens = append(tokens, first, second)
			return &engine.Report{Status: engine.StatusDone}, nil
		}
		if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
			t.Fatal(err)
		}
		got := b.task(task.ID)
		if got.State != store.StateDone || len(tokens) != 2 || tokens[0] == tokens[1] || !srv.Valid("eva@firma.test", tokens[1]) {
			t.Fatalf("state %s, tokens %d", got.State, len(tokens))
		}
		stored, err := b.box.Open(got.SourceSecret, SecretContext(task.ID, "source-oauth"))
		if err != nil {
			t.Fatal(err)
		}
		if rts := srv.RefreshTokens(); len(rts) != 1 || stored != rts[0] {
			t.Errorf("the stored refresh token is not the server's current one")
		}
	})
}

// A withdrawn sign-in fails the task with "sign in again", in words the
// customer acts on, without the password advice of a refused login.
func TestJobSignInRevoked(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: "eva@firma.test"})
		src := testbed.StartHostile(t, testbed.HostileConfig{User: "eva@firma.test", Caps: []string{"AUTH=XOAUTH2"}, CheckToken: srv.Valid})
		p, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
		if err != nil {
			t.Fatal(err)
		}
		b := newBench(t, st, Config{OAuth: map[string]*oauth.Provider{oauth.Microsoft: p}, AllowPrivate: true})
		_, refresh, _ := srv.Grant()
		srv.Revoke(refresh)
		task := b.submitSignedIn("127.0.0.1", src.Port, refresh)
		if err := (&taskWorker{r: b.r}).Work(ctx, jobOf(task, 1)); err != nil {
			t.Fatal(err)
		}
		got := b.task(task.ID)
		if got.State != store.StateFailed || got.Failure == nil || got.Failure.Kind != engine.KindSignInAgain {
			t.Fatalf("state %s, failure %+v", got.State, got.Failure)
		}
		if len(got.Failure.Causes) > 0 || strings.Contains(got.Failure.Detail, refresh) {
			t.Errorf("failure %+v", got.Failure)
		}
		if got.SourceSecret == nil {
			t.Error("the task lost its secret: a new sign-in could not resume it")
		}
	})
}
