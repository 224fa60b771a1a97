// Command mailmigrate copies mail accounts from one IMAP server to another.
//
//	mailmigrate migrate  copy one account (or many with --accounts)
//	mailmigrate check    log in to both servers and show the folder plan, copy nothing
//	mailmigrate demo     run a complete migration between two built-in servers
//	mailmigrate serve    run the migration service (JSON API, background jobs)
//	mailmigrate admin    manage operators, customers, domains and API tokens
//	mailmigrate discover find the IMAP server of a mailbox address
//	mailmigrate dnscheck check that a migrated domain's DNS points to the hosting
//	mailmigrate version  print the version and build information
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK         = 0
	exitFailure    = 1 // anything else: state file, internal error, server error
	exitUsage      = 2 // bad flags or a bad account list
	exitConnection = 3 // cannot resolve, connect, TLS, server stopped answering
	exitAuth       = 4 // a server rejected a login
	exitOverQuota  = 5 // the destination is full; resume after enlarging it
	exitPartial    = 6 // finished, but some messages were skipped or failed
)

var commands = map[string]struct {
	run  func(ctx context.Context, args []string) int
	help string
}{
	"migrate":  {runMigrate, "copy mail from a source IMAP account to a destination account"},
	"check":    {runCheck, "log in to both servers and show what would be copied, copy nothing"},
	"demo":     {runDemo, "run a complete migration between two built-in servers"},
	"serve":    {runServe, "run the migration service (JSON API and background jobs)"},
	"admin":    {runAdmin, "manage operators, customers, domains and API tokens"},
	"discover": {runDiscover, "find the IMAP server of a mailbox address"},
	"dnscheck": {runDNSCheck, "check that a migrated domain's DNS points to the hosting"},
	"version":  {runVersion, "print the version and how the program was built"},
}

// parseExit is the exit code of a command whose flags did not parse:
// asking for help (-h, --help) is a success, anything else a usage error.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// version is the program's version, set at build time with
// -ldflags "-X main.version=1.2.3"; the build info says the rest.
var version = "dev"

func runVersion(_ context.Context, _ []string) int {
	fmt.Printf("mailmigrate %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Printf("%s %s\n", bi.GoVersion, bi.Main.Path)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "CGO_ENABLED":
				fmt.Printf("%s=%s\n", s.Key, s.Value)
			}
		}
	}
	return exitOK
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: mailmigrate <command> [flags]\n\ncommands:\n")
	for _, name := range []string{"migrate", "check", "discover", "dnscheck", "demo", "serve", "admin", "version"} {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].help)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'mailmigrate <command> -h' for the flags of a command.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(exitUsage)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "mailmigrate: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(exitUsage)
	}
	// The first Ctrl-C stops cleanly (what was copied is recorded); a
	// second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(cmd.run(ctx, os.Args[2:]))
}
