package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
)

func runCheck(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var ef endpointFlags
	ef.register(fs)
	gmailOnce := fs.Bool("gmail-once", false, "from Gmail, copy each message once: into INBOX, Sent, Drafts or its first label's folder, in that order, with its other labels as keywords (default: once into the folder of every label)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate check --source URL --source-user LOGIN --source-password-file F \\\n"+
			"                         --dest URL --dest-user LOGIN --dest-password-file F [flags]\n"+
			"       mailmigrate check --source URL --dest URL --accounts FILE\n\n"+
			"Logs in to both servers and shows the folder plan; copies nothing.\n\nflags:\n")
		fs.PrintDefaults()
	}
	accounts, code, ok := parseAccounts(ctx, fs, &ef, args)
	if !ok {
		return code
	}
	opt := engine.Options{Conn: imapconn.Options{Timeout: ef.timeout}, GmailOnce: *gmailOnce}
	reports := make([]*engine.Report, len(accounts))
	for i, a := range accounts {
		reports[i], _ = engine.Check(ctx, a, opt)
		r := reports[i]
		if f := r.Failure.Localize(out); f != nil {
			fmt.Printf("%s\n  %s\n%s\n", catalog.T(out, "check.failed", a.SourceUser, a.DestUser), f.Message, catalog.T(out, "details", f.Detail))
			continue
		}
		fmt.Println(catalog.T(out, "check.ok", a.SourceUser, r.Source, a.DestUser, r.Dest,
			catalog.N(out, "messages", r.Totals.SourceMessages), catalog.N(out, "folders", len(r.Folders))))
		if sp := r.Space; sp != nil {
			fmt.Println(catalog.T(out, "check.space", out.Bytes(sp.Used), out.Bytes(sp.Limit), out.Bytes(sp.ToCopy)))
			if warn := sp.Warning(); !warn.IsZero() {
				fmt.Println(catalog.T(out, "warning", warn.In(out)))
			}
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, catalog.T(out, "table.check"))
		for _, f := range r.Folders {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", f.Source, f.Dest, f.SourceMessages, f.Note.In(out))
		}
		tw.Flush()
	}
	return exitCode(reports)
}
