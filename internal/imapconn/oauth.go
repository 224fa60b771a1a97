package imapconn

import (
	"context"
	"encoding/base64"
	"errors"
	"regexp"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// XOAuth2 is the name of Google's and Microsoft's SASL mechanism for
// OAuth2 access tokens, which both offered before OAUTHBEARER (RFC 7628).
const XOAuth2 = "XOAUTH2"

// ErrNoOAuth means the server offers no sign-in with an access token
// (neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2).
var ErrNoOAuth = errors.New("the server offers no sign-in with an OAuth2 access token (AUTH=OAUTHBEARER or AUTH=XOAUTH2)")

// ErrTokenExpired means the server ended the session because the access
// token it was signed in with expired (Microsoft 365: "BYE Session
// invalidated - AccessTokenExpired"). Nothing is wrong with the account: a
// new session with a fresh token goes on.
var ErrTokenExpired = errors.New("the server ended the session: the access token expired")

// tokenExpiredBye recognises the text of the BYE of a server ending a
// session whose token expired.
var tokenExpiredBye = regexp.MustCompile(`(?i)AccessTokenExpired|token\W+(has\W+)?expired`)

// LoginToken signs in with an OAuth2 access token: OAUTHBEARER where the
// server offers it, else XOAUTH2. A refused token is ErrAuth, a server
// offering neither mechanism ErrAuth with ErrNoOAuth as its cause. The
// token, and the SASL response that carries it, are secrets of the
// connection like a password.
func (c *Conn) LoginToken(ctx context.Context, user, token string) error {
	op := "sign in as " + user
	c.guard.redact(token)
	done := c.arm(ctx)
	defer done()
	caps := c.cl.Caps()
	var cl sasl.Client
	switch {
	case caps.Has(imap.AuthCap(sasl.OAuthBearer)):
		cl = &bearerClient{sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: user, Token: token, Host: c.ep.Host, Port: c.ep.Port})}
	case caps.Has(imap.AuthCap(XOAuth2)):
		cl = &xoauth2Client{user: user, token: token}
	default:
		return &Error{Kind: ErrAuth, Op: op, Server: c.ep.Addr(), Err: ErrNoOAuth}
	}
	_, ir, err := cl.Start()
	if err != nil {
		return &Error{Kind: ErrAuth, Op: op, Server: c.ep.Addr(), Err: err}
	}
	c.guard.redact(base64.StdEncoding.EncodeToString(ir))
	if err := c.cl.Authenticate(cl); err != nil {
		e := c.fail(ctx, op, err)
		var ie *Error
		if errors.As(e, &ie) && ie.Kind == ErrServer && ie.Code != imap.ResponseCodeUnavailable {
			ie.Kind = ErrAuth
		}
		return e
	}
	return c.settle(ctx, op)
}

// TokenExpired reports whether the server ended this session because its
// access token expired.
func (c *Conn) TokenExpired() bool {
	text, ok := c.guard.bye()
	return ok && tokenExpiredBye.MatchString(text)
}

// xoauth2Client is the client side of XOAUTH2. A refused token is
// answered with a challenge (a JSON status, base64), to which the client
// sends an empty response; then the server says NO.
type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return XOAuth2, []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// bearerClient is go-sasl's OAUTHBEARER client, except that a refusal's
// challenge is answered with the dummy response of RFC 7628 3.2.3 (go-sasl
// returns an error instead, which would leave the command unfinished on
// the wire), so that the server ends it with NO.
type bearerClient struct{ sasl.Client }

func (b *bearerClient) Next([]byte) ([]byte, error) { return []byte{0x01}, nil }
