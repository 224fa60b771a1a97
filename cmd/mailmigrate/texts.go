package main

import (
	"os"

	"mailmigrate/internal/i18n"
)

// texts are the sentences of the command line's reports, in the language
// of LC_ALL, LC_MESSAGES or LANG (English by default).
var texts = map[string]string{
	"status.done":        "done",
	"status.warnings":    "done with warnings",
	"status.over_quota":  "paused: destination out of space",
	"status.failed":      "failed",
	"messages":           "%d message|%d messages",
	"folders":            "%d folder|%d folders",
	"summary":            "  %s in %s: %d copied, %d already present, %d skipped, %d failed, %d flag updates, %s in %s",
	"table.report":       "  SOURCE FOLDER\tDESTINATION\tMESSAGES\tCOPIED\tPRESENT\tSKIPPED\tFAILED",
	"table.check":        "  SOURCE FOLDER\tDESTINATION\tMESSAGES\tNOTE",
	"note":               "  note: %s -> %s: %s",
	"skipped":            "  skipped in %s: %q of %s (%s): %s",
	"failed":             "  failed in %s: UID %d %q (%s): %s",
	"warning":            "  warning: %s",
	"throttled":          "slowed down by the old provider, continuing at %s",
	"throttled.stopped":  "the old provider keeps slowing the copy down; what was copied is kept: run the same command again after %s to continue",
	"details":            "  details: %s",
	"check.failed":       "%s -> %s: FAILED",
	"check.ok":           "%s (%s) -> %s (%s): both logins OK, %s in %s to migrate",
	"check.space":        "  destination: %s of %s used; the source holds %s",
	"discover.none":      "No IMAP server found for %s. Ask the old provider for the IMAP server name, or look it up in your mail program's account settings.",
	"discover.table":     "SERVER\tSECURITY\tFOUND BY\tREACHABLE\tNOTE",
	"discover.yes":       "yes",
	"discover.no":        "no",
	"discover.hosting":   "this hosting",
	"discover.use":       "Use: --source %s://%s",
	"dns.table":          "RECORD\tNAME\tEXPECTED\tFOUND\tVERDICT",
	"verdict.ok":         "ok",
	"verdict.warn":       "warn",
	"verdict.fail":       "fail",
	"oauth.device":       "To let mailmigrate read the old mailbox, open %s in a browser (on any device), enter the code %s and sign in to the mailbox's %s account. Waiting for the sign-in…",
	"oauth.signed_in":    "Signed in with %s.",
	"oauth.denied":       "The sign-in was refused at %s; nothing was copied.",
	"oauth.code_expired": "The code expired before the sign-in; run the command again for a new one.",
	"oauth.unreachable":  "The sign-in service of %s could not be reached; nothing was copied. Try again later.",
}

var textsCS = map[string]string{
	"status.done":        "hotovo",
	"status.warnings":    "hotovo s upozorněními",
	"status.over_quota":  "pozastaveno: v cílové schránce došlo místo",
	"status.failed":      "nezdařilo se",
	"messages":           "%d zpráva|%d zprávy|%d zpráv",
	"folders":            "%d složka|%d složky|%d složek",
	"summary":            "  %s, %s: zkopírováno %d, už existovalo %d, přeskočeno %d, nezdařilo se %d, změn příznaků %d, %s za %s",
	"table.report":       "  PŮVODNÍ SLOŽKA\tCÍLOVÁ SLOŽKA\tZPRÁV\tZKOPÍROVÁNO\tUŽ EXISTOVALO\tPŘESKOČENO\tNEZDAŘILO SE",
	"table.check":        "  PŮVODNÍ SLOŽKA\tCÍLOVÁ SLOŽKA\tZPRÁV\tPOZNÁMKA",
	"note":               "  poznámka: %s -> %s: %s",
	"skipped":            "  přeskočeno ve složce %s: %q z %s (%s): %s",
	"failed":             "  nezdařilo se ve složce %s: UID %d %q (%s): %s",
	"warning":            "  upozornění: %s",
	"throttled":          "původní poskytovatel kopírování zpomalil, pokračujeme v %s",
	"throttled.stopped":  "původní poskytovatel kopírování stále zpomaluje; zkopírované zůstává: pro pokračování spusťte stejný příkaz znovu po %s",
	"details":            "  podrobnosti: %s",
	"check.failed":       "%s -> %s: CHYBA",
	"check.ok":           "%s (%s) -> %s (%s): obě přihlášení fungují, k migraci: %s, %s",
	"check.space":        "  cílová schránka: zabráno %s z %s; původní schránka má %s",
	"discover.none":      "Pro %s se nenašel žádný IMAP server. Zeptejte se původního poskytovatele na název IMAP serveru, nebo ho najděte v nastavení účtu ve svém poštovním programu.",
	"discover.table":     "SERVER\tZABEZPEČENÍ\tNALEZENO PODLE\tDOSTUPNÝ\tPOZNÁMKA",
	"discover.yes":       "ano",
	"discover.no":        "ne",
	"discover.hosting":   "tento hosting",
	"discover.use":       "Použijte: --source %s://%s",
	"dns.table":          "ZÁZNAM\tNÁZEV\tMÁ BÝT\tJE\tVÝSLEDEK",
	"verdict.ok":         "v pořádku",
	"verdict.warn":       "upozornění",
	"verdict.fail":       "chyba",
	"oauth.device":       "Aby mailmigrate mohl číst původní schránku, otevřete v prohlížeči (na libovolném zařízení) %s, zadejte kód %s a přihlaste se k účtu %s, kterému schránka patří. Čekám na přihlášení…",
	"oauth.signed_in":    "Přihlášení k účtu %s proběhlo.",
	"oauth.denied":       "Přihlášení k účtu %s bylo odmítnuto; nic se nezkopírovalo.",
	"oauth.code_expired": "Platnost kódu vypršela dřív, než jste se přihlásili; pro nový kód spusťte příkaz znovu.",
	"oauth.unreachable":  "Přihlašovací služba poskytovatele %s není dostupná; nic se nezkopírovalo. Zkuste to později.",
}

var catalog = i18n.NewCatalog("cli", texts, textsCS)

// out writes the command line's reports in the environment's language.
var out = i18n.New(i18n.FromEnv(os.Getenv))
