package diagnose

import "mailmigrate/internal/i18n"

// texts are what the diagnosis, the discovery and the DNS check tell the
// customer; they are kept as Messages (keys and arguments) and written in
// the reader's language where they are shown. Ports and priorities are
// given as strings: as numbers, the printers would group their digits
// (10 143).
var texts = map[string]string{
	// Why a connection or login to the old server failed.
	"summary.resolve":     "The server name %s does not exist in DNS.",
	"summary.private":     "%s points into a private or local network, which this service does not connect to.",
	"summary.connect":     "No connection to %s on port %s.",
	"summary.timeout":     "%s stopped answering.",
	"summary.tls":         "A secure connection to %s could not be established.",
	"summary.auth":        "The old server rejected the login %q.",
	"summary.refused":     "The old server %s refused the request.",
	"summary.unavailable": "The old server %s is temporarily unavailable.",

	// What to do about it, by Reason.Code.
	"reason.typo":               "Check the server name for typos. Your old provider's help pages or your mail program's account settings show the exact IMAP server name.",
	"reason.private_address":    "Give the old provider's public IMAP server name.",
	"reason.port":               "Check the port: 993 for TLS, 143 for STARTTLS. Some providers use other ports; see their help pages.",
	"reason.firewall":           "The server may not accept IMAP connections from the internet, or a firewall blocks them. Ask the old provider whether IMAP access is enabled for your account.",
	"reason.busy":               "The server may be overloaded or limit connections. Try again later; what was copied is kept.",
	"reason.cert_name":          "The server's certificate is issued for %s, not for %s. Use that name as the server address, or trust this certificate for this migration if you recognise it.",
	"reason.cert_expired":       "The server's certificate expired on %s. Ask the old provider to renew it, or trust this certificate for this migration if you recognise it.",
	"reason.cert_untrusted":     "The server's certificate is not issued by a known authority (self-signed). Trust it for this migration only if its fingerprint matches what your old provider publishes.",
	"reason.no_tls":             "The server does not offer encryption on this port. Try the other security setting (TLS on 993 or STARTTLS on 143).",
	"reason.dns_moved_tls":      "If the DNS of your domain was already moved, the name may lead to another server than the old one: use the old provider's own server name.",
	"reason.retry":              "Try again in a few minutes.",
	"reason.no_domain":          "The login %q has no domain. Most servers want the full address, such as %s@yourdomain.tld.",
	"reason.old_service_name":   "This is the server of this hosting. If you move mail between two of its services, log in with the old service's name, or with its identifier if the name was removed, such as mailbox@w123456.",
	"reason.oauth":              "%s no longer accepts passwords for IMAP: it needs a sign-in with %s (OAuth2) instead. Use the “Sign in with …” button beside the mailbox in the migration form, or in a pasted line's check result (if there is none, ask the hosting's support to set up the sign-in); on the command line, --source-oauth.",
	"hint.needs":                "%s needs %s before the migration can log in there.",
	"reason.app_password":       "%s needs %s before other programs may log in.",
	"reason.password":           "The password may be old or mistyped. Check it by signing in to the old provider's webmail with the same login.",
	"reason.removed_service":    "A login like mailbox@w123456 works only on this hosting's own server, for a service whose name was removed.",
	"reason.dns_moved":          "%s already points to this hosting (%s), because the domain's DNS was moved. Enter the old provider's own server name or its IP address instead.",
	"reason.server_alert":       "The server says: %s",
	"reason.too_many":           "The server allows only a few connections at once. Close mail programs that use this mailbox, or try again later.",
	"reason.unavailable":        "The server is temporarily unavailable. Try again in a few minutes.",
	"reason.app_password.asked": "The server asks for an app password: create one in your account's security settings and use it here.",
	"reason.web_login":          "The server wants you to sign in through its website first (a security check). Do that, then try again.",

	// Notes of found servers.
	"note.plain":       "The domain's settings say this port has no encryption. The migration will ask for STARTTLS and will not send the password unencrypted unless you allow it.",
	"note.mx":          "The mail of %s is delivered to %s (MX %s).",
	"note.oauth":       "%s does not accept passwords for IMAP: it needs %s. Use the “Sign in with …” button beside the mailbox or in the pasted line's check result instead of its password (if there is none, ask the hosting's support to set up the sign-in).",
	"note.needs":       "%s needs %s before the migration can log in.",
	"note.hosting":     "%s already points to this hosting (%s): the domain's DNS was moved, so this name no longer leads to the old server. Enter the old provider's own server name or its IP address instead.",
	"note.unreachable": "No connection to %s on port %s (refused, filtered or no answer).",
	// join puts two sentences one after the other.
	"join": "%s %s",

	// Mistakes in what the customer typed.
	"error.address":        "%q is not a mail address: give the full address, such as jana@firma.cz",
	"error.address_domain": "The domain of %q: %s",
	"error.domain":         "%q is not a domain name: give it as firma.cz",
	"error.domain_invalid": "%q is not a valid domain name: %s",

	// What a provider needs before another program may log in, phrased
	// to follow "<provider> needs …".
	"needs.gmail":            "an app password (2-step verification must be on; create it in your Google Account under Security → App passwords) and IMAP enabled in Gmail settings (Settings → Forwarding and POP/IMAP)",
	"needs.google_workspace": "an app password (2-step verification must be on), and your Workspace administrator must allow IMAP access and app passwords",
	"needs.microsoft365":     "a sign-in with Microsoft (OAuth2) instead of a password, and IMAP enabled for the mailbox by your Microsoft 365 administrator",
	"needs.outlook":          "a sign-in with Microsoft (OAuth2) instead of a password",
	"needs.yahoo":            "an app password (Yahoo Account Security → Generate app password; Yahoo decides who may create one)",
	"needs.aol":              "an app password (AOL Account Security → Generate app password)",
	"needs.icloud":           "an app-specific password (created in your Apple Account settings; two-factor authentication must be on)",
	"needs.zoho":             "IMAP access turned on (Zoho Mail Settings → Mail Accounts → IMAP Access) and an app-specific password if two-factor authentication is on; only the folders ticked in Zoho's IMAP folder settings can be copied",
	"needs.seznam":           "an application password if two-factor authentication is on (Seznam account → Security → Application passwords; it must differ from your login password)",
	"needs.gmx":              "\"POP3 & IMAP access\" allowed in the e-mail settings of your account, and an app password if two-factor authentication is on",
	"needs.yandex":           "an app password (Yandex ID → Security → App passwords) and IMAP allowed in Yandex Mail settings (Email clients)",

	// The DNS check: what a record should be, what it is, what to do.
	"expected.domain":     "a registered domain whose DNS servers answer",
	"expected.cname_or":   "CNAME %s (or %s)",
	"expected.autoconfig": "this hosting, or no record",
	"expected.none":       "no record",
	"expected.srv":        "0 1 %s %s, or no record",
	"found.no_records":    "the domain has no DNS records",
	"found.no_answer":     "the DNS servers did not answer",
	"found.cname_no_addr": "CNAME %s (which has no address)",

	"advice.domain.missing":   "%s does not exist in DNS (or has no records at all). Check the spelling; if it is right, check at your domain registrar that the domain is registered and that its name servers are set.",
	"advice.domain.no_answer": "The DNS servers of %s did not answer (temporary failure), so mail to it cannot be delivered right now either. If you changed the domain's name servers recently, make sure the DNSSEC (DS) record at your registrar was removed or updated to match them; a stale one makes every lookup fail. Otherwise run the check again in a few minutes, and if it persists, contact whoever runs the domain's DNS.",

	"mx.set.one":       "Set the MX record of %s to %s.",
	"mx.set.many":      "Set the MX records of %s to %s.",
	"mx.priority":      "%s (priority %s)",
	"list.and":         "%s and %s",
	"list.comma":       "%s, %s",
	"advice.mx.none":   "%s has no MX record, so senders do not know where to deliver its mail. %s",
	"advice.mx.null":   "%s has a \"null MX\" record, which tells senders the domain receives no mail at all. Remove it. %s",
	"advice.mx.old":    "%s It now points to %s, so new mail still arrives at the old provider. After the change, run the migration once more to copy what arrived there in the meantime.",
	"advice.mx.partly": "Remove the MX records of %s that point to %s: senders that use them deliver to the old provider, so part of the new mail still lands there. After the change, run the migration once more to copy it.",

	// What keeps happening while imap., smtp., pop3. or mail. point
	// elsewhere.
	"effect.imap": "mail programs set to %s still read mail from the old server",
	"effect.smtp": "mail programs set to %s still send through the old server",
	"effect.pop3": "mail programs set to %s still download mail from the old server",
	"effect.mail": "mail programs set to %s still connect to the old server",

	"set.cname_or_addr":     "Make %s a CNAME record pointing to %s (or give it the address %s)",
	"set.cname":             "Make %s a CNAME record pointing to %s",
	"set.addr":              "Give %s the address %s (an A/AAAA record)",
	"advice.name.missing":   "%s does not exist. %s if your mail programs use it as their server; otherwise set them to %s directly.",
	"advice.name.mixed":     "%s has addresses of this hosting and of another server (%s). Remove the records with %s: programs connect to either address at random.",
	"advice.name.elsewhere": "%s. It now points to %s: %s.",

	"advice.spf.none":  "%s has no SPF record, so receivers may treat the mail you send as spam. Add a TXT record to %s: \"v=spf1 include:%s ~all\".",
	"advice.spf.many":  "%s has %d SPF record; receivers treat that as an error and may reject your mail. Keep a single TXT record that starts with v=spf1 and contains include:%s.|%s has %d SPF records; receivers treat that as an error and may reject your mail. Keep a single TXT record that starts with v=spf1 and contains include:%s.",
	"advice.spf.wrong": "The SPF record of %s does not allow this hosting to send your mail, so receivers may reject it or mark it as spam. Change it to: \"%s\".",

	"advice.autoconfig.elsewhere": "%s points to another server (%s): mail programs that set themselves up automatically may get the old provider's settings. Delete this record, or point it where this hosting's help pages say.",

	"fix.delete":             "Delete this record",
	"fix.point":              "Point it to %s port %s, or delete it",
	"advice.srv.not_offered": "%s says this service is not offered at all (target \".\"), so mail programs that read it will not use it. %s.",
	"advice.srv.elsewhere":   "%s points to another server (%s): mail programs that look it up connect there. %s.",

	"advice.try_again.temporary": "The DNS servers did not answer for the %s record of %s (temporary failure), so it could not be checked. Run the check again in a few minutes; if it persists, ask whoever runs the domain's DNS to check its name servers.",
	"advice.try_again.failed":    "The %s record of %s could not be checked (%s). Run the check again later; if it persists, ask whoever runs the domain's DNS.",
}

var catalog = i18n.NewCatalog("diagnose", texts, textsCS)
