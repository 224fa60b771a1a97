package web

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/slots"
	"mailmigrate/internal/store"
)

// A hosting's own customer panel sends its customer here without a second
// password: it signs a short-lived token (JWT) for a customer, a domain
// and the person's e-mail, and links to /handoff?token=…; the token is
// taken once, opens a session for that person and lands on the domain's
// page. docs/handoff.md shows the hosting's side.

// HandoffKey verifies the hosting panel's tokens: a shared secret (HS256)
// or the panel's public key (EdDSA, ES256 or RS256).
type HandoffKey struct {
	key     any
	methods []string
}

// maxHandoffLife is the longest a token may be valid: a link is followed
// at once.
const maxHandoffLife = 10 * time.Minute

// ParseHandoffKey reads a key file's content: a PEM public key, or else
// a shared secret of at least 32 bytes.
func ParseHandoffKey(data []byte) (*HandoffKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("handoff key: %w", err)
		}
		return &HandoffKey{key: pub, methods: []string{"EdDSA", "ES256", "RS256"}}, nil
	}
	secret := []byte(strings.TrimSpace(string(data)))
	if len(secret) < 32 {
		return nil, errors.New("handoff key: a shared secret must have at least 32 bytes (e.g. openssl rand -base64 48)")
	}
	return &HandoffKey{key: secret, methods: []string{"HS256", "HS384", "HS512"}}, nil
}

// handoffClaims are what the hosting's panel says about the person.
type handoffClaims struct {
	Customer string `json:"customer"` // the customer's name here
	Domain   string `json:"domain"`
	Email    string `json:"email"` // the person, who gets a sign-in of the customer
	jwt.RegisteredClaims
}

// handoff takes a token from the hosting's panel.
func (p *Panel) handoff(w http.ResponseWriter, r *http.Request) {
	refuse := func(reason string) {
		p.api.cfg.Logf("handoff refused: %s", reason)
		w.WriteHeader(http.StatusForbidden)
		p.render(w, r, "login", map[string]any{"Title": tr(r, "signin.title"), "Error": tr(r, "handoff.refused"), "Next": "/"})
	}
	key := p.api.cfg.HandoffKey
	if key == nil {
		http.NotFound(w, r)
		return
	}
	var c handoffClaims
	_, err := jwt.ParseWithClaims(r.URL.Query().Get("token"), &c, func(*jwt.Token) (any, error) { return key.key, nil },
		jwt.WithValidMethods(key.methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithAudience("mailmigrate"),
		jwt.WithLeeway(30*time.Second))
	switch {
	case err != nil:
		refuse(err.Error())
		return
	case c.ID == "":
		refuse("the token has no jti")
		return
	case c.IssuedAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > maxHandoffLife:
		refuse("the token lives longer than " + maxHandoffLife.String())
		return
	}
	// A link works once, on whichever server it reaches: its ID holds a
	// slot of its own until the link has expired.
	taken, _, err := p.api.cfg.Slots.Take(r.Context(), []slots.Limit{{Key: "handoff " + c.ID, Max: 1}}, "handoff",
		c.ExpiresAt.Time.Add(time.Minute))
	if err != nil {
		p.api.cfg.Logf("handoff: %v", err)
		http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
		return
	}
	if taken == nil {
		refuse("the token " + c.ID + " was used before")
		return
	}
	u, d, err := p.handoffUser(r.Context(), c)
	if errors.Is(err, store.ErrDisabled) {
		p.api.cfg.Logf("handoff refused: %v", err)
		p.refuseDisabled(w, r)
		return
	}
	if err != nil {
		refuse(err.Error())
		return
	}
	if err := p.startSession(w, r, u); err != nil {
		http.Error(w, tr(r, "error.server"), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/domains/"+d.Name, http.StatusSeeOther)
}

// handoffUser finds the person of a token as a sign-in of its customer,
// made on first use, and the domain, which must be that customer's.
func (p *Panel) handoffUser(ctx context.Context, c handoffClaims) (store.User, store.Domain, error) {
	st := p.api.cfg.Store
	email, err := hosting.NormalizeAddress(strings.TrimSpace(c.Email))
	if err != nil {
		return store.User{}, store.Domain{}, fmt.Errorf("e-mail %q: %w", c.Email, err)
	}
	email = strings.ToLower(email)
	ts, err := st.Tenants(ctx)
	if err != nil {
		return store.User{}, store.Domain{}, err
	}
	var tenant *store.Tenant
	for i := range ts {
		if ts[i].Kind == store.KindCustomer && strings.EqualFold(ts[i].Name, c.Customer) {
			tenant = &ts[i]
		}
	}
	if tenant == nil {
		return store.User{}, store.Domain{}, fmt.Errorf("no customer %q", c.Customer)
	}
	// Checked before a sign-in is made for the person.
	if !tenant.Disabled.IsZero() {
		return store.User{}, store.Domain{}, fmt.Errorf("customer %q: %w", c.Customer, store.ErrDisabled)
	}
	ds, err := st.Domains(ctx, tenant.ID)
	if err != nil {
		return store.User{}, store.Domain{}, err
	}
	var dom *store.Domain
	for i := range ds {
		if strings.EqualFold(ds[i].Name, c.Domain) {
			dom = &ds[i]
		}
	}
	if dom == nil {
		return store.User{}, store.Domain{}, fmt.Errorf("%q is not a domain of %q", c.Domain, c.Customer)
	}
	u, err := st.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		// A sign-in without a password: this person comes through the
		// hosting's panel only.
		u, err = st.CreateUser(ctx, tenant.ID, email, "handoff-only")
	}
	if err != nil {
		return store.User{}, store.Domain{}, err
	}
	if u.TenantID != tenant.ID {
		return store.User{}, store.Domain{}, fmt.Errorf("%s signs in for another customer", email)
	}
	if !u.Disabled.IsZero() {
		return store.User{}, store.Domain{}, fmt.Errorf("%s: %w", email, store.ErrDisabled)
	}
	return u, *dom, nil
}
