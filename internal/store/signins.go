package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// States of a sign-in with a provider started through the API (SignIn).
// A pending or signed-in one past its expiry reads as expired.
const (
	SignInPending  = "pending"
	SignInSignedIn = "signed_in"
	SignInDenied   = "denied"
	SignInFailed   = "failed"
	SignInUsed     = "used"
)

// SignIn is a sign-in to an old mailbox with its provider that a hosting
// started through the API: the customer's browser signs in at the
// provider and comes back to the callback, which finds it by the hash of
// its OAuth state; the hosting names it by its ID, of which only the hash
// is kept.
type SignIn struct {
	IDHash    []byte
	TenantID  int64
	Provider  string
	Login     string
	StateHash []byte
	// ReturnURL is where the callback sends the browser, "" for a page of
	// its own.
	ReturnURL string
	State     string
	// Sealed is the PKCE verifier while pending, the tokens once signed
	// in; nil after that.
	Sealed  []byte
	Expires time.Time
	Created time.Time
}

// ErrSignInGone means a sign-in was no longer signed in when a
// submission used it: another one used it meanwhile, or it expired.
var ErrSignInGone = errors.New("the sign-in was used or expired meanwhile")

const signInCols = `id_hash, tenant_id, provider, login, state_hash, return_url, state, sealed, expires, created`

func scanSignIn(row *sql.Row) (SignIn, error) {
	var s SignIn
	var expires, created int64
	err := row.Scan(&s.IDHash, &s.TenantID, &s.Provider, &s.Login, &s.StateHash, &s.ReturnURL, &s.State, &s.Sealed,
		&expires, &created)
	s.Expires, s.Created = fromUnix(expires), fromUnix(created)
	return s, notFound(err)
}

// CreateSignIn implements Store.
func (l *DB) CreateSignIn(ctx context.Context, s SignIn) error {
	_, err := l.exec(ctx, `INSERT INTO api_sign_in (`+signInCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.TenantID, s.Provider, s.Login, s.StateHash, s.ReturnURL, s.State, s.Sealed, unix(s.Expires), unix(s.Created))
	if err != nil {
		return fmt.Errorf("store a sign-in: %w", err)
	}
	return nil
}

// SignIn implements Store.
func (l *DB) SignIn(ctx context.Context, idHash []byte) (SignIn, error) {
	return scanSignIn(l.queryRow(ctx, `SELECT `+signInCols+` FROM api_sign_in WHERE id_hash = ?`, idHash))
}

// SignInByState implements Store.
func (l *DB) SignInByState(ctx context.Context, stateHash []byte) (SignIn, error) {
	return scanSignIn(l.queryRow(ctx, `SELECT `+signInCols+` FROM api_sign_in WHERE state_hash = ?`, stateHash))
}

// ChangeSignIn implements Store.
func (l *DB) ChangeSignIn(ctx context.Context, idHash []byte, from, to string, sealed []byte, expires time.Time) (bool, error) {
	ok, err := changed(l.exec(ctx, `UPDATE api_sign_in SET state = ?, sealed = ?, expires = ?
		WHERE id_hash = ? AND state = ? AND expires > ?`, to, sealed, unix(expires), idHash, from, unix(time.Now())))
	if err != nil {
		return false, fmt.Errorf("record a sign-in: %w", err)
	}
	return ok, nil
}

// UseSignIns implements Store.
func (l *DB) UseSignIns(ctx context.Context, tx *sql.Tx, idHashes [][]byte) error {
	c := conn{tx, l.dialect}
	for _, h := range idHashes {
		ok, err := changed(c.exec(ctx, `UPDATE api_sign_in SET state = ?, sealed = NULL
			WHERE id_hash = ? AND state = ? AND expires > ?`, SignInUsed, h, SignInSignedIn, unix(time.Now())))
		if err != nil {
			return fmt.Errorf("use a sign-in: %w", err)
		}
		if !ok {
			return ErrSignInGone
		}
	}
	return nil
}

// ExpireSignIns implements Store.
func (l *DB) ExpireSignIns(ctx context.Context, now time.Time) (int, error) {
	res, err := l.exec(ctx, `DELETE FROM api_sign_in WHERE expires < ?`, unix(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sign-ins: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
