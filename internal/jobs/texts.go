package jobs

import "mailmigrate/internal/i18n"

// texts are the failures the job queue itself records for a task.
var texts = map[string]string{
	"failure.stopped":  "The copy of this mailbox stopped because of an error on our side. What was copied stays; use Restart to continue. If it stops again, contact support.",
	"failure.secrets":  "The passwords of this migration are no longer stored (they are deleted some time after a migration ends). Correct the migration, enter the passwords again and restart it.",
	"failure.unsealed": "The stored passwords of this migration cannot be read on this server. Correct the migration and enter the passwords again, or contact support.",
	"failure.create":   "The new mailbox could not be created on the hosting. Contact support.",
}

var textsCS = map[string]string{
	"failure.stopped":  "Kopírování této schránky se zastavilo kvůli chybě na naší straně. Co už bylo zkopírováno, zůstává; pokračujte tlačítkem „Spustit znovu“. Pokud se zastaví znovu, kontaktujte podporu.",
	"failure.secrets":  "Hesla této migrace už nejsou uložena (mažou se nějakou dobu po skončení migrace). Opravte migraci, zadejte hesla znovu a spusťte ji znovu.",
	"failure.unsealed": "Uložená hesla této migrace nelze na tomto serveru přečíst. Opravte migraci a zadejte hesla znovu, nebo kontaktujte podporu.",
	"failure.create":   "Novou schránku se na hostingu nepodařilo vytvořit. Kontaktujte podporu.",
}

var catalog = i18n.NewCatalog("jobs", texts, textsCS)
