// Package i18n is what every customer-facing sentence needs to exist in
// Czech and English: the reader's language (from a browser's
// Accept-Language, a cookie or the environment), catalogs that hold each
// text in both languages, plural forms, and numbers, sizes and dates as
// each language writes them. Numbers and plural rules come from
// golang.org/x/text (CLDR data); the words are the packages' own.
package i18n

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Lang is a language the customers read.
type Lang string

// The languages, English first: it is the default.
const (
	English Lang = "en"
	Czech   Lang = "cs"
)

// All lists the languages in the order the language switch shows them.
var All = []Lang{Czech, English}

// Parse reads a language code ("cs", "en-US", "CS_cz.UTF-8").
func Parse(s string) (Lang, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	base, _, _ := strings.Cut(strings.NewReplacer("_", "-", ".", "-").Replace(s), "-")
	switch base {
	case "cs", "sk": // Slovak readers read Czech more easily than English
		return Czech, true
	case "en":
		return English, true
	}
	return English, false
}

var matcher = language.NewMatcher([]language.Tag{language.English, language.Czech, language.Slovak})

// FromAcceptLanguage picks the language of an Accept-Language header:
// the first of its languages that is ours (Slovak reads as Czech),
// English when none is.
func FromAcceptLanguage(header string) Lang {
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(tags) == 0 {
		return English
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No || i == 0 {
		return English
	}
	return Czech
}

// FromEnv picks the language of a command-line program the way POSIX
// programs do: LC_ALL, then LC_MESSAGES, then LANG; English by default.
func FromEnv(getenv func(string) string) Lang {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			l, _ := Parse(v)
			return l
		}
	}
	return English
}

func (l Lang) tag() language.Tag {
	if l == Czech {
		return language.Czech
	}
	return language.English
}

// Name is the language's name in itself, for the language switch.
func (l Lang) Name() string {
	if l == Czech {
		return "Česky"
	}
	return "English"
}

// Printer writes texts, numbers, sizes and dates in one language.
type Printer struct {
	Lang Lang
	p    *message.Printer
}

// New returns the Printer of a language.
func New(l Lang) *Printer {
	if l != Czech {
		l = English
	}
	return &Printer{Lang: l, p: message.NewPrinter(l.tag())}
}

// Sprintf is fmt.Sprintf with numbers written as the language writes
// them (1,6 and 1 234 in Czech, with a non-breaking space).
func (p *Printer) Sprintf(format string, args ...any) string {
	return p.p.Sprintf(format, args...)
}

// Bytes writes a size the way people read it: "1.6 MB", "1,6 MB".
func (p *Printer) Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return p.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return p.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return p.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return p.Sprintf("%d B", n)
}

// Time writes a moment to the minute: "2026-11-27 09:04" in English (the
// unambiguous form), "27. 11. 2026 9:04" in Czech.
func (p *Printer) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if p.Lang == Czech {
		// Czech writes the hour without a leading zero, which Go's
		// layouts cannot say.
		return t.Format("2. 1. 2006 ") + strconv.Itoa(t.Hour()) + t.Format(":04")
	}
	return t.Format("2006-01-02 15:04")
}

// Clock writes a time of day in the local time zone: "09:04" in English,
// "9:04" in Czech.
func (p *Printer) Clock(t time.Time) string {
	t = t.Local()
	if p.Lang == Czech {
		return strconv.Itoa(t.Hour()) + t.Format(":04")
	}
	return t.Format("15:04")
}

// Date writes a day: "2026-11-27", "27. 11. 2026".
func (p *Printer) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if p.Lang == Czech {
		return t.Format("2. 1. 2006")
	}
	return t.Format("2006-01-02")
}

// form picks the plural form of n among a text's forms, which are
// separated by "|": English "one|other", Czech "one|few|other" (1 složka,
// 2 složky, 5 složek).
func (p *Printer) form(forms string, n int) string {
	parts := strings.Split(forms, "|")
	var i int
	switch plural.Cardinal.MatchPlural(p.Lang.tag(), n, 0, 0, 0, 0) {
	case plural.One:
		i = 0
	case plural.Few:
		i = 1
	default:
		i = len(parts) - 1
	}
	return parts[min(i, len(parts)-1)]
}

// Catalog is one package's texts by key, each in every language. Keys
// whose text has plural forms ("%d folder|%d folders") are printed with N.
type Catalog struct {
	name  string
	texts map[Lang]map[string]string
}

// NewCatalog makes a catalog of the English and Czech texts of a package,
// whose Messages can be written by any package (name is unique).
func NewCatalog(name string, en, cs map[string]string) *Catalog {
	c := &Catalog{name: name, texts: map[Lang]map[string]string{English: en, Czech: cs}}
	register(c)
	return c
}

// text looks a key up; a missing key shows itself (and fails Check).
func (c *Catalog) text(l Lang, key string) string {
	if s, ok := c.texts[l][key]; ok {
		return s
	}
	if s, ok := c.texts[English][key]; ok && l != English {
		return s
	}
	return "[" + key + "]"
}

// T is a text in the printer's language, formatted with args.
func (c *Catalog) T(p *Printer, key string, args ...any) string {
	s := c.text(p.Lang, key)
	if len(args) == 0 {
		return s
	}
	return p.Sprintf(s, args...)
}

// N is a text with plural forms, chosen by n and formatted with n first,
// then args.
func (c *Catalog) N(p *Printer, key string, n int, args ...any) string {
	return p.Sprintf(p.form(c.text(p.Lang, key), n), append([]any{n}, args...)...)
}

// Text is a key's text in a language, unformatted.
func (c *Catalog) Text(l Lang, key string) string { return c.text(l, key) }

var verb = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// Check lists what a translation lacks: keys with no text in a language,
// texts whose formatting verbs differ from the English ones, and plural
// texts with the wrong number of forms.
func (c *Catalog) Check() []string {
	var problems []string
	keys := map[string]bool{}
	for _, l := range All {
		for k := range c.texts[l] {
			keys[k] = true
		}
	}
	forms := map[Lang]int{English: 2, Czech: 3}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		en, ok := c.texts[English][k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %q has no English text", c.name, k))
			continue
		}
		for _, l := range All {
			s, ok := c.texts[l][k]
			switch {
			case !ok || strings.TrimSpace(s) == "":
				problems = append(problems, fmt.Sprintf("%s: %q has no %s text", c.name, k, l))
				continue
			case strings.Contains(en, "|") && len(strings.Split(s, "|")) != forms[l]:
				problems = append(problems, fmt.Sprintf("%s: %q in %s needs %d plural forms separated by |", c.name, k, l, forms[l]))
			}
			for _, form := range strings.Split(s, "|") {
				if got, want := verb.FindAllString(form, -1), verb.FindAllString(strings.Split(en, "|")[0], -1); !slices.Equal(got, want) {
					problems = append(problems, fmt.Sprintf("%s: %q in %s has the verbs %v, English %v", c.name, k, l, got, want))
				}
			}
		}
	}
	return problems
}
