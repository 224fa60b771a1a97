package hosting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// supports reports the optional operations whose command is configured.
func (c *Command) supports(capability string) bool {
	switch capability {
	case capPassword:
		return c.cfg.Password != ""
	case capQuota:
		return c.cfg.SetQuota != ""
	case capAliases:
		return c.cfg.Aliases != ""
	}
	return false
}

// SetPassword runs the Password command. The password travels only in
// the request on stdin.
func (c *Command) SetPassword(ctx context.Context, address, password string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	if c.cfg.Password == "" {
		return fmt.Errorf("change the password of %s: no password command is configured", addr)
	}
	req := map[string]any{"address": addr, "password": password}
	if err := c.run(ctx, "password", c.cfg.Password, req, password, nil); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err // the hosting's reason, for the customer as it is
		}
		return fmt.Errorf("change the password of %s: %w", addr, err)
	}
	return nil
}

// SetQuota runs the SetQuota command.
func (c *Command) SetQuota(ctx context.Context, address string, quotaBytes int64) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if err := checkSetQuota(quotaBytes); err != nil {
		return err
	}
	if c.cfg.SetQuota == "" {
		return fmt.Errorf("change the quota of %s: no set_quota command is configured", addr)
	}
	req := map[string]any{"address": addr, "quota_bytes": quotaBytes}
	if err := c.run(ctx, "set_quota", c.cfg.SetQuota, req, "", nil); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("change the quota of %s: %w", addr, err)
	}
	return nil
}

// Aliases runs the Aliases command as list_aliases. Answers for other
// domains are not trusted: they are dropped.
func (c *Command) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	if c.cfg.Aliases == "" {
		return nil, fmt.Errorf("aliases of %s: no aliases command is configured", d)
	}
	var resp struct {
		Aliases *[]Alias `json:"aliases"`
	}
	if err := c.run(ctx, "list_aliases", c.cfg.Aliases, map[string]any{"domain": d}, "", &resp); err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", d, err)
	}
	if resp.Aliases == nil {
		return nil, fmt.Errorf("aliases of %s: command %s answered without \"aliases\"", d, c.cfg.Aliases)
	}
	out := []Alias{}
	for _, a := range *resp.Aliases {
		if a.Address == "" || len(a.Targets) == 0 {
			return nil, fmt.Errorf("aliases of %s: command %s answered with an alias without \"address\" or \"targets\"", d, c.cfg.Aliases)
		}
		if domainOf(a.Address) == d {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Alias) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// AddAlias runs the Aliases command as add_alias.
func (c *Command) AddAlias(ctx context.Context, alias Alias) error {
	a, err := NormalizeAlias(alias)
	if err != nil {
		return err
	}
	if c.cfg.Aliases == "" {
		return fmt.Errorf("add alias %s: no aliases command is configured", a.Address)
	}
	if err := c.run(ctx, "add_alias", c.cfg.Aliases, a, "", nil); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("add alias %s: %w", a.Address, err)
	}
	return nil
}

// RemoveAlias runs the Aliases command as remove_alias.
func (c *Command) RemoveAlias(ctx context.Context, address string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if c.cfg.Aliases == "" {
		return fmt.Errorf("remove alias %s: no aliases command is configured", addr)
	}
	if err := c.run(ctx, "remove_alias", c.cfg.Aliases, map[string]any{"address": addr}, "", nil); err != nil {
		return fmt.Errorf("remove alias %s: %w", addr, err)
	}
	return nil
}
