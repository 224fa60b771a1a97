package hosting

import (
	"context"
	"slices"
	"strings"
)

// The optional capabilities below manage mailboxes after a migration:
// the customer changes passwords, raises quotas and sets aliases. A Driver
// may implement any of them; callers find them with PasswordSetterOf,
// QuotaSetterOf and AliasManagerOf, so drivers without them keep working.

// PasswordSetter changes a mailbox's password.
type PasswordSetter interface {
	// SetPassword replaces the password of an existing mailbox; the old
	// one stops working and the new one logs in when it returns nil.
	// ErrNotFound if there is no such mailbox. The password is checked
	// only for what the storage can carry; the product's rules are
	// CheckNewPassword's.
	SetPassword(ctx context.Context, address, password string) error
}

// QuotaSetter changes a mailbox's storage limit.
type QuotaSetter interface {
	// SetQuota sets the limit of an existing mailbox to quotaBytes (> 0).
	// IMAP sessions that are open keep the old limit until they log in
	// again. ErrNotFound if there is no such mailbox.
	SetQuota(ctx context.Context, address string, quotaBytes int64) error
}

// Alias is an address in a customer's domain that delivers to one or more
// target addresses instead of a mailbox of its own.
type Alias struct {
	Address string   `json:"address"`
	Targets []string `json:"targets"`
}

// AliasManager lists, adds and removes aliases.
type AliasManager interface {
	// Aliases returns the aliases of a domain sorted by address, their
	// targets in the stored order.
	Aliases(ctx context.Context, domain string) ([]Alias, error)
	// AddAlias adds an alias; ErrExists if the address is an alias
	// already.
	AddAlias(ctx context.Context, alias Alias) error
	// RemoveAlias removes an alias; ErrNotFound if there is none.
	RemoveAlias(ctx context.Context, address string) error
}

// Capability names, for drivers whose optional operations depend on their
// configuration.
const (
	capPassword = "password"
	capQuota    = "set_quota"
	capAliases  = "aliases"
)

// configurable is implemented by drivers that have an operation's methods
// but may not be configured for it (no command, no alias file).
type configurable interface {
	supports(capability string) bool
}

func supported(d Driver, capability string) bool {
	c, ok := d.(configurable)
	return !ok || c.supports(capability)
}

// PasswordSetterOf returns d's password change, or nil when d cannot
// change passwords.
func PasswordSetterOf(d Driver) PasswordSetter {
	if s, ok := d.(PasswordSetter); ok && supported(d, capPassword) {
		return s
	}
	return nil
}

// QuotaSetterOf returns d's quota change, or nil when d cannot change
// quotas.
func QuotaSetterOf(d Driver) QuotaSetter {
	if s, ok := d.(QuotaSetter); ok && supported(d, capQuota) {
		return s
	}
	return nil
}

// AliasManagerOf returns d's alias management, or nil when d has none.
func AliasManagerOf(d Driver) AliasManager {
	if s, ok := d.(AliasManager); ok && supported(d, capAliases) {
		return s
	}
	return nil
}

// maxAliasTargets bounds an alias's fan-out: a list this long is a
// mailing list, not an alias.
const maxAliasTargets = 50

// NormalizeAlias checks an alias and returns it with its addresses
// normalised and duplicate targets removed. The alias cannot deliver to
// itself.
func NormalizeAlias(a Alias) (Alias, error) {
	addr, err := NormalizeAddress(a.Address)
	if err != nil {
		return Alias{}, err
	}
	out := Alias{Address: addr}
	for _, t := range a.Targets {
		t, err := NormalizeAddress(strings.TrimSpace(t))
		if err != nil {
			return Alias{}, err
		}
		if strings.EqualFold(t, addr) {
			return Alias{}, invalid("alias.self", addr)
		}
		if !slices.ContainsFunc(out.Targets, func(o string) bool { return strings.EqualFold(o, t) }) {
			out.Targets = append(out.Targets, t)
		}
	}
	switch {
	case len(out.Targets) == 0:
		return Alias{}, invalid("alias.no_targets", addr)
	case len(out.Targets) > maxAliasTargets:
		return Alias{}, invalid("alias.too_many", addr, maxAliasTargets)
	}
	return out, nil
}

// checkSetQuota refuses a limit SetQuota cannot write.
func checkSetQuota(quotaBytes int64) error {
	if quotaBytes <= 0 {
		return invalid("quota.zero")
	}
	return nil
}
