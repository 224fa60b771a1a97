package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mailmigrate/internal/jobs"
)

// A page reads in the browser's language until the reader picks one with
// the switch, which is remembered, follows them to the page they were on,
// never leads off the site, and is what their mails are written in.
func TestLanguageOfPages(t *testing.T) {
	p, session, st := signedIn(t)
	h := p.Handler()
	get := func(path, acceptLanguage string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct {
		accept, lang, word string
	}{
		{"cs-CZ,cs;q=0.9,en;q=0.8", "cs", catalog.Text("cs", "home.title")},
		{"sk", "cs", catalog.Text("cs", "home.title")},
		{"en-GB,en;q=0.9", "en", catalog.Text("en", "home.title")},
		{"de-DE", "en", catalog.Text("en", "home.title")},
	} {
		rec := get("/", c.accept, session)
		body := rec.Body.String()
		if !strings.Contains(body, `<html lang="`+c.lang+`">`) || !strings.Contains(body, c.word) {
			t.Errorf("Accept-Language %s: want %s with %q:\n%.300s", c.accept, c.lang, c.word, body)
		}
		if !strings.Contains(rec.Header().Get("Vary"), "Accept-Language") {
			t.Errorf("Vary: %q", rec.Header().Get("Vary"))
		}
	}
	// The switch: remembered in a cookie, back to the page, wins over the browser.
	rec := get("/lang/en?next=/domains/firma.test", "cs", session)
	var langCookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "mm_lang" {
			langCookie = c
		}
	}
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/domains/firma.test" || langCookie == nil || langCookie.Value != "en" {
		t.Fatalf("switch: %d %q %+v", rec.Code, rec.Header().Get("Location"), langCookie)
	}
	if body := get("/domains/firma.test", "cs", session, langCookie).Body.String(); !strings.Contains(body, `<html lang="en">`) {
		t.Error("the chosen language does not win over the browser's")
	}
	// The page offers the switch to the other language, back to itself.
	if body := get("/domains/firma.test", "cs", session).Body.String(); !strings.Contains(body, `href="/lang/en?next=%2fdomains%2ffirma.test"`) {
		t.Errorf("no switch to English on the page:\n%s", body[:min(len(body), 1500)])
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/%09/evil.example"} {
		if loc := get("/lang/cs?next="+next, "").Header().Get("Location"); loc != "/" {
			t.Errorf("next=%s led to %q", next, loc)
		}
	}
	// The signed-in reader's mails follow the switch.
	get("/lang/cs?next=/", "", session)
	users, _ := st.Users(context.Background(), 1)
	if len(users) != 1 || users[0].Lang != "cs" {
		t.Errorf("user's language after the switch: %+v", users)
	}
}

// An API error keeps its stable code and says its words in the language
// the client asks for.
func TestAPIErrorsInRequestedLanguage(t *testing.T) {
	st, _, tok := customerAPI(t)
	h := NewAPI(Config{Store: st, Jobs: noJobs{}, Hosting: jobs.Hosting{Driver: fakeDriver{}}}).Handler()
	body, _ := json.Marshal(map[string]any{"source": map[string]any{"host": ""}, "new_mailboxes": "adam heslo"})
	for lang, words := range map[string][]string{
		"cs": {"migrace nebyla spuštěna", "zadejte adresu IMAP serveru"},
		"en": {"the migration was not started", "enter the IMAP server address"},
	} {
		req := httptest.NewRequest("POST", "/api/v1/domains/firma.test/migrations", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept-Language", lang)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ae struct {
			Code    string `json:"error"`
			Message string `json:"message"`
			Fields  []struct{ Field, Reason string }
			Lines   []struct {
				Line   int
				Reason string
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil {
			t.Fatalf("%s: %v\n%s", lang, err, rec.Body)
		}
		all := ae.Message
		for _, f := range ae.Fields {
			all += "\n" + f.Reason
		}
		for _, l := range ae.Lines {
			all += "\n" + l.Reason
		}
		if rec.Code != http.StatusBadRequest || ae.Code != "invalid" || len(ae.Lines) != 1 {
			t.Errorf("%s: %d %s", lang, rec.Code, rec.Body)
		}
		for _, w := range words {
			if !strings.Contains(all, w) {
				t.Errorf("%s answer lacks %q:\n%s", lang, w, all)
			}
		}
	}
}

// After sign-in or a language switch the browser goes only to a clean
// local path: a tab, a line break or a backslash that a browser would
// drop or turn into a slash leads home instead of to another site.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/domains/firma.test": "/domains/firma.test", "/migrations/3?x=1#y": "/migrations/3?x=1#y", "": "/",
		"//evil.example/": "/", "/\\evil.example": "/", "/\t/evil.example": "/", "/\n/evil.example": "/",
		"/\r/evil.example": "/", "https://evil.example/": "/", "evil.example": "/", "/%09/evil.example": "/%09/evil.example",
		"\\\\evil.example": "/", "/\x7f/x": "/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
