package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailmigrate/internal/i18n"
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

// Warning says in the customer's words that the copy will not fit; zero
// when it fits.
func (s *Space) Warning() i18n.Message {
	if s == nil || s.Shortfall <= 0 {
		return i18n.Message{}
	}
	return catalog.M("space.short", i18n.Size(s.ToCopy), i18n.Size(s.Used), i18n.Size(s.Limit), i18n.Size(s.Shortfall))
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
	Note           i18n.Message   `json:"note,omitzero"`
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
func (f FolderReport) Remarks(p *i18n.Printer) []string {
	var out []string
	if !f.Note.IsZero() {
		out = append(out, f.Note.In(p))
	}
	for _, r := range []struct {
		n   int
		key string
	}{{f.Rewritten, "remark.rewritten"}, {f.DatesNotKept, "remark.dates"}} {
		if r.n > 0 {
			out = append(out, catalog.N(p, r.key, r.n))
		}
	}
	if len(f.KeywordsDropped) > 0 {
		out = append(out, catalog.T(p, "remark.keywords", strings.Join(f.KeywordsDropped, ", ")))
	}
	if f.FlagsNotKept > 0 {
		out = append(out, catalog.N(p, "remark.flags", f.FlagsNotKept))
	}
	return out
}

// MessageIssue names a message that was skipped or failed, in terms the
// customer recognises.
type MessageIssue struct {
	UID     uint32       `json:"uid"`
	Subject string       `json:"subject,omitempty"`
	Date    time.Time    `json:"date"`
	Size    int64        `json:"size"`
	Reason  i18n.Message `json:"reason"`
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
	Kind string `json:"kind"` // imapconn.Kind code: auth, connect, tls, over_quota, ...
	Side Side   `json:"side,omitempty"`
	// Text is what happened and what to do, written in the reader's
	// language where it is shown (Localize).
	Text i18n.Message `json:"text,omitzero"`
	// Message is Text in one language, filled by Localize for a page or
	// an answer (older versions stored it, in English, instead of Text).
	Message string `json:"message"`
	Detail  string `json:"detail"` // the technical error, without secrets
	// Causes are the likely causes with what to do, most likely first,
	// when a diagnosis was made (a failed login to the old server).
	Causes []i18n.Message `json:"causes,omitempty"`
	// Reasons are Causes in one language, filled by Localize.
	Reasons []string `json:"reasons,omitempty"`
}

// Localize returns a copy of the failure with Message and Reasons written
// in the printer's language (and no keys: it is for showing, not for
// storing); nil for nil.
func (f *Failure) Localize(p *i18n.Printer) *Failure {
	if f == nil {
		return nil
	}
	c := *f
	if !f.Text.IsZero() {
		c.Message = f.Text.In(p)
	}
	if len(f.Causes) > 0 {
		c.Reasons = nil
		for _, m := range f.Causes {
			c.Reasons = append(c.Reasons, m.In(p))
		}
	}
	// What is shown carries the words only.
	c.Text, c.Causes = i18n.Message{}, nil
	return &c
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

// SignInError is a failure to sign in to the old server with an access
// token: the token source's (the provider's) or the server's refusal of
// the token.
type SignInError struct{ Err error }

func (e *SignInError) Error() string { return "sign-in with the provider: " + e.Err.Error() }
func (e *SignInError) Unwrap() error { return e.Err }

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
	// KindSignInAgain: the sign-in with the old mailbox's provider is no
	// longer valid; only the customer can renew it.
	KindSignInAgain = "sign_in_again"
	// KindSignIn: the provider's sign-in service could not be asked.
	KindSignIn = "sign_in"
)

// Explain turns an account-level error into a Failure the customer can act on.
func Explain(err error) *Failure {
	var ie *InternalError
	if errors.As(err, &ie) {
		return &Failure{Kind: KindInternal, Detail: err.Error(), Text: catalog.M("failure.internal")}
	}
	var throttled *ThrottledError
	if errors.As(err, &throttled) {
		return &Failure{Kind: imapconn.ErrThrottled.Code(), Side: SideSource, Detail: err.Error(),
			Text: catalog.M("failure.throttled", i18n.Clock(throttled.Until))}
	}
	var many *TooManyFoldersError
	if errors.As(err, &many) {
		f := &Failure{Kind: KindTooManyFolders, Side: many.Side, Detail: err.Error()}
		if many.Side == SideSource {
			f.Text = catalog.M("failure.folders.source", many.Max)
		} else {
			f.Text = catalog.M("failure.folders.dest", many.Max)
		}
		return f
	}
	var sie *SignInError
	if errors.As(err, &sie) {
		return explainSignIn(err)
	}
	f := &Failure{Kind: imapconn.KindOf(err).Code(), Detail: err.Error()}
	var se *SideError
	user := ""
	if errors.As(err, &se) {
		f.Side = se.Side
		user = se.User
	}
	// The sentences differ by the server they blame (and Czech declines
	// the server's name), so each side has its own.
	bySide := func(key string) i18n.Message {
		switch f.Side {
		case SideSource:
			return catalog.M(key + ".source")
		case SideDest:
			return catalog.M(key + ".dest")
		}
		return catalog.M(key)
	}
	switch imapconn.KindOf(err) {
	case imapconn.ErrResolve:
		f.Text = bySide("failure.resolve")
	case imapconn.ErrConnect:
		if errors.Is(err, imapconn.ErrForbiddenAddress) {
			f.Text = bySide("failure.private")
			break
		}
		f.Text = bySide("failure.connect")
	case imapconn.ErrTLS:
		f.Text = bySide("failure.tls")
	case imapconn.ErrAuth:
		if f.Side == SideSource {
			f.Text = catalog.M("failure.auth.source", user)
		} else {
			f.Text = catalog.M("failure.auth.dest", user)
		}
	case imapconn.ErrTimeout, imapconn.ErrConnLost:
		f.Text = bySide("failure.timeout")
	case imapconn.ErrProtocol:
		f.Text = bySide("failure.protocol")
		var ce *imapconn.Error
		if errors.As(err, &ce) && ce.Text != "" {
			f.Text = catalog.M("failure.protocol.said", f.Text, ce.Text)
		}
	case imapconn.ErrOverQuota:
		f.Text = catalog.M("failure.over_quota")
	default:
		f.Text = bySide("failure.other")
	}
	return f
}

// explainSignIn explains a SignInError: the sign-in must be renewed, the
// server offers none or refused the token, or the provider did not answer.
func explainSignIn(err error) *Failure {
	f := &Failure{Kind: KindSignIn, Side: SideSource, Detail: err.Error(), Text: catalog.M("failure.sign_in")}
	var again interface{ SignInAgain() bool }
	switch {
	case errors.As(err, &again) && again.SignInAgain():
		f.Kind, f.Text = KindSignInAgain, catalog.M("failure.sign_in_again")
	case errors.Is(err, imapconn.ErrNoOAuth):
		f.Kind, f.Text = imapconn.ErrAuth.Code(), catalog.M("failure.no_oauth")
	case imapconn.KindOf(err) == imapconn.ErrAuth:
		f.Kind, f.Text = imapconn.ErrAuth.Code(), catalog.M("failure.token_refused")
	}
	return f
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

// Localize returns a copy of the report whose sentences (the failure, the
// folders' notes and the reasons of skipped and failed messages) are
// written in the printer's language, for a page, an answer or a file;
// nil for nil. The copy is not for storing: it has lost the keys.
func (r *Report) Localize(p *i18n.Printer) *Report {
	if r == nil {
		return nil
	}
	c := *r
	c.Failure = r.Failure.Localize(p)
	c.Folders = make([]FolderReport, len(r.Folders))
	for i, f := range r.Folders {
		f.Note = i18n.Literal(f.Note.In(p))
		f.Skipped = localizeIssues(f.Skipped, p)
		f.Failed = localizeIssues(f.Failed, p)
		c.Folders[i] = f
	}
	return &c
}

func localizeIssues(in []MessageIssue, p *i18n.Printer) []MessageIssue {
	if in == nil {
		return nil
	}
	out := make([]MessageIssue, len(in))
	for i, m := range in {
		m.Reason = i18n.Literal(m.Reason.In(p))
		out[i] = m
	}
	return out
}
