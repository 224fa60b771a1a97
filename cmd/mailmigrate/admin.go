package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"mailmigrate/internal/hosting"
	"mailmigrate/internal/store"
	"mailmigrate/internal/web"
)

// admin is one run of mailmigrate admin: the database and the flags.
type admin struct {
	ctx context.Context
	st  *store.DB
	out io.Writer

	name, customer, tenant, label, pwFile string
	limit                                 int
	yes                                   bool
}

// adminCommand is a command of mailmigrate admin: its words, the
// arguments that follow them, and what it does. The usage is made from
// the list, so that it names every command as it is typed.
type adminCommand struct {
	words string // "customer show"
	usage string // flags and arguments after the words
	help  string
	args  int // how many arguments follow the words
	run   func(a *admin, args []string) error
}

var adminCommands = []adminCommand{
	{"init", "[--name NAME]", "create the first operator and print its API token", 0, (*admin).initOperator},
	{"list", "", "show operators, customers and their domains", 0, (*admin).list},

	{"customer add", "NAME", "add a customer", 1, (*admin).customerAdd},
	{"customer list", "", "list operators and customers: state, domains, sign-ins, tokens", 0, (*admin).customerList},
	{"customer show", "NAME", "a customer's domains, migrations, sign-ins and API tokens", 1, (*admin).customerShow},
	{"customer disable", "NAME", "refuse its API tokens and sign-ins, hold its queued mailboxes", 1, (*admin).customerDisable},
	{"customer enable", "NAME", "undo disable", 1, (*admin).customerEnable},
	{"customer delete", "[--yes] NAME", "delete it with its domains, migrations, sign-ins and tokens", 1, (*admin).customerDelete},

	{"domain add", "--customer NAME [--mailbox-limit N] DOMAIN", "give a customer a domain", 1, (*admin).domainAdd},
	{"domain list", "[--customer NAME]", "list the domains (of one customer)", 0, (*admin).domainList},
	{"domain show", "DOMAIN", "a domain's customer, limit and migrations", 1, (*admin).domainShow},
	{"domain set-limit", "DOMAIN N", "most mailboxes the domain may have (0: no limit)", 2, (*admin).domainSetLimit},
	{"domain delete", "[--yes] DOMAIN", "delete it with its migrations (its mailboxes stay)", 1, (*admin).domainDelete},

	{"user add", "--tenant NAME [--password-file F] EMAIL", "let a person sign in to the panel (password from F or stdin)", 1, (*admin).userAdd},
	{"user list", "[--tenant NAME]", "list the people who sign in (for one tenant)", 0, (*admin).userList},
	{"user disable", "EMAIL", "refuse the person's sign-in and end the sessions", 1, (*admin).userDisable},
	{"user enable", "EMAIL", "undo disable", 1, (*admin).userEnable},
	{"user delete", "[--yes] EMAIL", "delete the person's sign-in", 1, (*admin).userDelete},
	{"user password", "[--password-file F] EMAIL", "set a new password (from F or stdin) and end the sessions", 1, (*admin).userPassword},

	{"token add", "--tenant NAME [--label LABEL]", "print a new API token for an operator or customer", 0, (*admin).tokenAdd},
	{"token list", "[--tenant NAME]", "list API tokens: id, label, created, last used (never the token)", 0, (*admin).tokenList},
	{"token revoke", "[--yes] ID", "refuse the token from now on", 1, (*admin).tokenRevoke},

	{"secrets forget", "", "delete every stored password (after the secret key was lost)", 0, (*admin).secretsForget},
}

// adminUsage lists the commands, a group of lines per kind of object.
func adminUsage() string {
	var b strings.Builder
	b.WriteString("usage: mailmigrate admin [--config FILE] <command>\n\ncommands (NAME: an operator's or a customer's name):\n")
	group := "-"
	for i, c := range adminCommands {
		// The commands of one kind of object together; init and list
		// stand alone.
		first, _, _ := strings.Cut(c.words, " ")
		if first == c.words {
			first = ""
		}
		if first != group && i > 0 {
			b.WriteString("\n")
		}
		group = first
		line := strings.TrimSpace(c.words + " " + c.usage)
		fmt.Fprintf(&b, "  %-54s %s\n", line, c.help)
	}
	b.WriteString("\nDeleting and revoking ask for confirmation on a terminal; elsewhere add --yes.\n\nflags:\n")
	return b.String()
}

// runAdmin manages operators, customers, domains, sign-ins and tokens
// directly in the database (also while the server runs).
func runAdmin(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), adminUsage())
		fs.PrintDefaults()
	}
	a := &admin{ctx: ctx, out: os.Stdout}
	cfgPath := fs.String("config", "", "configuration file")
	fs.StringVar(&a.name, "name", "operator", "with init: the operator's name")
	fs.StringVar(&a.customer, "customer", "", "with domain add and domain list: the customer's name")
	fs.IntVar(&a.limit, "mailbox-limit", 0, "with domain add: most mailboxes the domain may have (0: no limit)")
	fs.StringVar(&a.tenant, "tenant", "", "with token and user add and list: the operator's or customer's name")
	fs.StringVar(&a.label, "label", "api", "with token add: what the token is for")
	fs.StringVar(&a.pwFile, "password-file", "", "with user add and user password: file whose first line is the password (default: standard input)")
	fs.BoolVar(&a.yes, "yes", false, "with delete and revoke: do it without asking")
	// Flags may come before or after the command words.
	var words []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return parseExit(err)
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	cmd, cmdArgs, ok := findAdminCommand(words)
	if !ok {
		fs.Usage()
		return exitUsage
	}
	if len(cmdArgs) != cmd.args {
		return fail(usagef("usage: mailmigrate admin %s %s", cmd.words, cmd.usage))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(usageError{err.Error()})
	}
	if a.st, err = openStore(ctx, cfg); err != nil {
		return fail(err)
	}
	defer a.st.Close()
	if err := cmd.run(a, cmdArgs); err != nil {
		return fail(err)
	}
	return exitOK
}

// findAdminCommand finds the command that words begin with, and the
// arguments after its words.
func findAdminCommand(words []string) (adminCommand, []string, bool) {
	for _, c := range adminCommands {
		n := len(strings.Fields(c.words))
		if len(words) >= n && strings.Join(words[:n], " ") == c.words {
			return c, words[n:], true
		}
	}
	return adminCommand{}, nil, false
}

// tenantByName finds an operator or a customer by its name, in any letter
// case.
func (a *admin) tenantByName(name string) (store.Tenant, error) {
	if name == "" {
		return store.Tenant{}, usagef("name the operator or customer (see: mailmigrate admin customer list)")
	}
	ts, err := a.st.Tenants(a.ctx)
	if err != nil {
		return store.Tenant{}, err
	}
	for _, t := range ts {
		if strings.EqualFold(t.Name, name) {
			return t, nil
		}
	}
	return store.Tenant{}, usagef("no operator or customer named %q (see: mailmigrate admin customer list)", name)
}

// listScope is the tenant a list is limited to (0: all, without a name)
// and every tenant's name, for the list's lines.
func (a *admin) listScope(name string) (int64, map[int64]string, error) {
	var owner int64
	if name != "" {
		t, err := a.tenantByName(name)
		if err != nil {
			return 0, nil, err
		}
		owner = t.ID
	}
	names, err := a.tenantNames()
	return owner, names, err
}

func (a *admin) domainByName(name string) (store.Domain, error) {
	d, err := a.st.DomainByName(a.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return d, usagef("no domain %s (see: mailmigrate admin domain list)", name)
	}
	return d, err
}

func (a *admin) userByEmail(email string) (store.User, error) {
	u, err := a.st.UserByEmail(a.ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return u, usagef("nobody signs in as %s (see: mailmigrate admin user list)", email)
	}
	return u, err
}

// tenantNames maps the tenants' IDs to their names, for lists.
func (a *admin) tenantNames() (map[int64]string, error) {
	ts, err := a.st.Tenants(a.ctx)
	names := map[int64]string{}
	for _, t := range ts {
		names[t.ID] = t.Name
	}
	return names, err
}

// table writes aligned columns.
func (a *admin) table(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func state(disabled time.Time) string {
	if disabled.IsZero() {
		return "enabled"
	}
	return "disabled since " + when(disabled)
}

func limitText(n int) string {
	if n == 0 {
		return "no limit"
	}
	return strconv.Itoa(n)
}

// mailboxStates is the order in which mailbox counts are shown: what
// still runs first.
var mailboxStates = []string{store.StateQueued, store.StateRunning, store.StatePaused, store.StateFailed,
	store.StateWarnings, store.StateDone, store.StateCancelled}

// activityText is a domain's migrations and mailboxes in a line.
func activityText(act store.Activity) string {
	s := fmt.Sprintf("%d migration(s), %d running", act.Migrations, act.Running)
	var parts []string
	for _, st := range mailboxStates {
		if n := act.Mailboxes[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) > 0 {
		s += "; mailboxes: " + strings.Join(parts, ", ")
	}
	return s
}

// confirm asks before something is deleted for good: on a terminal the
// operator types yes; anywhere else --yes must be given, so that a script
// deletes nothing it did not say it would.
func (a *admin) confirm(what string) error {
	if a.yes {
		return nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return usagef("%s; add --yes to do it", what)
	}
	fmt.Fprintf(os.Stderr, "%s.\nType yes to do it: ", what)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if !strings.EqualFold(strings.TrimSpace(line), "yes") {
		return errors.New("not confirmed: nothing was changed")
	}
	return nil
}

// refusal explains why the store refused to delete or disable (action)
// what.
func refusal(action, what string, err error) error {
	var re *store.RunningError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("cannot %s %s: the mailbox %s (migration %d) is queued or being copied; cancel that migration "+
			"in the panel or the API, or wait until it has finished, then %s again", action, what, re.Mailbox, re.MigrationID, action)
	case errors.Is(err, store.ErrLastOperator):
		return fmt.Errorf("cannot %s %s: it is the only enabled operator, and nobody could manage the service "+
			"through the API or the panel without one", action, what)
	}
	return err
}

func (a *admin) newToken(t store.Tenant, label string) error {
	tok := web.NewToken()
	if err := a.st.CreateToken(a.ctx, t.ID, label, web.HashToken(tok)); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "API token for %s (shown once, store it now):\n%s\n", t.Name, tok)
	return nil
}

func (a *admin) initOperator([]string) error {
	ts, err := a.st.Tenants(a.ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.Kind == store.KindOperator {
			return usagef("an operator exists already (%s); add tokens with: mailmigrate admin token add --tenant %q", t.Name, t.Name)
		}
	}
	t, err := a.st.CreateTenant(a.ctx, a.name, store.KindOperator)
	if err != nil {
		return err
	}
	return a.newToken(t, "operator")
}

func (a *admin) list([]string) error {
	ts, err := a.st.Tenants(a.ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		fmt.Fprintf(a.out, "%s (%s, %s)\n", t.Name, t.Kind, state(t.Disabled))
		ds, err := a.st.Domains(a.ctx, t.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			fmt.Fprintf(a.out, "  %s (mailbox limit %s)\n", d.Name, limitText(d.MailboxLimit))
		}
	}
	return nil
}

func (a *admin) secretsForget([]string) error {
	n, err := a.st.ForgetSecrets(a.ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "forgot the stored passwords of %d mailbox(es); the next start makes or takes a key afresh\n", n)
	return nil
}

func (a *admin) customerAdd(args []string) error {
	t, err := a.st.CreateTenant(a.ctx, args[0], store.KindCustomer)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "customer %s added (id %d)\n", t.Name, t.ID)
	return nil
}

func (a *admin) customerList([]string) error {
	ts, err := a.st.Tenants(a.ctx)
	if err != nil {
		return err
	}
	ds, err := a.st.Domains(a.ctx, 0)
	if err != nil {
		return err
	}
	us, err := a.st.Users(a.ctx, 0)
	if err != nil {
		return err
	}
	ks, err := a.st.Tokens(a.ctx, 0)
	if err != nil {
		return err
	}
	domains, users, tokens := map[int64]int{}, map[int64]int{}, map[int64]int{}
	for _, d := range ds {
		domains[d.TenantID]++
	}
	for _, u := range us {
		users[u.TenantID]++
	}
	for _, k := range ks {
		tokens[k.TenantID]++
	}
	tw := a.table("NAME\tKIND\tSTATE\tDOMAINS\tSIGN-INS\tTOKENS\tCREATED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Name, t.Kind, state(t.Disabled), domains[t.ID], users[t.ID], tokens[t.ID], when(t.Created))
	}
	return tw.Flush()
}

func (a *admin) customerShow(args []string) error {
	t, err := a.tenantByName(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s: %s (id %d), created %s, %s\n", t.Name, t.Kind, t.ID, when(t.Created), state(t.Disabled))
	ds, err := a.st.Domains(a.ctx, t.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "domains: %d\n", len(ds))
	for _, d := range ds {
		act, err := a.st.DomainActivity(a.ctx, d.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.out, "  %s (mailbox limit %s): %s\n", d.Name, limitText(d.MailboxLimit), activityText(act))
	}
	us, err := a.st.Users(a.ctx, t.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "sign-ins: %d\n", len(us))
	for _, u := range us {
		fmt.Fprintf(a.out, "  %s (%s, created %s)\n", u.Email, state(u.Disabled), when(u.Created))
	}
	ks, err := a.st.Tokens(a.ctx, t.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "API tokens: %d\n", len(ks))
	for _, k := range ks {
		fmt.Fprintf(a.out, "  id %d %q, created %s, last used %s\n", k.ID, k.Label, when(k.Created), when(k.LastUsed))
	}
	return nil
}

func (a *admin) customerDisable(args []string) error { return a.switchCustomer(args[0], true) }
func (a *admin) customerEnable(args []string) error  { return a.switchCustomer(args[0], false) }

func (a *admin) switchCustomer(name string, disable bool) error {
	t, err := a.tenantByName(name)
	if err != nil {
		return err
	}
	if err := a.st.SetTenantDisabled(a.ctx, t.ID, disable); err != nil {
		return refusal("disable", t.Name, err)
	}
	if disable {
		fmt.Fprintf(a.out, "%s is disabled: its API tokens and sign-ins are refused and its people were signed out; its queued "+
			"mailboxes wait, and no new migration starts, until: mailmigrate admin customer enable %q\n", t.Name, t.Name)
	} else {
		fmt.Fprintf(a.out, "%s is enabled: its API tokens and sign-ins work, its queued mailboxes are copied\n", t.Name)
	}
	return nil
}

func (a *admin) customerDelete(args []string) error {
	t, err := a.tenantByName(args[0])
	if err != nil {
		return err
	}
	ds, err := a.st.Domains(a.ctx, t.ID)
	if err != nil {
		return err
	}
	migrations := 0
	for _, d := range ds {
		act, err := a.st.DomainActivity(a.ctx, d.ID)
		if err != nil {
			return err
		}
		migrations += act.Migrations
	}
	us, err := a.st.Users(a.ctx, t.ID)
	if err != nil {
		return err
	}
	ks, err := a.st.Tokens(a.ctx, t.ID)
	if err != nil {
		return err
	}
	owned := fmt.Sprintf("%d domain(s), %d migration(s), %d sign-in(s) and %d API token(s)", len(ds), migrations, len(us), len(ks))
	if err := a.confirm(fmt.Sprintf("deleting %s deletes its %s for good", t.Name, owned)); err != nil {
		return err
	}
	if err := a.st.DeleteTenant(a.ctx, t.ID); err != nil {
		return refusal("delete", t.Name, err)
	}
	fmt.Fprintf(a.out, "%s deleted with its %s\n", t.Name, owned)
	return nil
}

func (a *admin) domainAdd(args []string) error {
	c, err := a.tenantByName(a.customer)
	if err != nil {
		return err
	}
	name, err := hosting.NormalizeDomain(args[0])
	if err != nil {
		return usageError{err.Error()}
	}
	if a.limit < 0 {
		return usagef("--mailbox-limit %d: give a number of mailboxes, or 0 for no limit", a.limit)
	}
	d, err := a.st.CreateDomain(a.ctx, store.Domain{TenantID: c.ID, Name: name, MailboxLimit: a.limit})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "domain %s added for %s\n", d.Name, c.Name)
	return nil
}

func (a *admin) domainList([]string) error {
	owner, names, err := a.listScope(a.customer)
	if err != nil {
		return err
	}
	ds, err := a.st.Domains(a.ctx, owner)
	if err != nil {
		return err
	}
	tw := a.table("DOMAIN\tCUSTOMER\tMAILBOX LIMIT\tMIGRATIONS\tRUNNING\tCREATED")
	for _, d := range ds {
		act, err := a.st.DomainActivity(a.ctx, d.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", d.Name, names[d.TenantID], limitText(d.MailboxLimit), act.Migrations, act.Running, when(d.Created))
	}
	return tw.Flush()
}

func (a *admin) domainShow(args []string) error {
	d, err := a.domainByName(args[0])
	if err != nil {
		return err
	}
	t, err := a.st.Tenant(a.ctx, d.TenantID)
	if err != nil {
		return err
	}
	act, err := a.st.DomainActivity(a.ctx, d.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s: customer %s (%s), mailbox limit %s, created %s\n%s\n", d.Name, t.Name, state(t.Disabled),
		limitText(d.MailboxLimit), when(d.Created), activityText(act))
	return nil
}

func (a *admin) domainSetLimit(args []string) error {
	d, err := a.domainByName(args[0])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return usagef("%q is not a number of mailboxes: give 0 (no limit) or more", args[1])
	}
	if err := a.st.SetMailboxLimit(a.ctx, d.ID, n); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s: mailbox limit %s (was %s)\n", d.Name, limitText(n), limitText(d.MailboxLimit))
	return nil
}

func (a *admin) domainDelete(args []string) error {
	d, err := a.domainByName(args[0])
	if err != nil {
		return err
	}
	act, err := a.st.DomainActivity(a.ctx, d.ID)
	if err != nil {
		return err
	}
	if err := a.confirm(fmt.Sprintf("deleting the domain %s deletes its %d migration(s) and their reports for good "+
		"(its mailboxes on the hosting stay)", d.Name, act.Migrations)); err != nil {
		return err
	}
	if err := a.st.DeleteDomain(a.ctx, d.ID); err != nil {
		return refusal("delete", "the domain "+d.Name, err)
	}
	fmt.Fprintf(a.out, "domain %s deleted with its %d migration(s)\n", d.Name, act.Migrations)
	return nil
}

func (a *admin) userAdd(args []string) error {
	tn, err := a.tenantByName(a.tenant)
	if err != nil {
		return err
	}
	if _, err := hosting.NormalizeAddress(args[0]); err != nil {
		return usagef("%q is not an email address", args[0])
	}
	pw, err := readPassword(a.pwFile)
	if err != nil {
		return err
	}
	u, err := a.st.CreateUser(a.ctx, tn.ID, args[0], web.HashPassword(pw))
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s can sign in to the panel for %s\n", u.Email, tn.Name)
	return nil
}

func (a *admin) userList([]string) error {
	owner, names, err := a.listScope(a.tenant)
	if err != nil {
		return err
	}
	us, err := a.st.Users(a.ctx, owner)
	if err != nil {
		return err
	}
	tw := a.table("EMAIL\tFOR\tSTATE\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Email, names[u.TenantID], state(u.Disabled), when(u.Created))
	}
	return tw.Flush()
}

func (a *admin) userDisable(args []string) error { return a.switchUser(args[0], true) }
func (a *admin) userEnable(args []string) error  { return a.switchUser(args[0], false) }

func (a *admin) switchUser(email string, disable bool) error {
	u, err := a.userByEmail(email)
	if err != nil {
		return err
	}
	if err := a.st.SetUserDisabled(a.ctx, u.ID, disable); err != nil {
		return err
	}
	if disable {
		fmt.Fprintf(a.out, "%s is disabled and signed out; enable it with: mailmigrate admin user enable %s\n", u.Email, u.Email)
	} else {
		fmt.Fprintf(a.out, "%s can sign in again\n", u.Email)
	}
	return nil
}

func (a *admin) userDelete(args []string) error {
	u, err := a.userByEmail(args[0])
	if err != nil {
		return err
	}
	if err := a.confirm(fmt.Sprintf("deleting the sign-in %s ends its sessions for good", u.Email)); err != nil {
		return err
	}
	if err := a.st.DeleteUser(a.ctx, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s deleted: it can no longer sign in\n", u.Email)
	return nil
}

func (a *admin) userPassword(args []string) error {
	u, err := a.userByEmail(args[0])
	if err != nil {
		return err
	}
	pw, err := readPassword(a.pwFile)
	if err != nil {
		return err
	}
	ended, err := a.st.SetUserPassword(a.ctx, u.ID, web.HashPassword(pw))
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "new password set for %s; %d sign-in session(s) ended\n", u.Email, ended)
	return nil
}

func (a *admin) tokenAdd([]string) error {
	t, err := a.tenantByName(a.tenant)
	if err != nil {
		return err
	}
	return a.newToken(t, a.label)
}

func (a *admin) tokenList([]string) error {
	owner, names, err := a.listScope(a.tenant)
	if err != nil {
		return err
	}
	ks, err := a.st.Tokens(a.ctx, owner)
	if err != nil {
		return err
	}
	tw := a.table("ID\tFOR\tLABEL\tCREATED\tLAST USED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", k.ID, names[k.TenantID], k.Label, when(k.Created), when(k.LastUsed))
	}
	return tw.Flush()
}

func (a *admin) tokenRevoke(args []string) error {
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return usagef("%q is not a token id: give the number in the first column of: mailmigrate admin token list", args[0])
	}
	if err := a.confirm(fmt.Sprintf("revoking API token %d refuses every request made with it", id)); err != nil {
		return err
	}
	k, err := a.st.DeleteToken(a.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return usagef("no API token %d (see: mailmigrate admin token list)", id)
	}
	if err != nil {
		return err
	}
	names, err := a.tenantNames()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "API token %d (%q of %s) revoked: requests with it are refused from now on\n", k.ID, k.Label, names[k.TenantID])
	return nil
}

// minPanelPassword is the shortest password a panel sign-in may have.
const minPanelPassword = 10

// readPassword takes a panel password from a file's first line, from the
// terminal (typed twice, not shown), or from standard input's first line.
func readPassword(file string) (string, error) {
	var pw string
	fd := int(os.Stdin.Fd())
	switch {
	case file != "":
		var err error
		if pw, err = firstLine("--password-file", file); err != nil {
			return "", err
		}
	case term.IsTerminal(fd):
		var typed [2]string
		for i, prompt := range []string{"Password: ", "The same again: "} {
			fmt.Fprint(os.Stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			if err != nil {
				return "", fmt.Errorf("read the password: %w", err)
			}
			typed[i] = string(b)
		}
		if typed[0] != typed[1] {
			return "", usagef("the two passwords differ; nothing was changed")
		}
		pw = typed[0]
	default:
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", usagef("give the password on standard input or with --password-file")
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < minPanelPassword {
		return "", usagef("the password must have at least %d characters", minPanelPassword)
	}
	return pw, nil
}
