package bulk

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"mailmigrate/internal/i18n"
)

// checkList holds for what either parser returns: each line is an entry
// or a refusal, never both; entries are complete, in line order and
// without two of one source login or one destination mailbox; refusals
// come in line order and have their words in both languages.
func checkList(t *testing.T, in string, entries []Entry, errs Errors) {
	t.Helper()
	lines := map[int]bool{}
	src, dst := map[string]bool{}, map[string]bool{}
	for i, e := range entries {
		if e.Line < 1 || e.SourceUser == "" || e.SourcePassword == "" || e.DestUser == "" || e.DestPassword == "" {
			t.Fatalf("%q: incomplete entry %+v", in, e)
		}
		if i > 0 && entries[i-1].Line >= e.Line {
			t.Fatalf("%q: entries out of line order: %+v", in, entries)
		}
		if src[strings.ToLower(e.SourceUser)] || dst[strings.ToLower(e.DestUser)] {
			t.Fatalf("%q: a login twice: %+v", in, entries)
		}
		src[strings.ToLower(e.SourceUser)], dst[strings.ToLower(e.DestUser)] = true, true
		lines[e.Line] = true
	}
	if !slices.IsSortedFunc(errs, func(a, b LineError) int { return a.Line - b.Line }) {
		t.Fatalf("%q: refusals out of line order: %v", in, errs)
	}
	cs := i18n.New(i18n.Czech)
	for _, e := range errs {
		if lines[e.Line] {
			t.Fatalf("%q: line %d both taken and refused: %v", in, e.Line, e)
		}
		if e.Reason.IsZero() || e.Message().In(cs) == "" {
			t.Fatalf("%q: refusal without its words: %v", in, e)
		}
	}
}

func FuzzParseNewMailboxes(f *testing.F) {
	for _, s := range []string{
		"zora@w123456 stare-heslo\n",
		"zora@old-domain.cz\tstare heslo\tnove-heslo-1234\n",
		"ZORA@jina.cz heslo\nzora@x.cz heslo\n",
		"adam heslo\n@x.cz pw\nx@ pw\n",
		"petr@old-domain.cz a b c d\n",
		"\xef\xbb\xbf# comment\r\n\r\n  olga@firma.test olga-heslo  \r\n",
		CSVHeader + "\nzora@w1,pw,,\nadam@x.cz,pw,novy@firma.test,pw2\n",
		CSVHeader + "\n\"a@b\",\"p\"\"w\",,\n\"unterminated\n",
		CSVHeader + "\na@b,pw\n,,,\n",
		"a@b\t\t\tpw\n", "a@b \t pw\n", "\t\n", " \u00a0a@b pw\n", "a@b@c pw\n",
	} {
		f.Add(s, "firma.test")
	}
	f.Add("a@b pw\n", "")
	f.Fuzz(func(t *testing.T, in, domain string) {
		entries, errs, err := ParseNewMailboxes(strings.NewReader(in), domain)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		checkList(t, in, entries, errs)
		csv := strings.EqualFold(strings.ReplaceAll(firstLine([]byte(strings.TrimPrefix(in, "\xef\xbb\xbf"))), " ", ""), CSVHeader)
		for _, e := range entries {
			at := strings.LastIndexByte(e.SourceUser, '@')
			if at < 1 || at == len(e.SourceUser)-1 {
				t.Fatalf("%q: source login %q taken", in, e.SourceUser)
			}
			// The lines format always derives the mailbox; CSV may name it.
			if !csv && e.DestUser != e.SourceUser[:at]+"@"+domain {
				t.Fatalf("%q: mailbox %q for %q in %q", in, e.DestUser, e.SourceUser, domain)
			}
			if !csv && (strings.ContainsAny(e.SourceUser, " \t\n") || strings.ContainsAny(e.SourcePassword+e.DestPassword, "\t\n")) {
				t.Fatalf("%q: a separator inside %+v", in, e)
			}
			// Control characters and blanks other than space and tab do
			// reach the mailbox name ("\x00@x.cz pw" gives
			// "\x00@firma.test"): the panel refuses them with
			// hosting.NormalizeAddress, so this package does not.
		}
	})
}

// A line put together from a login and passwords reads back as them, and
// a refusal never repeats a password.
func FuzzParseNewMailboxesLine(f *testing.F) {
	f.Add("zora@w123456", "stare heslo", "")
	f.Add("zora@old-domain.cz", "stare", "nove-heslo-1234")
	f.Add("adam", "heslo", "")
	f.Add("a@b@c", "#x", "y")
	f.Add("", "pw", "")
	f.Fuzz(func(t *testing.T, login, oldPw, newPw string) {
		if strings.ContainsAny(login+oldPw+newPw, "\t\r\n") || login == "" || strings.ContainsFunc(login, unicode.IsSpace) {
			// The separators themselves; and without a login the first
			// password is the login, which a refusal names.
			return
		}
		// Passwords carry a marker that no login or text has, to be found
		// in a refusal should one repeat them.
		oldPw, newPw = "§"+oldPw+"§", "¤"+newPw+"¤"
		if strings.ContainsAny(login, "§¤") {
			return
		}
		line := login + "\t" + oldPw
		if newPw != "¤¤" {
			line += "\t" + newPw
		}
		entries, errs, err := ParseNewMailboxes(strings.NewReader(line+"\n"), "firma.test")
		if err != nil {
			t.Fatal(err)
		}
		checkList(t, line, entries, errs)
		for _, e := range errs {
			for _, lang := range []*i18n.Printer{i18n.New(i18n.English), i18n.New(i18n.Czech)} {
				if s := e.Message().In(lang); strings.ContainsAny(s, "§¤") {
					t.Fatalf("%q: refusal repeats a password: %q", line, s)
				}
			}
		}
		if len(entries)+len(errs) != 1 {
			t.Fatalf("%q: %v and %v", line, entries, errs)
		}
		if len(entries) == 0 {
			return
		}
		e := entries[0]
		wantNew := oldPw
		if newPw != "¤¤" {
			wantNew = newPw
		}
		if e.SourceUser != login || e.SourcePassword != oldPw || e.DestPassword != wantNew {
			t.Fatalf("%q read as %+v", line, e)
		}
	})
}

// ParseAll, the CLI's reading, beyond FuzzParse: the same partition and
// ordering, destination logins that are addresses, and refusals that never
// repeat a password of the CSV.
func FuzzParseAll(f *testing.F) {
	for _, s := range []string{
		"a@b.cz pw\n", "a@b.cz pw\nA@B.CZ pw2\n", "a@b.cz\n", "a b\n", "#x\n\n a@b.cz  p w \n",
		CSVHeader + "\na@b.cz,pw,c@d.cz,pw2\n",
		CSVHeader + "\na@b.cz,,c@d.cz,pw2\nx,pw,y,\n\"a\n",
		"\xef\xbb\xbf" + strings.ToUpper(CSVHeader) + "\r\na@b.cz,\"p,w\",c@d.cz,\"q\"\"\"\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		entries, errs, err := ParseAll(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		checkList(t, in, entries, errs)
		csv := strings.EqualFold(strings.ReplaceAll(firstLine([]byte(strings.TrimPrefix(in, "\xef\xbb\xbf"))), " ", ""), CSVHeader)
		for _, e := range entries {
			// A CSV's source login is the old server's, any name; the
			// mailbox, and a line's login, which is both, are addresses.
			if !checkLogin(e.DestUser, true).IsZero() || !csv && e.SourceUser != e.DestUser {
				t.Fatalf("%q: entry with a bad login %+v", in, e)
			}
		}
		// Parse agrees: all the entries, or none and every refusal.
		got, perr := Parse(strings.NewReader(in))
		switch {
		case len(errs) > 0 && (perr == nil || len(got) > 0):
			t.Fatalf("%q: Parse took %v despite %v", in, got, errs)
		case len(errs) == 0 && len(entries) > 0 && (perr != nil || !slices.Equal(got, entries)):
			t.Fatalf("%q: Parse %v, %v; ParseAll %v", in, got, perr, entries)
		}
	})
}
