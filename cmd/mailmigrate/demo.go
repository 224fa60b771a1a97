package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"mailmigrate/internal/demo"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/store"
)

func runDemo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	n := fs.Int("messages", 200, "about how many sample messages to migrate")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mailmigrate demo [--messages N]\n\n"+
			"Starts two IMAP servers inside this process (TLS on loopback), fills the\n"+
			"source with sample mail, migrates it, then runs the migration again to show\n"+
			"that a re-run copies nothing twice.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	env, err := demo.Start(ctx, *n)
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	dir, err := os.MkdirTemp("", "mailmigrate-demo-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	led, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return fail(err)
	}
	defer led.Close()

	a := env.Account
	fmt.Printf("Demo: %d sample messages on %s (%s), to be migrated to %s (%s).\n\n",
		env.Messages, a.SourceUser, a.Source, a.DestUser, a.Dest)
	for i, title := range []string{"First run", "Second run (safe to repeat: only new mail is copied)"} {
		var progress engine.Progress
		progress.AddAccounts(1)
		disp := newDisplay(os.Stderr, &progress, false)
		disp.start()
		r, _ := engine.Run(ctx, a, led, engine.Options{Progress: &progress, Logf: disp.logf})
		disp.stop()
		fmt.Printf("== %s\n", title)
		printReports(os.Stdout, []*engine.Report{r})
		fmt.Println()
		if code := accountExit(r); code != exitOK || i == 1 {
			return code
		}
	}
	return exitOK
}
