package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mailmigrate/internal/store"
)

// The hosting's panel signs its customer in with a short-lived token:
// taken once, for that customer's own domain only, signed with the
// configured key only, never for longer than a few minutes.
func TestHandoff(t *testing.T) {
	secret := []byte("a shared secret of the hosting panel, 48 bytes..")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	for _, c := range []struct {
		name   string
		keyPEM []byte
		sign   func(jwt.Claims) string
	}{
		{"shared secret", secret, func(cl jwt.Claims) string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(secret)
			return s
		}},
		{"Ed25519 key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), func(cl jwt.Claims) string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, cl).SignedString(priv)
			return s
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, _, st := signedIn(t)
			key, err := ParseHandoffKey(c.keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			p.api.cfg.HandoffKey = key
			// Links taken are kept in the database that all servers share.
			p.api.cfg.Slots = st.(*store.DB).Slots()
			ctx := context.Background()
			other, _ := st.CreateTenant(ctx, "Jiná firma", store.KindCustomer)
			st.CreateDomain(ctx, store.Domain{TenantID: other.ID, Name: "jina.test"})
			h := p.Handler()
			now := time.Now()
			claims := func(mod func(*handoffClaims)) handoffClaims {
				cl := handoffClaims{Customer: "Firma", Domain: "firma.test", Email: "petr@firma.test",
					RegisteredClaims: jwt.RegisteredClaims{ID: NewToken(), Audience: jwt.ClaimStrings{"mailmigrate"},
						IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Minute))}}
				if mod != nil {
					mod(&cl)
				}
				return cl
			}
			follow := func(token string) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/handoff?token="+url.QueryEscape(token), nil))
				return rec
			}
			good := c.sign(claims(nil))
			rec := follow(good)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/domains/firma.test" || len(rec.Result().Cookies()) != 1 {
				t.Fatalf("a good token: %d %q", rec.Code, rec.Header().Get("Location"))
			}
			// The session opens the domain's page.
			req := httptest.NewRequest("GET", "/domains/firma.test", nil)
			req.AddCookie(rec.Result().Cookies()[0])
			page := httptest.NewRecorder()
			h.ServeHTTP(page, req)
			if page.Code != 200 || !strings.Contains(page.Body.String(), "petr@firma.test") {
				t.Errorf("the handed-off session: %d", page.Code)
			}
			// Another web server on the same database refuses it too.
			elsewhere := httptest.NewRecorder()
			NewPanel(NewAPI(p.api.cfg)).Handler().ServeHTTP(elsewhere, httptest.NewRequest("GET", "/handoff?token="+url.QueryEscape(good), nil))
			if elsewhere.Code != http.StatusForbidden {
				t.Errorf("a token taken on one server, replayed on another: %d", elsewhere.Code)
			}
			otherSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("another secret, not the hosting's, 48 bytes long"))
			noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			for name, token := range map[string]string{
				"replayed": good,
				"expired": c.sign(claims(func(cl *handoffClaims) {
					cl.IssuedAt = jwt.NewNumericDate(now.Add(-10 * time.Minute))
					cl.ExpiresAt = jwt.NewNumericDate(now.Add(-5 * time.Minute))
				})),
				"wrong key":        otherSecret,
				"alg none":         noneToken,
				"another's domain": c.sign(claims(func(cl *handoffClaims) { cl.Domain = "jina.test" })),
				"unknown customer": c.sign(claims(func(cl *handoffClaims) { cl.Customer = "Nikdo" })),
				"lives too long":   c.sign(claims(func(cl *handoffClaims) { cl.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour)) })),
				"no jti":           c.sign(claims(func(cl *handoffClaims) { cl.ID = "" })),
				"no expiry":        c.sign(claims(func(cl *handoffClaims) { cl.ExpiresAt = nil })),
				"other audience":   c.sign(claims(func(cl *handoffClaims) { cl.Audience = jwt.ClaimStrings{"webmail"} })),
				"another's user": c.sign(claims(func(cl *handoffClaims) {
					cl.Customer, cl.Domain = "Jiná firma", "jina.test"
					cl.Email = "jana@firma.test"
				})),
				"garbage": "not.a.token",
			} {
				if rec := follow(token); rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
					t.Errorf("%s: %d, cookies %v", name, rec.Code, rec.Result().Cookies())
				}
			}
			// A disabled customer's people are told so, and no sign-in is
			// made for a new one.
			firma, _ := st.DomainByName(ctx, "firma.test")
			if err := st.SetTenantDisabled(ctx, firma.TenantID, true); err != nil {
				t.Fatal(err)
			}
			for _, email := range []string{"petr@firma.test", "nova@firma.test"} {
				rec := follow(c.sign(claims(func(cl *handoffClaims) { cl.Email = email })))
				if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 || !strings.Contains(rec.Body.String(), "disabled by the hosting") {
					t.Errorf("%s of a disabled customer: %d, cookies %v", email, rec.Code, rec.Result().Cookies())
				}
			}
			if _, err := st.UserByEmail(ctx, "nova@firma.test"); err == nil {
				t.Error("a sign-in was made for a disabled customer")
			}
		})
	}
	if _, err := ParseHandoffKey([]byte("short")); err == nil {
		t.Error("a 5-byte secret was taken")
	}
}
