package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/diagnose"
	"mailmigrate/internal/engine"
	"mailmigrate/internal/hosting"
	"mailmigrate/internal/i18n"
	"mailmigrate/internal/imapconn"
	"mailmigrate/internal/store"
)

// newPasswordProblem applies the password policy to the password a new
// mailbox gets, and says how to give another one when the old mailbox's
// password (the default) is too weak; zero when it is fine.
func newPasswordProblem(mailbox string, e bulk.Entry) i18n.Message {
	err := hosting.CheckNewPassword(mailbox, e.DestPassword)
	if err == nil {
		return i18n.Message{}
	}
	if e.DestPassword == e.SourcePassword {
		return catalog.M("new.weak", mailbox, messageOf(err), e.SourceUser)
	}
	return catalog.M("new.weaknew", mailbox, messageOf(err))
}

// sourceIsHosting tells whether the old server is this hosting's own IMAP
// service: configured as such, or a name that resolves to it.
func (a *API) sourceIsHosting(ctx context.Context, ep imapconn.Endpoint) bool {
	h := a.cfg.Hosting.IMAP
	if strings.EqualFold(ep.Host, h.Host) && ep.Port == h.Port {
		return true
	}
	r := a.cfg.Diagnose.Resolver
	if r == nil {
		return false
	}
	here, _, err := diagnose.PointsToHosting(ctx, r, ep.Host, ep.Port, a.cfg.Diagnose.Hosting)
	return err == nil && here
}

// selfCopies returns the rows that would copy a mailbox of this hosting
// into itself: the old server is the hosting and the old login is the
// mailbox. Another login there (an old service's, such as jana@w123456)
// is a migration between two services of the hosting, and allowed.
func (a *API) selfCopies(ctx context.Context, ep imapconn.Endpoint, rows []planned) []planned {
	var same []planned
	for _, row := range rows {
		if strings.EqualFold(row.sourceUser, row.mailbox) {
			same = append(same, row)
		}
	}
	if len(same) == 0 || ep.Host == "" || !a.sourceIsHosting(ctx, ep) {
		return nil
	}
	return same
}

// rowError adds a reason to the line or the field a row came from.
func rowError(bad *apiError, row planned, sub string, reason i18n.Message) {
	if n, ok := strings.CutPrefix(row.field, "line "); ok {
		line, _ := strconv.Atoi(n)
		bad.Lines = append(bad.Lines, lineError{line, reason})
		return
	}
	bad.Fields = append(bad.Fields, fieldError{row.field + sub, reason})
}

// startable checks every login of the rows before anything is created:
// a hosting password that fails refuses the whole submission (it would
// fail every copy), while a row whose old login fails is left out and
// returned with its diagnosis, so that a mailbox is created only for a
// login that works and the other rows can start.
func (a *API) startable(ctx context.Context, tenant int64, ep imapconn.Endpoint, rows []planned) ([]planned, []checkResult, error) {
	if err := a.allowChecks(ctx, tenant, len(rows)); err != nil {
		return nil, nil, err
	}
	results := a.checkRows(ctx, tenant, ep, rows, true)
	var hostingFailed, sourceFailed []checkResult
	var ok []planned
	for i, c := range results {
		switch {
		case c.Hosting != nil:
			hostingFailed = append(hostingFailed, c)
		case c.Source != nil:
			sourceFailed = append(sourceFailed, c)
		default:
			ok = append(ok, rows[i])
		}
	}
	if len(hostingFailed) > 0 {
		ae := failWith(http.StatusBadRequest, "hosting_login", "start.hostinglogin")
		ae.Checks = hostingFailed
		return nil, nil, ae
	}
	if len(ok) == 0 {
		ae := failWith(http.StatusBadRequest, "source_login", "start.nonestarted")
		ae.Checks = sourceFailed
		return nil, nil, ae
	}
	return ok, sourceFailed, nil
}

// maxUpload is the largest New Mailbox file accepted: thousands of lines.
const maxUpload = 1 << 20

// uploadedList is the New Mailbox file of a form, or why it was refused.
type uploadedList struct {
	text    string
	problem i18n.Message // customer-facing
}

// readNewMailboxForm parses the domain form, an ordinary or a multipart
// one, and reads its New Mailbox file, bounded to maxUpload.
func readNewMailboxForm(w http.ResponseWriter, r *http.Request) (uploadedList, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+64<<10)
	err := r.ParseMultipartForm(maxUpload + 64<<10)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return uploadedList{problem: catalog.M("new.file.big", i18n.Size(maxUpload))}, r.ParseForm()
	case err != nil && !errors.Is(err, http.ErrNotMultipart):
		return uploadedList{}, badRequest("invalid.form")
	}
	file, hdr, err := r.FormFile("new_mailboxes_file")
	if err != nil {
		return uploadedList{}, nil // no file chosen
	}
	defer file.Close()
	if hdr.Size > maxUpload {
		return uploadedList{problem: catalog.M("new.file.big", i18n.Size(maxUpload))}, nil
	}
	data, err := io.ReadAll(io.LimitReader(file, maxUpload))
	if err != nil {
		return uploadedList{}, fmt.Errorf("read uploaded list: %w", err)
	}
	if !utf8.Valid(data) {
		return uploadedList{problem: catalog.M("new.file.text")}, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return uploadedList{}, nil
	}
	if strings.TrimSpace(r.PostFormValue("new_mailboxes")) != "" {
		return uploadedList{problem: catalog.M("new.file.both")}, nil
	}
	return uploadedList{text: string(data)}, nil
}

// notStartedForm keeps, of a submitted form, only the rows whose old login
// failed, so that the customer corrects them and starts them alone.
func notStartedForm(f toolForm, notStarted []checkResult) toolForm {
	selected := map[string]bool{}
	var lines []string
	for _, c := range notStarted {
		if strings.HasPrefix(c.Row, "line ") {
			lines = append(lines, c.SourceUser+" ")
		} else {
			selected[c.Mailbox] = true
		}
	}
	f.Selected, f.Lines = selected, strings.Join(lines, "\n")
	return f
}

// checkPlan is what a check learned of an existing mailbox's copy: the
// old mailbox's size against the free space here, and where each old
// folder goes.
type checkPlan struct {
	Messages int `json:"messages"`
	// SizeBytes is the old mailbox's size, when the old server tells it.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// FreeBytes is the free space of the mailbox here; absent when it
	// has no limit (Unlimited) or the hosting does not tell.
	FreeBytes      *int64       `json:"free_bytes,omitempty"`
	Unlimited      bool         `json:"unlimited,omitempty"`
	ShortfallBytes int64        `json:"shortfall_bytes,omitempty"`
	Warning        i18n.Message `json:"warning,omitzero"`
	Folders        []planFolder `json:"folders"`
	// Failure is why the folders could not be read although both logins
	// worked (too many folders, the connection dropped).
	Failure *engine.Failure `json:"failure,omitempty"`
}

// planFolder is one old folder and the folder here it is copied into.
type planFolder struct {
	Source   string       `json:"source"`
	Dest     string       `json:"destination"`
	Messages int          `json:"messages"`
	Note     i18n.Message `json:"note,omitzero"`
}

// addPlans adds, to every existing mailbox whose logins worked, the plan
// of its copy, four at a time as the logins. New mailboxes do not exist
// yet, so there is nothing here to measure them against.
func (a *API) addPlans(ctx context.Context, ep imapconn.Endpoint, rows []planned, results []checkResult) {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, row := range rows {
		if !results[i].OK || row.kind != store.TaskSync || ep.Host == "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i].Plan = a.plan(ctx, ep, row)
		})
	}
	wg.Wait()
}

// plan runs the engine's pre-flight of one row's copy.
func (a *API) plan(ctx context.Context, ep imapconn.Endpoint, row planned) *checkPlan {
	acct := engine.Account{Source: ep, SourceUser: row.sourceUser, SourcePassword: row.sourcePass,
		Dest: a.cfg.Hosting.IMAP, DestUser: row.mailbox, DestPassword: row.hostPass}
	if row.signIn != nil {
		acct.SourceToken = row.signIn.checkToken
	}
	if h := a.cfg.Hosting; h.MasterUser != "" {
		acct.DestUser, acct.DestPassword = row.mailbox+"*"+h.MasterUser, h.MasterPassword
	}
	rep, _ := a.inspect(ctx, acct, engine.Options{Conn: a.cfg.Engine.Conn, MaxFolders: a.cfg.Engine.MaxFolders})
	p := &checkPlan{Messages: rep.Totals.SourceMessages, Failure: rep.Failure, Folders: []planFolder{}}
	for _, f := range rep.Folders {
		p.Folders = append(p.Folders, planFolder{Source: f.Source, Dest: f.Dest, Messages: f.SourceMessages, Note: f.Note})
	}
	if sp := rep.Space; sp != nil {
		free := max(0, sp.Limit-sp.Used)
		p.SizeBytes, p.FreeBytes, p.ShortfallBytes = sp.ToCopy, &free, sp.Shortfall
		if sp.Shortfall > 0 {
			p.Warning = catalog.M("check.space.short", i18n.Size(sp.ToCopy), i18n.Size(free), i18n.Size(sp.Shortfall))
		}
	} else {
		p.SizeBytes = rep.SourceBytes
		if mb, err := a.cfg.Hosting.Driver.Quota(ctx, row.mailbox); err == nil && mb.QuotaBytes == 0 {
			p.Unlimited = true
		}
	}
	return p
}

// Free is the free space for the page; the page shows it only when
// FreeBytes is set.
func (p *checkPlan) Free() int64 {
	if p.FreeBytes == nil {
		return 0
	}
	return *p.FreeBytes
}
