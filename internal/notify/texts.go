package notify

import "mailmigrate/internal/i18n"

// texts holds every sentence the notification mails (and the panel's list
// of notifications) say, in one place, so that a translation is one more
// map.
var texts = map[string]string{
	"headline.finished":             "Your migration from %s to %s has finished",
	"headline.finished_action":      "Your migration from %s to %s has finished – some mailboxes need your action",
	"headline.paused":               "%s is out of space: its migration from %s is paused",
	"headline.login_failed":         "The old server %s refused the login for %s",
	"headline.hosting_login_failed": "The mailbox %s refused the migration's login: its copy from %s stopped",
	"action.hosting_login_failed":   "The mailbox's password here was changed after the migration started. Open the migration page, enter the mailbox's current password and press Restart.",
	"intro.hosting_login_failed":    "the copy of mail into %s from %s stopped: the mailbox here refused the password the migration was started with.",
	"action.finished":               "Open the migration, then follow what it says for each mailbox marked below.",
	"action.paused":                 "Enlarge the mailbox's quota (or delete mail in it), then press Resume on the migration page. What was copied stays; only the rest is copied.",
	"action.login_failed":           "Check the old login and its password, and that the server name is the old provider's IMAP server, then press Restart on the migration page.",
	"greeting":                      "Hello,",
	"intro.finished":                "the migration of your mail from %s to %s has finished. This is how each mailbox ended:",
	"intro.paused":                  "the mailbox %s ran out of space while mail was being copied into it from %s. The copy is paused; nothing is lost.",
	"intro.login_failed":            "the copy of mail into %s stopped: the old server %s refused the login %s.",
	"mailboxes":                     "Mailboxes of this migration:",
	"mailbox.line":                  "- %s (from %s): %s",
	"todo":                          "What to do: %s",
	"link":                          "The migration page: %s",
	"footer":                        "This message was sent automatically by the Email Migration Tool of your hosting, to the people who sign in to its panel for %s. Replies are not read.",
	"state.queued":                  "waiting to be copied",
	"state.copying":                 "being copied",
	"state.done":                    "copied",
	"state.done_with_warnings":      "copied, with remarks in its report",
	"state.failed":                  "stopped with an error",
	"state.paused_over_quota":       "paused: out of space",
	"state.cancelled":               "cancelled",
	"headline.sign_in_again":        "The copy into %s from %s stopped: sign in with the old mailbox's provider again",
	"action.sign_in_again":          "Open the migration page and press the button to sign in with the provider again (as the owner of the old mailbox). The copy then continues where it stopped.",
	"intro.sign_in_again":           "the copy of mail into %s from %s stopped: the sign-in of %s with its provider was withdrawn or has expired. What was copied stays.",
}

var catalog = i18n.NewCatalog("notify", texts, textsCS)

// t is a text in the printer's language.
func t(p *i18n.Printer, key string) string { return catalog.Text(p.Lang, key) }
