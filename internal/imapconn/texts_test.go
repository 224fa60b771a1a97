package imapconn

import (
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
	var m interface{ Message() i18n.Message }
	for _, in := range []string{"", "imaps://x.cz:99999", "pop3://x.cz", "imaps://user:pw@x.cz", "imaps://x.cz/INBOX", "imaps://:993", "imaps://x.cz:%zz"} {
		_, err := ParseEndpoint(in, false)
		if !errors.As(err, &m) {
			t.Errorf("ParseEndpoint(%q) = %v, without a Message", in, err)
			continue
		}
		if got := m.Message().In(en); got != err.Error() {
			t.Errorf("ParseEndpoint(%q): English message %q, Error() %q", in, got, err.Error())
		}
		if got := m.Message().In(cs); !strings.Contains(got, "adres") || strings.Contains(got, "pw") {
			t.Errorf("ParseEndpoint(%q): Czech message %q", in, got)
		}
	}

	// The refusal of a private address, wrapped as a connection failure,
	// is still the sentinel and still has its words for the customer.
	err := error(&Error{Kind: ErrConnect, Op: "connect", Server: "10.0.0.1:993", Err: ErrForbiddenAddress})
	if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &m) {
		t.Fatalf("%v is not ErrForbiddenAddress with a Message", err)
	}
	if got := m.Message().In(cs); !strings.Contains(got, "privátní nebo místní sítě") {
		t.Errorf("Czech ErrForbiddenAddress = %q", got)
	}
	if got := ErrForbiddenAddress.Error(); !strings.HasPrefix(got, "this server address points into a private") {
		t.Errorf("ErrForbiddenAddress.Error() = %q", got)
	}
}
