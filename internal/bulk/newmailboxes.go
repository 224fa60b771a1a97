package bulk

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"mailmigrate/internal/i18n"
)

// ParseNewMailboxes reads the panel's New Mailbox Migration list, whose
// meaning differs from the CLI's: each line names an OLD mailbox
// ("login old-password [new-password]"), and the mailbox to create is the
// login's local part in domain. The login is the old server's, so it may be
// an address of any domain or a renamed service's "name@identifier". Parts
// are separated by blanks, or by tabs when a line has any (a password with
// spaces, pasted from a spreadsheet). The CSV format (CSVHeader) is read
// too; an empty dest_user there means the derived mailbox. Entry.SourceUser
// is the old login, Entry.DestUser the mailbox to create and
// Entry.DestPassword its password (the old one unless a new one is given).
func ParseNewMailboxes(r io.Reader, domain string) ([]Entry, Errors, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read mailbox list: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var entries []Entry
	var errs Errors
	if first := firstLine(data); strings.EqualFold(strings.ReplaceAll(first, " ", ""), CSVHeader) {
		entries, errs = parseNewCSV(data, domain)
	} else {
		entries, errs = parseNewLines(data, domain)
	}
	dups := checkDuplicates(entries)
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
	errs = append(errs, dups...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return good, errs, nil
}

func parseNewLines(data []byte, domain string) ([]Entry, Errors) {
	var entries []Entry
	var errs Errors
	for n, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		n++
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		var parts []string
		if strings.Contains(trimmed, "\t") {
			for _, p := range strings.Split(trimmed, "\t") {
				if p = strings.Trim(p, " "); p != "" {
					parts = append(parts, p)
				}
			}
		} else {
			parts = strings.Fields(trimmed)
		}
		login := parts[0]
		if reason := checkSourceLogin(login); !reason.IsZero() {
			errs = append(errs, LineError{n, reason})
			continue
		}
		e := Entry{Line: n, SourceUser: login, DestUser: mailboxFor(login, domain)}
		switch len(parts) {
		case 1:
			errs = append(errs, LineError{n, catalog.M("new.no_password", login)})
			continue
		case 2:
			e.SourcePassword, e.DestPassword = parts[1], parts[1]
		case 3:
			e.SourcePassword, e.DestPassword = parts[1], parts[2]
		default:
			errs = append(errs, LineError{n, catalog.M("new.too_many_parts", login)})
			continue
		}
		entries = append(entries, e)
	}
	return entries, errs
}

func parseNewCSV(data []byte, domain string) ([]Entry, Errors) {
	return csvEntries(data, func(e *Entry) i18n.Message {
		if reason := checkSourceLogin(e.SourceUser); !reason.IsZero() {
			return reason
		}
		if e.DestUser == "" {
			e.DestUser = mailboxFor(e.SourceUser, domain)
		}
		if e.DestPassword == "" {
			e.DestPassword = e.SourcePassword
		}
		if e.SourcePassword == "" {
			return catalog.M("csv.no_source_password", e.SourceUser)
		}
		return i18n.Message{}
	})
}

// checkSourceLogin returns why a login cannot be an old mailbox's login,
// or a zero Message. Unlike checkLogin, the part after the @ need not be a domain
// name: a renamed service is logged in to as name@w123456.
func checkSourceLogin(login string) i18n.Message {
	at := strings.LastIndexByte(login, '@')
	switch {
	case login == "":
		return catalog.M("login.empty")
	case at < 0 || at == len(login)-1:
		return catalog.M("new.login.no_domain", login, strings.TrimSuffix(login, "@"))
	case at == 0:
		return catalog.M("login.no_name", login)
	}
	return i18n.Message{}
}

// mailboxFor is the mailbox that New Mailbox Migration creates for an old
// login: the same name (the text before the @) in the customer's domain.
func mailboxFor(login, domain string) string {
	return login[:strings.LastIndexByte(login, '@')] + "@" + domain
}
