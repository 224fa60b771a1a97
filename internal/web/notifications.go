package web

import (
	"context"
	"time"

	"mailmigrate/internal/i18n"
	"mailmigrate/internal/notify"
)

// homeNotifications is how many notifications the home page lists.
const homeNotifications = 8

// notificationView is a notification as the home page lists it: its
// headline is the subject of its mail, and one that still needs the
// customer says what to do.
type notificationView struct {
	MigrationID int64
	Kind        string
	Created     time.Time
	Headline    string
	Action      string // what to do, while it is pending
	Pending     bool
}

// notifications lists the newest notifications of a tenant (all with 0),
// those that need the customer's action first.
func (p *Panel) notifications(ctx context.Context, pr *i18n.Printer, tenantID int64) ([]notificationView, error) {
	ns, err := p.api.cfg.Store.Notifications(ctx, tenantID, homeNotifications)
	if err != nil {
		return nil, err
	}
	out := make([]notificationView, len(ns))
	for i, n := range ns {
		v := notificationView{MigrationID: n.MigrationID, Kind: n.Kind, Created: n.Created, Pending: n.Pending,
			Headline: notify.Headline(notify.Summary{Kind: n.Kind, Domain: n.Domain, SourceHost: n.SourceHost, Mailbox: n.Mailbox, Action: n.Pending}, pr)}
		if n.Pending {
			v.Action = notify.Action(n.Kind, pr)
		}
		out[i] = v
	}
	return out, nil
}
