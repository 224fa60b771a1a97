package hosting

import "mailmigrate/internal/i18n"

// texts are the refusals of input a customer typed (a mailbox address, a
// domain, a password, a quota, an alias); they are kept as Messages (keys
// and arguments) and written in the reader's language.
var texts = map[string]string{
	"address.empty":           "the mailbox address is empty: enter it as name@domain.tld",
	"address.utf8":            "the mailbox address is not valid UTF-8 text: type it again",
	"address.space":           "the mailbox address %q contains a space or control character: remove it",
	"address.no_domain":       "the mailbox address %q has no domain: enter it as name@domain.tld",
	"address.no_name":         "the mailbox address %q has nothing before the @: enter it as name@domain.tld",
	"address.name_long":       "the name before the @ in %q is longer than 64 characters: choose a shorter one",
	"address.dots":            "the mailbox address %q has a dot at the start or end of the name, or two dots in a row: remove the extra dot",
	"address.char":            "the mailbox address %q contains %q, which a mailbox name cannot have: use letters, digits, dots, hyphens or underscores",
	"domain.empty":            "the domain is empty: enter it as domain.tld",
	"domain.long":             "the domain %q is longer than 253 characters: check it",
	"domain.non_ascii":        "the domain %q has accented or non-Latin letters: enter it in its ASCII form (xn--…), as your domain registrar shows it",
	"domain.no_dot":           "the domain %q has no dot: enter the full domain, such as example.cz",
	"domain.empty_part":       "the domain %q has an empty part (a dot at the start or end, or two dots in a row): remove the extra dot",
	"domain.part_long":        "a part of the domain %q is longer than 63 characters: check it",
	"domain.hyphen":           "a part of the domain %q starts or ends with a hyphen: check it",
	"domain.char":             "the domain %q contains %q: a domain has only letters, digits, hyphens and dots",
	"password.empty":          "the password is empty: choose a password",
	"password.long":           "the password is longer than %d bytes: choose a shorter one",
	"password.utf8":           "the password is not valid UTF-8 text: type it again",
	"password.line_break":     "the password contains a line break or NUL character, which mail programs cannot send: choose another",
	"password.short":          "the password is shorter than %d characters: choose a longer one",
	"password.own_name":       "the password is the mailbox's own name: choose one that others cannot guess",
	"password.common":         "the password is one of the most commonly used passwords, which are tried first by attackers: choose another",
	"password.long_blf_crypt": "the password is longer than 72 bytes, the most this server's password format keeps: choose a shorter one",
	"quota.negative":          "the quota %d is negative: give a size in bytes, or 0 for the default",
	"quota.zero":              "the quota must be a size above zero, such as 2G",
	"alias.self":              "the alias %s cannot deliver to itself: give another address",
	"alias.no_targets":        "the alias %s has no address to deliver to: give at least one",
	"alias.too_many":          "the alias %s has more than %d addresses to deliver to: use fewer",
	"refused":                 "the hosting refused the value: check it and try again",
}

var catalog = i18n.NewCatalog("hosting", texts, textsCS)
