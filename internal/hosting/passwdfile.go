package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// PasswdFileConfig configures a PasswdFile driver.
type PasswdFileConfig struct {
	// Path is the passwd-file that Dovecot's passdb and userdb read
	// (passdb { driver = passwd-file; args = <Path> }), one line per
	// mailbox keyed by the full address. The file must exist; its mode and
	// owner are kept when it is rewritten. The directory must be writable:
	// the rewrite goes through a temporary file there, and "<Path>.lock"
	// is created next to it.
	Path string
	// DefaultQuotaBytes is the quota Create writes when asked for 0.
	// 0 writes no quota rule, so Dovecot's global quota_rule (if any)
	// applies.
	DefaultQuotaBytes int64
	// UID and GID are written into fields 3 and 4 as given (a number or a
	// system name such as "vmail"). Dovecot's userdb needs them unless the
	// file is only a passdb; give both or neither.
	UID, GID string
	// Home is the home directory template for field 6: %d is the domain,
	// %n the local part, %u the whole address, e.g. "/var/vmail/%d/%n".
	// Empty leaves the field empty (Dovecot's mail_home applies).
	Home string
	// Scheme is the password scheme: "ARGON2ID" (default), "SHA512-CRYPT"
	// or "BLF-CRYPT".
	Scheme string
	// Aliases, when its Path is set, is the virtual alias table the
	// driver manages aliases in (see AliasFile); without it the driver
	// offers no aliases.
	Aliases AliasFileConfig
}

// PasswdFile is a Driver over a Dovecot passwd-file
// (user:password:uid:gid:gecos:home:shell:extra_fields).
//
// Limits and usage: the file holds only limits. Quota and List read the
// limit from the extra field userdb_quota_rule=*:storage=<N>[B|K|M|G|T]
// (a bare number is KiB, as in Dovecot) or *:bytes=<N>, and always report
// UsedBytes -1; ask the IMAP server (GETQUOTAROOT) for usage.
//
// New mailboxes: Dovecot 2.3's auth process looks at a passwd-file at most
// once per second, and re-reads it only when the file's mtime (whole
// seconds) or size changed; a rename to a new inode does not make it look
// sooner. A mailbox written just after another login was checked against
// the file is therefore unknown until the clock reaches the next second.
// Create covers this by returning only after that second boundary, so a
// login right after Create succeeds. This assumes Dovecot runs on this
// machine (one clock), and that its auth cache is off (the default): with
// auth_cache_size set, a login tried before Create is cached as unknown
// for auth_cache_negative_ttl; "doveadm auth cache flush <address>" ends
// that.
//
// Dovecot's side must match: one file for all domains, keyed by the full
// address (args = <Path>, no %d in it). Addresses keep the case given;
// with Dovecot's default auth_username_format = %Lu a login is lower-cased
// before the lookup, so create mailboxes in lower case there.
type PasswdFile struct {
	cfg PasswdFileConfig
	// sem serialises writers inside this process so they queue on a
	// channel (which honours ctx) instead of polling the file lock.
	sem     chan struct{}
	aliases *AliasFile // nil without an alias table
}

var (
	_ Driver         = (*PasswdFile)(nil)
	_ PasswordSetter = (*PasswdFile)(nil)
	_ QuotaSetter    = (*PasswdFile)(nil)
	_ AliasManager   = (*PasswdFile)(nil)
)

// NewPasswdFile checks the configuration and returns the driver. It does
// not touch the file.
func NewPasswdFile(cfg PasswdFileConfig) (*PasswdFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("passwd-file driver: no Path configured")
	}
	if cfg.DefaultQuotaBytes < 0 {
		return nil, fmt.Errorf("passwd-file driver: negative DefaultQuotaBytes %d", cfg.DefaultQuotaBytes)
	}
	cfg.Scheme = strings.ToUpper(cfg.Scheme)
	switch cfg.Scheme {
	case "":
		cfg.Scheme = SchemeArgon2ID
	case SchemeArgon2ID, SchemeSHA512Crypt, SchemeBlfCrypt:
	default:
		return nil, fmt.Errorf("passwd-file driver: unsupported Scheme %q (use %s, %s or %s)", cfg.Scheme, SchemeArgon2ID, SchemeSHA512Crypt, SchemeBlfCrypt)
	}
	if (cfg.UID == "") != (cfg.GID == "") {
		return nil, errors.New("passwd-file driver: set both UID and GID, or neither")
	}
	// Dovecot refuses uid/gid 0 in a userdb and would ignore the line.
	if cfg.UID == "0" || cfg.UID == "root" || cfg.GID == "0" || cfg.GID == "root" {
		return nil, errors.New("passwd-file driver: UID and GID cannot be root (Dovecot refuses mail access as root); use the virtual mail user, e.g. vmail")
	}
	for name, v := range map[string]string{"UID": cfg.UID, "GID": cfg.GID, "Home": cfg.Home} {
		if badFieldChar(v) {
			return nil, fmt.Errorf("passwd-file driver: %s %q contains ':' or a control character, which would break the file", name, v)
		}
	}
	if strings.ContainsAny(cfg.UID+cfg.GID, " ") {
		return nil, errors.New("passwd-file driver: UID and GID cannot contain spaces")
	}
	if cfg.Home != "" {
		if !strings.HasPrefix(cfg.Home, "/") {
			return nil, fmt.Errorf("passwd-file driver: Home %q must be an absolute path", cfg.Home)
		}
		if _, err := expandHome(cfg.Home, "a@b.c"); err != nil {
			return nil, fmt.Errorf("passwd-file driver: %w", err)
		}
	}
	p := &PasswdFile{cfg: cfg, sem: make(chan struct{}, 1)}
	if cfg.Aliases.Path != "" {
		var err error
		if p.aliases, err = NewAliasFile(cfg.Aliases); err != nil {
			return nil, fmt.Errorf("passwd-file driver: %w", err)
		}
	}
	return p, nil
}

func badFieldChar(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r == ':' || unicode.IsControl(r) })
}

// expandHome fills %d, %n and %u into the home template. Any other '%' is
// refused: Dovecot expands variables in the fields it reads, so a stray
// one would mean something else to it.
func expandHome(tmpl, address string) (string, error) {
	at := strings.LastIndexByte(address, '@')
	local, domain := address[:at], address[at+1:]
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			b.WriteByte(tmpl[i])
			continue
		}
		if i+1 == len(tmpl) {
			return "", fmt.Errorf("home template %q ends with '%%'", tmpl)
		}
		i++
		switch tmpl[i] {
		case 'd':
			b.WriteString(domain)
		case 'n':
			b.WriteString(local)
		case 'u':
			b.WriteString(address)
		default:
			return "", fmt.Errorf("home template %q has %%%c; only %%d, %%n and %%u are known", tmpl, tmpl[i])
		}
	}
	return b.String(), nil
}

// passwdEntry is one user line of a passwd-file.
type passwdEntry struct {
	user   string
	fields []string // all ':'-separated fields, user included
}

// parsePasswd returns the user lines of a passwd-file the way Dovecot sees
// them: empty lines, comments and lines without a user name are skipped,
// and of several lines for one user only the first counts.
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	seen := make(map[string]bool)
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || line[0] == '#' || line[0] == ':' {
			continue
		}
		fields := strings.Split(string(line), ":")
		if seen[fields[0]] {
			continue
		}
		seen[fields[0]] = true
		out = append(out, passwdEntry{user: fields[0], fields: fields})
	}
	return out
}

// extraFields returns the space-separated extra fields. Dovecot joins
// everything after the shell field back with ':' (a quota rule contains
// one), and an empty eighth field marks the old format, where the rest is
// a mail location and there are no extra fields.
func (e passwdEntry) extraFields() []string {
	if len(e.fields) < 8 || e.fields[7] == "" {
		return nil
	}
	return strings.Fields(strings.Join(e.fields[7:], ":"))
}

// mailbox converts the entry, reading its quota from the extra fields.
func (e passwdEntry) mailbox() Mailbox {
	mb := Mailbox{Address: e.user, UsedBytes: -1}
	for _, f := range e.extraFields() {
		// The last value wins, as when Dovecot sets the field twice.
		if v, ok := strings.CutPrefix(f, "userdb_quota_rule="); ok {
			mb.QuotaBytes = parseQuotaRule(v)
		}
	}
	return mb
}

// parseQuotaRule returns the byte limit of a Dovecot quota rule for all
// mailboxes ("*:storage=1G", "*:bytes=1024:messages=10"): 0 for no limit,
// -1 for a limit not expressible in bytes (relative or percentage) or a
// rule this function does not understand.
func parseQuotaRule(rule string) int64 {
	name, limits, ok := strings.Cut(rule, ":")
	if !ok || (name != "*" && name != "?") {
		return -1
	}
	var limit int64
	for l := range strings.SplitSeq(limits, ":") {
		key, val, _ := strings.Cut(l, "=")
		switch strings.ToLower(key) {
		case "storage":
			limit = parseQuotaSize(val, 1024)
		case "bytes":
			limit = parseQuotaSize(val, 1)
		case "ignore":
			return 0
		}
	}
	return limit
}

// parseQuotaSize parses "<digits>[unit]" with Dovecot's units; a bare
// number is multiplied by unit (KiB for storage=).
func parseQuotaSize(s string, unit int64) int64 {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return -1 // "+100M", "-5%": relative to another rule
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return -1
	}
	switch strings.ToUpper(s[i:]) {
	case "":
	case "B":
		unit = 1
	case "K":
		unit = 1 << 10
	case "M":
		unit = 1 << 20
	case "G":
		unit = 1 << 30
	case "T":
		unit = 1 << 40
	default:
		return -1 // "%" and anything unknown
	}
	if n > (1<<63-1)/unit {
		return -1
	}
	return n * unit
}

// formatQuotaRule writes a limit in the largest unit that keeps it exact;
// an explicit unit always, because a bare number would be read as KiB.
func formatQuotaRule(quotaBytes int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if quotaBytes%u.size == 0 {
			return fmt.Sprintf("userdb_quota_rule=*:storage=%d%s", quotaBytes/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("userdb_quota_rule=*:storage=%dB", quotaBytes)
}

// readFile reads the passwd-file; a missing file is a configuration error
// with a fix, not an empty hosting.
func (p *PasswdFile) readFile() ([]byte, fs.FileInfo, error) {
	f, err := os.Open(p.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("passwd-file %s does not exist: create it (empty is fine) where Dovecot's passdb and userdb read it, readable by Dovecot's auth process", p.cfg.Path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read passwd-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read passwd-file: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read passwd-file %s: %w", p.cfg.Path, err)
	}
	return data, fi, nil
}

// List returns the mailboxes of domain, sorted by address. The file is
// read without the lock: writers replace it by rename, so a reader always
// sees a whole version.
func (p *PasswdFile) List(ctx context.Context, domain string) ([]Mailbox, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list mailboxes of %s: %w", d, err)
	}
	data, _, err := p.readFile()
	if err != nil {
		return nil, fmt.Errorf("list mailboxes of %s: %w", d, err)
	}
	var out []Mailbox
	for _, e := range parsePasswd(data) {
		if domainOf(e.user) == d {
			out = append(out, e.mailbox())
		}
	}
	slices.SortFunc(out, func(a, b Mailbox) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// Quota reads the limit of one mailbox from the file; UsedBytes is always
// -1 (see PasswdFile). Addresses match case-insensitively, an exact match
// first.
func (p *PasswdFile) Quota(ctx context.Context, address string) (Mailbox, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Mailbox{}, err
	}
	if err := ctx.Err(); err != nil {
		return Mailbox{}, fmt.Errorf("quota of %s: %w", addr, err)
	}
	data, _, err := p.readFile()
	if err != nil {
		return Mailbox{}, fmt.Errorf("quota of %s: %w", addr, err)
	}
	if e, ok := findEntry(parsePasswd(data), addr); ok {
		return e.mailbox(), nil
	}
	return Mailbox{}, fmt.Errorf("quota of %s: %w", addr, ErrNotFound)
}

func findEntry(entries []passwdEntry, addr string) (passwdEntry, bool) {
	for _, e := range entries {
		if e.user == addr {
			return e, true
		}
	}
	for _, e := range entries {
		if strings.EqualFold(e.user, addr) {
			return e, true
		}
	}
	return passwdEntry{}, false
}

// Create appends a line for the mailbox by rewriting the file atomically
// under an exclusive lock, and returns once Dovecot is sure to see it (up
// to one second later; see PasswdFile). If ctx ends during that last wait,
// Create returns nil early: the mailbox exists and becomes usable within
// the second.
func (p *PasswdFile) Create(ctx context.Context, address, password string, quotaBytes int64) error {
	written, err := p.add(ctx, address, password, quotaBytes)
	if err != nil {
		return err
	}
	waitVisible(ctx, written)
	return nil
}

// add is Create without the wait: it returns when the file was replaced.
func (p *PasswdFile) add(ctx context.Context, address, password string, quotaBytes int64) (time.Time, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return time.Time{}, err
	}
	if err := checkPassword(password); err != nil {
		return time.Time{}, err
	}
	if err := checkQuota(quotaBytes); err != nil {
		return time.Time{}, err
	}
	if quotaBytes == 0 {
		quotaBytes = p.cfg.DefaultQuotaBytes
	}
	home := ""
	if p.cfg.Home != "" {
		if home, err = expandHome(p.cfg.Home, addr); err != nil {
			return time.Time{}, fmt.Errorf("create mailbox %s: %w", addr, err)
		}
	}
	// Hashing is the slow part; do it before taking the lock.
	hash, err := hashPassword(p.cfg.Scheme, password)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("create mailbox %s: %w", addr, err)
	}
	line := fmt.Sprintf("%s:%s:%s:%s::%s::", addr, hash, p.cfg.UID, p.cfg.GID, home)
	if quotaBytes > 0 {
		line += formatQuotaRule(quotaBytes)
	}

	written, err := p.appendLine(ctx, addr, line)
	if err != nil {
		return time.Time{}, fmt.Errorf("create mailbox %s: %w", addr, err)
	}
	return written, nil
}

// appendLine adds line for addr unless addr exists, and returns when the
// new file was put in place.
func (p *PasswdFile) appendLine(ctx context.Context, addr, line string) (time.Time, error) {
	return p.update(ctx, func(data []byte) ([]byte, error) {
		if _, ok := findEntry(parsePasswd(data), addr); ok {
			return nil, ErrExists
		}
		// The untouched lines stay byte for byte; only a missing final
		// newline is added, or the new line would join the last one.
		buf := make([]byte, 0, len(data)+len(line)+2)
		buf = append(buf, data...)
		if len(buf) > 0 && buf[len(buf)-1] != '\n' {
			buf = append(buf, '\n')
		}
		buf = append(buf, line...)
		return append(buf, '\n'), nil
	})
}

// update changes the file under the process's semaphore and the file lock
// (other processes of this tool), replacing it atomically with change's
// result, and returns when the new file was put in place.
func (p *PasswdFile) update(ctx context.Context, change func(data []byte) ([]byte, error)) (time.Time, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	defer func() { <-p.sem }()
	unlock, err := lockFile(ctx, p.cfg.Path+".lock")
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()

	data, fi, err := p.readFile()
	if err != nil {
		return time.Time{}, err
	}
	out, err := change(data)
	if err != nil {
		return time.Time{}, err
	}
	if err := replaceFile(p.cfg.Path, out, fi); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// waitVisible sleeps until Dovecot's once-per-second check is sure to
// have passed the moment written: any lookup stamped with a later second
// stats the file, sees the new size and re-reads it.
func waitVisible(ctx context.Context, written time.Time) {
	// 10 ms of margin for the auth process's clock reading.
	d := time.Until(written.Truncate(time.Second).Add(time.Second + 10*time.Millisecond))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// replaceFile writes data to path through a temporary file in the same
// directory (same mode and owner as old), fsyncs it, renames it over path
// and fsyncs the directory, so a reader sees either the old or the new
// file and a crash leaves one of them.
func replaceFile(path string, data []byte, old fs.FileInfo) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(old.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := chownLike(tmp, old); err != nil {
		return fmt.Errorf("write %s: give the new file the owner of the old one: %w (run as root or as the file's owner)", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Dovecot re-reads only when the mtime (in seconds) or the size
	// changed. An append always changes the size; a rewrite of equal size
	// within the same second needs a later mtime or it goes unseen.
	if int64(len(data)) == old.Size() && !time.Now().Truncate(time.Second).After(old.ModTime().Truncate(time.Second)) {
		mt := old.ModTime().Truncate(time.Second).Add(time.Second)
		if err := os.Chtimes(tmp.Name(), mt, mt); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
