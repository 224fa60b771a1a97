package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/oauth2"

	"mailmigrate/internal/config"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/oauth"
)

// oauthProvider is provider id with the hosting's registration from the
// configuration.
func oauthProvider(cfg config.Config, id string) (*oauth.Provider, error) {
	c := cfg.OAuth[id]
	secret, err := c.Secret()
	if err != nil {
		return nil, err
	}
	return oauth.New(id, oauth.Settings{ClientID: c.ClientID, ClientSecret: secret,
		AuthURL: c.AuthURL, TokenURL: c.TokenURL, DeviceURL: c.DeviceURL})
}

// oauthProviders are the providers the configuration registers the
// hosting with, by ID, for the service.
func oauthProviders(cfg config.Config) (map[string]*oauth.Provider, error) {
	out := map[string]*oauth.Provider{}
	for id := range cfg.OAuth {
		p, err := oauthProvider(cfg, id)
		if err != nil {
			return nil, fmt.Errorf("oauth.%s: %w", id, err)
		}
		out[id] = p
	}
	return out, nil
}

// signInFailure is a sign-in at the command line that did not happen, in
// the reader's words.
type signInFailure struct {
	msg i18n.Message
	err error
}

func (e signInFailure) Error() string         { return e.msg.String() + ": " + e.err.Error() }
func (e signInFailure) Unwrap() error         { return e.err }
func (e signInFailure) Message() i18n.Message { return e.msg }

// sourceToken is the source's token source when the source signs in with
// its provider (--source-oauth, --source-oauth-token-file), else nil. With
// --source-oauth and no token file (or one that does not exist yet) the
// customer signs in through the device flow; a token file is kept up to
// date with the refresh tokens the provider rotates.
func (f *endpointFlags) sourceToken(ctx context.Context) (func(context.Context, string) (string, error), error) {
	if f.sourceOAuth == "" && f.sourceTokenFile == "" {
		return nil, nil
	}
	if f.accounts != "" {
		return nil, usagef("--source-oauth and --source-oauth-token-file sign in to one mailbox; they do not go with --accounts")
	}
	if f.sourcePassFile != "" || f.sourcePass != "" {
		return nil, usagef("give either a source password or --source-oauth / --source-oauth-token-file, not both")
	}
	var p *oauth.Provider
	if f.sourceOAuth != "" {
		cfg := config.Default()
		if f.configFile != "" {
			var err error
			if cfg, err = config.Load(f.configFile); err != nil {
				return nil, usagef("--config: %v", err)
			}
		}
		var err error
		if p, err = oauthProvider(cfg, f.sourceOAuth); err != nil {
			if errors.Is(err, oauth.ErrNotConfigured) && f.configFile == "" {
				return nil, usagef("--source-oauth %s: %v; give the configuration file with --config", f.sourceOAuth, err)
			}
			return nil, usagef("--source-oauth: %v", err)
		}
	}
	var tok *oauth2.Token
	if f.sourceTokenFile != "" {
		var err error
		tok, err = readTokenFile(f.sourceTokenFile)
		switch {
		case errors.Is(err, fs.ErrNotExist) && p != nil:
		case err != nil:
			return nil, err
		case tok.RefreshToken != "" && p == nil:
			return nil, usagef("--source-oauth-token-file %s holds a refresh token: add --source-oauth google|microsoft to use it", f.sourceTokenFile)
		}
	}
	if tok == nil {
		var err error
		if tok, err = deviceSignIn(ctx, p); err != nil {
			return nil, err
		}
		if f.sourceTokenFile != "" {
			if err := writeTokenFile(f.sourceTokenFile, tok); err != nil {
				return nil, err
			}
		}
	}
	var rotated func(context.Context, string) error
	if f.sourceTokenFile != "" {
		saved := *tok
		rotated = func(_ context.Context, refresh string) error {
			saved.RefreshToken = refresh
			return writeTokenFile(f.sourceTokenFile, &saved)
		}
	}
	return p.NewSource(tok, rotated).Token, nil
}

// deviceSignIn lets the customer sign in on any device with a browser:
// the URL and the code go to stderr in their language.
func deviceSignIn(ctx context.Context, p *oauth.Provider) (*oauth2.Token, error) {
	da, err := p.DeviceAuth(ctx)
	if err != nil {
		return nil, signInFailure{catalog.M("oauth.unreachable", p.Name), err}
	}
	fmt.Fprintln(os.Stderr, catalog.T(out, "oauth.device", da.VerificationURI, da.UserCode, p.Name))
	tok, err := p.DeviceToken(ctx, da)
	switch {
	case err == nil:
		fmt.Fprintln(os.Stderr, catalog.T(out, "oauth.signed_in", p.Name))
		return tok, nil
	case errors.Is(err, oauth.ErrDenied):
		return nil, signInFailure{catalog.M("oauth.denied", p.Name), err}
	case errors.Is(err, oauth.ErrCodeExpired):
		return nil, signInFailure{catalog.M("oauth.code_expired"), err}
	case ctx.Err() != nil:
		return nil, err
	}
	return nil, signInFailure{catalog.M("oauth.unreachable", p.Name), err}
}

// readTokenFile reads an access token (the first line) or a JSON token
// (access_token, refresh_token, expiry) as written by writeTokenFile.
func readTokenFile(path string) (*oauth2.Token, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, usagef("--source-oauth-token-file: %v", errors.Unwrap(err))
	}
	data = bytes.TrimSpace(data)
	tok := new(oauth2.Token)
	if bytes.HasPrefix(data, []byte("{")) {
		// The decoder's error could quote the file; only where it failed.
		if err := json.Unmarshal(data, tok); err != nil {
			return nil, usagef("--source-oauth-token-file %s is not a JSON token", path)
		}
	} else {
		line, _, _ := strings.Cut(string(data), "\n")
		tok.AccessToken = strings.TrimSpace(line)
	}
	if tok.AccessToken == "" && tok.RefreshToken == "" {
		return nil, usagef("--source-oauth-token-file %s holds no token", path)
	}
	return tok, nil
}

// writeTokenFile saves a token for the next run, readable by its owner
// only, replacing the file in one step.
func writeTokenFile(path string, tok *oauth2.Token) error {
	data, err := json.MarshalIndent(tok, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the sign-in: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save the sign-in: %w", err)
	}
	return nil
}
