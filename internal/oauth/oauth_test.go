package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"mailmigrate/internal/oauth"
	"mailmigrate/internal/testbed"
)

const (
	clientID, clientSecret = "mailmigrate-test", "client-secret-do-not-leak"
	user                   = "jana@firma.test"
)

func provider(t *testing.T, id string, srv *testbed.OAuthServer) *oauth.Provider {
	t.Helper()
	p, err := oauth.New(id, oauth.Settings{ClientID: clientID, ClientSecret: clientSecret,
		AuthURL: srv.AuthURL, TokenURL: srv.TokenURL, DeviceURL: srv.DeviceURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noSecrets fails when an error's text holds a token or the client secret.
func noSecrets(t *testing.T, srv *testbed.OAuthServer, err error) {
	t.Helper()
	if err == nil {
		return
	}
	secrets := append(srv.Tokens(), clientSecret)
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q shows a secret", err)
		}
	}
}

// signIn follows the authorization URL to the server's redirect and
// returns the callback's query.
func signIn(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorization: %s, location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestDefaultsAndConfiguration(t *testing.T) {
	if _, err := oauth.New("yahoo", oauth.Settings{ClientID: "x"}); !errors.Is(err, oauth.ErrUnknownProvider) {
		t.Errorf("unknown provider: %v", err)
	}
	if _, err := oauth.New(oauth.Google, oauth.Settings{}); !errors.Is(err, oauth.ErrNotConfigured) {
		t.Errorf("no client ID: %v", err)
	}
	for _, tc := range []struct {
		id, auth, token, device string
		scopes                  []string
	}{
		{oauth.Google, "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
			"https://oauth2.googleapis.com/device/code", []string{"https://mail.google.com/"}},
		{oauth.Microsoft, "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			"https://login.microsoftonline.com/common/oauth2/v2.0/token",
			"https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
			[]string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}},
	} {
		p, err := oauth.New(tc.id, oauth.Settings{ClientID: "id"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Endpoint.AuthURL != tc.auth || p.Endpoint.TokenURL != tc.token || p.Endpoint.DeviceAuthURL != tc.device ||
			strings.Join(p.Scopes, " ") != strings.Join(tc.scopes, " ") {
			t.Errorf("%s: %+v %v", tc.id, p.Endpoint, p.Scopes)
		}
		q, _ := url.Parse(p.AuthCodeURL("https://panel.test/oauth/callback", "st", oauth.NewVerifier(), user))
		v := q.Query()
		if v.Get("code_challenge_method") != "S256" || v.Get("code_challenge") == "" || v.Get("login_hint") != user ||
			v.Get("scope") != strings.Join(tc.scopes, " ") || (tc.id == oauth.Google) != (v.Get("prompt") == "consent") {
			t.Errorf("%s: authorization URL %s", tc.id, q)
		}
	}
}

// The authorization code flow: the code works once and only with its
// verifier.
func TestAuthorizationCodeWithPKCE(t *testing.T) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: clientID, ClientSecret: clientSecret, User: user})
	p := provider(t, oauth.Google, srv)
	ctx := context.Background()
	const redirect = "http://127.0.0.1:1/oauth/callback"
	verifier := oauth.NewVerifier()
	q := signIn(t, p.AuthCodeURL(redirect, "state-1", verifier, user))
	if q.Get("state") != "state-1" {
		t.Errorf("state %q", q.Get("state"))
	}
	if _, err := p.Exchange(ctx, redirect, q.Get("code"), oauth.NewVerifier()); err == nil {
		t.Fatal("a code was exchanged with another verifier")
	}
	q = signIn(t, p.AuthCodeURL(redirect, "state-2", verifier, user))
	tok, err := p.Exchange(ctx, redirect, q.Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	if !srv.Valid(user, tok.AccessToken) || tok.RefreshToken == "" {
		t.Fatalf("token %v valid %v", tok.Expiry, srv.Valid(user, tok.AccessToken))
	}
	_, err = p.Exchange(ctx, redirect, q.Get("code"), verifier)
	if !errors.Is(err, oauth.ErrRevoked) {
		t.Errorf("a code used twice: %v", err)
	}
	noSecrets(t, srv, err)
}

func TestDeviceFlow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		denied  bool
		wantErr error
	}{{name: "approved"}, {name: "denied", denied: true, wantErr: oauth.ErrDenied}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: clientID, User: user,
				DevicePending: 1, DeviceDenied: tc.denied})
			p, err := oauth.New(oauth.Microsoft, oauth.Settings{ClientID: clientID,
				TokenURL: srv.TokenURL, DeviceURL: srv.DeviceURL})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			da, err := p.DeviceAuth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if da.UserCode == "" || da.VerificationURI == "" {
				t.Fatalf("device answer %+v", da)
			}
			tok, err := p.DeviceToken(ctx, da)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !srv.Valid(user, tok.AccessToken) {
				t.Error("the device flow's token is not valid")
			}
		})
	}
}

// A source refreshes a refused or expiring token, reports each rotated
// refresh token, and says "sign in again" once the refresh token is
// revoked.
func TestSourceRefreshRotateRevoke(t *testing.T) {
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: clientID, ClientSecret: clientSecret,
		User: user, RotateRefresh: true, DevicePending: 0})
	p := provider(t, oauth.Microsoft, srv)
	ctx := context.Background()
	da, err := p.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.DeviceToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	src := p.NewSource(first, func(_ context.Context, rt string) error {
		stored = append(stored, rt)
		return nil
	})
	got, err := src.Token(ctx, "")
	if err != nil || got != first.AccessToken {
		t.Fatalf("a valid token is not reused: %v", err)
	}
	// The server's clock decides: a refused token is refreshed however
	// long it says it is valid.
	second, err := src.Token(ctx, first.AccessToken)
	if err != nil || second == first.AccessToken || !srv.Valid(user, second) {
		t.Fatalf("after a refusal: %v (same token: %v)", err, second == first.AccessToken)
	}
	if len(stored) != 1 || stored[0] == first.RefreshToken || len(srv.RefreshTokens()) != 1 || srv.RefreshTokens()[0] != stored[0] {
		t.Fatalf("rotated refresh tokens reported %d, the server's %d", len(stored), len(srv.RefreshTokens()))
	}
	srv.Revoke(stored[0])
	_, err = src.Token(ctx, second)
	if !errors.Is(err, oauth.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	var again interface{ SignInAgain() bool }
	if !errors.As(err, &again) || !again.SignInAgain() {
		t.Error("a revoked sign-in does not say sign in again")
	}
	noSecrets(t, srv, err)

	// An access token alone works until it is refused.
	alone := p.NewSource(&oauth2.Token{AccessToken: second}, nil)
	if tok, err := alone.Token(ctx, ""); err != nil || tok != second {
		t.Errorf("an access token alone: %v", err)
	}
	if _, err := alone.Token(ctx, second); !errors.Is(err, oauth.ErrRevoked) || !errors.As(err, &again) {
		t.Errorf("an access token alone, refused: %v", err)
	}
}
