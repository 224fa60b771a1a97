// Package hosting is the destination side of a mail hosting: the IMAP
// server mail is migrated into, and a Driver that knows its mailboxes
// (lists a domain, creates a mailbox, reads a quota).
//
// Two drivers exist: PasswdFile manages a Dovecot passwd-file directly,
// Command delegates every operation to executables the operator supplies
// (see COMMAND.md).
package hosting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mailbox is one mailbox on the hosting.
type Mailbox struct {
	Address string // local@domain.tld
	// QuotaBytes is the storage limit: 0 = unlimited (no per-mailbox
	// limit), -1 = there is a limit the driver cannot express in bytes
	// (for example a Dovecot rule relative to the default, "10%").
	QuotaBytes int64
	UsedBytes  int64 // -1 when unknown
}

// Driver manages mailboxes of the hosting.
type Driver interface {
	// List returns the mailboxes of a domain, sorted by address.
	List(ctx context.Context, domain string) ([]Mailbox, error)
	// Create adds a mailbox with a password and quota (0 = the driver's
	// default quota). ErrExists if it exists. When Create returns nil the
	// mailbox can log in over IMAP.
	Create(ctx context.Context, address, password string, quotaBytes int64) error
	// Quota reads a mailbox's limit and usage. ErrNotFound if there is no
	// such mailbox.
	Quota(ctx context.Context, address string) (Mailbox, error)
}

var (
	// ErrExists is returned (wrapped) by Create when the mailbox exists.
	ErrExists = errors.New("mailbox already exists")
	// ErrNotFound is returned (wrapped) when there is no such mailbox.
	ErrNotFound = errors.New("no such mailbox")
	// ErrInvalid matches (errors.Is) every error about bad input: an
	// address, domain, password or quota that was refused before anything
	// was changed. Its text is written for the customer who typed it.
	ErrInvalid = errors.New("invalid input")
)

// inputError is a refusal of caller input; its text says what to fix.
type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// maxPasswordBytes bounds a password so hashing and the command contract
// stay cheap; no person types more.
const maxPasswordBytes = 1024

// NormalizeAddress checks a mailbox address and returns it with the domain
// lower-cased. The local part keeps its case (mail servers may treat it as
// case-sensitive) but the drivers compare addresses case-insensitively, so
// "Jana@x.cz" and "jana@x.cz" cannot both exist.
//
// Allowed: a local part of letters, digits and the RFC 5322 atext symbols
// except '/' and '%' (the address becomes a path and a Dovecot template),
// dots only between other characters; a domain of ASCII letters, digits and
// hyphens with at least one dot (internationalised domains in their xn--
// form).
func NormalizeAddress(address string) (string, error) {
	if address == "" {
		return "", invalidf("the mailbox address is empty: enter it as name@domain.tld")
	}
	if !utf8.ValidString(address) {
		return "", invalidf("the mailbox address is not valid UTF-8 text: type it again")
	}
	if i := strings.IndexFunc(address, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }); i >= 0 {
		return "", invalidf("the mailbox address %q contains a space or control character: remove it", address)
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return "", invalidf("the mailbox address %q has no domain: enter it as name@domain.tld", address)
	}
	local, domain := address[:at], address[at+1:]
	if err := checkLocalPart(address, local); err != nil {
		return "", err
	}
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

func checkLocalPart(address, local string) error {
	switch {
	case local == "":
		return invalidf("the mailbox address %q has nothing before the @: enter it as name@domain.tld", address)
	case len(local) > 64:
		return invalidf("the name before the @ in %q is longer than 64 characters: choose a shorter one", address)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalidf("the mailbox address %q has a dot at the start or end of the name, or two dots in a row: remove the extra dot", address)
	}
	for _, r := range local {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		// RFC 5322 atext without '/' and '%'.
		if r < utf8.RuneSelf && strings.ContainsRune(".!#$&'*+-=?^_`{|}~", r) {
			continue
		}
		return invalidf("the mailbox address %q contains %q, which a mailbox name cannot have: use letters, digits, dots, hyphens or underscores", address, r)
	}
	return nil
}

// NormalizeDomain checks a domain name and returns it lower-cased.
func NormalizeDomain(domain string) (string, error) {
	d := strings.ToLower(domain)
	if d == "" {
		return "", invalidf("the domain is empty: enter it as domain.tld")
	}
	if len(d) > 253 {
		return "", invalidf("the domain %q is longer than 253 characters: check it", domain)
	}
	for _, r := range d {
		if r >= utf8.RuneSelf {
			return "", invalidf("the domain %q has accented or non-Latin letters: enter it in its ASCII form (xn--…), as your domain registrar shows it", domain)
		}
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", invalidf("the domain %q has no dot: enter the full domain, such as example.cz", domain)
	}
	for _, l := range labels {
		if l == "" {
			return "", invalidf("the domain %q has an empty part (a dot at the start or end, or two dots in a row): remove the extra dot", domain)
		}
		if len(l) > 63 {
			return "", invalidf("a part of the domain %q is longer than 63 characters: check it", domain)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", invalidf("a part of the domain %q starts or ends with a hyphen: check it", domain)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", invalidf("the domain %q contains %q: a domain has only letters, digits, hyphens and dots", domain, rune(c))
			}
		}
	}
	return d, nil
}

// checkPassword refuses passwords that IMAP LOGIN or the storage formats
// cannot carry. The password itself never appears in the error.
func checkPassword(password string) error {
	switch {
	case password == "":
		return invalidf("the password is empty: choose a password")
	case len(password) > maxPasswordBytes:
		return invalidf("the password is longer than %d bytes: choose a shorter one", maxPasswordBytes)
	case !utf8.ValidString(password):
		return invalidf("the password is not valid UTF-8 text: type it again")
	case strings.ContainsAny(password, "\r\n\x00"):
		return invalidf("the password contains a line break or NUL character, which mail programs cannot send: choose another")
	}
	return nil
}

func checkQuota(quotaBytes int64) error {
	if quotaBytes < 0 {
		return invalidf("the quota %d is negative: give a size in bytes, or 0 for the default", quotaBytes)
	}
	return nil
}

// domainOf returns the lower-cased domain of an address ("" if none).
func domainOf(address string) string {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(address[at+1:])
}
