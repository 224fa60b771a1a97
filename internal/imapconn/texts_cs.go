package imapconn

// textsCS is texts in Czech: the same keys, the same verbs in the same order.
var textsCS = map[string]string{
	"address.empty":     "nebyla zadána adresa serveru: zadejte ji ve tvaru imaps://imap.example.com",
	"address.invalid":   "adresa serveru %q není platná: %v",
	"address.login":     "adresa serveru %q nesmí obsahovat přihlašovací jméno; zadejte přihlašovací jméno zvlášť",
	"address.path":      "adresa serveru %q obsahuje cestu nebo parametry; zadejte jen imaps://server[:port]",
	"address.no_host":   "adresa serveru %q neobsahuje název serveru",
	"address.scheme":    "adresa serveru %q: neznámý protokol %q, použijte imaps:// (TLS) nebo imap:// (STARTTLS)",
	"address.port":      "adresa serveru %q: port %q není číslo od 1 do 65535",
	"address.forbidden": "tato adresa serveru směřuje do privátní nebo místní sítě, což zde není dovoleno; zadejte veřejný název IMAP serveru poskytovatele",

	"address.host":           "adresa serveru %q: %q není platný název serveru",
	"address.port_forbidden": "port serveru %s zde není povolen: zadejte IMAP port původního serveru (povolené porty: %s)",
}
