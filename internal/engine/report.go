package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailmigrate/internal/imapconn"
)

// Status is how an account's migration ended.
type Status string

// The account outcomes.
const (
	StatusDone      Status = "done"               // everything copied
	StatusWarnings  Status = "done_with_warnings" // finished, some messages skipped or failed
	StatusOverQuota Status = "paused_over_quota"  // stopped: destination full; resume later
	StatusFailed    Status = "failed"             // could not run (connection, login, ...)
)

// Report is the result of migrating one account.
type Report struct {
	Source     string         `json:"source"` // imaps://host:port
	SourceUser string         `json:"source_user"`
	Dest       string         `json:"destination"`
	DestUser   string         `json:"destination_user"`
	Status     Status         `json:"status"`
	Failure    *Failure       `json:"failure,omitempty"`
	Started    time.Time      `json:"started"`
	Finished   time.Time      `json:"finished"`
	Folders    []FolderReport `json:"folders"`
	Totals     Totals         `json:"totals"`
	// Space compares what is to be copied with the destination's free
	// quota, when the destination tells its quota.
	Space *Space `json:"space,omitempty"`
	// SourceBytes is the old mailbox's size found by Check, when the
	// source tells every folder's size (STATUS SIZE); 0 otherwise.
	SourceBytes int64 `json:"source_bytes,omitempty"`
}

// Space is the pre-flight check of the destination's quota.
type Space struct {
	ToCopy    int64 `json:"to_copy_bytes"`    // what this run has to copy
	Used      int64 `json:"destination_used"` // bytes, at the start
	Limit     int64 `json:"destination_limit"`
	Shortfall int64 `json:"shortfall_bytes,omitempty"` // how much is missing; 0 when it fits
}

// Warning says in the customer's words that the copy will not fit, or "".
func (s *Space) Warning() string {
	if s == nil || s.Shortfall <= 0 {
		return ""
	}
	return fmt.Sprintf("The mail to copy (%s) does not fit into the destination mailbox: %s of its %s are used, so %s more space is needed. Enlarge its quota first, or the migration will pause when it is full.",
		HumanBytes(s.ToCopy), HumanBytes(s.Used), HumanBytes(s.Limit), HumanBytes(s.Shortfall))
}

// Totals sum up the folders.
type Totals struct {
	SourceMessages int   `json:"source_messages"`
	Copied         int   `json:"copied"`
	AlreadyPresent int   `json:"already_present"`
	Skipped        int   `json:"skipped"`
	Failed         int   `json:"failed"`
	FlagsUpdated   int   `json:"flags_updated"`
	BytesCopied    int64 `json:"bytes_copied"`
}

// FolderReport is one source folder's outcome.
type FolderReport struct {
	Source         string         `json:"source"`
	Dest           string         `json:"destination"`
	Role           Role           `json:"role,omitempty"`
	Note           string         `json:"note,omitempty"`
	SourceMessages int            `json:"source_messages"`
	Copied         int            `json:"copied"`
	AlreadyPresent int            `json:"already_present"`
	FlagsUpdated   int            `json:"flags_updated"`
	BytesCopied    int64          `json:"bytes_copied"`
	Skipped        []MessageIssue `json:"skipped,omitempty"`
	Failed         []MessageIssue `json:"failed,omitempty"`
	Unchanged      bool           `json:"unchanged,omitempty"` // nothing changed since the last run
	// Rewritten counts messages the destination stores with other bytes
	// than the source's (a line ending added, 8-bit header bytes replaced).
	Rewritten int `json:"rewritten_by_destination,omitempty"`
	// DatesNotKept counts messages whose arrival date the destination did
	// not keep.
	DatesNotKept int `json:"dates_not_kept,omitempty"`
	// KeywordsDropped are flags and keywords (tags) the destination does
	// not store.
	KeywordsDropped []string `json:"keywords_dropped,omitempty"`
	// FlagsNotKept counts messages the destination took with flags but
	// stored without some of them.
	FlagsNotKept int `json:"flags_not_kept,omitempty"`
}

// Remarks are the folder's notes in the customer's words: a name change,
// and what the destination did not keep as the source had it.
func (f FolderReport) Remarks() []string {
	var out []string
	if f.Note != "" {
		out = append(out, f.Note)
	}
	if f.Rewritten > 0 {
		out = append(out, fmt.Sprintf("the destination server stores %d message(s) with slightly different bytes than the old server (it repairs line endings or replaces 8-bit characters in headers); the content is the same", f.Rewritten))
	}
	if f.DatesNotKept > 0 {
		out = append(out, fmt.Sprintf("the destination server did not keep the original arrival date of %d message(s)", f.DatesNotKept))
	}
	if len(f.KeywordsDropped) > 0 {
		out = append(out, fmt.Sprintf("the destination server does not store these flags or tags (keywords), so they were left out: %s", strings.Join(f.KeywordsDropped, ", ")))
	}
	if f.FlagsNotKept > 0 {
		out = append(out, fmt.Sprintf("the destination server did not keep all flags (read, answered, flagged, tags) of %d message(s)", f.FlagsNotKept))
	}
	return out
}

// MessageIssue names a message that was skipped or failed, in terms the
// customer recognises.
type MessageIssue struct {
	UID     uint32    `json:"uid"`
	Subject string    `json:"subject,omitempty"`
	Date    time.Time `json:"date"`
	Size    int64     `json:"size"`
	Reason  string    `json:"reason"`
}

// Side says which server a failure happened on.
type Side string

// The two servers.
const (
	SideSource Side = "source"
	SideDest   Side = "destination"
)

// Failure is an account-level failure, explained for the customer.
type Failure struct {
	Kind    string `json:"kind"` // imapconn.Kind code: auth, connect, tls, over_quota, ...
	Side    Side   `json:"side,omitempty"`
	Message string `json:"message"` // what happened and what to do, in the customer's words
	Detail  string `json:"detail"`  // the technical error, without secrets
	// Reasons are the likely causes with what to do, most likely first,
	// when a diagnosis was made (a failed login to the old server).
	Reasons []string `json:"reasons,omitempty"`
}

func (r *Report) total() {
	r.Totals = Totals{}
	for _, f := range r.Folders {
		r.Totals.SourceMessages += f.SourceMessages
		r.Totals.Copied += f.Copied
		r.Totals.AlreadyPresent += f.AlreadyPresent
		r.Totals.Skipped += len(f.Skipped)
		r.Totals.Failed += len(f.Failed)
		r.Totals.FlagsUpdated += f.FlagsUpdated
		r.Totals.BytesCopied += f.BytesCopied
	}
}

// SideError is an account-level error that knows which server caused it.
type SideError struct {
	Side Side
	User string
	Err  error
}

func (e *SideError) Error() string { return fmt.Sprintf("%s server: %v", e.Side, e.Err) }
func (e *SideError) Unwrap() error { return e.Err }

// InternalError is a defect of this tool met during a run (a recovered
// panic). Value says what went wrong, without secrets.
type InternalError struct{ Value string }

func (e *InternalError) Error() string { return "internal error: " + e.Value }

// TooManyFoldersError refuses an account with more folders than
// Options.MaxFolders, before anything is created.
type TooManyFoldersError struct {
	Side Side
	Max  int
}

func (e *TooManyFoldersError) Error() string {
	return fmt.Sprintf("%s server lists more than %d folders", e.Side, e.Max)
}

// Failure kinds of the engine's own, beside imapconn's.
const (
	KindInternal       = "internal"
	KindTooManyFolders = "too_many_folders"
)

// Explain turns an account-level error into a Failure the customer can act on.
func Explain(err error) *Failure {
	var ie *InternalError
	if errors.As(err, &ie) {
		return &Failure{Kind: KindInternal, Detail: err.Error(),
			Message: "The migration of this mailbox stopped because of an unexpected error in the migration tool (a defect on our side, not in your mailbox). What was copied so far is kept. Please contact support; running it again would likely stop the same way."}
	}
	var many *TooManyFoldersError
	if errors.As(err, &many) {
		f := &Failure{Kind: KindTooManyFolders, Side: many.Side, Detail: err.Error()}
		if many.Side == SideSource {
			f.Message = fmt.Sprintf("The old mailbox has more than %d folders, more than this service copies into one mailbox. Nothing was copied. Merge or delete folders in the old mailbox (or ask the hosting to raise the limit), then start the migration again.", many.Max)
		} else {
			f.Message = fmt.Sprintf("The destination mailbox already has more than %d folders, more than this service works with. Nothing was copied. Contact the hosting's support.", many.Max)
		}
		return f
	}
	f := &Failure{Kind: imapconn.KindOf(err).Code(), Detail: err.Error()}
	var se *SideError
	server, user := "the server", ""
	if errors.As(err, &se) {
		f.Side = se.Side
		user = se.User
		if se.Side == SideSource {
			server = "the old (source) server"
		} else {
			server = "the destination mailbox server"
		}
	}
	switch imapconn.KindOf(err) {
	case imapconn.ErrResolve:
		f.Message = fmt.Sprintf("The address of %s cannot be found in DNS. Check the server name for typos; ask the old provider for the exact IMAP server name.", server)
	case imapconn.ErrConnect:
		if errors.Is(err, imapconn.ErrForbiddenAddress) {
			f.Message = fmt.Sprintf("The address of %s points into a private or local network, which this service does not connect to. Give the old provider's public IMAP server name.", server)
			break
		}
		f.Message = fmt.Sprintf("Cannot connect to %s. Check the server name and port (993 for TLS, 143 for STARTTLS) and that the server accepts IMAP connections from the internet.", server)
	case imapconn.ErrTLS:
		f.Message = fmt.Sprintf("A secure (TLS) connection to %s could not be established: its certificate is not trusted or does not match the name, or it does not offer encryption. Use the server name that its certificate was issued for.", server)
	case imapconn.ErrAuth:
		if f.Side == SideSource {
			f.Message = fmt.Sprintf("The old server rejected the login %q. Check that the server address is the old provider's (not this hosting, if the DNS was already moved), that the login is the full address (mailbox@domain.tld), and that the password is current; some providers (Gmail, Yahoo, iCloud, Seznam with two-factor login) need an app password and IMAP access enabled first.", user)
		} else {
			f.Message = fmt.Sprintf("The destination mailbox rejected the login %q. Check the mailbox address and its password on the hosting.", user)
		}
	case imapconn.ErrTimeout, imapconn.ErrConnLost:
		f.Message = fmt.Sprintf("%s stopped answering. What was copied so far is kept; run the migration again to continue.", capitalize(server))
	case imapconn.ErrProtocol:
		var ce *imapconn.Error
		said := ""
		if errors.As(err, &ce) && ce.Text != "" {
			said = fmt.Sprintf(" It sent: «%s».", ce.Text)
		}
		f.Message = fmt.Sprintf("%s sent a reply that does not follow the IMAP protocol, so the migration cannot go on with it.%s Repeating the migration would meet the same reply: ask the provider of that server to fix it, or contact support. What was copied so far is kept.", capitalize(server), said)
	case imapconn.ErrOverQuota:
		f.Message = "The destination mailbox is full. The messages copied so far are kept. Enlarge the mailbox quota (or delete mail in the old mailbox), then run the migration again: it copies only the rest."
	default:
		f.Message = fmt.Sprintf("The migration stopped because of an error on %s. What was copied so far is kept; run the migration again to continue.", server)
	}
	return f
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// HumanBytes writes a size the way people read it in reports and pages.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Continue joins the report of a run's later slice to the report of its
// earlier slices, so that one run reads as one copy: what the earlier
// slices copied counts as copied, not as already present when the later
// slice finds it there. Skipped and failed messages, the space check and
// the outcome are the later slice's (the latest truth).
func (r *Report) Continue(earlier *Report) {
	if earlier == nil {
		return
	}
	r.Started = earlier.Started
	seen := map[string]bool{}
	before := map[string]FolderReport{}
	for _, f := range earlier.Folders {
		before[f.Source] = f
	}
	for i := range r.Folders {
		f := &r.Folders[i]
		seen[f.Source] = true
		e, ok := before[f.Source]
		if !ok {
			continue
		}
		f.Copied += e.Copied
		f.AlreadyPresent = max(0, f.AlreadyPresent-e.Copied)
		f.FlagsUpdated += e.FlagsUpdated
		f.BytesCopied += e.BytesCopied
		f.Rewritten += e.Rewritten
		f.DatesNotKept += e.DatesNotKept
		f.FlagsNotKept += e.FlagsNotKept
		f.Unchanged = f.Unchanged && e.Unchanged
		for _, k := range e.KeywordsDropped {
			if !slices.Contains(f.KeywordsDropped, k) {
				f.KeywordsDropped = append(f.KeywordsDropped, k)
			}
		}
	}
	// A folder the later slice did not list (it was deleted on the old
	// server meanwhile) keeps what was copied from it.
	for _, e := range earlier.Folders {
		if !seen[e.Source] {
			e.Skipped, e.Failed = nil, nil
			r.Folders = append(r.Folders, e)
		}
	}
	r.total()
}
