package hosting

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"jana@firma.cz":                   "jana@firma.cz",
		"Jana.Novakova@FIRMA.CZ":          "Jana.Novakova@firma.cz",
		"o'brien+tag@mail.example":        "o'brien+tag@mail.example",
		"žofie@xn--bcher-kva.test":        "žofie@xn--bcher-kva.test",
		"a_b-c=d@sub.domain.co.uk":        "a_b-c=d@sub.domain.co.uk",
		"x@a-b.c0":                        "x@a-b.c0",
		strings.Repeat("a", 64) + "@x.cz": strings.Repeat("a", 64) + "@x.cz",
	} {
		got, err := NormalizeAddress(in)
		if err != nil || got != want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, wantText := range map[string]string{
		"":                                "empty",
		"jana":                            "no domain",
		"@firma.cz":                       "nothing before the @",
		"jana@":                           "domain is empty",
		"jana@firma":                      "no dot",
		"ja:na@firma.cz":                  "':'",
		"ja na@firma.cz":                  "space",
		"jana@firma.cz\n":                 "control",
		"ja\x00na@firma.cz":               "control",
		"ja/na@firma.cz":                  "'/'",
		"ja%na@firma.cz":                  "'%'",
		".jana@firma.cz":                  "dot",
		"ja..na@firma.cz":                 "dot",
		"jana@firma..cz":                  "empty part",
		"jana@-firma.cz":                  "hyphen",
		"jana@firma_x.cz":                 "'_'",
		"jana@bücher.de":                  "xn--",
		strings.Repeat("a", 65) + "@x.cz": "64",
		"jana@firma.cz:x":                 "':'",
		"\xff@firma.cz":                   "UTF-8",
	} {
		_, err := NormalizeAddress(in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeAddress(%q) = %v, want ErrInvalid", in, err)
			continue
		}
		if !strings.Contains(err.Error(), wantText) {
			t.Errorf("NormalizeAddress(%q): error %q does not mention %q", in, err, wantText)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, ok := range []string{"x", "pa:ss wörd {5}", strings.Repeat("p", maxPasswordBytes)} {
		if err := checkPassword(ok); err != nil {
			t.Errorf("checkPassword(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a\rb", "a\nb", "a\x00b", "\xff\xfe", strings.Repeat("p", maxPasswordBytes+1)} {
		err := checkPassword(bad)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("checkPassword(%q) = %v, want ErrInvalid", bad, err)
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("checkPassword error quotes the password: %v", err)
		}
	}
}
