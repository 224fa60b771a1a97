package main

import (
	"fmt"

	"mailmigrate/internal/config"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/notify"
)

// buildMailer turns the notify part of the configuration into the mailer
// of customer notifications; nil when no relay is configured.
func buildMailer(cfg config.Notify) (*notify.Mailer, error) {
	if cfg.SMTP == "" {
		return nil, nil
	}
	nc := notify.Config{Addr: cfg.SMTP, Security: cfg.Security, From: cfg.From, User: cfg.User, BaseURL: cfg.BaseURL}
	var err error
	if cfg.User != "" {
		if nc.Password, err = password("notify", cfg.PasswordFile, "", "MAILMIGRATE_NOTIFY_PASSWORD"); err != nil {
			return nil, fmt.Errorf("notify.password_file: %w", err)
		}
	}
	if cfg.CAFile != "" {
		if nc.RootCAs, err = imapconn.LoadCAFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("notify.ca_file: %w", err)
		}
	}
	return notify.New(nc)
}
