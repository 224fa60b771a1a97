package bulk

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLines(t *testing.T) {
	in := "# comment\r\n\r\njana@firma.cz tajné heslo s mezerami  \r\npetr@firma.cz\tp\"w\\{ž}\r\n"
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Line: 3, SourceUser: "jana@firma.cz", SourcePassword: "tajné heslo s mezerami", DestUser: "jana@firma.cz", DestPassword: "tajné heslo s mezerami"},
		{Line: 4, SourceUser: "petr@firma.cz", SourcePassword: `p"w\{ž}`, DestUser: "petr@firma.cz", DestPassword: `p"w\{ž}`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseCSV(t *testing.T) {
	in := "\xef\xbb\xbfsource_user,source_password,dest_user,dest_password\n" +
		"mailbox@w123456,\"a,b\"\"c\",mailbox@firma.cz,new pw\n"
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SourceUser != "mailbox@w123456" || got[0].SourcePassword != `a,b"c` ||
		got[0].DestUser != "mailbox@firma.cz" || got[0].DestPassword != "new pw" || got[0].Line != 2 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseRejectsEveryBadLine(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines []int
		words []string
	}{
		{"seed format", "jana heslo1\njana@firma.cz\nok@firma.cz pw\nOK@firma.cz pw2\n@firma.cz pw\nx@firma pw\n",
			[]int{1, 2, 4, 5, 6}, []string{"no domain", "no password", "already listed on line 3", "nothing before the @", "not a domain"}},
		{"csv", CSVHeader + "\na@b.cz,pw,c@d.cz\na@b.cz,,c@d.cz,pw\na@b.cz,pw,cd,pw\n",
			[]int{2, 3, 4}, []string{"expected 4", "no source password", "no domain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if got != nil {
				t.Errorf("entries returned despite errors: %+v", got)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want line errors", err)
			}
			if len(errs) != len(tc.lines) {
				t.Fatalf("errors = %v, want lines %v", errs, tc.lines)
			}
			for i, e := range errs {
				if e.Line != tc.lines[i] || !strings.Contains(e.Reason.String(), tc.words[i]) {
					t.Errorf("error %d = %v, want line %d with %q", i, e, tc.lines[i], tc.words[i])
				}
			}
			for _, secret := range []string{"heslo1", "pw2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error text reveals a password: %v", err)
				}
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	if _, err := Parse(strings.NewReader("# nothing\n\n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("err = %v, want 'empty'", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a@b.cz pw\n")
	f.Add(CSVHeader + "\na@b.cz,pw,c@d.cz,pw\n")
	f.Add("\"\n,,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := Parse(strings.NewReader(in))
		if err == nil && len(entries) == 0 {
			t.Fatal("no error and no entries")
		}
		for _, e := range entries {
			if e.SourcePassword == "" || e.DestPassword == "" || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
