package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// supports reports the optional operations: passwords and quotas live in
// the passwd-file, aliases need an alias table.
func (p *PasswdFile) supports(capability string) bool {
	return capability != capAliases || p.aliases != nil
}

// SetPassword replaces the mailbox's password hash in its line; every
// other field stays as it was. It returns once Dovecot is sure to use the
// new password (up to one second later, as Create).
func (p *PasswdFile) SetPassword(ctx context.Context, address, password string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	// Hashing is the slow part; do it before taking the lock.
	hash, err := hashPassword(p.cfg.Scheme, password)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("change the password of %s: %w", addr, err)
	}
	written, err := p.rewriteLine(ctx, addr, func(e passwdEntry) (string, error) {
		fields := padFields(e.fields, 2)
		fields[1] = hash
		return strings.Join(fields, ":"), nil
	})
	if err != nil {
		return fmt.Errorf("change the password of %s: %w", addr, err)
	}
	waitVisible(ctx, written)
	return nil
}

// SetQuota writes the mailbox's userdb_quota_rule, replacing the one it
// had; other extra fields (a Trash rule, ACL groups) stay. Dovecot applies
// it at the mailbox's next login.
func (p *PasswdFile) SetQuota(ctx context.Context, address string, quotaBytes int64) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if err := checkSetQuota(quotaBytes); err != nil {
		return err
	}
	rule := formatQuotaRule(quotaBytes)
	written, err := p.rewriteLine(ctx, addr, func(e passwdEntry) (string, error) {
		if len(e.fields) > 8 && e.fields[7] == "" {
			return "", fmt.Errorf("its line is in the old passwd-file format (a mail location after an empty eighth field), which cannot hold a quota rule: move the location into userdb_mail= and try again")
		}
		var extras []string
		placed := false
		for _, f := range e.extraFields() {
			if !strings.HasPrefix(f, "userdb_quota_rule=") {
				extras = append(extras, f)
			} else if !placed {
				// In place of the first rule; later ones would override it.
				extras = append(extras, rule)
				placed = true
			}
		}
		if !placed {
			extras = append(extras, rule)
		}
		return strings.Join(padFields(e.fields, 7)[:7], ":") + ":" + strings.Join(extras, " "), nil
	})
	if err != nil {
		return fmt.Errorf("change the quota of %s: %w", addr, err)
	}
	waitVisible(ctx, written)
	return nil
}

// padFields returns fields with at least n entries.
func padFields(fields []string, n int) []string {
	out := append([]string(nil), fields...)
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

// rewriteLine replaces the line Dovecot uses for addr (its first one) by
// edit's result, under the lock and atomically, leaving every other byte
// of the file as it was. ErrNotFound if addr has no line.
func (p *PasswdFile) rewriteLine(ctx context.Context, addr string, edit func(passwdEntry) (string, error)) (time.Time, error) {
	return p.update(ctx, func(data []byte) ([]byte, error) {
		e, ok := findEntry(parsePasswd(data), addr)
		if !ok {
			return nil, ErrNotFound
		}
		line, err := edit(e)
		if err != nil {
			return nil, err
		}
		lines := bytes.Split(data, []byte("\n"))
		for i, l := range lines {
			body, cr := bytes.CutSuffix(l, []byte("\r"))
			user, _, _ := bytes.Cut(body, []byte(":"))
			if len(body) == 0 || body[0] == '#' || string(user) != e.user {
				continue
			}
			nl := []byte(line)
			if cr {
				nl = append(nl, '\r')
			}
			lines[i] = nl
			break
		}
		return bytes.Join(lines, []byte("\n")), nil
	})
}

// Aliases lists the domain's aliases in the alias table.
func (p *PasswdFile) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	if p.aliases == nil {
		return nil, errNoAliasFile
	}
	return p.aliases.Aliases(ctx, domain)
}

// AddAlias adds an alias to the alias table.
func (p *PasswdFile) AddAlias(ctx context.Context, alias Alias) error {
	if p.aliases == nil {
		return errNoAliasFile
	}
	return p.aliases.AddAlias(ctx, alias)
}

// RemoveAlias removes an alias from the alias table.
func (p *PasswdFile) RemoveAlias(ctx context.Context, address string) error {
	if p.aliases == nil {
		return errNoAliasFile
	}
	return p.aliases.RemoveAlias(ctx, address)
}

var errNoAliasFile = fmt.Errorf("aliases: no alias file is configured (hosting.alias_file): %w", errors.ErrUnsupported)
