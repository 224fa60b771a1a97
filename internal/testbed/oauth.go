package testbed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// OAuthConfig describes a local OAuth2 authorization server.
type OAuthConfig struct {
	// ClientID is the only client accepted; ClientSecret, when set, must
	// come with it (a confidential client).
	ClientID, ClientSecret string
	// User is the account signed in at the server: the authorization
	// endpoint approves it at once, and the device flow signs it in.
	User string
	// Lifetime is how long an access token is valid; one hour when 0.
	Lifetime time.Duration
	// RotateRefresh makes every refresh return a new refresh token and
	// invalidate the old one, as Microsoft does.
	RotateRefresh bool
	// DevicePending is how many polls of the device flow are answered
	// authorization_pending before the user counts as signed in.
	DevicePending int
	// DeviceDenied makes the device flow end with access_denied.
	DeviceDenied bool
}

// OAuthServer is a running local OAuth2 authorization server: the
// authorization code flow with PKCE (S256 only), refresh tokens and the
// device authorization flow (RFC 8628), on loopback.
type OAuthServer struct {
	AuthURL, TokenURL, DeviceURL string

	cfg OAuthConfig
	srv *httptest.Server

	mu      sync.Mutex
	codes   map[string]oauthCode
	devices map[string]int // device code → polls still pending
	access  map[string]oauthGrant
	refresh map[string]string // refresh token → user
	// issued are every access and refresh token handed out, revoked
	// or not, for searching logs and pages for them.
	issued       []string
	accessIssued int
}

type oauthCode struct {
	challenge, redirect, user string
}

type oauthGrant struct {
	user    string
	expires time.Time
}

// StartOAuthServer serves cfg until the test ends.
func StartOAuthServer(t testing.TB, cfg OAuthConfig) *OAuthServer {
	t.Helper()
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = time.Hour
	}
	s := &OAuthServer{cfg: cfg, codes: map[string]oauthCode{}, devices: map[string]int{},
		access: map[string]oauthGrant{}, refresh: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.device)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.AuthURL, s.TokenURL, s.DeviceURL = s.srv.URL+"/authorize", s.srv.URL+"/token", s.srv.URL+"/device"
	return s
}

// Valid reports whether token is an access token of user that has not
// expired: the check a fake IMAP server makes (HostileConfig.CheckToken).
func (s *OAuthServer) Valid(user, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.access[token]
	return ok && g.user == user && time.Now().Before(g.expires)
}

// Revoke invalidates a refresh token, and the access tokens of its user:
// the customer withdrew the access.
func (s *OAuthServer) Revoke(refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := s.refresh[refreshToken]
	delete(s.refresh, refreshToken)
	for tok, g := range s.access {
		if g.user == user {
			delete(s.access, tok)
		}
	}
}

// RevokeAll invalidates every refresh and access token.
func (s *OAuthServer) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
	clear(s.access)
}

// RefreshTokens returns the refresh tokens that are valid now.
func (s *OAuthServer) RefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.refresh))
}

// Issued returns how many access tokens the server has issued.
func (s *OAuthServer) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accessIssued
}

// Tokens returns every access and refresh token the server issued,
// revoked or expired ones too, for searching logs and pages for them.
func (s *OAuthServer) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

func oauthRandom(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// authorize approves the configured user at once and redirects back with
// a code bound to the PKCE challenge and the redirect URI.
func (s *OAuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != s.cfg.ClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme == "" || q.Get("response_type") != "code":
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	}
	code := oauthRandom("code-")
	s.mu.Lock()
	s.codes[code] = oauthCode{challenge: q.Get("code_challenge"), redirect: redirect.String(), user: s.cfg.User}
	s.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *OAuthServer) device(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("client_id") != s.cfg.ClientID {
		oauthError(w, "invalid_client")
		return
	}
	code := oauthRandom("device-")
	s.mu.Lock()
	s.devices[code] = s.cfg.DevicePending
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"device_code": code, "user_code": "WDJB-MJHT",
		"verification_uri": s.srv.URL + "/activate", "expires_in": 600, "interval": 1})
}

func (s *OAuthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.PostForm.Get("client_id") != s.cfg.ClientID ||
		(s.cfg.ClientSecret != "" && r.PostForm.Get("client_secret") != s.cfg.ClientSecret) {
		oauthError(w, "invalid_client")
		return
	}
	var user string
	rotate := true
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code")) // single use
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || c.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			oauthError(w, "invalid_grant")
			return
		}
		user = c.user
	case "refresh_token":
		old := r.PostForm.Get("refresh_token")
		var ok bool
		if user, ok = s.refresh[old]; !ok {
			oauthError(w, "invalid_grant")
			return
		}
		rotate = s.cfg.RotateRefresh
		if rotate {
			delete(s.refresh, old)
		}
	case "urn:ietf:params:oauth:grant-type:device_code":
		code := r.PostForm.Get("device_code")
		pending, ok := s.devices[code]
		switch {
		case !ok:
			oauthError(w, "expired_token")
			return
		case pending > 0:
			s.devices[code]--
			oauthError(w, "authorization_pending")
			return
		case s.cfg.DeviceDenied:
			delete(s.devices, code)
			oauthError(w, "access_denied")
			return
		}
		delete(s.devices, code)
		user = s.cfg.User
	default:
		oauthError(w, "unsupported_grant_type")
		return
	}
	at, rt := s.issue(user, rotate)
	resp := map[string]any{"access_token": at, "token_type": "Bearer",
		"expires_in": max(1, int(s.cfg.Lifetime/time.Second))}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// issue makes an access token for user, and a refresh token with
// withRefresh; s.mu is held.
func (s *OAuthServer) issue(user string, withRefresh bool) (access, refresh string) {
	access = oauthRandom("at-")
	s.access[access] = oauthGrant{user: user, expires: time.Now().Add(s.cfg.Lifetime)}
	s.accessIssued++
	s.issued = append(s.issued, access)
	if withRefresh {
		refresh = oauthRandom("rt-")
		s.refresh[refresh] = user
		s.issued = append(s.issued, refresh)
	}
	return access, refresh
}

// Grant issues an access and a refresh token for the configured user, as
// if they had just signed in, and the access token's expiry.
func (s *OAuthServer) Grant() (access, refresh string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	access, refresh = s.issue(s.cfg.User, true)
	return access, refresh, s.access[access].expires
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "test server: " + code})
}
