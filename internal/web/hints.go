package web

import (
	"strings"

	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/i18n"
)

// providerHint is what a well-known provider needs before a migration can
// log in there (an app password, IMAP switched on, a sign-in with
// Microsoft), shown beside the login fields once the customer has named
// its server or typed an address there.
type providerHint struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	// Host and Domains let the page's script find the same hints as the
	// customer types (the table it is given).
	Host    string   `json:"host,omitempty"`
	Domains []string `json:"domains,omitempty"`
}

// providerHints finds the providers of the old server's name and of the
// old logins typed (the text is searched for addresses), each once, in the
// order found, and says what each needs.
func providerHints(p *i18n.Printer, host string, texts ...string) []providerHint {
	var out []providerHint
	seen := map[string]bool{}
	add := func(pr *diagnose.Provider) {
		if pr == nil || seen[pr.ID] || pr.Hint().IsZero() {
			return
		}
		seen[pr.ID] = true
		out = append(out, providerHint{ID: pr.ID, Text: pr.Hint().In(p)})
	}
	add(diagnose.ProviderForHost(host))
	for _, t := range texts {
		for _, domain := range addressDomains(t) {
			add(diagnose.ProviderForDomain(domain))
		}
	}
	return out
}

// addressDomains returns the domains of the words of text that look like
// mail addresses (lines of logins, CSV, a single field).
func addressDomains(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ',' || r == ';' || r == '"' || r == '<' || r == '>'
	}) {
		if _, domain, ok := strings.Cut(w, "@"); ok && strings.Contains(domain, ".") {
			out = append(out, strings.ToLower(domain))
		}
	}
	return out
}

// hintTable is every provider hint with what finds it, for the page's
// script.
func hintTable(p *i18n.Printer) []providerHint {
	var out []providerHint
	for _, pr := range diagnose.Providers {
		if h := pr.Hint(); !h.IsZero() {
			out = append(out, providerHint{ID: pr.ID, Text: h.In(p), Host: pr.Host, Domains: pr.Domains})
		}
	}
	return out
}
