package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A sign-in started through the API is found by its ID's or its state's
// hash, changes state only from the state it is in and while it lasts,
// is used once in the submission's transaction (undone with it), and is
// deleted once expired, when the key is forgotten or with its tenant.
func TestAPISignIns(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		cust, _ := s.CreateTenant(ctx, "Firma", KindCustomer)
		now := time.Now()
		add := func(id string, expires time.Time) {
			t.Helper()
			err := s.CreateSignIn(ctx, SignIn{IDHash: []byte("id-" + id), TenantID: cust.ID, Provider: "microsoft", Login: "jana@outlook.com",
				StateHash: []byte("state-" + id), State: SignInPending, Sealed: []byte("verifier"), Expires: expires, Created: now})
			if err != nil {
				t.Fatal(err)
			}
		}
		add("a", now.Add(10*time.Minute))
		add("old", now.Add(-time.Second))
		got, err := s.SignInByState(ctx, []byte("state-a"))
		if err != nil || string(got.IDHash) != "id-a" || got.TenantID != cust.ID || got.State != SignInPending || string(got.Sealed) != "verifier" {
			t.Fatalf("by state: %+v %v", got, err)
		}
		if _, err := s.SignIn(ctx, []byte("id-none")); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown sign-in: %v", err)
		}
		if _, held, _ := s.KeyFingerprint(ctx, ""); !held {
			t.Error("a sealed sign-in is not seen as a stored secret")
		}
		for _, c := range []struct {
			id, from string
			want     bool
		}{{"a", SignInSignedIn, false}, {"old", SignInPending, false}, {"a", SignInPending, true}, {"a", SignInPending, false}} {
			if ok, err := s.ChangeSignIn(ctx, []byte("id-"+c.id), c.from, SignInSignedIn, []byte("tokens"), now.Add(time.Hour)); ok != c.want || err != nil {
				t.Errorf("%s from %s: %v %v", c.id, c.from, ok, err)
			}
		}
		use := func(commit bool) error {
			tx, err := s.db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			err = s.UseSignIns(ctx, tx, [][]byte{[]byte("id-a")})
			if err == nil && commit {
				err = tx.Commit()
			}
			return err
		}
		if err := use(false); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SignIn(ctx, []byte("id-a")); got.State != SignInSignedIn || string(got.Sealed) != "tokens" {
			t.Errorf("a rolled back use stayed: %+v", got)
		}
		if err := use(true); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SignIn(ctx, []byte("id-a")); got.State != SignInUsed || got.Sealed != nil {
			t.Errorf("used: %+v", got)
		}
		if err := use(true); !errors.Is(err, ErrSignInGone) {
			t.Errorf("used twice: %v", err)
		}
		if n, err := s.ExpireSignIns(ctx, now); n != 1 || err != nil {
			t.Errorf("expired: %d %v", n, err)
		}
		if _, err := s.SignIn(ctx, []byte("id-old")); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired sign-in stayed: %v", err)
		}
		add("b", now.Add(time.Minute))
		if _, err := s.ForgetSecrets(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignIn(ctx, []byte("id-b")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a sign-in outlived a forgotten key: %v", err)
		}
		add("c", now.Add(time.Minute))
		if err := s.DeleteTenant(ctx, cust.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignIn(ctx, []byte("id-c")); !errors.Is(err, ErrNotFound) {
			t.Errorf("a sign-in outlived its tenant: %v", err)
		}
	})
}
