package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"mailmigrate/internal/config"
	"mailmigrate/internal/diagnose"
)

// expectFrom builds what the DNS check looks for from the configuration;
// the hosting's IMAP server name stands in for unset IMAP names.
func expectFrom(h config.Hosting) diagnose.Expect {
	e := diagnose.Expect{MX: h.MX, IMAP: h.IMAPNames, SMTP: h.SMTPNames, POP3: h.POP3Names,
		Addresses: h.Addresses, SPFInclude: h.SPFInclude}
	if len(e.IMAP) == 0 && h.IMAP != "" {
		if host := strings.TrimPrefix(strings.TrimPrefix(h.IMAP, "imaps://"), "imap://"); host != "" {
			e.IMAP = []string{strings.Split(host, ":")[0]}
		}
	}
	return e
}

func diagnoseFlags(name, usage string) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file with the hosting's names (see mailmigrate.conf.example)")
	dns := fs.String("dns", "", "ask this DNS server (host:port) instead of the system's")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, cfgPath, dns
}

// runDiscover finds the IMAP server of a mailbox address.
func runDiscover(ctx context.Context, args []string) int {
	fs, cfgPath, dns := diagnoseFlags("discover", "usage: mailmigrate discover [--config FILE] ADDRESS\n\n"+
		"Finds the IMAP server of a mailbox: known providers, the domain's autoconfig, SRV and MX\n"+
		"records, then imap./mail. names; each candidate is checked by connecting. Names that\n"+
		"already lead to this hosting (the DNS was moved) are marked.\n\nflags:\n")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 1 || !strings.Contains(fs.Arg(0), "@") {
		return fail(usagef("give one mailbox address, e.g. mailmigrate discover jana@firma.cz"))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(usageError{err.Error()})
	}
	d := &diagnose.Discoverer{Resolver: diagnose.NewResolver(*dns), Hosting: expectFrom(cfg.Hosting),
		Ports: cfg.Sources.AllowedPorts, AnyPort: cfg.Sources.AllowPrivate}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cands, err := d.Discover(ctx, fs.Arg(0))
	if err != nil {
		return fail(inputError(err))
	}
	if len(cands) == 0 {
		fmt.Println(catalog.T(out, "discover.none", fs.Arg(0)))
		return exitConnection
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, catalog.T(out, "discover.table"))
	for _, c := range cands {
		// The note already says what the provider needs.
		note := c.Note.In(out)
		reach := catalog.T(out, "discover.yes")
		if !c.Reachable {
			reach = catalog.T(out, "discover.no")
		}
		if c.IsHosting {
			reach = catalog.T(out, "discover.hosting")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Addr(), c.Security, c.Source, reach, note)
	}
	tw.Flush()
	if best, ok := diagnose.Best(cands); ok {
		scheme := "imaps"
		if best.Security != "tls" {
			scheme = "imap"
		}
		fmt.Printf("\n%s\n", catalog.T(out, "discover.use", scheme, best.Addr()))
		return exitOK
	}
	return exitConnection
}

// runDNSCheck checks a migrated domain's DNS records.
func runDNSCheck(ctx context.Context, args []string) int {
	fs, cfgPath, dns := diagnoseFlags("dnscheck", "usage: mailmigrate dnscheck [--config FILE] DOMAIN\n\n"+
		"Checks that the domain's MX records lead to this hosting, that imap., smtp., pop3. and\n"+
		"mail. reach it, and that SPF includes it; says what to change where not.\n\nflags:\n")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 1 {
		return fail(usagef("give one domain, e.g. mailmigrate dnscheck firma.cz"))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(usageError{err.Error()})
	}
	e := expectFrom(cfg.Hosting)
	if len(e.MX) == 0 && len(e.IMAP) == 0 {
		return fail(usagef("the configuration names no hosting.mx or hosting.imap: the check needs to know what the records should point to"))
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rows, err := diagnose.CheckDNS(ctx, diagnose.NewResolver(*dns), fs.Arg(0), e)
	if err != nil {
		return fail(inputError(err))
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, catalog.T(out, "dns.table"))
	bad := false
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Record, r.Name, r.Expected.In(out), r.Found.In(out), catalog.T(out, "verdict."+r.Verdict))
		bad = bad || r.Verdict == diagnose.VerdictFail
	}
	tw.Flush()
	for _, r := range rows {
		if !r.Advice.IsZero() {
			fmt.Printf("\n%s %s: %s", r.Record, r.Name, r.Advice.In(out))
		}
	}
	fmt.Println()
	if bad {
		return exitPartial
	}
	return exitOK
}

// inputError is a mistake in the address or domain given, in the
// command line's language.
func inputError(err error) error {
	var ie *diagnose.InputError
	if errors.As(err, &ie) {
		return errors.New(ie.Text.In(out))
	}
	return err
}
