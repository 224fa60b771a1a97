package imapconn_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/testbed"
)

// A sign-in with an access token takes OAUTHBEARER where offered, else
// XOAUTH2; a refused token is ErrAuth, a server without either ErrNoOAuth,
// and the token is in no error and no recorded command.
func TestLoginToken(t *testing.T) {
	const user, token = "eva@firma.test", "ya29.secret-access-token"
	cases := []struct {
		name     string
		caps     []string
		token    string
		wantMech string // "" when the sign-in must fail
		wantErr  error
	}{
		{name: "xoauth2", caps: []string{"AUTH=XOAUTH2"}, token: token, wantMech: "XOAUTH2"},
		{name: "oauthbearer preferred", caps: []string{"AUTH=XOAUTH2", "AUTH=OAUTHBEARER"}, token: token, wantMech: "OAUTHBEARER"},
		{name: "xoauth2 with SASL-IR", caps: []string{"AUTH=XOAUTH2", "SASL-IR"}, token: token, wantMech: "XOAUTH2"},
		{name: "xoauth2 refused", caps: []string{"AUTH=XOAUTH2"}, token: "expired-" + token, wantErr: imapconn.ErrAuth},
		{name: "oauthbearer refused", caps: []string{"AUTH=OAUTHBEARER"}, token: "expired-" + token, wantErr: imapconn.ErrAuth},
		{name: "no mechanism", token: token, wantErr: imapconn.ErrNoOAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := testbed.StartHostile(t, testbed.HostileConfig{User: user, Password: "unused",
				Caps:       tc.caps,
				CheckToken: func(u, tok string) bool { return u == user && tok == token }})
			ctx := context.Background()
			c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: h.Port, Security: imapconn.Plain}, imapconn.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.LoginToken(ctx, user, tc.token)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, imapconn.ErrAuth) {
					t.Fatalf("sign-in: %v, want %v (an ErrAuth)", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Errorf("the error shows the token: %v", err)
				}
			} else if err != nil {
				t.Fatalf("sign-in: %v", err)
			}
			var auth string
			for _, cmd := range h.Commands() {
				if strings.Contains(cmd, token) {
					t.Errorf("command recorded with the token: %q", cmd)
				}
				if strings.HasPrefix(cmd, "AUTHENTICATE") {
					auth = cmd
				}
			}
			if tc.wantMech != "" {
				if !strings.HasPrefix(auth, "AUTHENTICATE "+tc.wantMech) {
					t.Errorf("sent %q, want AUTHENTICATE %s", auth, tc.wantMech)
				}
				if _, err := c.List(ctx, 0); err != nil {
					t.Errorf("LIST after sign-in: %v", err)
				}
			}
		})
	}
}

// A session whose token expires is ended by the server with Microsoft's
// BYE; the failing command says the token expired, so that the caller
// signs in again instead of counting a failure.
func TestTokenExpiredBye(t *testing.T) {
	const user, token = "eva@firma.test", "eyJ0eXAi.secret"
	var valid atomic.Bool
	valid.Store(true)
	h := testbed.StartHostile(t, testbed.HostileConfig{User: user, Caps: []string{"AUTH=XOAUTH2"},
		Folders:    []testbed.HostileFolder{{Name: "INBOX"}},
		CheckToken: func(u, tok string) bool { return u == user && tok == token && valid.Load() }})
	ctx := context.Background()
	c, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: h.Port, Security: imapconn.Plain}, imapconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.LoginToken(ctx, user, token); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Examine(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	valid.Store(false)
	_, err = c.FetchMeta(ctx, nil, nil)
	if !errors.Is(err, imapconn.ErrTokenExpired) {
		t.Fatalf("after expiry: %v, want ErrTokenExpired", err)
	}
	if !c.Dead() {
		t.Error("the connection is not reported dead")
	}
	if h.TokenExpiries() != 1 {
		t.Errorf("server ended %d sessions for an expired token, want 1", h.TokenExpiries())
	}
	// An ordinary lost connection is not an expired token.
	c2, err := imapconn.Dial(ctx, imapconn.Endpoint{Host: "127.0.0.1", Port: h.Port, Security: imapconn.Plain}, imapconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Close()
	if _, err := c2.List(ctx, 0); err == nil || errors.Is(err, imapconn.ErrTokenExpired) {
		t.Errorf("closed connection: %v, want a failure that is not ErrTokenExpired", err)
	}
}
