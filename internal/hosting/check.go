package hosting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Checker is a driver that can tell, before the service starts, whether
// it will work: a hosting set up wrong fails at start with what to fix,
// not at a customer's first migration.
type Checker interface {
	Check(ctx context.Context) error
}

// Check runs the driver's own check, when it has one.
func Check(ctx context.Context, d Driver) error {
	if c, ok := d.(Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Check implements Checker: the passwd-file exists and can be rewritten
// (a new file is written beside it and renamed over it), and the mail
// owner's user and group exist.
func (p *PasswdFile) Check(_ context.Context) error {
	fi, err := os.Stat(p.cfg.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("hosting.passwd_file %s does not exist: point it to Dovecot's passwd-file (an empty file is fine for a new hosting)", p.cfg.Path)
	case err != nil:
		return fmt.Errorf("hosting.passwd_file %s: %w", p.cfg.Path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("hosting.passwd_file %s is not a regular file", p.cfg.Path)
	}
	if err := syscall.Access(filepath.Dir(p.cfg.Path), 2 /* W_OK */); err != nil {
		return fmt.Errorf("hosting.passwd_file: this service cannot write into %s (it rewrites the file through a new one beside it): %w; run it as a user that may, or give it the directory", filepath.Dir(p.cfg.Path), err)
	}
	f, err := os.OpenFile(p.cfg.Path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("hosting.passwd_file %s cannot be written by this service: %w", p.cfg.Path, err)
	}
	f.Close()
	if p.cfg.UID != "" {
		if _, err := strconv.Atoi(p.cfg.UID); err != nil {
			if _, err := user.Lookup(p.cfg.UID); err != nil {
				return fmt.Errorf("hosting.uid %q is not a user of this machine: create it (e.g. useradd --system vmail) or give a numeric uid", p.cfg.UID)
			}
		}
		if _, err := strconv.Atoi(p.cfg.GID); err != nil {
			if _, err := user.LookupGroup(p.cfg.GID); err != nil {
				return fmt.Errorf("hosting.gid %q is not a group of this machine: create it or give a numeric gid", p.cfg.GID)
			}
		}
	}
	if a := p.cfg.Aliases.Path; a != "" {
		if _, err := os.Stat(a); err != nil {
			return fmt.Errorf("hosting.alias_file %s: %w", a, err)
		}
	}
	return nil
}
