package diagnose

import (
	"strings"

	"mailmigrate/internal/i18n"
)

// Provider is a well-known mail provider: where its IMAP server is and what
// a customer must do before another program may log in there.
type Provider struct {
	ID   string
	Name string
	// Domains are the provider's own mail domains (gmail.com); a
	// subdomain matches too (tenant.onmicrosoft.com).
	Domains []string
	// MXSuffixes recognise a customer's own domain hosted there by its MX
	// records (aspmx.l.google.com ends in google.com).
	MXSuffixes []string
	Host       string
	Port       int
	Security   string // "tls" (implicit, port 993) or "starttls"
	// LoginForm is what the login name is: "address" (jana@firma.cz) or
	// "local" (jana).
	LoginForm string
	// Needs is what the customer must do first, phrased to follow
	// "<Name> needs …"; zero when nothing special.
	Needs i18n.Message
	// OAuth means password logins are refused over IMAP (Microsoft 365,
	// Outlook.com): only a sign-in with the provider works.
	OAuth bool
	// SignIn is the provider customers sign in with instead of giving a
	// password (package oauth: "google", "microsoft"); empty when none.
	SignIn string
}

// Providers is the table of well-known providers, most specific first
// where two could match. Host names, domains and requirements come from
// the providers' help pages as collected in the project research (shared
// research hosting-ux.md 3.1) and Thunderbird's ISPDB; entries or fields
// marked "unverified" are from third-party lists or memory and were not
// confirmed against the provider's own documentation.
var Providers = []Provider{
	{
		ID: "gmail", Name: "Gmail",
		Domains: []string{"gmail.com", "googlemail.com"},
		Host:    "imap.gmail.com", Port: 993, Security: "tls", LoginForm: "address",
		// Less secure app access ended for personal accounts on 30 May 2022.
		Needs:  catalog.M("needs.gmail"),
		SignIn: "google",
	},
	{
		// A customer's own domain at Google: recognised only by its MX, so
		// that a gmail.com address gets the consumer advice above.
		ID: "google-workspace", Name: "Google Workspace",
		MXSuffixes: []string{"google.com", "googlemail.com"},
		Host:       "imap.gmail.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs:  catalog.M("needs.google_workspace"),
		SignIn: "google",
	},
	{
		// Basic authentication for IMAP is switched off in all tenants and
		// cannot be switched back on (Microsoft, from 1 Oct 2022).
		ID: "microsoft365", Name: "Microsoft 365",
		Domains:    []string{"onmicrosoft.com"},
		MXSuffixes: []string{"mail.protection.outlook.com"},
		Host:       "outlook.office365.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs:  catalog.M("needs.microsoft365"),
		OAuth:  true,
		SignIn: "microsoft",
	},
	{
		// Password logins removed for consumer accounts on 16 Sep 2024.
		// Domains and the MX suffix from Thunderbird's ISPDB (a subset).
		ID: "outlook", Name: "Outlook.com",
		Domains: []string{"outlook.com", "hotmail.com", "live.com", "msn.com", "windowslive.com",
			"outlook.cz", "hotmail.cz", "outlook.sk", "hotmail.sk", "outlook.de", "hotmail.de",
			"hotmail.co.uk", "live.co.uk"},
		MXSuffixes: []string{"olc.protection.outlook.com"},
		Host:       "outlook.office365.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs:  catalog.M("needs.outlook"),
		OAuth:  true,
		SignIn: "microsoft",
	},
	{
		ID: "yahoo", Name: "Yahoo Mail",
		// unverified: ymail.com, rocketmail.com and the country domains;
		// the MX suffix yahoodns.net (mta5.am0.yahoodns.net) is shared
		// with AOL.
		Domains:    []string{"yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr"},
		MXSuffixes: []string{"yahoodns.net"},
		Host:       "imap.mail.yahoo.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: catalog.M("needs.yahoo"),
	},
	{
		ID: "aol", Name: "AOL Mail",
		Domains: []string{"aol.com", "aim.com"},
		Host:    "imap.aol.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: catalog.M("needs.aol"),
	},
	{
		// Guides disagree whether the login is the full address or the
		// part before @; the full address is tried first, and login
		// diagnosis may suggest the other form.
		ID: "icloud", Name: "iCloud Mail",
		Domains:    []string{"icloud.com", "me.com", "mac.com"},
		MXSuffixes: []string{"mail.icloud.com"}, // custom domains: mx01.mail.icloud.com (unverified)
		Host:       "imap.mail.me.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: catalog.M("needs.icloud"),
	},
	{
		ID: "zoho", Name: "Zoho Mail",
		Domains: []string{"zoho.com", "zohomail.com"},
		Host:    "imap.zoho.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		// Organisations (own domains) use imappro; the MX is mx.zoho.com.
		ID: "zoho-org", Name: "Zoho Mail (organisation)",
		MXSuffixes: []string{"zoho.com"},
		Host:       "imappro.zoho.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		ID: "zoho-eu", Name: "Zoho Mail (EU)",
		Domains: []string{"zoho.eu", "zohomail.eu"}, // unverified: zohomail.eu
		Host:    "imap.zoho.eu", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		ID: "zoho-org-eu", Name: "Zoho Mail (organisation, EU)",
		MXSuffixes: []string{"zoho.eu"},
		Host:       "imappro.zoho.eu", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		// unverified: the Indian and Australian data centres' host names.
		ID: "zoho-org-in", Name: "Zoho Mail (organisation, India)",
		MXSuffixes: []string{"zoho.in"},
		Host:       "imappro.zoho.in", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		ID: "zoho-org-au", Name: "Zoho Mail (organisation, Australia)",
		MXSuffixes: []string{"zoho.com.au"},
		Host:       "imappro.zoho.com.au", Port: 993, Security: "tls", LoginForm: "address",
		Needs: zohoNeeds,
	},
	{
		// Domains besides seznam.cz from third-party lists (unverified);
		// so is the MX suffix for own domains at Seznam.
		ID: "seznam", Name: "Seznam.cz",
		Domains:    []string{"seznam.cz", "email.cz", "post.cz", "spoluzaci.cz"},
		MXSuffixes: []string{"seznam.cz"},
		Host:       "imap.seznam.cz", Port: 993, Security: "tls", LoginForm: "address",
		Needs: catalog.M("needs.seznam"),
	},
	{
		// gmx.com is the same company with other servers (ISPDB); the MX
		// suffix is unverified.
		ID: "gmx", Name: "GMX",
		Domains:    []string{"gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.eu"},
		MXSuffixes: []string{"gmx.net"},
		Host:       "imap.gmx.net", Port: 993, Security: "tls", LoginForm: "address",
		Needs: gmxNeeds,
	},
	{
		ID: "gmx-com", Name: "GMX (gmx.com)",
		Domains:    []string{"gmx.com"},
		MXSuffixes: []string{"gmx.com"}, // unverified
		Host:       "imap.gmx.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: gmxNeeds,
	},
	{
		ID: "webde", Name: "WEB.DE",
		Domains:    []string{"web.de"},
		MXSuffixes: []string{"web.de"}, // unverified
		Host:       "imap.web.de", Port: 993, Security: "tls", LoginForm: "address",
		Needs: gmxNeeds,
	},
	{
		// MX domains from Thunderbird's ISPDB (ionos.de).
		ID: "ionos", Name: "IONOS",
		MXSuffixes: []string{"ionos.de", "kundenserver.de", "schlund.de"},
		Host:       "imap.ionos.de", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		ID: "ionos-com", Name: "IONOS (international)",
		MXSuffixes: []string{"ionos.com"}, // unverified
		Host:       "imap.ionos.com", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		ID: "ionos-uk", Name: "IONOS (UK)",
		MXSuffixes: []string{"ionos.co.uk"}, // unverified
		Host:       "imap.ionos.co.uk", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		// unverified: the host and the MX suffix come from third-party
		// configurations, not Forpsi's own pages.
		ID: "forpsi", Name: "Forpsi",
		MXSuffixes: []string{"forpsi.com"},
		Host:       "imap.forpsi.com", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		// Host from Thunderbird's ISPDB (active24.com), which also lists
		// smtp.cz, presumably its MX domain (unverified).
		ID: "active24", Name: "ACTIVE 24",
		MXSuffixes: []string{"active24.com", "smtp.cz"},
		Host:       "email.active24.com", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		// unverified: the MX suffix; some WEDOS services give each mailbox
		// its own server name (wes1-imap.wedos.net, ...), which the
		// customer finds in the service's e-mail settings.
		ID: "wedos", Name: "WEDOS",
		MXSuffixes: []string{"wedos.net"},
		Host:       "imap.wedos.net", Port: 993, Security: "tls", LoginForm: "address",
	},
	{
		// imap.yandex.ru, .com.tr and imap.ya.ru exist as well; .com is
		// used for all. unverified: the MX suffixes.
		ID: "yandex", Name: "Yandex Mail",
		Domains:    []string{"yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz", "yandex.ua", "narod.ru"},
		MXSuffixes: []string{"yandex.net", "yandex.ru"},
		Host:       "imap.yandex.com", Port: 993, Security: "tls", LoginForm: "address",
		Needs: catalog.M("needs.yandex"),
	},
}

var (
	zohoNeeds = catalog.M("needs.zoho")
	gmxNeeds  = catalog.M("needs.gmx")
)

// ProviderForDomain returns the provider whose own mail domain this is
// (gmail.com → Gmail), or nil.
func ProviderForDomain(domain string) *Provider {
	domain = normName(domain)
	for i := range Providers {
		for _, d := range Providers[i].Domains {
			if hasSuffixLabel(domain, d) {
				return &Providers[i]
			}
		}
	}
	return nil
}

// ProviderForHost returns the provider whose IMAP server this is
// (imap.seznam.cz → Seznam), or nil; the first where providers share one.
func ProviderForHost(host string) *Provider {
	host = normName(host)
	for i := range Providers {
		if host != "" && Providers[i].Host == host {
			return &Providers[i]
		}
	}
	return nil
}

// Hint is what the customer must do at this provider before a migration
// can log in there, as a sentence; zero when nothing special.
func (p *Provider) Hint() i18n.Message {
	if p == nil || p.Needs.IsZero() {
		return i18n.Message{}
	}
	return catalog.M("hint.needs", p.Name, p.Needs)
}

// ProviderForMX returns the provider an MX host belongs to
// (aspmx.l.google.com → Google Workspace), or nil.
func ProviderForMX(host string) *Provider {
	host = normName(host)
	for i := range Providers {
		for _, s := range Providers[i].MXSuffixes {
			if hasSuffixLabel(host, s) {
				return &Providers[i]
			}
		}
	}
	return nil
}

// hasSuffixLabel reports whether name is suffix or ends in "."+suffix, so
// that notgoogle.com does not count as google.com.
func hasSuffixLabel(name, suffix string) bool {
	return name == suffix || strings.HasSuffix(name, "."+suffix)
}
