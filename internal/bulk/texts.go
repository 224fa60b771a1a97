package bulk

import "mailmigrate/internal/i18n"

// texts are the reasons a line of an account list is refused; they are
// kept as Messages (keys and arguments) in LineError.Reason and written
// in the reader's language.
var texts = map[string]string{
	"line":                   "line %d: %s",
	"no_password":            "%s has no password: write the password after the address, separated by a space",
	"login.empty":            "login is empty",
	"login.no_domain":        "login %q has no domain: write the full address, e.g. %s@yourdomain.tld",
	"login.no_name":          "login %q has nothing before the @",
	"login.not_domain":       "login %q: %q is not a domain name",
	"dest_login.empty":       "destination login is empty",
	"dest_login.no_domain":   "destination login %q has no domain: write the full address, e.g. %s@yourdomain.tld",
	"dest_login.no_name":     "destination login %q has nothing before the @",
	"dest_login.not_domain":  "destination login %q: %q is not a domain name",
	"csv.no_source_login":    "the source login is empty",
	"csv.no_source_password": "%s has no source password",
	"csv.no_dest_password":   "%s has no destination password",
	"csv.invalid":            "not valid CSV (check the quotes)",
	"csv.columns":            "has %d columns, expected 4: %s",
	"duplicate.source":       "%s is already listed on line %d",
	"duplicate.dest":         "destination %s is already used on line %d",
	"new.login.no_domain":    "login %q has no domain: write the old mailbox's full login, e.g. %s@old-domain.tld",
	"new.no_password":        "%s has no password: write the old mailbox's password after the login, separated by a space",
	"new.too_many_parts":     "%s: the line has more than three parts (login, old password, new password); for a password with spaces separate the parts with tabs",
}

var catalog = i18n.NewCatalog("bulk", texts, textsCS)
