// Package bulk reads lists of mailbox logins: the panel's "one
// login@domain.tld password per line" format and a CSV with separate source
// and destination logins. Every bad line is reported at once, by number
// and reason, and no password is ever repeated in an error.
package bulk

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"mailmigrate/internal/i18n"
)

// Entry is one account to migrate.
type Entry struct {
	Line           int
	SourceUser     string
	SourcePassword string
	DestUser       string
	DestPassword   string
}

// LineError is one rejected line.
type LineError struct {
	Line int
	// Reason is why the line is refused, written in the reader's
	// language where it is shown (its String is English).
	Reason i18n.Message
}

// Error is the refusal in English, for logs.
func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Message is the whole refusal, line number and reason, for the reader's
// language (the Message of the other packages' customer-facing errors).
func (e LineError) Message() i18n.Message { return catalog.M("line", e.Line, e.Reason) }

// Errors is every rejected line of a list.
type Errors []LineError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// CSVHeader is the header line that selects the CSV format.
const CSVHeader = "source_user,source_password,dest_user,dest_password"

// Parse reads a list in either format. On any bad line it returns no
// entries and an Errors value listing every bad line.
func Parse(r io.Reader) ([]Entry, error) {
	entries, errs, err := ParseAll(r)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(entries) == 0 {
		return nil, errors.New("the account list is empty: give one login@domain.tld password per line")
	}
	return entries, nil
}

// ParseAll reads a list in either format and returns the good lines and
// the bad ones, so that a caller can add its own checks of the good lines
// and report every problem at once.
func ParseAll(r io.Reader) ([]Entry, Errors, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read account list: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
	var entries []Entry
	var errs Errors
	if first := firstLine(data); strings.EqualFold(strings.ReplaceAll(first, " ", ""), CSVHeader) {
		entries, errs = parseCSV(data)
	} else {
		entries, errs = parseLines(data)
	}
	dups := checkDuplicates(entries)
	if len(dups) > 0 {
		bad := map[int]bool{}
		for _, e := range dups {
			bad[e.Line] = true
		}
		good := entries[:0]
		for _, e := range entries {
			if !bad[e.Line] {
				good = append(good, e)
			}
		}
		entries = good
	}
	errs = append(errs, dups...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return entries, errs, nil
}

func firstLine(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			return l
		}
	}
	return ""
}

// parseLines reads "login@domain.tld password" lines; the password is the
// rest of the line after the first run of blanks, so it may hold spaces.
// Blank lines and lines starting with # are ignored.
func parseLines(data []byte) ([]Entry, Errors) {
	var entries []Entry
	var errs Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		login, password, _ := strings.Cut(strings.Replace(trimmed, "\t", " ", 1), " ")
		password = strings.TrimLeft(password, " \t")
		if reason := checkLogin(login, false); !reason.IsZero() {
			errs = append(errs, LineError{n, reason})
			continue
		}
		if password == "" {
			errs = append(errs, LineError{n, catalog.M("no_password", login)})
			continue
		}
		entries = append(entries, Entry{Line: n, SourceUser: login, SourcePassword: password,
			DestUser: login, DestPassword: password})
	}
	return entries, errs
}

func parseCSV(data []byte) ([]Entry, Errors) {
	return csvEntries(data, func(e *Entry) i18n.Message {
		switch {
		case e.SourceUser == "":
			return catalog.M("csv.no_source_login")
		case e.SourcePassword == "":
			return catalog.M("csv.no_source_password", e.SourceUser)
		case !checkLogin(e.DestUser, true).IsZero():
			return checkLogin(e.DestUser, true)
		case e.DestPassword == "":
			return catalog.M("csv.no_dest_password", e.DestUser)
		}
		return i18n.Message{}
	})
}

// csvEntries reads a CSV account list (CSVHeader, then one account per
// record) and passes each record's entry to check, which may complete it
// and returns why it is refused, or a zero Message. Blank records are
// skipped.
func csvEntries(data []byte, check func(e *Entry) i18n.Message) ([]Entry, Errors) {
	var entries []Entry
	var errs Errors
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			errs = append(errs, LineError{line, catalog.M("csv.invalid")})
			if pe == nil {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 4 {
			errs = append(errs, LineError{line, catalog.M("csv.columns", len(rec), CSVHeader)})
			continue
		}
		e := Entry{Line: line, SourceUser: strings.TrimSpace(rec[0]), SourcePassword: rec[1],
			DestUser: strings.TrimSpace(rec[2]), DestPassword: rec[3]}
		if reason := check(&e); !reason.IsZero() {
			errs = append(errs, LineError{line, reason})
			continue
		}
		entries = append(entries, e)
	}
	return entries, errs
}

// checkLogin returns why a login is not a full mailbox address, or a zero
// Message; dest tells a CSV's destination login from the source one.
func checkLogin(login string, dest bool) i18n.Message {
	key := func(k string) string {
		if dest {
			return "dest_" + k
		}
		return k
	}
	local, domain, ok := strings.Cut(login, "@")
	switch {
	case login == "":
		return catalog.M(key("login.empty"))
	case !ok || domain == "":
		return catalog.M(key("login.no_domain"), login, strings.TrimSuffix(login, "@"))
	case local == "":
		return catalog.M(key("login.no_name"), login)
	case !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.ContainsAny(domain, "@ "):
		return catalog.M(key("login.not_domain"), login, domain)
	}
	return i18n.Message{}
}

// checkDuplicates rejects a source login or destination mailbox that
// appears twice: two lines would copy into one mailbox, or copy one twice.
func checkDuplicates(entries []Entry) Errors {
	var errs Errors
	src, dst := map[string]int{}, map[string]int{}
	for _, e := range entries {
		if first, ok := src[strings.ToLower(e.SourceUser)]; ok {
			errs = append(errs, LineError{e.Line, catalog.M("duplicate.source", e.SourceUser, first)})
			continue
		}
		if first, ok := dst[strings.ToLower(e.DestUser)]; ok {
			errs = append(errs, LineError{e.Line, catalog.M("duplicate.dest", e.DestUser, first)})
			continue
		}
		src[strings.ToLower(e.SourceUser)] = e.Line
		dst[strings.ToLower(e.DestUser)] = e.Line
	}
	return errs
}
