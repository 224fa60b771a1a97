package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/oauth"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// A copy that signs in with access tokens of a second's life outlives
// many of them: the old server ends the session when its token expires
// (Microsoft's BYE), the engine signs in again with a fresh one and goes
// on where the ledger says. Every message arrives once; a second run
// copies nothing; no token is in the log.
func TestTokenExpiresMidCopy(t *testing.T) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: srcUser,
		Lifetime: time.Second, RotateRefresh: true})
	cfg := testbed.HostileConfig{User: srcUser, Caps: []string{"AUTH=XOAUTH2"}, CheckToken: srv.Valid,
		Folders: []testbed.HostileFolder{
			{Name: "INBOX", UIDValidity: 7, Subscribed: true, Messages: hostileMessages("INBOX", 300)},
			{Name: "Projekty", UIDValidity: 8, Subscribed: true, Messages: hostileMessages("Projekty", 40)},
		}}
	const total = 340
	src := testbed.StartHostile(t, cfg)
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	const user = "oauth@new.test"
	if err := dst.AddUser(user, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	p, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	access, refresh, expiry := srv.Grant()
	var mu sync.Mutex
	stored := []string{refresh}
	tokens := p.NewSource(&oauth2.Token{AccessToken: access, RefreshToken: refresh, Expiry: expiry},
		func(_ context.Context, rt string) error {
			mu.Lock()
			stored = append(stored, rt)
			mu.Unlock()
			return nil
		})
	acct := engine.Account{Source: imapconn.Endpoint{Host: "127.0.0.1", Port: src.Port, Security: imapconn.Plain},
		SourceUser: srcUser, SourceToken: tokens.Token, Dest: endpoint(t, dst), DestUser: user, DestPassword: dstPass}
	led, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	var log strings.Builder
	var logMu sync.Mutex
	opt := engine.Options{Conn: imapconn.Options{Timeout: 10 * time.Second}, TempDir: t.TempDir(),
		AppendWorkers: 1, MemoryBudget: 256 << 10,
		// A destination slow enough that the copy takes a few token
		// lifetimes, however fast the machine.
		Appended: func(time.Duration) { time.Sleep(25 * time.Millisecond) },
		Logf: func(format string, args ...any) {
			logMu.Lock()
			fmt.Fprintf(&log, format+"\n", args...)
			logMu.Unlock()
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := engine.Run(ctx, acct, led, opt)
	if err != nil || rep.Status != engine.StatusDone {
		t.Fatalf("run: %v, status %s, failure %+v\n%s", err, rep.Status, rep.Failure, log.String())
	}
	if src.TokenExpiries() == 0 {
		t.Fatalf("no session outlived its token (run took %s): the test proves nothing", rep.Finished.Sub(rep.Started))
	}
	t.Logf("%d sessions ended for an expired token, %d tokens issued, %s", src.TokenExpiries(), srv.Issued(), rep.Finished.Sub(rep.Started))
	if rep.Totals.Copied != total {
		t.Errorf("copied %d, want %d", rep.Totals.Copied, total)
	}
	got := destFolders(t, dst, user)
	if got["INBOX"] != 300 || got["Projekty"] != 40 {
		t.Errorf("destination holds %v, want INBOX 300 and Projekty 40", got)
	}
	if w := src.Writes(); len(w) > 0 {
		t.Errorf("the source received write commands: %q", w)
	}
	mu.Lock()
	if len(stored) < 2 || stored[len(stored)-1] != srv.RefreshTokens()[0] {
		t.Errorf("rotated refresh tokens reported: %d, the last is not the server's", len(stored))
	}
	mu.Unlock()
	again, err := engine.Run(ctx, acct, led, opt)
	if err != nil || again.Totals.Copied != 0 || again.Totals.AlreadyPresent != total {
		t.Errorf("second run: %v, copied %d, present %d", err, again.Totals.Copied, again.Totals.AlreadyPresent)
	}
	if got := destFolders(t, dst, user); got["INBOX"] != 300 || got["Projekty"] != 40 {
		t.Errorf("after the second run the destination holds %v", got)
	}
	for _, secret := range append(srv.Tokens(), stored...) {
		if strings.Contains(log.String(), secret) || strings.Contains(fmt.Sprint(rep), secret) {
			t.Fatalf("a token is in the log or the report")
		}
	}
}

// A revoked sign-in ends the run with "sign in again", not a password
// failure; a server that offers no token sign-in says so.
func TestTokenSignInFailures(t *testing.T) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm", User: srcUser})
	p, err := oauth.New(oauth.Google, oauth.Settings{ClientID: "mm", TokenURL: srv.TokenURL})
	if err != nil {
		t.Fatal(err)
	}
	dst := testbed.StartDovecotT(t, testbed.DovecotOptions{})
	const user = "revoked@new.test"
	if err := dst.AddUser(user, dstPass, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		caps     []string
		revoke   bool
		wantKind string
	}{
		{name: "revoked", caps: []string{"AUTH=XOAUTH2"}, revoke: true, wantKind: engine.KindSignInAgain},
		{name: "no mechanism", wantKind: imapconn.ErrAuth.Code()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testbed.StartHostile(t, testbed.HostileConfig{User: srcUser, Caps: tc.caps, CheckToken: srv.Valid,
				Folders: []testbed.HostileFolder{{Name: "INBOX", Messages: hostileMessages("INBOX", 2)}}})
			_, refresh, _ := srv.Grant()
			if tc.revoke {
				srv.Revoke(refresh)
			}
			tokens := p.NewSource(&oauth2.Token{RefreshToken: refresh}, nil)
			acct := engine.Account{Source: imapconn.Endpoint{Host: "127.0.0.1", Port: src.Port, Security: imapconn.Plain},
				SourceUser: srcUser, SourceToken: tokens.Token, Dest: endpoint(t, dst), DestUser: user, DestPassword: dstPass}
			rep, err := engine.Run(context.Background(), acct, nil, engine.Options{TempDir: t.TempDir()})
			if err == nil || rep.Failure == nil || rep.Failure.Kind != tc.wantKind || rep.Failure.Side != engine.SideSource {
				t.Fatalf("run: %v, failure %+v; want kind %s", err, rep.Failure, tc.wantKind)
			}
			if tc.revoke && !errors.Is(err, oauth.ErrRevoked) {
				t.Errorf("the error does not carry the revocation: %v", err)
			}
		})
	}
}
