// Package oauth signs a customer in with the provider of their old mailbox
// (Google, Microsoft) for IMAP access: the authorization code flow with
// PKCE for the panel, the device authorization flow for the command line,
// and access tokens refreshed from a refresh token, which Microsoft rotates.
// It builds on golang.org/x/oauth2; tokens and the client secret never
// appear in its errors.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Provider IDs, as in the configuration (oauth.google.client_id).
const (
	Google    = "google"
	Microsoft = "microsoft"
)

// IDs are the providers this package knows.
var IDs = []string{Google, Microsoft}

// Settings are a hosting's registration with a provider; empty URLs take
// the provider's own.
type Settings struct {
	ClientID, ClientSecret       string
	AuthURL, TokenURL, DeviceURL string
}

// Provider is one provider as the hosting is registered with it.
type Provider struct {
	ID       string
	Name     string // as the customer knows it: "Google", "Microsoft"
	Endpoint oauth2.Endpoint
	Scopes   []string
	// ClientID and ClientSecret are the hosting's registration; the
	// secret is empty for a public client.
	ClientID, ClientSecret string
	// HTTP makes the requests to the provider (a timeout of 30 s when nil).
	HTTP *http.Client
}

// defaults are the providers' endpoints and the scopes of IMAP access.
var defaults = map[string]Provider{
	Google: {ID: Google, Name: "Google",
		Endpoint: oauth2.Endpoint{AuthURL: "https://accounts.google.com/o/oauth2/v2/auth",
			TokenURL: "https://oauth2.googleapis.com/token", DeviceAuthURL: "https://oauth2.googleapis.com/device/code"},
		Scopes: []string{"https://mail.google.com/"}},
	Microsoft: {ID: Microsoft, Name: "Microsoft",
		Endpoint: oauth2.Endpoint{AuthURL: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			TokenURL:      "https://login.microsoftonline.com/common/oauth2/v2.0/token",
			DeviceAuthURL: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"},
		Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}},
}

// ErrUnknownProvider is a provider ID this package does not know.
var ErrUnknownProvider = errors.New("unknown sign-in provider (known: google, microsoft)")

// ErrNotConfigured means the hosting has no client ID for the provider.
var ErrNotConfigured = errors.New("no client ID is configured for this sign-in provider")

// New returns the provider id with the hosting's settings.
func New(id string, s Settings) (*Provider, error) {
	d, ok := defaults[id]
	if !ok {
		return nil, fmt.Errorf("%q: %w", id, ErrUnknownProvider)
	}
	if s.ClientID == "" {
		return nil, fmt.Errorf("%s: %w (oauth.%s.client_id)", d.Name, ErrNotConfigured, id)
	}
	p := d
	p.Scopes = slices.Clone(d.Scopes)
	p.ClientID, p.ClientSecret = s.ClientID, s.ClientSecret
	for _, o := range []struct{ url, into *string }{{&s.AuthURL, &p.Endpoint.AuthURL},
		{&s.TokenURL, &p.Endpoint.TokenURL}, {&s.DeviceURL, &p.Endpoint.DeviceAuthURL}} {
		if *o.url != "" {
			*o.into = *o.url
		}
	}
	// Both take the client's credentials in the form; trying the header
	// first would send every refusal twice.
	p.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &p, nil
}

func (p *Provider) config(redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		Endpoint: p.Endpoint, Scopes: p.Scopes, RedirectURL: redirect}
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	c := p.HTTP
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// NewVerifier returns a PKCE code verifier: kept by the service until the
// callback, never sent to the browser.
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthCodeURL is where the customer's browser signs in: the provider
// sends it back to redirect with a code and state. The verifier's S256
// challenge binds the code to this service; user, when known, is offered
// as the account to sign in with.
func (p *Provider) AuthCodeURL(redirect, state, verifier, user string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.AccessTypeOffline}
	if p.ID == Google {
		// Google sends a refresh token only with the consent screen.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	if user != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", user))
	}
	return p.config(redirect).AuthCodeURL(state, opts...)
}

// Exchange trades the callback's code for tokens.
func (p *Provider) Exchange(ctx context.Context, redirect, code, verifier string) (*oauth2.Token, error) {
	tok, err := p.config(redirect).Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, p.wrap("exchange the sign-in code", err)
	}
	return tok, nil
}

// DeviceAuth starts the device authorization flow: the customer opens
// VerificationURI anywhere and enters UserCode.
func (p *Provider) DeviceAuth(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
	da, err := p.config("").DeviceAuth(p.ctx(ctx))
	if err != nil {
		return nil, p.wrap("start the device sign-in", err)
	}
	return da, nil
}

// DeviceToken waits, polling as the provider asks, until the customer
// has signed in (or refused, or the code expired).
func (p *Provider) DeviceToken(ctx context.Context, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	tok, err := p.config("").DeviceAccessToken(p.ctx(ctx), da)
	if err != nil {
		return nil, p.wrap("wait for the device sign-in", err)
	}
	return tok, nil
}

// Error is a failure of a request to the provider. It carries the OAuth2
// error code and description, never the response body or a token.
type Error struct {
	Op          string
	Provider    string
	Code        string // invalid_grant, access_denied, expired_token, …
	Description string
	Status      int   // the HTTP status, 0 when no answer came
	Err         error // the transport's failure, when no answer came
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s with %s", e.Op, e.Provider)
	switch {
	case e.Code != "" && e.Description != "":
		return fmt.Sprintf("%s: %s: %s", s, e.Code, e.Description)
	case e.Code != "":
		return s + ": " + e.Code
	case e.Status != 0:
		return fmt.Sprintf("%s: HTTP status %d", s, e.Status)
	}
	return fmt.Sprintf("%s: %v", s, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrRevoked is the cause of a sign-in that no longer works: the refresh
// token was revoked or expired (invalid_grant), or there is none. The
// customer must sign in again.
var ErrRevoked error = revoked{}

// revoked tells callers that do not know this package (the engine) by its
// SignInAgain method that only a new sign-in helps.
type revoked struct{}

func (revoked) Error() string     { return "the sign-in is no longer valid: sign in again" }
func (revoked) SignInAgain() bool { return true }

// ErrDenied means the customer refused access at the provider.
var ErrDenied = errors.New("access was refused at the provider")

// ErrCodeExpired means the device sign-in's code expired before the
// customer used it.
var ErrCodeExpired = errors.New("the sign-in code expired")

// Is lets errors.Is tell the causes a caller decides on.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRevoked:
		return e.Code == "invalid_grant"
	case ErrDenied:
		return e.Code == "access_denied"
	case ErrCodeExpired:
		return e.Code == "expired_token"
	}
	return false
}

// SignInAgain reports whether only a new sign-in helps (see ErrRevoked).
func (e *Error) SignInAgain() bool { return errors.Is(e, ErrRevoked) }

func (p *Provider) wrap(op string, err error) error {
	e := &Error{Op: op, Provider: p.Name}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e.Code, e.Description = re.ErrorCode, re.ErrorDescription
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// A transport error names the URL, never the form that was sent.
	e.Err = err
	return e
}

// Source hands out access tokens for one mailbox, refreshing them from
// the refresh token when they near their expiry or the mail server
// refused one, and reports a refresh token the provider rotated so that
// the caller stores the new one (Microsoft's are single-use).
type Source struct {
	p       *Provider
	rotated func(ctx context.Context, refresh string) error

	mu  sync.Mutex
	tok *oauth2.Token
}

// NewSource starts from tok (an access token, a refresh token, or both).
// rotated, when set, is called with each new refresh token before it is
// used; its error fails the token.
func (p *Provider) NewSource(tok *oauth2.Token, rotated func(ctx context.Context, refresh string) error) *Source {
	return &Source{p: p, tok: tok, rotated: rotated}
}

// Token returns a valid access token. rejected is the token the mail
// server just refused or ended a session for ("" when none was): it is
// not handed out again, even if its expiry says it is still valid (the
// server's clock decides).
func (s *Source) Token(ctx context.Context, rejected string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.AccessToken != "" && s.tok.AccessToken != rejected && s.tok.Valid() {
		return s.tok.AccessToken, nil
	}
	if s.tok.RefreshToken == "" {
		return "", fmt.Errorf("the access token expired and there is no refresh token: %w", ErrRevoked)
	}
	if s.p == nil {
		return "", fmt.Errorf("a refresh token without a provider to refresh it with: %w", ErrUnknownProvider)
	}
	// A token source made for one refresh: the cached token is the
	// caller's, who may have seen it refused before its expiry.
	nt, err := s.p.config("").TokenSource(s.p.ctx(ctx), &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		return "", s.p.wrap("refresh the access token", err)
	}
	if nt.RefreshToken != s.tok.RefreshToken && s.rotated != nil {
		if err := s.rotated(ctx, nt.RefreshToken); err != nil {
			return "", fmt.Errorf("store the new refresh token: %w", err)
		}
	}
	s.tok = nt
	return nt.AccessToken, nil
}
