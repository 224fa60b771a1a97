package web

import (
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailmigrate/internal/i18n"
)

// The guidance of a well-known provider (app passwords, IMAP access) is
// shown beside the login fields once the old server's name or an old
// login names it (the first word of a line of new mailboxes: the rest are
// passwords), on a check as on a search for the server, in the reader's language; a
// server no table knows shows none.
func TestPanelProviderHints(t *testing.T) {
	p, cookie, _ := signedIn(t)
	hintsOf := func(lang string, form url.Values) []string {
		req := httptest.NewRequest("POST", "/domains/firma.test", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", lang)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, req)
		box := regexp.MustCompile(`(?s)<div id="provider-hints"[^>]*>(.*?)</div>`).FindStringSubmatch(rec.Body.String())
		if box == nil {
			t.Fatalf("no hint box in the page (%d)", rec.Code)
		}
		var ids []string
		for _, m := range regexp.MustCompile(`data-provider="([^"]+)">([^<]*)<`).FindAllStringSubmatch(box[1], -1) {
			ids = append(ids, m[1]+": "+m[2])
		}
		return ids
	}
	for _, c := range []struct {
		name string
		lang string
		form url.Values
		want []string // provider ID and a piece of its hint
	}{
		{"server name", "en", url.Values{"action": {"check"}, "source_host": {"imap.seznam.cz"}},
			[]string{"seznam: Seznam.cz needs an application password"}},
		{"old login of a mailbox here", "en", url.Values{"action": {"check"}, "source_host": {"imap.example.net"},
			"su:jana@firma.test": {"jana.novakova@icloud.com"}}, []string{"icloud: iCloud Mail needs an app-specific password"}},
		{"new mailbox lines and the address to discover", "cs", url.Values{"action": {"discover"}, "source_host": {"imap.example.net"},
			"new_mailboxes": {"petr@yahoo.com heslo1234567\neva@gmx.de,heslo1234567\nnew@firma.test x@icloud.com"}, "discover_address": {"x@zoho.eu"}},
			[]string{"zoho-eu: Služba Zoho Mail (EU) vyžaduje", "yahoo: Služba Yahoo Mail vyžaduje", "gmx: Služba GMX vyžaduje"}},
		{"nothing known", "en", url.Values{"action": {"check"}, "source_host": {"imap.example.net"},
			"su:jana@firma.test": {"jana@notgmail.com"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hintsOf(c.lang, c.form)
			if len(got) != len(c.want) {
				t.Fatalf("hints %q, want %q", got, c.want)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("hint %d: %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

// The page's script gets every hint and what finds it, in the page's
// language.
func TestHintTable(t *testing.T) {
	table := hintTable(i18n.New(i18n.Czech))
	found := map[string]providerHint{}
	for _, h := range table {
		found[h.ID] = h
	}
	if h := found["gmail"]; h.Host != "imap.gmail.com" || len(h.Domains) == 0 || !strings.Contains(h.Text, "vyžaduje") {
		t.Errorf("gmail: %+v", h)
	}
	if h := found["google-workspace"]; h.Text == "" || len(h.Domains) != 0 {
		t.Errorf("google workspace (found by MX only): %+v", h)
	}
}
