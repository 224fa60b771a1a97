package hosting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// CommandConfig configures a Command driver.
type CommandConfig struct {
	// List, Create and Quota are the paths of the executables that
	// implement each operation (one program may serve all three; it can
	// tell them apart by $MAILMIGRATE_HOSTING_OP).
	List, Create, Quota string
	// Password, SetQuota and Aliases are optional executables for
	// managing mailboxes after a migration (MAILMIGRATE_HOSTING_OP
	// password, set_quota, and list_aliases, add_alias or remove_alias).
	// An operation without one is not offered.
	Password, SetQuota, Aliases string
	// Timeout bounds each call; 0 means 30 s. A command still running
	// then is killed together with its process group.
	Timeout time.Duration
}

// DefaultCommandTimeout is the Timeout a zero CommandConfig.Timeout means.
const DefaultCommandTimeout = 30 * time.Second

// Command is a Driver that runs operator-supplied executables, for
// hostings whose mailboxes live in a control panel, an LDAP directory or
// anything else this package does not speak.
//
// The contract (also in COMMAND.md):
//
// Each call starts the configured executable with no arguments, its
// working directory and environment inherited from this process plus
// MAILMIGRATE_HOSTING_OP=list|create|quota. The request is one JSON object
// on stdin, followed by EOF:
//
//	list:   {"domain":"firma.cz"}
//	create: {"address":"jana@firma.cz","password":"…","quota_bytes":0}
//	quota:  {"address":"jana@firma.cz"}
//
// The optional commands Password, SetQuota and Aliases get
// MAILMIGRATE_HOSTING_OP=password|set_quota|list_aliases|add_alias|
// remove_alias and requests in the same style (see COMMAND.md).
//
// Addresses and domains arrive validated, domains lower-cased.
// quota_bytes 0 asks for the hosting's default quota. The password travels
// only on stdin, never in arguments or the environment.
//
// On success the command exits 0 and writes one JSON object to stdout:
//
//	list:   {"mailboxes":[{"address":"jana@firma.cz","quota_bytes":1073741824,"used_bytes":5242880}]}
//	create: {}   (empty output is accepted too)
//	quota:  {"address":"jana@firma.cz","quota_bytes":1073741824,"used_bytes":5242880}
//
// quota_bytes 0 means unlimited; used_bytes may be omitted or -1 when
// unknown. Unknown fields are ignored. On failure it exits non-zero and
// writes {"error":"<code>","message":"<text>"} to stdout, where code
// "exists" (create: the mailbox exists) becomes ErrExists, "not_found"
// (quota: no such mailbox) becomes ErrNotFound, and any other code a
// plain error carrying the message. Up to 4 KiB of stderr is kept for the
// error; the password is removed from everything quoted (which is a safety
// net: a command should never print it).
type Command struct {
	cfg CommandConfig
}

var (
	_ Driver         = (*Command)(nil)
	_ PasswordSetter = (*Command)(nil)
	_ QuotaSetter    = (*Command)(nil)
	_ AliasManager   = (*Command)(nil)
)

// Limits on what a command may write: stdout must hold a whole domain's
// list, stderr is only quoted in errors.
const (
	maxCommandStdout = 64 << 20
	maxCommandStderr = 4 << 10
)

// NewCommand checks that the executables exist and returns the driver.
func NewCommand(cfg CommandConfig) (*Command, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("command driver: negative Timeout %v", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultCommandTimeout
	}
	for _, c := range []struct {
		name, path string
		optional   bool
	}{{"List", cfg.List, false}, {"Create", cfg.Create, false}, {"Quota", cfg.Quota, false},
		{"Password", cfg.Password, true}, {"SetQuota", cfg.SetQuota, true}, {"Aliases", cfg.Aliases, true}} {
		if c.path == "" {
			if c.optional {
				continue
			}
			return nil, fmt.Errorf("command driver: no %s command configured", c.name)
		}
		fi, err := os.Stat(c.path)
		if err != nil {
			return nil, fmt.Errorf("command driver: %s command: %w", c.name, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("command driver: %s command %s is not an executable file (chmod +x it)", c.name, c.path)
		}
	}
	return &Command{cfg: cfg}, nil
}

type commandMailbox struct {
	Address    string `json:"address"`
	QuotaBytes *int64 `json:"quota_bytes"`
	UsedBytes  *int64 `json:"used_bytes"`
}

func (m commandMailbox) toMailbox(what string) (Mailbox, error) {
	if m.Address == "" {
		return Mailbox{}, fmt.Errorf("%s: a mailbox without \"address\"", what)
	}
	if m.QuotaBytes == nil {
		return Mailbox{}, fmt.Errorf("%s: mailbox %q has no \"quota_bytes\"", what, m.Address)
	}
	mb := Mailbox{Address: m.Address, QuotaBytes: *m.QuotaBytes, UsedBytes: -1}
	if m.UsedBytes != nil && *m.UsedBytes >= 0 {
		mb.UsedBytes = *m.UsedBytes
	}
	if mb.QuotaBytes < -1 {
		return Mailbox{}, fmt.Errorf("%s: mailbox %q has quota_bytes %d", what, m.Address, mb.QuotaBytes)
	}
	return mb, nil
}

// List runs the List command for domain.
func (c *Command) List(ctx context.Context, domain string) ([]Mailbox, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Mailboxes *[]commandMailbox `json:"mailboxes"`
	}
	if err := c.run(ctx, "list", c.cfg.List, map[string]any{"domain": d}, "", &resp); err != nil {
		return nil, fmt.Errorf("list mailboxes of %s: %w", d, err)
	}
	if resp.Mailboxes == nil {
		return nil, fmt.Errorf("list mailboxes of %s: command %s answered without \"mailboxes\"", d, c.cfg.List)
	}
	out := make([]Mailbox, 0, len(*resp.Mailboxes))
	for _, m := range *resp.Mailboxes {
		mb, err := m.toMailbox("command " + c.cfg.List)
		if err != nil {
			return nil, fmt.Errorf("list mailboxes of %s: %w", d, err)
		}
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b Mailbox) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// Create runs the Create command. The mailbox is expected to be usable
// over IMAP when the command exits 0.
func (c *Command) Create(ctx context.Context, address, password string, quotaBytes int64) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	if err := checkQuota(quotaBytes); err != nil {
		return err
	}
	req := map[string]any{"address": addr, "password": password, "quota_bytes": quotaBytes}
	if err := c.run(ctx, "create", c.cfg.Create, req, password, nil); err != nil {
		return fmt.Errorf("create mailbox %s: %w", addr, err)
	}
	return nil
}

// Quota runs the Quota command.
func (c *Command) Quota(ctx context.Context, address string) (Mailbox, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Mailbox{}, err
	}
	var resp commandMailbox
	if err := c.run(ctx, "quota", c.cfg.Quota, map[string]any{"address": addr}, "", &resp); err != nil {
		return Mailbox{}, fmt.Errorf("quota of %s: %w", addr, err)
	}
	if resp.Address == "" {
		resp.Address = addr
	}
	mb, err := resp.toMailbox("command " + c.cfg.Quota)
	if err != nil {
		return Mailbox{}, fmt.Errorf("quota of %s: %w", addr, err)
	}
	return mb, nil
}

// commandError is the failure object a command writes to stdout.
type commandError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// run executes one command. secret (the password, or "") is removed from
// everything the error quotes. resp nil means any JSON object (or nothing)
// is a success.
func (c *Command) run(ctx context.Context, op, path string, req any, secret string, resp any) error {
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	// HTML escaping would turn '<' in a password into \u003c; the command
	// must see the password as typed.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	red := newRedactor(secret)

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), "MAILMIGRATE_HOSTING_OP="+op)
	cmd.Stdin = &in
	stdout := &limitedBuffer{max: maxCommandStdout}
	// Keep more than will be quoted, so the password can be cut out even
	// where it straddles the 4 KiB boundary.
	stderr := &limitedBuffer{max: maxCommandStderr + 2*len(red.forms[0]) + 64}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	setProcessGroup(cmd)
	// If the command's children keep stdout open after it was killed, do
	// not wait for them forever.
	cmd.WaitDelay = 2 * time.Second

	runErr := cmd.Run()
	errText := ""
	if t := red.clean(stderr.Bytes(), maxCommandStderr, stderr.truncated); t != "" {
		errText = "; stderr: " + t
	}

	if ctx.Err() != nil && runErr != nil {
		// Our own timeout, not the caller's deadline or cancellation.
		if parent.Err() == nil {
			return fmt.Errorf("command %s did not finish within %v and was killed; make it faster or raise the timeout%s", path, c.cfg.Timeout, errText)
		}
		return fmt.Errorf("command %s: %w", path, ctx.Err())
	}
	if stdout.truncated {
		return fmt.Errorf("command %s wrote more than %d MiB to stdout%s", path, maxCommandStdout>>20, errText)
	}
	out := bytes.TrimSpace(stdout.Bytes())

	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return fmt.Errorf("run command %s: %w", path, runErr)
	}
	var ce commandError
	// A failure object is honoured even with exit status 0.
	if len(out) > 0 && json.Unmarshal(out, &ce) == nil && ce.Code != "" {
		msg := ""
		if m := red.clean([]byte(ce.Message), maxCommandStderr, false); m != "" {
			msg = ": " + m
		}
		switch ce.Code {
		case "exists":
			return fmt.Errorf("%w (command %s%s)", ErrExists, path, msg)
		case "not_found":
			return fmt.Errorf("%w (command %s%s)", ErrNotFound, path, msg)
		case "invalid":
			// The hosting refused the value; its message is for the
			// customer who typed it.
			if m := red.clean([]byte(ce.Message), 500, false); m != "" {
				return invalidAsIs(m)
			}
			return invalid("refused")
		}
		return fmt.Errorf("command %s failed with %q%s%s", path, red.clean([]byte(ce.Code), 100, false), msg, errText)
	}
	if ee != nil {
		return fmt.Errorf("command %s failed (%v) without an error object on stdout%s", path, ee.ProcessState, errText)
	}
	if resp == nil {
		if len(out) > 0 && !json.Valid(out) {
			return fmt.Errorf("command %s answered with invalid JSON%s", path, errText)
		}
		return nil
	}
	if len(out) == 0 {
		return fmt.Errorf("command %s exited 0 but wrote nothing to stdout%s", path, errText)
	}
	if err := json.Unmarshal(out, resp); err != nil {
		// The decoder's message names a type or offset, never the data.
		return fmt.Errorf("command %s answered with unusable JSON: %v%s", path, err, errText)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written and discards the rest,
// still reporting success so the command is not killed by EPIPE.
//
// The buffer is a field, not embedded: an embedded bytes.Buffer would
// promote ReadFrom, and io.Copy would use it and bypass the limit.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }

// redactor removes a secret from text quoted in errors, both as typed and
// as it appears inside a JSON string (a command that echoes its request).
type redactor struct {
	forms []string // longest first; forms[0] is "" when there is no secret
}

const redacted = "[password removed]"

func newRedactor(secret string) redactor {
	if secret == "" {
		return redactor{forms: []string{""}}
	}
	enc, _ := json.Marshal(secret)
	forms := []string{secret}
	if js := string(enc[1 : len(enc)-1]); js != secret {
		forms = append(forms, js)
	}
	// Go escapes '<', '>' and '&' unless told not to; a command written in
	// Go may well echo that form.
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(secret)
	if js := strings.TrimSuffix(b.String(), "\n"); len(js) >= 2 && !slices.Contains(forms, js[1:len(js)-1]) {
		forms = append(forms, js[1:len(js)-1])
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return redactor{forms: forms}
}

// clean returns text for an error message: the secret replaced, cut to
// max bytes, valid UTF-8, trimmed. truncated says the text was already cut
// short by the capture.
func (r redactor) clean(text []byte, max int, truncated bool) string {
	s := string(text)
	for _, f := range r.forms {
		if f != "" {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	// Output cut short inside the secret leaves a prefix of it at the end.
	if truncated {
		s = r.trimSecretPrefix(s)
	}
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = strings.TrimSpace(r.trimSecretPrefix(s[:max]))
		truncated = true
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if s != "" && truncated {
		s += " …(truncated)"
	}
	return s
}

// trimSecretPrefix cuts a trailing piece of s that could be the start of
// the secret.
func (r redactor) trimSecretPrefix(s string) string {
	for _, f := range r.forms {
		for k := min(len(f)-1, len(s)); k > 0; k-- {
			if strings.HasSuffix(s, f[:k]) {
				return s[:len(s)-k]
			}
		}
	}
	return s
}
