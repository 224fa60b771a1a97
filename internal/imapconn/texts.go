package imapconn

import "mailmigrate/internal/i18n"

// texts are the refusals of a server address a customer gave; they are
// kept as Messages (keys and arguments) in AddressError and written in
// the reader's language.
var texts = map[string]string{
	"address.empty":     "no server address given: use imaps://imap.example.com",
	"address.invalid":   "server address %q is not valid: %v",
	"address.login":     "server address %q must not contain a login; give the login separately",
	"address.path":      "server address %q has a path or query; give only imaps://host[:port]",
	"address.no_host":   "server address %q has no host name",
	"address.scheme":    "server address %q: unknown scheme %q, use imaps:// (TLS) or imap:// (STARTTLS)",
	"address.port":      "server address %q: port %q is not a number between 1 and 65535",
	"address.forbidden": "this server address points into a private or local network, which is not allowed here; give the provider's public IMAP server name",

	"address.host": "server address %q: %q is not a valid server name",
	// CheckPort's refusal; the ports are strings (a number would be grouped).
	"address.port_forbidden": "server port %s is not allowed here: give the old server's IMAP port (allowed: %s)",
}

var catalog = i18n.NewCatalog("imapconn", texts, textsCS)
