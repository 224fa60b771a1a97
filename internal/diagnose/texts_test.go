package diagnose

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
)

func TestCatalogComplete(t *testing.T) {
	for _, p := range catalog.Check() {
		t.Error(p)
	}
}

// A diagnosis is data until it is shown: stored as JSON (a task's
// failure, a kept check) and read back, it still reads in either language.
func TestDiagnosisInCzech(t *testing.T) {
	cs := i18n.New(i18n.Czech)
	d := Login(context.Background(), LoginAttempt{
		Server: imapconn.Endpoint{Host: "imap.gmail.com", Port: 993},
		User:   "jana",
		Err:    &imapconn.Error{Kind: imapconn.ErrAuth, Text: "Invalid credentials"},
	})
	if codes(d) != "no_domain,app_password,password" {
		t.Fatalf("reasons %s", codes(d))
	}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Diagnosis
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back.Summary.In(cs), `Původní server odmítl přihlášení jménem "jana".`; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	for code, want := range map[string]string{
		"no_domain":    `Přihlašovací jméno "jana" neobsahuje doménu. Většina serverů vyžaduje celou adresu, například jana@vasedomena.cz.`,
		"app_password": "Služba Gmail vyžaduje heslo pro aplikace (musí být zapnuté dvoufázové ověření;",
		"password":     "Heslo může být staré nebo chybně zadané.",
	} {
		for _, r := range back.Reasons {
			if r.Code == code && !strings.Contains(r.Advice.In(cs), want) {
				t.Errorf("%s: %q, want it to contain %q", code, r.Advice.In(cs), want)
			}
		}
	}

	// What is shown carries plain strings.
	data, _ = json.Marshal(d.Localize(cs))
	var shown struct {
		Summary string
		Reasons []struct{ Code, Advice string }
	}
	if err := json.Unmarshal(data, &shown); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	if !strings.HasPrefix(shown.Summary, "Původní server") || len(shown.Reasons) != 3 || !strings.HasPrefix(shown.Reasons[1].Advice, "Služba Gmail") {
		t.Errorf("localized diagnosis %s", data)
	}
	if d.Summary.Key == "" {
		t.Error("Localize changed the diagnosis it copied")
	}
}

func TestDNSRowInCzech(t *testing.T) {
	r := startDNS(t, checkZone)
	rows, err := CheckDNS(context.Background(), r, "old.cz", testExpect)
	if err != nil {
		t.Fatal(err)
	}
	cs := i18n.New(i18n.Czech)
	want := map[string]string{
		"MX old.cz":              "Nastavte záznam MX domény old.cz na mx.hosting.example (priorita 10). Nyní směřuje na mx.old-provider.tld, takže nová pošta stále přichází k původnímu poskytovateli.",
		"CNAME imap.old.cz":      "Nyní směřuje na CNAME imap.old-provider.tld (198.51.100.20): poštovní programy nastavené na imap.old.cz stále čtou poštu z původního serveru.",
		"SRV _imaps._tcp.old.cz": "Nasměrujte ho na imap.hosting.example, port 993, nebo ho smažte.",
	}
	for _, row := range rows {
		shown := row.Localize(cs)
		if w, ok := want[row.Record+" "+row.Name]; ok && !strings.Contains(shown.Advice.String(), w) {
			t.Errorf("%s %s: %q, want it to contain %q", row.Record, row.Name, shown.Advice, w)
		}
		if row.Record == "SRV" && row.Name == "_imaps._tcp.old.cz" && shown.Expected.String() != "0 1 993 imap.hosting.example, nebo žádný záznam" {
			t.Errorf("SRV expected %q", shown.Expected)
		}
	}
}

// A count is written with the plural form it needs.
func TestSPFRecordsPlural(t *testing.T) {
	for n, want := range map[int]string{2: "má 2 záznamy SPF", 5: "má 5 záznamů SPF"} {
		if got := catalog.M("advice.spf.many", "firma.cz", i18n.Count(n), "_spf.hosting.example").In(i18n.New(i18n.Czech)); !strings.Contains(got, want) {
			t.Errorf("%d: %q", n, got)
		}
	}
	if got := catalog.M("advice.spf.many", "firma.cz", i18n.Count(2), "_spf.hosting.example").String(); !strings.HasPrefix(got, "firma.cz has 2 SPF records;") {
		t.Errorf("English: %q", got)
	}
}
