package bulk

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

	in := CSVHeader + "\na@b.cz,tajne1,c@d.cz\na@b.cz,tajne2,cd,tajne3\n"
	_, err := Parse(strings.NewReader(in))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("err = %v, want two line errors", err)
	}
	cs, en := i18n.New(i18n.Czech), i18n.New(i18n.English)
	for _, e := range errs {
		var m interface{ Message() i18n.Message }
		if !errors.As(error(e), &m) {
			t.Fatalf("%v has no Message", e)
		}
		if got := m.Message().In(en); got != e.Error() {
			t.Errorf("English message %q, Error() %q", got, e.Error())
		}
		czech := m.Message().In(cs)
		if !strings.HasPrefix(czech, "řádek ") {
			t.Errorf("Czech message %q does not start with the line", czech)
		}
		for _, secret := range []string{"tajne1", "tajne2", "tajne3"} {
			if strings.Contains(czech, secret) {
				t.Errorf("Czech message reveals a password: %q", czech)
			}
		}
	}
	if got := errs[0].Reason.In(cs); !strings.Contains(got, "sloupců") {
		t.Errorf("Czech reason of a short CSV record = %q", got)
	}
	if got := errs[1].Reason.In(cs); !strings.Contains(got, "cílové přihlašovací jméno") {
		t.Errorf("Czech reason of a bad destination login = %q", got)
	}

	// The reasons are stored (a migration's submission, an API answer) and
	// written later.
	data, err := json.Marshal(errs)
	if err != nil {
		t.Fatal(err)
	}
	var back Errors
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Error() != errs.Error() || back[1].Reason.In(cs) != errs[1].Reason.In(cs) {
		t.Errorf("after JSON: %v, want %v", back, errs)
	}
}
