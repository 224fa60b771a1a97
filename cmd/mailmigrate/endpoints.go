package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/imapconn"
)

// endpointFlags are the connection flags shared by migrate and check.
type endpointFlags struct {
	source, sourceUser, sourcePassFile, sourcePass string
	dest, destUser, destPassFile, destPass         string
	allowPlain, insecure                           bool
	caFile                                         string
	timeout                                        time.Duration
	accounts                                       string
	sourceOAuth, sourceTokenFile, configFile       string
}

func (f *endpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.source, "source", "", "source server: imaps://host[:port] (TLS, default port 993) or imap://host[:port] (STARTTLS, 143)")
	fs.StringVar(&f.sourceUser, "source-user", "", "source login, usually the full address mailbox@domain.tld")
	fs.StringVar(&f.sourcePassFile, "source-password-file", "", "file whose first line is the source password (or set $MAILMIGRATE_SOURCE_PASSWORD)")
	fs.StringVar(&f.sourcePass, "source-password", "", "source password on the command line: avoid it, other users of this machine can read it in the process list")
	fs.StringVar(&f.dest, "dest", "", "destination server, same form as --source")
	fs.StringVar(&f.destUser, "dest-user", "", "destination login")
	fs.StringVar(&f.destPassFile, "dest-password-file", "", "file whose first line is the destination password (or set $MAILMIGRATE_DEST_PASSWORD)")
	fs.StringVar(&f.destPass, "dest-password", "", "destination password on the command line: avoid it, see --source-password")
	fs.BoolVar(&f.allowPlain, "allow-plaintext", false, "with imap:// addresses, connect without any encryption (passwords travel in clear text)")
	fs.BoolVar(&f.insecure, "insecure-skip-verify", false, "accept any TLS certificate (only for servers with a broken certificate that you trust otherwise)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of certificates to trust instead of the system's (for self-signed servers)")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "how long a server may stay silent before the connection is given up")
	fs.StringVar(&f.sourceOAuth, "source-oauth", "", "sign in to the source with its provider instead of a password: google or microsoft (shows a code to enter on the provider's page; the hosting's client ID comes from --config)")
	fs.StringVar(&f.sourceTokenFile, "source-oauth-token-file", "", "file with the source's OAuth2 access token (its first line) or a JSON token with a refresh token (then with --source-oauth); with --source-oauth a missing file is created after the sign-in, and kept up to date")
	fs.StringVar(&f.configFile, "config", "", "configuration file with the oauth.* keys for --source-oauth (see mailmigrate.conf.example)")
	fs.StringVar(&f.accounts, "accounts", "", "file with many accounts: one 'login@domain.tld password' per line, or CSV with header "+bulkHeader)
}

// usageError is a problem with the command line; exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// endpoints parses and checks the two server addresses.
func (f *endpointFlags) endpoints() (src, dst imapconn.Endpoint, err error) {
	if f.source == "" || f.dest == "" {
		return src, dst, usagef("both --source and --dest are required, e.g. --source imaps://imap.old.tld --dest imaps://imap.new.tld")
	}
	if src, err = imapconn.ParseEndpoint(f.source, f.allowPlain); err != nil {
		return src, dst, usageError{"--source: " + err.Error()}
	}
	if dst, err = imapconn.ParseEndpoint(f.dest, f.allowPlain); err != nil {
		return src, dst, usageError{"--dest: " + err.Error()}
	}
	for _, ep := range []*imapconn.Endpoint{&src, &dst} {
		ep.InsecureSkipVerify = f.insecure
		if f.caFile != "" {
			pool, err := imapconn.LoadCAFile(f.caFile)
			if err != nil {
				return src, dst, usageError{"--ca-file: " + err.Error()}
			}
			ep.RootCAs = pool
		}
	}
	return src, dst, nil
}

// account builds the single account of a non-bulk run.
func (f *endpointFlags) account() (engine.Account, error) {
	src, dst, err := f.endpoints()
	if err != nil {
		return engine.Account{}, err
	}
	if f.sourceUser == "" || f.destUser == "" {
		return engine.Account{}, usagef("--source-user and --dest-user are required (or --accounts FILE for many accounts)")
	}
	a := engine.Account{Source: src, SourceUser: f.sourceUser, Dest: dst, DestUser: f.destUser}
	if f.sourceOAuth == "" && f.sourceTokenFile == "" {
		if a.SourcePassword, err = password("source", f.sourcePassFile, f.sourcePass, "MAILMIGRATE_SOURCE_PASSWORD"); err != nil {
			return a, err
		}
	}
	if a.DestPassword, err = password("dest", f.destPassFile, f.destPass, "MAILMIGRATE_DEST_PASSWORD"); err != nil {
		return a, err
	}
	return a, nil
}

// password takes a password from a file, a flag or the environment. A file
// holds it on its first line; the line ending is not part of it.
func password(side, file, flagValue, env string) (string, error) {
	n := 0
	for _, s := range []string{file, flagValue, os.Getenv(env)} {
		if s != "" {
			n++
		}
	}
	if n > 1 && (file != "" && flagValue != "") {
		return "", usagef("give the %s password once: --%s-password-file or --%s-password", side, side, side)
	}
	switch {
	case file != "":
		return firstLine("--"+side+"-password-file", file)
	case flagValue != "":
		return flagValue, nil
	case os.Getenv(env) != "":
		return os.Getenv(env), nil
	}
	return "", usagef("no %s password: use --%s-password-file FILE or set $%s", side, side, env)
}

// firstLine reads a password file given with a flag: its first line.
func firstLine(flagName, file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", usagef("%s: %v", flagName, errors.Unwrap(err))
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", usagef("%s %s: the first line is empty", flagName, file)
	}
	return line, nil
}

// parseAccounts parses a command's flags and returns its accounts; when
// the command ends here (--help, or an error) ok is false and code is its
// exit code.
func parseAccounts(ctx context.Context, fs *flag.FlagSet, ef *endpointFlags, args []string) (accounts []engine.Account, code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		return nil, parseExit(err), false
	}
	if fs.NArg() > 0 {
		return nil, fail(usagef("unexpected argument %q (flags start with --)", fs.Arg(0))), false
	}
	accounts, err := ef.accountList()
	if err != nil {
		return nil, fail(err), false
	}
	// Last, so that the customer signs in only for a command line that
	// is right otherwise.
	token, err := ef.sourceToken(ctx)
	if err != nil {
		return nil, fail(err), false
	}
	if token != nil {
		accounts[0].SourceToken = token
	}
	return accounts, exitOK, true
}
