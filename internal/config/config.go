// Package config reads the service's configuration file: "key = value"
// lines, "#" comments, dotted keys for groups. Every key is documented in
// mailmigrate.conf.example at the root of the repository.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of `mailmigrate serve`.
type Config struct {
	Listen  string // address of the web and API listener
	DataDir string // SQLite database and secret key
	// Database is the URL of a PostgreSQL database (postgres://…) that
	// holds the data instead of the SQLite file in DataDir; several
	// servers may share it. It may carry a password: never log it.
	Database string
	// DatabaseConnections bounds this process's connections to the
	// PostgreSQL database: every server's share must fit in the
	// database's max_connections.
	DatabaseConnections int
	Hosting             Hosting
	Sources             Sources
	Jobs                Jobs
	// SecretRetention is how long passwords stay stored after a task has
	// finished, for a final re-sync.
	SecretRetention time.Duration
	// DNSServer, when set (host:port), answers the diagnosis's and the DNS
	// check's questions instead of the system's resolver.
	DNSServer string
	// LogFormat is how serve logs: "text" (default) or "json".
	LogFormat string
	Notify    Notify
	Web       Web
	// OAuth is the hosting's registration with the providers whose
	// mailboxes take no passwords over IMAP, by provider ("google",
	// "microsoft"); a provider without a client ID offers no sign-in.
	OAuth map[string]OAuthClient
}

// OAuthClient is the hosting's registration (an OAuth2 client) with one
// provider. Empty URLs are the provider's own.
type OAuthClient struct {
	ClientID string
	// ClientSecret, or the first line of ClientSecretFile; empty for a
	// public client. Never log it.
	ClientSecret, ClientSecretFile string
	AuthURL, TokenURL, DeviceURL   string
}

// OAuthProviders are the providers the oauth.* keys may name.
var OAuthProviders = []string{"google", "microsoft"}

// Web is how the panel and the API face the internet.
type Web struct {
	// PublicURL is the panel's address as customers open it (behind a TLS
	// proxy: https://…); with https the session cookie is Secure and
	// browsers are told to use HTTPS only (HSTS).
	PublicURL string
	// TrustedProxies are the addresses (CIDR) of reverse proxies whose
	// X-Forwarded-For names the client; from anywhere else it is ignored.
	TrustedProxies []netip.Prefix
	// CheckLines is the most lines (logins) one check or start may hold;
	// ChecksPerHour the most login checks one customer may run in an hour.
	CheckLines, ChecksPerHour int
	// HandoffKeyFile holds the key that the hosting's own customer panel
	// signs its sign-in links with (a shared secret or a PEM public key);
	// empty: no such links.
	HandoffKeyFile string
	// SignInReturnOrigins are the origins (https://panel.hosting.example)
	// that a sign-in with a provider started through the API may send the
	// customer's browser back to; a return URL elsewhere is refused.
	SignInReturnOrigins []string
}

// Notify is the mail that tells customers about their migrations.
type Notify struct {
	SMTP         string // host:port of the hosting's relay; empty: no mail
	Security     string // starttls (default), tls or none
	From         string
	User         string
	PasswordFile string
	CAFile       string
	BaseURL      string // the panel's public address, for links in the mails
}

// Hosting is the destination side.
type Hosting struct {
	IMAP               string // imaps://host[:port] of the hosting's IMAP server
	CAFile             string
	InsecureSkipVerify bool
	// AllowPlaintext lets an imap:// IMAP address on this machine
	// (loopback) be used without TLS: no password crosses a network, and
	// the copy skips the server's TLS proxy.
	AllowPlaintext bool
	Driver         string // passwd-file or command
	PasswdFile     string
	PasswdScheme   string
	DefaultQuota   int64
	UID, GID, Home string
	CommandList    string
	CommandCreate  string
	CommandQuota   string
	// Optional commands for managing mailboxes after a migration.
	CommandPassword, CommandSetQuota, CommandAliases string
	// AliasFile is the Postfix-style virtual alias table the passwd-file
	// driver manages aliases in; AliasReloadCommand (program and
	// arguments, run without a shell) after each change.
	AliasFile          string
	AliasReloadCommand []string
	// MaxQuota is the plan limit: the largest quota a customer may give a
	// mailbox. 0: customers cannot change quotas.
	MaxQuota           int64
	MasterUser         string
	MasterPasswordFile string
	// MaxMessageSize is the largest message the hosting takes; bigger
	// ones are listed before the copy instead of failing one by one.
	MaxMessageSize int64
	// What the DNS check expects a migrated domain to point to.
	MX, IMAPNames, SMTPNames, POP3Names, Addresses []string
	SPFInclude                                     string
}

// Sources limits what customers may give as a source server.
type Sources struct {
	AllowPlaintext bool
	AllowPrivate   bool // internal addresses (loopback, private ranges)
	HostLimit      int  // tasks copying from one source host at once
	// MaxFolders is the most folders a source mailbox may have; one with
	// more is refused before anything is created. 0: the engine's default.
	MaxFolders int
	// AllowedPorts are the ports a source server may use besides the IMAP
	// ports 143 and 993 (imapconn.CheckPort), for providers known to
	// listen elsewhere; any other port is refused so that customers cannot
	// probe the ports of the internet through the service. Like the
	// address check, it is skipped when AllowPrivate is set.
	AllowedPorts []int
}

// Jobs tunes the background work.
type Jobs struct {
	Workers int
	Slice   time.Duration
	// RescueAfter is how long a job may run before another server takes
	// it over for a server that died (0: the slice and 5 minutes).
	RescueAfter time.Duration
	// Lease is how long a copy's slot of its old server lasts unless
	// renewed: a killed server's slots come back after that long.
	Lease time.Duration
	// ResyncStopDays is how many days after the domain's MX points to the
	// hosting a scheduled daily re-sync stops by itself.
	ResyncStopDays int
}

// Default is the configuration without a file: everything local.
func Default() Config {
	return Config{
		Listen:              "127.0.0.1:8080",
		DatabaseConnections: 20,
		DataDir:             defaultDataDir(),
		Hosting:             Hosting{Driver: "passwd-file", PasswdScheme: "ARGON2ID"},
		Sources:             Sources{HostLimit: 3},
		Jobs:                Jobs{Workers: 6, Slice: 10 * time.Minute, Lease: 30 * time.Second, ResyncStopDays: 14},
		SecretRetention:     7 * 24 * time.Hour,
		// A hosting's customers rarely have more than a few hundred
		// mailboxes in one domain; a login check of more is a spray.
		Web: Web{CheckLines: 500, ChecksPerHour: 2000},
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "mailmigrate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "mailmigrate")
	}
	return "mailmigrate-data"
}

// Load reads a configuration file over the defaults.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(data, path)
}

// Parse reads configuration text; name is used in error messages.
func Parse(data []byte, name string) (Config, error) {
	c := Default()
	var errs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Sprintf("%s:%d: expected key = value", name, n))
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if err := c.set(key, val); err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: %v", name, n, key, err))
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration errors:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func (c *Config) set(key, val string) error {
	str := func(p *string) error { *p = val; return nil }
	boolean := func(p *bool) error {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%q is not true or false", val)
		}
		*p = b
		return nil
	}
	integer := func(p *int) error {
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a whole number", val)
		}
		*p = n
		return nil
	}
	ports := func(p *[]int) error {
		var ns []int
		for _, v := range list(val) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q is not a port number between 1 and 65535", v)
			}
			if !slices.Contains(ns, n) {
				ns = append(ns, n)
			}
		}
		*p = ns
		return nil
	}
	duration := func(p *time.Duration) error {
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration like 90s, 10m or 168h", val)
		}
		*p = d
		return nil
	}
	if rest, ok := strings.CutPrefix(key, "oauth."); ok {
		return c.setOAuth(rest, val)
	}
	switch key {
	case "listen":
		return str(&c.Listen)
	case "data_dir":
		return str(&c.DataDir)
	case "database":
		if val != "" {
			u, err := url.Parse(val)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				// Not quoted: the value may hold a password.
				return errors.New("not a PostgreSQL URL: use postgres://user:password@host/database, or leave it empty for SQLite in data_dir")
			}
		}
		return str(&c.Database)
	case "database_connections":
		return integer(&c.DatabaseConnections)
	case "secret_retention":
		return duration(&c.SecretRetention)
	case "log_format":
		if val != "text" && val != "json" {
			return fmt.Errorf("%q: use text or json", val)
		}
		c.LogFormat = val
		return nil
	case "dns_server":
		return str(&c.DNSServer)
	case "hosting.imap":
		return str(&c.Hosting.IMAP)
	case "hosting.ca_file":
		return str(&c.Hosting.CAFile)
	case "hosting.insecure_skip_verify":
		return boolean(&c.Hosting.InsecureSkipVerify)
	case "hosting.allow_plaintext":
		return boolean(&c.Hosting.AllowPlaintext)
	case "hosting.driver":
		if val != "passwd-file" && val != "command" {
			return fmt.Errorf("%q is not a driver: use passwd-file or command", val)
		}
		return str(&c.Hosting.Driver)
	case "hosting.passwd_file":
		return str(&c.Hosting.PasswdFile)
	case "hosting.passwd_scheme":
		return str(&c.Hosting.PasswdScheme)
	case "hosting.default_quota":
		n, err := ParseSize(val)
		c.Hosting.DefaultQuota = n
		return err
	case "hosting.max_message_size":
		n, err := ParseSize(val)
		c.Hosting.MaxMessageSize = n
		return err
	case "hosting.uid":
		return str(&c.Hosting.UID)
	case "hosting.gid":
		return str(&c.Hosting.GID)
	case "hosting.home":
		return str(&c.Hosting.Home)
	case "hosting.command.list":
		return str(&c.Hosting.CommandList)
	case "hosting.command.create":
		return str(&c.Hosting.CommandCreate)
	case "hosting.command.quota":
		return str(&c.Hosting.CommandQuota)
	case "hosting.command.password":
		return str(&c.Hosting.CommandPassword)
	case "hosting.command.set_quota":
		return str(&c.Hosting.CommandSetQuota)
	case "hosting.command.aliases":
		return str(&c.Hosting.CommandAliases)
	case "hosting.alias_file":
		return str(&c.Hosting.AliasFile)
	case "hosting.alias_reload_command":
		args, err := SplitCommand(val)
		c.Hosting.AliasReloadCommand = args
		return err
	case "hosting.max_quota":
		n, err := ParseSize(val)
		c.Hosting.MaxQuota = n
		return err
	case "hosting.master_user":
		return str(&c.Hosting.MasterUser)
	case "hosting.master_password_file":
		return str(&c.Hosting.MasterPasswordFile)
	case "hosting.mx":
		c.Hosting.MX = list(val)
		return nil
	case "hosting.imap_names":
		c.Hosting.IMAPNames = list(val)
		return nil
	case "hosting.smtp_names":
		c.Hosting.SMTPNames = list(val)
		return nil
	case "hosting.pop3_names":
		c.Hosting.POP3Names = list(val)
		return nil
	case "hosting.addresses":
		c.Hosting.Addresses = list(val)
		return nil
	case "hosting.spf_include":
		return str(&c.Hosting.SPFInclude)
	case "sources.allow_plaintext":
		return boolean(&c.Sources.AllowPlaintext)
	case "sources.allow_private":
		return boolean(&c.Sources.AllowPrivate)
	case "sources.host_limit":
		return integer(&c.Sources.HostLimit)
	case "sources.max_folders":
		return integer(&c.Sources.MaxFolders)
	case "sources.allowed_ports":
		return ports(&c.Sources.AllowedPorts)
	case "notify.smtp":
		return str(&c.Notify.SMTP)
	case "notify.security":
		if val != "starttls" && val != "tls" && val != "none" {
			return fmt.Errorf("%q is not starttls, tls or none", val)
		}
		return str(&c.Notify.Security)
	case "notify.from":
		return str(&c.Notify.From)
	case "notify.user":
		return str(&c.Notify.User)
	case "notify.password_file":
		return str(&c.Notify.PasswordFile)
	case "notify.ca_file":
		return str(&c.Notify.CAFile)
	case "notify.base_url":
		return str(&c.Notify.BaseURL)
	case "web.public_url":
		u, err := url.Parse(val)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("%q is not the panel's address like https://migrate.hosting.example", val)
		}
		c.Web.PublicURL = strings.TrimSuffix(val, "/")
		return nil
	case "web.trusted_proxies":
		c.Web.TrustedProxies = nil
		for _, v := range list(val) {
			pr, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return fmt.Errorf("%q is not an address or a network like 10.0.0.0/8", v)
				}
				pr = netip.PrefixFrom(a, a.BitLen())
			}
			c.Web.TrustedProxies = append(c.Web.TrustedProxies, pr.Masked())
		}
		return nil
	case "web.handoff_key_file":
		return str(&c.Web.HandoffKeyFile)
	case "web.sign_in_return_origins":
		c.Web.SignInReturnOrigins = nil
		for _, v := range list(val) {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("%q is not an origin like https://panel.hosting.example", v)
			}
			c.Web.SignInReturnOrigins = append(c.Web.SignInReturnOrigins, strings.ToLower(u.Scheme+"://"+u.Host))
		}
		return nil
	case "web.check_lines":
		return integer(&c.Web.CheckLines)
	case "web.checks_per_hour":
		return integer(&c.Web.ChecksPerHour)
	case "jobs.workers":
		return integer(&c.Jobs.Workers)
	case "jobs.slice":
		return duration(&c.Jobs.Slice)
	case "jobs.rescue_after":
		return duration(&c.Jobs.RescueAfter)
	case "jobs.lease":
		return duration(&c.Jobs.Lease)
	case "jobs.resync_stop_days":
		return integer(&c.Jobs.ResyncStopDays)
	}
	return fmt.Errorf("unknown key (see mailmigrate.conf.example)")
}

// setOAuth sets one oauth.<provider>.<field> key.
func (c *Config) setOAuth(key, val string) error {
	id, field, _ := strings.Cut(key, ".")
	if !slices.Contains(OAuthProviders, id) {
		return fmt.Errorf("unknown provider %q (known: %s)", id, strings.Join(OAuthProviders, ", "))
	}
	if c.OAuth == nil {
		c.OAuth = map[string]OAuthClient{}
	}
	o := c.OAuth[id]
	endpoint := func(p *string) error {
		u, err := url.Parse(val)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", val)
		}
		*p = val
		return nil
	}
	var err error
	switch field {
	case "client_id":
		o.ClientID = val
	case "client_secret":
		o.ClientSecret = val
	case "client_secret_file":
		o.ClientSecretFile = val
	case "auth_url":
		err = endpoint(&o.AuthURL)
	case "token_url":
		err = endpoint(&o.TokenURL)
	case "device_url":
		err = endpoint(&o.DeviceURL)
	default:
		return fmt.Errorf("unknown key (see mailmigrate.conf.example)")
	}
	c.OAuth[id] = o
	return err
}

// Secret is the client secret: ClientSecret, or the first line of
// ClientSecretFile.
func (o OAuthClient) Secret() (string, error) {
	if o.ClientSecretFile == "" {
		return o.ClientSecret, nil
	}
	data, err := os.ReadFile(o.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("read the OAuth client secret: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

// list splits a comma- or space-separated value.
func list(val string) []string {
	return strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' })
}

// SplitCommand splits a command line into the program and its arguments
// the way a shell would for plain words and quotes, without running one:
// white space separates, '…' keeps everything literally, "…" and a
// backslash outside quotes keep the next character. Nothing is expanded.
func SplitCommand(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%q has a ' without its closing '", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q has a \" without its closing \"", s)
			}
			inWord = true
		case c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("%q ends with a backslash", s)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// ParseSize reads a size like 500M, 2G or 1048576 (bytes).
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "T"):
		mult, s = 1<<40, strings.TrimSuffix(s, "T")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 500M or 2G", s)
	}
	return n * mult, nil
}
