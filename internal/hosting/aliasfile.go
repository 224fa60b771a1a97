package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// AliasFileConfig configures an AliasFile.
type AliasFileConfig struct {
	// Path is a Postfix-style virtual alias table: one alias per line,
	// "alias@domain target1,target2". The file must exist (empty is
	// fine); its mode and owner are kept when it is rewritten, and
	// "<Path>.lock" is created next to it.
	Path string
	// Reload, when set, is run after every change, for example
	// ["postmap", "/etc/postfix/virtual"], so the mail server sees the new
	// table. It is run directly, without a shell.
	Reload []string
	// Timeout bounds Reload; 0 means DefaultCommandTimeout.
	Timeout time.Duration
}

// AliasFile is an AliasManager over a Postfix-style virtual alias table.
// Lines it does not manage (comments, catch-alls such as "@domain addr",
// anything it cannot read) are kept byte for byte when it rewrites the
// file; a line starting with white space continues the one before, as in
// Postfix.
type AliasFile struct {
	cfg AliasFileConfig
	sem chan struct{} // serialises writers in this process (see PasswdFile)
}

var _ AliasManager = (*AliasFile)(nil)

// NewAliasFile checks the configuration and returns the alias table. It
// does not touch the file.
func NewAliasFile(cfg AliasFileConfig) (*AliasFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("alias file: no Path configured")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("alias file: negative Timeout %v", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultCommandTimeout
	}
	if len(cfg.Reload) > 0 {
		if _, err := exec.LookPath(cfg.Reload[0]); err != nil {
			return nil, fmt.Errorf("alias file: reload command: %w", err)
		}
	}
	return &AliasFile{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// aliasEntry is one logical line of the table: the line itself and its
// continuation lines.
type aliasEntry struct {
	key     string // the first field; "" for comments and blank lines
	targets []string
	raw     []string // the physical lines, without their "\n"
}

// parseAliases splits the table into logical lines.
func parseAliases(data []byte) []aliasEntry {
	var out []aliasEntry
	lines := strings.Split(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") && (line[0] == ' ' || line[0] == '\t') && len(out) > 0 && out[len(out)-1].key != "" {
			last := &out[len(out)-1]
			last.raw = append(last.raw, line)
			last.targets = append(last.targets, splitTargets(trimmed)...)
			continue
		}
		e := aliasEntry{raw: []string{line}}
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			fields := strings.Fields(trimmed)
			e.key = fields[0]
			e.targets = splitTargets(strings.Join(fields[1:], " "))
		}
		out = append(out, e)
	}
	return out
}

func splitTargets(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })
}

func (f *AliasFile) read() ([]byte, fs.FileInfo, error) {
	data, err := os.ReadFile(f.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("alias file %s does not exist: create it (empty is fine) where the mail server reads its virtual aliases", f.cfg.Path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read alias file: %w", err)
	}
	fi, err := os.Stat(f.cfg.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("read alias file: %w", err)
	}
	return data, fi, nil
}

// Aliases returns the aliases of domain. Keys that are not addresses
// (catch-alls, other tables' syntax) are not aliases to manage.
func (f *AliasFile) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", d, err)
	}
	data, _, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", d, err)
	}
	out := []Alias{}
	seen := map[string]bool{}
	for _, e := range parseAliases(data) {
		addr, err := NormalizeAddress(e.key)
		if e.key == "" || err != nil || domainOf(addr) != d || seen[strings.ToLower(addr)] {
			continue
		}
		// Postfix uses the first line of a key; so does this list.
		seen[strings.ToLower(addr)] = true
		out = append(out, Alias{Address: addr, Targets: e.targets})
	}
	slices.SortFunc(out, func(a, b Alias) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// AddAlias appends the alias to the table and runs the reload command.
func (f *AliasFile) AddAlias(ctx context.Context, alias Alias) error {
	a, err := NormalizeAlias(alias)
	if err != nil {
		return err
	}
	err = f.change(ctx, func(entries []aliasEntry) ([]aliasEntry, error) {
		if findAlias(entries, a.Address) >= 0 {
			return nil, ErrExists
		}
		return append(entries, aliasEntry{key: a.Address, raw: []string{a.Address + " " + strings.Join(a.Targets, ",")}}), nil
	})
	if err != nil {
		return fmt.Errorf("add alias %s: %w", a.Address, err)
	}
	return nil
}

// RemoveAlias removes the alias's line (and its continuation lines) and
// runs the reload command.
func (f *AliasFile) RemoveAlias(ctx context.Context, address string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	err = f.change(ctx, func(entries []aliasEntry) ([]aliasEntry, error) {
		i := findAlias(entries, addr)
		if i < 0 {
			return nil, ErrNotFound
		}
		return slices.Delete(entries, i, i+1), nil
	})
	if err != nil {
		return fmt.Errorf("remove alias %s: %w", addr, err)
	}
	return nil
}

// findAlias returns the index of the alias's first line, or -1. Postfix
// lower-cases lookup keys, so the comparison ignores case.
func findAlias(entries []aliasEntry, addr string) int {
	return slices.IndexFunc(entries, func(e aliasEntry) bool { return e.key != "" && strings.EqualFold(e.key, addr) })
}

// change rewrites the table atomically under the lock with edit's result,
// then runs the reload command while still holding the lock, so that the
// last reload always sees the last table.
func (f *AliasFile) change(ctx context.Context, edit func([]aliasEntry) ([]aliasEntry, error)) error {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.sem }()
	unlock, err := lockFile(ctx, f.cfg.Path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	data, fi, err := f.read()
	if err != nil {
		return err
	}
	entries, err := edit(parseAliases(data))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, e := range entries {
		for _, l := range e.raw {
			buf.WriteString(l)
			buf.WriteByte('\n')
		}
	}
	if err := replaceFile(f.cfg.Path, buf.Bytes(), fi); err != nil {
		return err
	}
	return f.reload(ctx)
}

// reload runs the reload command. Its failure leaves the table changed
// but not yet seen by the mail server; the error says so.
func (f *AliasFile) reload(ctx context.Context) error {
	if len(f.cfg.Reload) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.cfg.Reload[0], f.cfg.Reload[1:]...)
	out := &limitedBuffer{max: maxCommandStderr}
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the alias file was changed, but its reload command %q failed (%v), so the mail server may not use the change yet: %s",
			strings.Join(f.cfg.Reload, " "), err, strings.TrimSpace(strings.ToValidUTF8(string(out.Bytes()), "\uFFFD")))
	}
	return nil
}
