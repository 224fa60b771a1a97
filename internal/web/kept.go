package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mailmigrate/internal/bulk"
	"mailmigrate/internal/store"
)

// keepChecked is how long the passwords of logins a check found working
// stay usable for Start: long enough to read the check's results and
// raise a quota, short enough that a forgotten page holds nothing.
const keepChecked = 15 * time.Minute

// keptLogins is what a check found working, so that Start does not ask
// for the same passwords again. It lives sealed in the database, bound to
// the sign-in session; the page holds only a random handle to it.
type keptLogins struct {
	// Source is the old server the logins were checked on; they are used
	// only for a start from that same server.
	Source string `json:"source"`
	// Sync is by mailbox here (lower case).
	Sync map[string]keptSync `json:"sync,omitempty"`
	// Lines is by old login (lower case).
	Lines map[string]keptLine `json:"lines,omitempty"`
	// Form is the domain form as it was when the customer left it to sign
	// in with a provider, to fill it in again on the way back.
	Form *keptForm `json:"form,omitempty"`
}

type keptSync struct {
	SourceUser      string `json:"su"`
	SourcePassword  string `json:"sp"`
	HostingPassword string `json:"hp,omitempty"`
	// SignIn is the old login's sign-in with its provider, instead of
	// SourcePassword.
	SignIn *providerSignIn `json:"si,omitempty"`
}

// keptForm is what the domain form showed, without passwords.
type keptForm struct {
	Host, Port, Security, Trust string
	Selected                    []string
	SourceUsers                 map[string]string
	Lines                       string
	GmailOnce                   bool
	// Line is the pasted line (its old login) the customer left the form
	// to sign in, if not an existing mailbox.
	Line string `json:",omitempty"`
}

// toolForm is the form again.
func (k *keptForm) toolForm() toolForm {
	f := toolForm{Host: k.Host, Port: k.Port, Security: k.Security, Trust: k.Trust, Lines: k.Lines, GmailOnce: k.GmailOnce,
		Selected: map[string]bool{}, SourceUsers: k.SourceUsers}
	for _, mb := range k.Selected {
		f.Selected[mb] = true
	}
	if f.SourceUsers == nil {
		f.SourceUsers = map[string]string{}
	}
	return f
}

type keptLine struct {
	SourcePassword string `json:"sp"`
	NewPassword    string `json:"np"`
	// SignIn is the old login's sign-in with its provider: the old mailbox
	// is read with it, while the passwords still give the new mailbox's.
	SignIn *providerSignIn `json:"si,omitempty"`
}

// sourceKey names the old server a submission reads from.
func sourceKey(in *migrationIn) string {
	return strings.ToLower(strings.TrimSpace(in.Source.Host)) + "|" + strconv.Itoa(in.Source.Port) + "|" +
		in.Source.Security + "|" + in.Source.TrustFingerprint
}

// keptFrom collects the passwords of the rows whose check passed, and of
// the pasted lines whose old login failed but can sign in with its
// provider (canSignIn): signed in, the line's password is still the new
// mailbox's, and the page no longer holds it.
func keptFrom(in *migrationIn, rows []planned, results []checkResult, canSignIn func(login string) bool) *keptLogins {
	k := &keptLogins{Source: sourceKey(in), Sync: map[string]keptSync{}, Lines: map[string]keptLine{}}
	for i, row := range rows {
		switch {
		case row.kind == store.TaskSync:
			if results[i].OK {
				k.Sync[strings.ToLower(row.mailbox)] = keptSync{row.sourceUser, row.sourcePass, row.hostPass, row.signIn}
			}
		case results[i].OK:
			k.Lines[strings.ToLower(row.sourceUser)] = keptLine{row.sourcePass, row.hostPass, row.signIn}
		case canSignIn(row.sourceUser):
			// A sign-in that failed is not kept: the button signs in anew.
			k.Lines[strings.ToLower(row.sourceUser)] = keptLine{SourcePassword: row.sourcePass, NewPassword: row.hostPass}
		}
	}
	if len(k.Sync) == 0 && len(k.Lines) == 0 {
		return nil
	}
	return k
}

// fill completes a submission from kept logins: an empty password of a
// checked existing mailbox (with the same old login), and a pasted line
// that holds only a checked old login. What the customer typed wins, but
// for a pasted line's sign-in: the line's passwords are the new mailbox's
// either way, and the sign-in reads the old one.
func (k *keptLogins) fill(in *migrationIn) {
	if k == nil || sourceKey(in) != k.Source {
		return
	}
	for i := range in.Sync {
		s := &in.Sync[i]
		kept, ok := k.Sync[strings.ToLower(strings.TrimSpace(s.Mailbox))]
		if !ok || !strings.EqualFold(strings.TrimSpace(s.SourceUser), kept.SourceUser) {
			continue
		}
		if s.SourcePassword == "" {
			s.SourcePassword = kept.SourcePassword
		}
		if s.SourcePassword == "" && kept.SignIn != nil {
			if in.signIns == nil {
				in.signIns = map[string]*providerSignIn{}
			}
			in.signIns[strings.ToLower(strings.TrimSpace(s.Mailbox))] = kept.SignIn
		}
		if s.HostingPassword == "" {
			s.HostingPassword = kept.HostingPassword
		}
	}
	for login, kept := range k.Lines {
		if kept.SignIn != nil {
			if in.lineSignIns == nil {
				in.lineSignIns = map[string]*providerSignIn{}
			}
			in.lineSignIns[login] = kept.SignIn
		}
	}
	lines := strings.Split(in.NewMailboxes, "\n")
	if len(lines) > 0 && isCSVHeader(lines[0]) {
		return
	}
	for i, line := range lines {
		parts := strings.Fields(line)
		if len(parts) != 1 {
			continue
		}
		kept, ok := k.Lines[strings.ToLower(parts[0])]
		// Tabs separate the parts, so that a password with spaces stays one.
		if ok && !strings.ContainsAny(kept.SourcePassword+kept.NewPassword, "\t\r\n") {
			lines[i] = parts[0] + "\t" + kept.SourcePassword + "\t" + kept.NewPassword
		}
	}
	in.NewMailboxes = strings.Join(lines, "\n")
}

// signedIn keeps a sign-in of the pending one's old login: an existing
// mailbox's, instead of its password (the hosting password typed stays),
// or a pasted line's, whose passwords stay.
func (k *keptLogins) signedIn(pending signInPending, s *providerSignIn) {
	if line := strings.ToLower(pending.Line); line != "" {
		if k.Lines == nil {
			k.Lines = map[string]keptLine{}
		}
		kl := k.Lines[line]
		kl.SignIn = s
		k.Lines[line] = kl
		return
	}
	if k.Sync == nil {
		k.Sync = map[string]keptSync{}
	}
	ks := k.Sync[strings.ToLower(pending.Mailbox)]
	ks.SourceUser, ks.SourcePassword, ks.SignIn = pending.SourceUser, "", s
	k.Sync[strings.ToLower(pending.Mailbox)] = ks
}

func isCSVHeader(line string) bool {
	return strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(line), " ", ""), bulk.CSVHeader)
}

// keptRef is a handle to kept logins as the page carries it.
type keptRef struct {
	Handle string
	logins *keptLogins
}

func keptContext(handleHash, sessionHash []byte) string {
	return "kept-logins:" + hex.EncodeToString(handleHash) + ":" + hex.EncodeToString(sessionHash)
}

// keep stores logins for this session and returns the page's handle.
func (p *Panel) keep(ctx context.Context, v viewer, k *keptLogins) (keptRef, error) {
	raw := make([]byte, 18)
	rand.Read(raw)
	handle := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(handle))
	plain, err := json.Marshal(k)
	if err != nil {
		return keptRef{}, err
	}
	sealed := p.api.cfg.Box.Seal(string(plain), keptContext(h[:], v.Session))
	if err := p.api.cfg.Store.KeepLogins(ctx, h[:], v.Session, sealed, time.Now().Add(keepChecked)); err != nil {
		return keptRef{}, err
	}
	return keptRef{Handle: handle, logins: k}, nil
}

// kept returns the logins behind a page's handle; none when the handle is
// empty, expired or another session's.
func (p *Panel) kept(ctx context.Context, v viewer, handle string) (keptRef, error) {
	if handle == "" {
		return keptRef{}, nil
	}
	h := sha256.Sum256([]byte(handle))
	sealed, err := p.api.cfg.Store.KeptLogins(ctx, h[:], v.Session)
	if errors.Is(err, store.ErrNotFound) {
		return keptRef{}, nil
	}
	if err != nil {
		return keptRef{}, fmt.Errorf("read checked logins: %w", err)
	}
	plain, err := p.api.cfg.Box.Open(sealed, keptContext(h[:], v.Session))
	if err != nil {
		return keptRef{}, fmt.Errorf("open checked logins: %w", err)
	}
	var k keptLogins
	if err := json.Unmarshal([]byte(plain), &k); err != nil {
		return keptRef{}, fmt.Errorf("read checked logins: %w", err)
	}
	return keptRef{Handle: handle, logins: &k}, nil
}

// drop forgets kept logins once they are used or replaced.
func (p *Panel) drop(ctx context.Context, ref keptRef) error {
	if ref.Handle == "" {
		return nil
	}
	h := sha256.Sum256([]byte(ref.Handle))
	return p.api.cfg.Store.DropKeptLogins(ctx, h[:])
}

// HostKept and SourceKept tell the page which existing mailboxes'
// passwords are kept: the hosting's, the old login's.
func (r keptRef) HostKept(mailbox string) bool { return r.sync(mailbox).HostingPassword != "" }

func (r keptRef) SourceKept(mailbox string) bool { return r.sync(mailbox).SourcePassword != "" }

func (r keptRef) sync(mailbox string) keptSync {
	if r.logins == nil {
		return keptSync{}
	}
	return r.logins.Sync[strings.ToLower(mailbox)]
}

// SignedIn is the provider an existing mailbox's old login is signed in
// to with, "" when none.
func (r keptRef) SignedIn(mailbox string) string {
	if s := r.sync(mailbox).SignIn; s != nil {
		return s.Provider
	}
	return ""
}

// LineSignedIn is the provider a pasted line's old login is signed in to
// with, "" when none.
func (r keptRef) LineSignedIn(login string) string {
	if r.logins == nil {
		return ""
	}
	if s := r.logins.Lines[strings.ToLower(strings.TrimSpace(login))].SignIn; s != nil {
		return s.Provider
	}
	return ""
}

// signedLine is a pasted line signed in to with its provider.
type signedLine struct{ Login, Provider string }

// SignedLines are the lines of the text box (the form's, without
// passwords) whose old login is signed in to with its provider.
func (r keptRef) SignedLines(lines string) []signedLine {
	var out []signedLine
	for _, line := range strings.Split(lines, "\n") {
		login := strings.TrimSpace(line)
		if prov := r.LineSignedIn(login); login != "" && prov != "" {
			out = append(out, signedLine{login, prov})
		}
	}
	return out
}

// LinesKept tells the page whether any pasted line's passwords are kept.
func (r keptRef) LinesKept() bool { return r.logins != nil && len(r.logins.Lines) > 0 }
