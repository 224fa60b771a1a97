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
	"strings"
	"unicode"
	"unicode/utf8"

	"mailmigrate/internal/i18n"
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
// It is kept as a Message, so that the customer reads it in their
// language; Error is the English text, for logs.
type inputError struct{ msg i18n.Message }

func (e *inputError) Error() string        { return e.msg.String() }
func (e *inputError) Is(target error) bool { return target == ErrInvalid }

// Message is the refusal for the customer who typed the input, to be
// written in their language (errors.As with an interface{ Message()
// i18n.Message } finds it).
func (e *inputError) Message() i18n.Message { return e.msg }

// invalid refuses input with a text of the catalog.
func invalid(key string, args ...any) error {
	return &inputError{msg: catalog.M(key, args...)}
}

// invalidAsIs refuses input with a text that exists in one language only:
// the hosting's own words, shown to the customer as they are.
func invalidAsIs(text string) error {
	return &inputError{msg: i18n.Literal(text)}
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
		return "", invalid("address.empty")
	}
	if !utf8.ValidString(address) {
		return "", invalid("address.utf8")
	}
	if i := strings.IndexFunc(address, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }); i >= 0 {
		return "", invalid("address.space", address)
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return "", invalid("address.no_domain", address)
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
		return invalid("address.no_name", address)
	case len(local) > 64:
		return invalid("address.name_long", address)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalid("address.dots", address)
	}
	for _, r := range local {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		// RFC 5322 atext without '/' and '%'.
		if r < utf8.RuneSelf && strings.ContainsRune(".!#$&'*+-=?^_`{|}~", r) {
			continue
		}
		return invalid("address.char", address, r)
	}
	return nil
}

// NormalizeDomain checks a domain name and returns it lower-cased.
func NormalizeDomain(domain string) (string, error) {
	d := strings.ToLower(domain)
	if d == "" {
		return "", invalid("domain.empty")
	}
	if len(d) > 253 {
		return "", invalid("domain.long", domain)
	}
	for _, r := range d {
		if r >= utf8.RuneSelf {
			return "", invalid("domain.non_ascii", domain)
		}
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", invalid("domain.no_dot", domain)
	}
	for _, l := range labels {
		if l == "" {
			return "", invalid("domain.empty_part", domain)
		}
		if len(l) > 63 {
			return "", invalid("domain.part_long", domain)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", invalid("domain.hyphen", domain)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", invalid("domain.char", domain, rune(c))
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
		return invalid("password.empty")
	case len(password) > maxPasswordBytes:
		return invalid("password.long", maxPasswordBytes)
	case !utf8.ValidString(password):
		return invalid("password.utf8")
	case strings.ContainsAny(password, "\r\n\x00"):
		return invalid("password.line_break")
	}
	return nil
}

func checkQuota(quotaBytes int64) error {
	if quotaBytes < 0 {
		return invalid("quota.negative", quotaBytes)
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
