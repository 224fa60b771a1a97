// Package store keeps the application's durable data: tenants (operators
// and customers), their domains and API tokens, migrations and their
// mailbox tasks, and the engine's ledger. Store is one interface; DB
// implements it over database/sql, in one embedded SQLite file (one
// process) or in a PostgreSQL database that several servers share. The
// queries are written once; the schema is kept per database in numbered
// steps (migrations.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"mailmigrate/internal/engine"
)

// ErrNotFound means the object does not exist (or is not the caller's:
// callers must not be able to tell the two apart).
var ErrNotFound = errors.New("not found")

// ErrConflict means a unique name is already taken.
var ErrConflict = errors.New("already exists")

// ErrDisabled refuses the API token or sign-in of a customer, or the
// sign-in of a person, that the operator disabled; what is returned with
// it names the tenant (and user), for the message.
var ErrDisabled = errors.New("disabled by the operator")

// ErrLastOperator refuses deleting or disabling the last operator that can
// act: nobody could then manage the service through the API or the panel.
var ErrLastOperator = errors.New("the last operator")

// BusyError refuses a task into a mailbox that already has a task queued
// or copying: two copies into one mailbox would each add every message.
type BusyError struct {
	Mailbox string // the refused task's destination, as it was given
	// TaskID and MigrationID are the task that holds the mailbox, when it
	// is known (it may have finished in the meantime).
	TaskID, MigrationID int64
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("mailbox %s is busy with task %d of migration %d", e.Mailbox, e.TaskID, e.MigrationID)
}

// Kinds of tenant.
const (
	KindOperator = "operator"
	KindCustomer = "customer"
)

// Tenant is an operator (runs the hosting, sees everything) or a customer
// (owns domains).
type Tenant struct {
	ID      int64     `json:"id"`
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	// Disabled is when the operator disabled the tenant (zero: enabled):
	// its tokens and sign-ins are refused, its queued mailboxes wait, and
	// no migration into its domains starts.
	Disabled time.Time `json:"disabled,omitzero"`
}

// Token is an API token as the operator sees it: the token itself is
// shown once when it is made, and only its hash is stored.
type Token struct {
	ID       int64
	TenantID int64
	Label    string
	Created  time.Time
	// LastUsed is the last request made with it, to the minute (zero:
	// never used).
	LastUsed time.Time
}

// Activity counts a domain's migrations and their mailboxes, for the
// operator.
type Activity struct {
	Migrations int
	// Running is how many migrations have a mailbox queued or copying.
	Running int
	// Mailboxes counts the tasks by state.
	Mailboxes map[string]int
}

// Domain is a customer's hosting service for one mail domain.
type Domain struct {
	ID           int64     `json:"id"`
	TenantID     int64     `json:"tenant_id"`
	Name         string    `json:"name"`
	MailboxLimit int       `json:"mailbox_limit"` // 0 = no limit
	Created      time.Time `json:"created"`
}

// Migration moves mail from one source server into a domain.
type Migration struct {
	ID             int64  `json:"id"`
	DomainID       int64  `json:"domain_id"`
	SourceHost     string `json:"source_host"`
	SourcePort     int    `json:"source_port"`
	SourceSecurity string `json:"source_security"` // tls, starttls, plain
	// SourceFingerprint is a certificate the customer trusted for this
	// migration only (SHA-256, hex), or "".
	SourceFingerprint string `json:"source_fingerprint,omitempty"`
	// GmailOnce copies each message of a Gmail account once, its other
	// labels as keywords, instead of once per label.
	GmailOnce bool      `json:"gmail_once,omitempty"`
	Created   time.Time `json:"created"`
}

// Task kinds.
const (
	TaskSync   = "sync"   // into a mailbox that exists on the hosting
	TaskCreate = "create" // the mailbox is created first
)

// Task states.
const (
	StateQueued    = "queued"
	StateRunning   = "copying"
	StateDone      = "done"
	StateWarnings  = "done_with_warnings"
	StateFailed    = "failed"
	StatePaused    = "paused_over_quota"
	StateCancelled = "cancelled"
)

// Finished reports whether a task in this state has nothing more to do
// until someone restarts or resumes it.
func Finished(state string) bool {
	switch state {
	case StateDone, StateWarnings, StateFailed, StatePaused, StateCancelled:
		return true
	}
	return false
}

// MailboxKey is the identity of a destination mailbox: addresses that
// differ only in letter case are one mailbox.
func MailboxKey(address string) string { return strings.ToLower(address) }

// Progress is how far a task's copy has come.
type Progress struct {
	FoldersTotal  int64 `json:"folders_total"`
	FoldersDone   int64 `json:"folders_done"`
	MessagesTotal int64 `json:"messages_total"`
	MessagesDone  int64 `json:"messages_done"`
	BytesTotal    int64 `json:"bytes_total"`
	BytesDone     int64 `json:"bytes_done"`
}

// Task copies one source login into one mailbox of the domain.
type Task struct {
	ID          int64  `json:"id"`
	MigrationID int64  `json:"migration_id"`
	Kind        string `json:"kind"`
	SourceUser  string `json:"source_user"`
	DestUser    string `json:"destination"`
	State       string `json:"state"`
	// JobID is the job that runs the task now; a run of any other job
	// leaves the task alone.
	JobID int64 `json:"-"`

	Progress

	Report  *engine.Report  `json:"-"`
	Failure *engine.Failure `json:"failure,omitempty"`

	// SourceSignIn is the provider the old mailbox is signed in to with
	// (package oauth: "google", "microsoft"), "" for a password; with one,
	// SourceSecret is the sealed refresh token.
	SourceSignIn string `json:"source_sign_in,omitempty"`
	// Sealed by internal/secret; never leave the server.
	SourceSecret []byte `json:"-"`
	DestSecret   []byte `json:"-"`

	Created  time.Time `json:"created"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// TaskEnd is how a run of a task ends.
type TaskEnd struct {
	// State is a final state, or StateQueued when the task goes on in a
	// later run.
	State    string
	Progress Progress
	// Report replaces the task's report unless nil; Failure always
	// replaces its failure.
	Report  *engine.Report
	Failure *engine.Failure
}

// User is a person who signs in to the panel, on behalf of a tenant.
type User struct {
	ID           int64
	TenantID     int64
	Email        string
	PasswordHash string
	Created      time.Time
	// Lang is the language the user last read the panel in ("cs", "en";
	// "" before the first sign-in): notification mails are written in it.
	Lang string
	// Disabled is when the operator disabled the sign-in (zero: enabled).
	Disabled time.Time
}

// Kinds of notification: what the customer is told about.
const (
	// NotifyFinished: every mailbox of a migration is in a final state
	// (not all cancelled: a customer who cancels everything needs no
	// mail about it). It also says which mailboxes need action.
	NotifyFinished = "finished"
	// NotifyPaused: a mailbox ran out of space; the customer enlarges
	// the quota and resumes.
	NotifyPaused = "paused_over_quota"
	// NotifyLoginFailed: the old server refused a mailbox's login; the
	// customer corrects the password or the server and restarts.
	NotifyLoginFailed = "login_failed"
	// NotifyHostingLoginFailed: this hosting refused the login into an
	// existing mailbox (its password was changed since the start); the
	// customer enters the current password and restarts.
	NotifyHostingLoginFailed = "hosting_login_failed"
	// NotifySignInAgain: the sign-in with the old mailbox's provider was
	// withdrawn or expired; the customer signs in again, which resumes
	// the copy.
	NotifySignInAgain = "sign_in_again"
)

// Notification is one event the customer is told about, by mail and on
// the panel. It is recorded in the transaction that changes the task's
// state, once per event: a task event is identified by the task and the
// job that ran it (a task is queued again only with a new job), the end of
// a migration by the newest job of its tasks. When a task's change ends
// its migration, only NotifyFinished is recorded: it tells about that
// mailbox too, and the customer gets one mail, not two.
type Notification struct {
	ID          int64
	MigrationID int64
	TaskID      int64 // 0 for NotifyFinished
	JobID       int64
	Kind        string
	Created     time.Time
	Sent        time.Time // zero until a mail was handed to the relay
	Attempts    int       // mails tried
	Error       string    // the last failed attempt's error, or why none was sent

	// Filled in by Notifications, for the panel.
	Domain     string
	SourceHost string
	Mailbox    string // the task's mailbox ("" for NotifyFinished)
	// Pending says the event still needs the customer's action: the
	// mailbox is still paused or failed by that run (for NotifyFinished:
	// a mailbox of the migration is, and nothing ran since).
	Pending bool
}

// NotificationQueue queues the sending of a new notification in the
// transaction that records it.
type NotificationQueue func(ctx context.Context, tx *sql.Tx, n Notification) error

// Store is everything the service keeps. Methods that take a tenant
// scope return ErrNotFound for objects of other tenants.
type Store interface {
	engine.Ledger

	// UseChecks counts a check of n logins against a customer's allowance
	// (see DB.UseChecks).
	UseChecks(ctx context.Context, tenant int64, n, limit int, window time.Duration, now time.Time) (bool, error)

	CreateTenant(ctx context.Context, name, kind string) (Tenant, error)
	Tenant(ctx context.Context, id int64) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)

	// CreateToken stores the hash of a new API token.
	CreateToken(ctx context.Context, tenantID int64, name string, hash []byte) error
	// TokenTenant finds the tenant of a token hash; for a disabled
	// tenant the error is ErrDisabled. It records the token's use.
	TokenTenant(ctx context.Context, hash []byte) (Tenant, error)
	// Tokens lists a tenant's API tokens, or all with tenantID 0.
	Tokens(ctx context.Context, tenantID int64) ([]Token, error)
	// DeleteToken revokes a token and returns what it was.
	DeleteToken(ctx context.Context, id int64) (Token, error)

	// SetTenantDisabled disables or enables a tenant. Disabling ends the
	// sign-in sessions of its people; the last enabled operator is not
	// disabled (ErrLastOperator).
	SetTenantDisabled(ctx context.Context, id int64, disabled bool) error
	// DeleteTenant deletes a tenant with its domains, migrations, people
	// and tokens. While a mailbox of it is queued or copying the error is
	// a *RunningError, and the last operator is not deleted
	// (ErrLastOperator); then nothing changes.
	DeleteTenant(ctx context.Context, id int64) error

	CreateDomain(ctx context.Context, d Domain) (Domain, error)
	Domain(ctx context.Context, id int64) (Domain, error)
	DomainByName(ctx context.Context, name string) (Domain, error)
	// Domains lists a tenant's domains, or all with tenantID 0.
	Domains(ctx context.Context, tenantID int64) ([]Domain, error)
	// SetMailboxLimit changes how many mailboxes a domain may have.
	SetMailboxLimit(ctx context.Context, domainID int64, limit int) error
	// DeleteDomain deletes a domain with its migrations. While a mailbox
	// of it is queued or copying the error is a *RunningError and nothing
	// changes.
	DeleteDomain(ctx context.Context, id int64) error
	// DomainActivity counts a domain's migrations and mailboxes.
	DomainActivity(ctx context.Context, domainID int64) (Activity, error)

	// CreateMigration stores a migration and its tasks, queued, in one
	// transaction. queue runs inside it once the tasks have their IDs: it
	// queues their jobs in tx and may set each task's SourceSecret,
	// DestSecret and JobID, which are stored with it. If a task's mailbox
	// has another task queued or copying, the error is a *BusyError; if
	// the domain's tenant is disabled, ErrDisabled; then nothing is stored.
	CreateMigration(ctx context.Context, m Migration, tasks []Task, queue func(tx *sql.Tx, tasks []Task) error) (Migration, []Task, error)
	Migration(ctx context.Context, id int64) (Migration, error)
	// Migrations lists a domain's migrations, newest first.
	Migrations(ctx context.Context, domainID int64) ([]Migration, error)

	Task(ctx context.Context, id int64) (Task, error)
	Tasks(ctx context.Context, migrationID int64) ([]Task, error)
	// UnfinishedTasks lists the tasks that still have work to do (queued or
	// copying), to check their jobs.
	UnfinishedTasks(ctx context.Context) ([]Task, error)
	// ListTasks lists the tasks of every customer that the filter selects,
	// newest first, for the operator.
	ListTasks(ctx context.Context, f TaskFilter) ([]TaskRow, error)

	// RecordTaskAction records what the operator did to a task on its
	// customer's behalf, and returns the record.
	RecordTaskAction(ctx context.Context, a TaskAction) (TaskAction, error)
	// TaskActions lists the operator's actions on a task, oldest first.
	TaskActions(ctx context.Context, taskID int64) ([]TaskAction, error)
	// CurrentTaskActions returns, for each task of a migration that the
	// operator last restarted, resumed or cancelled, that action, unless
	// the task ran again since (it then has another job).
	CurrentTaskActions(ctx context.Context, migrationID int64) (map[int64]TaskAction, error)

	// Every change of a task's state below is conditional and says whether
	// it happened: a task that was cancelled meanwhile stays cancelled.

	// QueueTask queues a task that is in one of the states from again, with
	// a new job: queue inserts the job in tx and returns its ID. The task
	// loses its failure and finish time. If its mailbox has another task
	// queued or copying, the error is a *BusyError and nothing changes.
	QueueTask(ctx context.Context, id int64, from []string, queue func(tx *sql.Tx, t Task) (jobID int64, err error)) (bool, error)
	// ClaimTask starts a run of a task by its job: a task that is queued
	// or copying for that job becomes copying (and loses its failure).
	ClaimTask(ctx context.Context, id, jobID int64) (Task, bool, error)
	// SetTaskProgress writes the counters of a task that is copying.
	SetTaskProgress(ctx context.Context, id int64, p Progress) (bool, error)
	// FinishTask ends the run of a task that is copying.
	FinishTask(ctx context.Context, id int64, end TaskEnd) (bool, error)
	// TransitionTask moves a task that is in one of the states from to the
	// final state to, and sets its finish time; a failure, if given,
	// replaces the task's.
	TransitionTask(ctx context.Context, id int64, from []string, to string, failure *engine.Failure) (bool, error)
	// Runs lists a task's runs, newest first (see Run): ClaimTask starts
	// one, FinishTask and TransitionTask write how it ended.
	Runs(ctx context.Context, taskID int64) ([]Run, error)
	// ExpireSecrets clears the secrets of tasks finished before the time,
	// except those of migrations with a re-sync schedule: it needs them.
	ExpireSecrets(ctx context.Context, finishedBefore time.Time) (int, error)

	// SetSourceSecret replaces the sealed source secret of a task that
	// still has one (a refresh token the provider rotated); false when it
	// was deleted meanwhile.
	SetSourceSecret(ctx context.Context, taskID int64, sealed []byte) (bool, error)
	// RenewSignIn replaces the sealed refresh token of a finished task
	// signed in to with provider, after the customer signed in again;
	// false when there is no such task.
	RenewSignIn(ctx context.Context, taskID int64, provider string, sealed []byte) (bool, error)

	// CorrectMigration changes a migration's source server and the sealed
	// passwords of its tasks in one transaction. While a task of it is
	// queued or copying, the error is a *RunningError and nothing changes.
	CorrectMigration(ctx context.Context, migrationID int64, c Correction) error
	// StartSchedule starts the daily re-sync of a migration (a schedule
	// already running is kept as it is) and returns it.
	StartSchedule(ctx context.Context, migrationID int64) (Schedule, error)
	// StopSchedule ends it; false if there was none.
	StopSchedule(ctx context.Context, migrationID int64) (bool, error)
	// Schedule returns a migration's schedule, or ErrNotFound.
	Schedule(ctx context.Context, migrationID int64) (Schedule, error)
	// Schedules lists every running schedule.
	Schedules(ctx context.Context) ([]Schedule, error)
	// ScheduleRan records a re-sync at the time, and mxSince as the time
	// the domain's MX was first seen at the hosting (unless one is
	// recorded already; zero: not yet).
	ScheduleRan(ctx context.Context, migrationID int64, at, mxSince time.Time) error

	// SetNotificationQueue sets what queues the mail of each notification
	// recorded from now on, in the transaction of the state change that
	// records it. Without one, notifications are recorded only.
	SetNotificationQueue(q NotificationQueue)
	// Notification returns one notification (without the panel's fields).
	Notification(ctx context.Context, id int64) (Notification, error)
	// Notifications lists a tenant's newest notifications (all with
	// tenantID 0), with the panel's fields: pending ones first.
	Notifications(ctx context.Context, tenantID int64, limit int) ([]Notification, error)
	// NotificationAttempt records a mail attempt: sent is its time when
	// the relay took it, zero when it failed with errText.
	NotificationAttempt(ctx context.Context, id int64, sent time.Time, errText string) error

	CreateUser(ctx context.Context, tenantID int64, email, passwordHash string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// Users lists the people who sign in for a tenant, or all with
	// tenantID 0.
	Users(ctx context.Context, tenantID int64) ([]User, error)
	// SetUserDisabled disables or enables a person's sign-in; disabling
	// ends the person's sessions.
	SetUserDisabled(ctx context.Context, userID int64, disabled bool) error
	// DeleteUser deletes a person's sign-in and sessions.
	DeleteUser(ctx context.Context, userID int64) error
	// SetUserPassword replaces a person's password hash and ends the
	// person's sessions, in one transaction; it returns how many ended.
	SetUserPassword(ctx context.Context, userID int64, passwordHash string) (int, error)
	// SetUserLang records the language a user reads the panel in.
	SetUserLang(ctx context.Context, userID int64, lang string) error
	// CreateSession stores a sign-in session by the hash of its token.
	CreateSession(ctx context.Context, tokenHash []byte, userID int64, expires time.Time) error
	// SessionUser returns the user of an unexpired session; if the user or
	// the tenant is disabled, the error is ErrDisabled.
	SessionUser(ctx context.Context, tokenHash []byte) (User, Tenant, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error
	// KeepLogins stores sealed logins that a check found working, for the
	// sign-in session with sessionHash only, until expires; signing out
	// deletes them.
	KeepLogins(ctx context.Context, handleHash, sessionHash, sealed []byte, expires time.Time) error
	// KeptLogins returns what KeepLogins stored under handleHash for the
	// same session, or ErrNotFound (also once expired).
	KeptLogins(ctx context.Context, handleHash, sessionHash []byte) ([]byte, error)
	// KeyFingerprint records the fingerprint of the key that seals the
	// stored passwords, unless one is recorded already (or fingerprint is
	// ""), and returns the recorded one ("" if none); held reports whether
	// any password is stored.
	KeyFingerprint(ctx context.Context, fingerprint string) (recorded string, held bool, err error)
	// ForgetSecrets deletes every stored password and the recorded key
	// fingerprint, and the sign-ins started through the API, for an
	// operator whose key is lost: customers then enter their passwords (and
	// sign in) again. It returns how many tasks lost theirs.
	ForgetSecrets(ctx context.Context) (int, error)
	// DropKeptLogins deletes kept logins once they are used.
	DropKeptLogins(ctx context.Context, handleHash []byte) error

	// CreateSignIn stores a sign-in with a provider started through the
	// API.
	CreateSignIn(ctx context.Context, s SignIn) error
	// SignIn returns a sign-in by the hash of its ID, in any state, or
	// ErrNotFound.
	SignIn(ctx context.Context, idHash []byte) (SignIn, error)
	// SignInByState returns a sign-in by the hash of its OAuth state, in
	// any state, or ErrNotFound.
	SignInByState(ctx context.Context, stateHash []byte) (SignIn, error)
	// ChangeSignIn moves a sign-in that is in state from and has not
	// expired to state to, with sealed and expires; false if it was not.
	ChangeSignIn(ctx context.Context, idHash []byte, from, to string, sealed []byte, expires time.Time) (bool, error)
	// UseSignIns marks signed-in sign-ins used and deletes their sealed
	// tokens, in the transaction of the submission that took them;
	// ErrSignInGone if any of them was no longer signed in.
	UseSignIns(ctx context.Context, tx *sql.Tx, idHashes [][]byte) error
	// ExpireSignIns deletes the sign-ins whose expiry is before now and
	// returns how many.
	ExpireSignIns(ctx context.Context, now time.Time) (int, error)

	Close() error
}
