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
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate check --source URL --source-user LOGIN --source-password-file F \\\n"+
			"                         --dest URL --dest-user LOGIN --dest-password-file F [flags]\n"+
			"       mailmigrate check --source URL --dest URL --accounts FILE\n\n"+
			"Logs in to both servers and shows the folder plan; copies nothing.\n\nflags:\n")
		fs.PrintDefaults()
	}
	accounts, code := parseAccounts(fs, &ef, args)
	if code != exitOK {
		return code
	}
	opt := engine.Options{Conn: imapconn.Options{Timeout: ef.timeout}}
	reports := make([]*engine.Report, len(accounts))
	for i, a := range accounts {
		reports[i], _ = engine.Check(ctx, a, opt)
		r := reports[i]
		if r.Failure != nil {
			fmt.Printf("%s -> %s: FAILED\n  %s\n  details: %s\n", a.SourceUser, a.DestUser, r.Failure.Message, r.Failure.Detail)
			continue
		}
		fmt.Printf("%s (%s) -> %s (%s): both logins OK, %d messages in %d folders to migrate\n",
			a.SourceUser, r.Source, a.DestUser, r.Dest, r.Totals.SourceMessages, len(r.Folders))
		if sp := r.Space; sp != nil {
			fmt.Printf("  destination: %s of %s used; the source holds %s\n", engine.HumanBytes(sp.Used), engine.HumanBytes(sp.Limit), engine.HumanBytes(sp.ToCopy))
			if warn := sp.Warning(); warn != "" {
				fmt.Printf("  warning: %s\n", warn)
			}
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  SOURCE FOLDER\tDESTINATION\tMESSAGES\tNOTE\n")
		for _, f := range r.Folders {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", f.Source, f.Dest, f.SourceMessages, f.Note)
		}
		tw.Flush()
	}
	return exitCode(reports)
}
