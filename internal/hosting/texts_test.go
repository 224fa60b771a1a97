package hosting

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"mailmigrate/internal/i18n"
)

func TestTextsInBothLanguages(t *testing.T) {
	for _, p := range catalog.Check() {
		t.Error(p)
	}

	cs, en := i18n.New(i18n.Czech), i18n.New(i18n.English)
	_, err := NormalizeAddress("ja/na@firma.cz")
	var m interface{ Message() i18n.Message }
	if !errors.As(err, &m) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("NormalizeAddress error %v has no Message or is not ErrInvalid", err)
	}
	if got := m.Message().In(en); got != err.Error() {
		t.Errorf("English message %q, Error() %q", got, err.Error())
	}
	if got := m.Message().In(cs); !strings.Contains(got, "adresa schránky") || !strings.Contains(got, `"ja/na@firma.cz"`) || !strings.Contains(got, "'/'") {
		t.Errorf("Czech message = %q", got)
	}

	// A Message survives storage: the rune argument comes back as a
	// number and is still written as a character.
	data, err := json.Marshal(m.Message())
	if err != nil {
		t.Fatal(err)
	}
	var back i18n.Message
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back.In(cs), m.Message().In(cs); got != want {
		t.Errorf("after JSON: %q, want %q", got, want)
	}

	if err := CheckNewPassword("jana@firma.cz", "kratke"); !errors.As(err, &m) || !strings.Contains(m.Message().In(cs), "heslo je kratší") {
		t.Errorf("CheckNewPassword: %v", err)
	}

	// The hosting's own words are shown as they are, in either language.
	err = invalidAsIs("Váš tarif dovoluje nejvýše 50 GB.")
	if !errors.As(err, &m) || m.Message().In(en) != "Váš tarif dovoluje nejvýše 50 GB." || !errors.Is(err, ErrInvalid) {
		t.Errorf("invalidAsIs: %v", err)
	}
}
