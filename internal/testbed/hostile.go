package testbed

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
)

// HostileConfig describes the account a hostile IMAP server serves and the
// ways it misbehaves. With no misbehaviour set it is a plain, correct
// IMAP4rev1 server, so that a migration from it succeeds; each field below
// Folders turns on one fault seen on real old servers.
type HostileConfig struct {
	// User and Password are the only login accepted (LOGIN and
	// AUTHENTICATE PLAIN).
	User, Password string
	// Folders is the account, in LIST order.
	Folders []HostileFolder

	// StatusOmit lists STATUS items ("MESSAGES", "UIDNEXT", "UIDVALIDITY")
	// that every STATUS reply leaves out even when they are asked for.
	StatusOmit []string
	// StatusUnquoted writes the mailbox name of STATUS replies bare, spaces
	// and all, as GNU Mailutils does: `* STATUS Archiv 2019 (MESSAGES 3)`.
	StatusUnquoted bool
	// LongLineOn names a command ("LIST", "UID FETCH", "STATUS", ...) whose
	// reply starts with an untagged line of LongLineSize bytes that never
	// ends: after it the server falls silent until the client hangs up.
	LongLineOn string
	// LongLineSize is the length of that line; 64 MiB when 0.
	LongLineSize int64
	// GarbageOn names a command whose every reply starts with GarbageLine.
	GarbageOn string
	// GarbageLine is an untagged line no IMAP parser accepts; "* 1 FETCH
	// (UID)" when empty.
	GarbageLine string
	// ExtraFolders adds that many empty folders, "Folder 000001" and on,
	// after Folders. They are made up when asked for, never stored, so
	// that a LIST of 100,000 folders costs the server nothing.
	ExtraFolders int

	// As a migration's destination, the server takes CREATE, SUBSCRIBE
	// and APPEND, and stores what is appended in memory. Caps adds to the
	// capability list: "MULTIAPPEND" (several messages per APPEND, all or
	// none), "LITERAL+" and "UIDPLUS" (APPENDUID in the tagged OK).
	Caps []string
	// AppendFaults make APPENDs fail, each when a message of the command
	// contains its Match; the first that applies wins.
	AppendFaults []AppendFault
	// CreateRefused are folder names whose CREATE is answered with this
	// NO, as Microsoft 365 refuses reserved names ("Files").
	CreateRefused map[string]string
	// Answers gives a command (upper case, "GETQUOTAROOT") this tagged
	// reply once logged in, instead of running it: "NO Internal quota
	// calculation error", as Dovecot answers when it cannot count a
	// mailbox that is being set up.
	Answers map[string]string
	// CapabilityGate, when set, holds the answer to every CAPABILITY after
	// login until it is closed: a slow server, as slow as a test needs.
	CapabilityGate <-chan struct{}

	// CheckToken, when set, makes AUTHENTICATE XOAUTH2 and OAUTHBEARER
	// accept User with an access token it approves (list "AUTH=XOAUTH2"
	// or "AUTH=OAUTHBEARER" in Caps to offer them). The token is checked
	// again before every later command of the session: once it fails, the
	// server ends the session with "* BYE Session invalidated -
	// AccessTokenExpired", as Microsoft 365 does when a token expires.
	CheckToken func(user, token string) bool
	// intercept, when set (by servers built on this one, such as the
	// Exchange-like server), sees every command first and may answer it
	// itself: handled says it did; an error ends the session as run's do.
	intercept func(s *hostileSession, tag, name string, args []arg) (handled bool, err error)
	// fetchExt answers FETCH items a server built on this one adds (the
	// Gmail server's X-GM-*), by upper-case name.
	fetchExt map[string]func(f *HostileFolder, m *HostileMessage) string
}

// AppendFault is one way an APPEND fails.
type AppendFault struct {
	Match []byte
	// Times is how often the fault fires; 0 means every time.
	Times int
	// Reply answers the command instead of OK, storing nothing: "NO
	// [OVERQUOTA] Quota exceeded", "NO [TOOBIG] Message too large".
	Reply string
	// Cut closes the connection as soon as the message has arrived,
	// before the rest of the command: nothing is stored.
	Cut bool
	// LoseAnswer stores the command's messages, then closes the
	// connection without answering.
	LoseAnswer bool
	// NoAppendUID stores them and answers OK without APPENDUID.
	NoAppendUID bool
}

// HostileFolder is one folder of a hostile server's account.
type HostileFolder struct {
	Name        string // UTF-8; "/" separates levels
	UIDValidity uint32 // 1 when 0
	// NewUIDValidity, when set, replaces UIDValidity from the second
	// EXAMINE or SELECT of the folder on (counted over all sessions), in
	// STATUS replies too, as if the folder had been deleted and recreated
	// during the copy. The messages keep their UIDs.
	NewUIDValidity uint32
	SpecialUse     string // `\Sent`, `\Trash`, ... or ""
	Subscribed     bool
	Messages       []HostileMessage
}

// HostileMessage is one message of a hostile server's folder.
type HostileMessage struct {
	UID          uint32 // unique in its folder, not 0
	Flags        []string
	InternalDate time.Time // a fixed date when zero
	Body         []byte    // RFC822.SIZE always announces len(Body)
	// LiteralSize, when larger than len(Body), is the size of the BODY[]
	// literal actually sent: Body followed by generated filler lines, so a
	// 200 MiB lie costs no memory.
	LiteralSize int64
	// Vanish leaves the message out of every FETCH of its body while
	// FETCHes of its flags, size or header still list it, as when another
	// client expunges it during the copy.
	Vanish bool
	// StallAfter, when positive, makes the server fall silent after that
	// many bytes of the message's BODY[] literal.
	StallAfter int64
}

// Hostile is a running hostile IMAP server.
type Hostile struct {
	Addr string // 127.0.0.1:port
	Port int

	cfg     HostileConfig
	ln      net.Listener
	folders map[string]*HostileFolder // by wire name (modified UTF-7)
	order   []string                  // wire names in LIST order

	sent    atomic.Int64 // bytes written to clients
	expired atomic.Int64 // sessions ended for an expired token

	// data guards the folders' message lists and the folders created.
	data   sync.RWMutex
	faults []int // how often each AppendFault may still fire; <0: always

	mu       sync.Mutex
	commands []string
	writes   []string
	examined map[string]int
	conns    map[net.Conn]bool
	opened   int
	wg       sync.WaitGroup
}

// hostileCaps is the capability list; no CONDSTORE, so no MODSEQ, and no
// LITERAL+ or SASL-IR, so the client takes the synchronising paths.
const hostileCaps = "IMAP4rev1 AUTH=PLAIN NAMESPACE SPECIAL-USE LIST-EXTENDED"

// writeCommands are the commands that change a mailbox; a migration's
// source must never receive one.
var writeCommands = map[string]bool{"STORE": true, "UID STORE": true, "APPEND": true,
	"EXPUNGE": true, "UID EXPUNGE": true, "COPY": true, "UID COPY": true, "MOVE": true,
	"UID MOVE": true, "CREATE": true, "DELETE": true, "RENAME": true, "SUBSCRIBE": true,
	"UNSUBSCRIBE": true, "SETACL": true, "DELETEACL": true, "SETMETADATA": true, "SETQUOTA": true}

// StartHostile serves cfg's account on a loopback port without TLS until the
// test ends.
func StartHostile(t testing.TB, cfg HostileConfig) *Hostile {
	t.Helper()
	h := &Hostile{cfg: cfg, folders: map[string]*HostileFolder{}, examined: map[string]int{},
		conns: map[net.Conn]bool{}}
	if h.cfg.LongLineSize <= 0 {
		h.cfg.LongLineSize = 64 << 20
	}
	if h.cfg.GarbageLine == "" {
		h.cfg.GarbageLine = "* 1 FETCH (UID)"
	}
	for i := range cfg.Folders {
		f := cfg.Folders[i]
		if f.UIDValidity == 0 {
			f.UIDValidity = 1
		}
		// A copy, sorted: sequence numbers follow UID order.
		f.Messages = slices.Clone(f.Messages)
		slices.SortFunc(f.Messages, func(a, b HostileMessage) int { return int(a.UID) - int(b.UID) })
		for j, m := range f.Messages {
			if m.UID == 0 || (j > 0 && f.Messages[j-1].UID == m.UID) {
				t.Fatalf("hostile server: folder %q: UID %d is zero or repeated", f.Name, m.UID)
			}
		}
		name := wireName(f.Name)
		if h.folders[name] != nil {
			t.Fatalf("hostile server: folder %q given twice", f.Name)
		}
		h.folders[name] = &f
		h.order = append(h.order, name)
	}
	for _, f := range cfg.AppendFaults {
		h.faults = append(h.faults, cmp.Or(f.Times, -1))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ln, h.Addr, h.Port = ln, ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
	h.wg.Go(h.accept)
	t.Cleanup(h.close)
	return h
}

// Commands returns every command received so far, without its tag, in
// order; LOGIN arguments and AUTHENTICATE responses are left out.
func (h *Hostile) Commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.commands)
}

// Writes returns the commands received that would change the mailbox
// (STORE, APPEND, EXPUNGE, COPY, MOVE, CREATE, ... and a FETCH of BODY[]
// or RFC822 without PEEK, which sets \Seen). A migration source must see none.
func (h *Hostile) Writes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.writes)
}

// Messages returns what a folder holds now: as a destination, what was
// appended to it.
func (h *Hostile) Messages(folder string) []HostileMessage {
	f := h.folder(wireName(folder))
	if f == nil {
		return nil
	}
	return slices.Clone(h.messages(f))
}

// TokenExpiries returns how many sessions the server ended because their
// access token no longer passed CheckToken.
func (h *Hostile) TokenExpiries() int { return int(h.expired.Load()) }

// BytesSent returns how many bytes the server has written to its clients;
// with a lying literal or an endless line it shows how much of it a client
// read (give or take the socket buffers).
func (h *Hostile) BytesSent() int64 { return h.sent.Load() }

// Open returns how many client connections are open now.
func (h *Hostile) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Opened returns how many client connections were accepted in all.
func (h *Hostile) Opened() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opened
}

func (h *Hostile) close() {
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *Hostile) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns[c] = true
		h.opened++
		h.mu.Unlock()
		h.wg.Go(func() {
			s := &hostileSession{h: h, conn: c, r: bufio.NewReader(c),
				w: bufio.NewWriterSize(countingWriter{c, &h.sent}, 64<<10)}
			s.serve()
			c.Close()
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
		})
	}
}

func (h *Hostile) record(name, line string, write bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands = append(h.commands, line)
	if write || writeCommands[name] {
		h.writes = append(h.writes, line)
	}
}

// folder finds a folder by wire name, making up the generated ones.
func (h *Hostile) folder(name string) *HostileFolder {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	h.data.RLock()
	f := h.folders[name]
	h.data.RUnlock()
	if f != nil {
		return f
	}
	if n, ok := strings.CutPrefix(name, "Folder "); ok && len(n) == 6 {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 && i <= h.cfg.ExtraFolders {
			return &HostileFolder{Name: name, UIDValidity: 1}
		}
	}
	return nil
}

// uidValidity is the folder's UIDVALIDITY now; an EXAMINE or SELECT counts
// towards its change.
func (h *Hostile) uidValidity(f *HostileFolder, opening bool) uint32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if opening {
		h.examined[f.Name]++
	}
	if f.NewUIDValidity != 0 && h.examined[f.Name] >= 2 {
		return f.NewUIDValidity
	}
	return f.UIDValidity
}

// errSilent ends a session's answers: the server reads and drops whatever
// the client still sends until it hangs up.
var errSilent = errors.New("server falls silent")

// errLogout ends a session after LOGOUT.
var errLogout = errors.New("logged out")

type hostileSession struct {
	h      *Hostile
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	authed bool
	sel    *HostileFolder
	token  string // the access token the session signed in with
}

func (s *hostileSession) serve() {
	s.w.WriteString("* OK hostile IMAP server ready\r\n")
	if s.w.Flush() != nil {
		return
	}
	for {
		tag, args, line, err := s.readCommand()
		if err != nil {
			if errors.Is(err, errSyntax) {
				fmt.Fprintf(s.w, "* BYE %v\r\n", err)
				s.w.Flush()
			}
			return
		}
		err = s.dispatch(tag, args, line)
		if err == nil {
			err = s.w.Flush()
		}
		switch {
		case errors.Is(err, errSilent):
			s.w.Flush()
			io.Copy(io.Discard, s.conn)
			return
		case err != nil:
			s.w.Flush()
			return
		}
	}
}

func (s *hostileSession) dispatch(tag string, args []arg, line string) error {
	if len(args) == 0 || args[0].kind != atomArg {
		fmt.Fprintf(s.w, "%s BAD no command\r\n", tag)
		return nil
	}
	name := strings.ToUpper(args[0].s)
	args = args[1:]
	if name == "UID" && len(args) > 0 {
		name, args = "UID "+strings.ToUpper(args[0].s), args[1:]
	}
	if name == "LOGIN" {
		line = "LOGIN ***"
	}
	if name == "AUTHENTICATE" && len(args) > 1 {
		line = "AUTHENTICATE " + args[0].s + " ***"
	}
	if s.token != "" && !s.h.cfg.CheckToken(s.h.cfg.User, s.token) {
		s.h.record(name, line, false)
		s.h.expired.Add(1)
		s.w.WriteString("* BYE Session invalidated - AccessTokenExpired\r\n")
		return errLogout
	}
	unpeeked := (name == "FETCH" || name == "UID FETCH") && len(args) > 1 && setsSeen(args[1])
	s.h.record(name, line, unpeeked)

	cfg := &s.h.cfg
	if cfg.intercept != nil {
		if handled, err := cfg.intercept(s, tag, name, args); handled {
			return err
		}
	}
	if cfg.GarbageOn != "" && strings.EqualFold(name, cfg.GarbageOn) {
		s.w.WriteString(cfg.GarbageLine + "\r\n")
	}
	if cfg.LongLineOn != "" && strings.EqualFold(name, cfg.LongLineOn) {
		return s.longLine(name)
	}
	ok, err := s.run(name, args)
	var ce commandError
	if errors.As(err, &ce) {
		fmt.Fprintf(s.w, "%s %s\r\n", tag, ce)
		return nil
	}
	if err == nil || errors.Is(err, errLogout) {
		fmt.Fprintf(s.w, "%s OK %s\r\n", tag, ok)
	}
	return err
}

// run executes one command and returns the text of its tagged OK.
func (s *hostileSession) run(name string, args []arg) (ok string, err error) {
	done := name + " completed"
	switch name {
	case "CAPABILITY":
		if s.authed && s.h.cfg.CapabilityGate != nil {
			<-s.h.cfg.CapabilityGate
		}
		s.w.WriteString("* CAPABILITY " + strings.Join(append([]string{hostileCaps}, s.h.cfg.Caps...), " ") + "\r\n")
		return done, nil
	case "NOOP":
		return done, nil
	case "LOGOUT":
		s.w.WriteString("* BYE logging out\r\n")
		return done, errLogout
	case "LOGIN":
		if len(args) != 2 || args[0].kind == listArg || args[1].kind == listArg {
			return "", commandError("BAD LOGIN wants a user name and a password")
		}
		return s.login(args[0].s, args[1].s)
	case "AUTHENTICATE":
		if len(args) == 0 || len(args) > 2 || args[0].kind == listArg {
			return "", commandError("BAD AUTHENTICATE wants a mechanism")
		}
		switch mech := strings.ToUpper(args[0].s); {
		case mech == "PLAIN" && len(args) == 1:
			return s.authenticate()
		case (mech == "XOAUTH2" || mech == "OAUTHBEARER") && s.h.cfg.CheckToken != nil &&
			slices.ContainsFunc(s.h.cfg.Caps, func(c string) bool { return strings.EqualFold(c, "AUTH="+mech) }):
			return s.authenticateToken(mech, args[1:])
		}
		return "", commandError("NO this mechanism is not supported")
	}
	if !s.authed {
		return "", commandError("BAD log in first")
	}
	if reply, ok := s.h.cfg.Answers[name]; ok {
		return "", commandError(reply)
	}
	switch name {
	case "NAMESPACE":
		s.w.WriteString(`* NAMESPACE (("" "/")) NIL NIL` + "\r\n")
		return done, nil
	case "LIST":
		return done, s.list(args, false)
	case "LSUB":
		return done, s.list(args, true)
	case "STATUS":
		return done, s.status(args)
	case "EXAMINE":
		return "[READ-ONLY] " + done, s.open(args)
	case "SELECT":
		return "[READ-WRITE] " + done, s.open(args)
	case "FETCH", "UID FETCH":
		return done, s.fetch(args, name == "UID FETCH")
	case "CREATE":
		return done, s.create(args)
	case "SUBSCRIBE":
		return done, nil
	case "APPEND":
		return s.append(args)
	}
	return "", commandError("BAD " + name + " is not supported by this server")
}

// commandError is a tagged NO or BAD answer.
type commandError string

func (e commandError) Error() string { return string(e) }

func (s *hostileSession) login(user, password string) (string, error) {
	if user != s.h.cfg.User || password != s.h.cfg.Password {
		return "", commandError("NO [AUTHENTICATIONFAILED] Authentication failed.")
	}
	s.authed = true
	return "Logged in", nil
}

func (s *hostileSession) authenticate() (string, error) {
	s.w.WriteString("+ \r\n")
	if err := s.w.Flush(); err != nil {
		return "", err
	}
	resp, err := s.readLine(8 << 10)
	if err != nil {
		return "", err
	}
	if resp == "*" {
		return "", commandError("BAD authentication cancelled")
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		return "", commandError("BAD malformed PLAIN response")
	}
	return s.login(parts[1], parts[2])
}

// authenticateToken takes an XOAUTH2 or OAUTHBEARER response (given on
// the command line with SASL-IR, else asked for). A token CheckToken
// refuses gets the JSON challenge the providers send, then NO.
func (s *hostileSession) authenticateToken(mech string, ir []arg) (string, error) {
	resp := ""
	if len(ir) == 1 {
		resp = ir[0].s
	} else {
		s.w.WriteString("+ \r\n")
		if err := s.w.Flush(); err != nil {
			return "", err
		}
		var err error
		if resp, err = s.readLine(64 << 10); err != nil {
			return "", err
		}
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return "", commandError("BAD malformed " + mech + " response")
	}
	user, token, ok := parseTokenResponse(mech, string(raw))
	if !ok {
		return "", commandError("BAD malformed " + mech + " response")
	}
	if user != s.h.cfg.User || !s.h.cfg.CheckToken(user, token) {
		challenge := `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`
		if mech == "OAUTHBEARER" {
			challenge = `{"status":"invalid_token","schemes":"Bearer","scope":"https://mail.google.com/"}`
		}
		s.w.WriteString("+ " + base64.StdEncoding.EncodeToString([]byte(challenge)) + "\r\n")
		if err := s.w.Flush(); err != nil {
			return "", err
		}
		if _, err := s.readLine(8 << 10); err != nil {
			return "", err
		}
		return "", commandError("NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
	}
	s.authed, s.token = true, token
	return mech + " authentication successful", nil
}

// parseTokenResponse reads the user and the token of an XOAUTH2 response
// ("user=U^Aauth=Bearer T^A^A") or an OAUTHBEARER one ("n,a=U,^Ahost=…^A
// auth=Bearer T^A^A", RFC 7628).
func parseTokenResponse(mech, raw string) (user, token string, ok bool) {
	fields, found := strings.CutSuffix(raw, "\x01\x01")
	if !found {
		return "", "", false
	}
	parts := strings.Split(fields, "\x01")
	if mech == "OAUTHBEARER" {
		gs2 := strings.Split(parts[0], ",")
		if len(gs2) != 3 || gs2[0] != "n" {
			return "", "", false
		}
		user, _ = strings.CutPrefix(gs2[1], "a=")
	} else if user, ok = strings.CutPrefix(parts[0], "user="); !ok {
		return "", "", false
	}
	for _, kv := range parts[1:] {
		if t, isAuth := strings.CutPrefix(kv, "auth=Bearer "); isAuth {
			token = t
		}
	}
	return user, token, token != ""
}

// longLine starts an untagged reply that looks like the command's own
// (so that the client's parser is deep inside it) and never ends it.
func (s *hostileSession) longLine(name string) error {
	switch name {
	case "LIST", "LSUB":
		s.w.WriteString(`* ` + name + ` () "/" `)
	case "FETCH", "UID FETCH":
		s.w.WriteString(`* 1 FETCH (UID 1 FLAGS (`)
	default:
		s.w.WriteString(`* OK `)
	}
	if err := writeRepeated(s.w, atomBlock, s.h.cfg.LongLineSize); err != nil {
		return err
	}
	return errSilent
}

// list answers LIST (with LIST-EXTENDED selection and RETURN options) and
// LSUB.
func (s *hostileSession) list(args []arg, lsub bool) error {
	subscribedOnly, returnSubscribed := lsub, false
	if len(args) > 0 && args[0].kind == listArg {
		for _, o := range args[0].list {
			if strings.EqualFold(o.s, "SUBSCRIBED") {
				subscribedOnly, returnSubscribed = true, true
			}
		}
		args = args[1:]
	}
	if len(args) == 4 && strings.EqualFold(args[2].s, "RETURN") && args[3].kind == listArg {
		for _, o := range args[3].list {
			if strings.EqualFold(o.s, "SUBSCRIBED") {
				returnSubscribed = true
			}
		}
		args = args[:2]
	}
	if len(args) != 2 || args[0].kind == listArg || args[1].kind == listArg {
		return commandError("BAD LIST and LSUB want a reference and a pattern")
	}
	resp, pattern := "LIST", args[1].s
	if lsub {
		resp = "LSUB"
	}
	if pattern == "" {
		fmt.Fprintf(s.w, "* %s (\\Noselect) \"/\" \"\"\r\n", resp)
		return nil
	}
	emit := func(name string, f *HostileFolder) {
		if !listMatch(pattern, name) || (subscribedOnly && !f.Subscribed) {
			return
		}
		var attrs []string
		if f.SpecialUse != "" {
			attrs = append(attrs, f.SpecialUse)
		}
		if returnSubscribed && f.Subscribed {
			attrs = append(attrs, `\Subscribed`)
		}
		fmt.Fprintf(s.w, "* %s (%s) \"/\" %s\r\n", resp, strings.Join(attrs, " "), quote(name))
	}
	s.h.data.RLock()
	order := slices.Clone(s.h.order)
	s.h.data.RUnlock()
	for _, name := range order {
		emit(name, s.h.folder(name))
	}
	extra := &HostileFolder{}
	for i := 1; i <= s.h.cfg.ExtraFolders; i++ {
		emit(fmt.Sprintf("Folder %06d", i), extra)
	}
	return nil
}

func (s *hostileSession) status(args []arg) error {
	if len(args) != 2 || args[0].kind == listArg || args[1].kind != listArg {
		return commandError("BAD STATUS wants a mailbox and a list of items")
	}
	f := s.h.folder(args[0].s)
	if f == nil {
		return commandError("NO [NONEXISTENT] Mailbox doesn't exist: " + args[0].s)
	}
	uidValidity := s.h.uidValidity(f, false)
	msgs := s.h.messages(f)
	var items []string
	for _, it := range args[1].list {
		item := strings.ToUpper(it.s)
		var v uint32
		switch item {
		case "MESSAGES":
			v = uint32(len(msgs))
		case "RECENT":
		case "UIDNEXT":
			v = uidNext(msgs)
		case "UIDVALIDITY":
			v = uidValidity
		case "UNSEEN":
			for _, m := range msgs {
				if !slices.ContainsFunc(m.Flags, func(fl string) bool { return strings.EqualFold(fl, `\Seen`) }) {
					v++
				}
			}
		default:
			return commandError("BAD unsupported STATUS item " + it.s)
		}
		if !slices.ContainsFunc(s.h.cfg.StatusOmit, func(o string) bool { return strings.EqualFold(o, item) }) {
			items = append(items, fmt.Sprintf("%s %d", item, v))
		}
	}
	name := quote(args[0].s)
	if s.h.cfg.StatusUnquoted {
		name = args[0].s
	}
	fmt.Fprintf(s.w, "* STATUS %s (%s)\r\n", name, strings.Join(items, " "))
	return nil
}

func uidNext(msgs []HostileMessage) uint32 {
	if len(msgs) == 0 {
		return 1
	}
	return msgs[len(msgs)-1].UID + 1
}

// messages is a folder's message list now.
func (h *Hostile) messages(f *HostileFolder) []HostileMessage {
	h.data.RLock()
	defer h.data.RUnlock()
	return f.Messages
}

func (s *hostileSession) open(args []arg) error {
	s.sel = nil
	if len(args) != 1 || args[0].kind == listArg {
		return commandError("BAD EXAMINE and SELECT want a mailbox")
	}
	f := s.h.folder(args[0].s)
	if f == nil {
		return commandError("NO [NONEXISTENT] Mailbox doesn't exist: " + args[0].s)
	}
	s.sel = f
	msgs := s.h.messages(f)
	fmt.Fprintf(s.w, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"+
		"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"+
		"* %d EXISTS\r\n* 0 RECENT\r\n"+
		"* OK [UIDVALIDITY %d] UIDs valid\r\n* OK [UIDNEXT %d] Predicted next UID\r\n",
		len(msgs), s.h.uidValidity(f, true), uidNext(msgs))
	return nil
}

// create makes a folder (as a destination).
func (s *hostileSession) create(args []arg) error {
	if len(args) != 1 || args[0].kind == listArg {
		return commandError("BAD CREATE wants a mailbox")
	}
	name := strings.TrimSuffix(args[0].s, "/")
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	h := s.h
	if reply, ok := h.cfg.CreateRefused[name]; ok {
		return commandError(reply)
	}
	h.data.Lock()
	defer h.data.Unlock()
	if h.folders[name] != nil {
		return commandError("NO [ALREADYEXISTS] Mailbox exists")
	}
	h.folders[name] = &HostileFolder{Name: name, UIDValidity: 1}
	h.order = append(h.order, name)
	return nil
}

// errCut closes a connection in the middle of a command (AppendFault.Cut).
var errCut = errors.New("connection cut")

// fault returns the AppendFault a message triggers (using one of its
// turns), or -1; cut chooses between the faults that cut the connection
// while the message arrives and the others.
func (h *Hostile) fault(msg []byte, cut bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, f := range h.cfg.AppendFaults {
		if f.Cut == cut && h.faults[i] != 0 && bytes.Contains(msg, f.Match) {
			if h.faults[i] > 0 {
				h.faults[i]--
			}
			return i
		}
	}
	return -1
}

// append stores one message, or several under MULTIAPPEND (all or none),
// unless a fault says otherwise: APPEND mailbox [(flags)] ["date"] literal
// [[(flags)] ["date"] literal ...].
func (s *hostileSession) append(args []arg) (string, error) {
	caps := s.h.cfg.Caps
	if len(args) < 2 || args[0].kind == listArg {
		return "", commandError("BAD APPEND wants a mailbox and a message")
	}
	f := s.h.folder(args[0].s)
	if f == nil {
		return "", commandError("NO [TRYCREATE] Mailbox doesn't exist: " + args[0].s)
	}
	var msgs []HostileMessage
	var m HostileMessage
	for _, a := range args[1:] {
		switch a.kind {
		case listArg:
			for _, fl := range a.list {
				m.Flags = append(m.Flags, fl.s)
			}
		case stringArg:
			d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", a.s)
			if err != nil {
				return "", commandError("BAD invalid date " + a.s)
			}
			m.InternalDate = d
		case literalArg:
			m.Body = []byte(a.s)
			msgs = append(msgs, m)
			m = HostileMessage{}
		default:
			return "", commandError("BAD unexpected APPEND argument " + a.s)
		}
	}
	if len(msgs) == 0 || m.Flags != nil || !m.InternalDate.IsZero() {
		return "", commandError("BAD APPEND wants a message after its flags and date")
	}
	if len(msgs) > 1 && !slices.Contains(caps, "MULTIAPPEND") {
		return "", commandError("BAD one message per APPEND")
	}
	var fault AppendFault
	for _, m := range msgs {
		if i := s.h.fault(m.Body, false); i >= 0 {
			fault = s.h.cfg.AppendFaults[i]
			break
		}
	}
	if fault.Reply != "" {
		return "", commandError(fault.Reply)
	}
	s.h.data.Lock()
	first := uidNext(f.Messages)
	for i := range msgs {
		msgs[i].UID = first + uint32(i)
		if msgs[i].InternalDate.IsZero() {
			msgs[i].InternalDate = time.Now()
		}
	}
	f.Messages = append(f.Messages, msgs...)
	s.h.data.Unlock()
	switch {
	case fault.LoseAnswer:
		return "", errCut
	case fault.NoAppendUID || !slices.Contains(caps, "UIDPLUS"):
		return "APPEND completed", nil
	}
	set := strconv.Itoa(int(first))
	if len(msgs) > 1 {
		set += ":" + strconv.Itoa(int(first)+len(msgs)-1)
	}
	return fmt.Sprintf("[APPENDUID %d %s] APPEND completed", f.UIDValidity, set), nil
}

// fetchItems is what a FETCH asks for.
type fetchItems struct {
	uid, flags, date, size bool
	sections               []section
	ext                    []string // names in HostileConfig.fetchExt
}

// section is one BODY[...] item.
type section struct {
	echo   string   // as the reply names it: BODY[HEADER.FIELDS (DATE)]
	whole  bool     // BODY[]
	fields []string // HEADER.FIELDS, upper case; nil with whole or HEADER
}

func (s *hostileSession) fetch(args []arg, byUID bool) error {
	if s.sel == nil {
		return commandError("BAD no mailbox selected")
	}
	if len(args) != 2 || args[0].kind != atomArg {
		return commandError("BAD FETCH wants a set and items")
	}
	items, err := parseFetchItems(args[1], s.h.cfg.fetchExt)
	if err != nil {
		return err
	}
	msgs := s.h.messages(s.sel)
	var last uint32
	if len(msgs) > 0 {
		last = uint32(len(msgs))
		if byUID {
			last = msgs[len(msgs)-1].UID
		}
	}
	set, err := parseSet(args[0].s, last)
	if err != nil {
		return err
	}
	items.uid = items.uid || byUID
	for i := range msgs {
		m := &msgs[i]
		if key := uint32(i + 1); (byUID && !set.has(m.UID)) || (!byUID && !set.has(key)) {
			continue
		}
		if m.Vanish && slices.ContainsFunc(items.sections, func(sec section) bool { return sec.whole }) {
			continue
		}
		if err := s.fetchOne(i+1, m, items); err != nil {
			return err
		}
	}
	return nil
}

func (s *hostileSession) fetchOne(seq int, m *HostileMessage, items fetchItems) error {
	var parts []string
	if items.uid {
		parts = append(parts, fmt.Sprintf("UID %d", m.UID))
	}
	if items.flags {
		parts = append(parts, "FLAGS ("+strings.Join(m.Flags, " ")+")")
	}
	if items.date {
		d := m.InternalDate
		if d.IsZero() {
			d = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		}
		parts = append(parts, `INTERNALDATE "`+d.Format("_2-Jan-2006 15:04:05 -0700")+`"`)
	}
	if items.size {
		parts = append(parts, fmt.Sprintf("RFC822.SIZE %d", len(m.Body)))
	}
	for _, x := range items.ext {
		parts = append(parts, x+" "+s.h.cfg.fetchExt[x](s.sel, m))
	}
	fmt.Fprintf(s.w, "* %d FETCH (%s", seq, strings.Join(parts, " "))
	sep := " "
	if len(parts) == 0 {
		sep = ""
	}
	for _, sec := range items.sections {
		if !sec.whole {
			data := headerOf(m.Body, sec.fields)
			fmt.Fprintf(s.w, "%s%s {%d}\r\n", sep, sec.echo, len(data))
			s.w.Write(data)
			sep = " "
			continue
		}
		size := max(int64(len(m.Body)), m.LiteralSize)
		fmt.Fprintf(s.w, "%s%s {%d}\r\n", sep, sec.echo, size)
		sep = " "
		send := size
		if m.StallAfter > 0 {
			send = min(size, m.StallAfter)
		}
		head := m.Body[:min(int64(len(m.Body)), send)]
		if _, err := s.w.Write(head); err != nil {
			return err
		}
		if err := writeRepeated(s.w, textBlock, send-int64(len(head))); err != nil {
			return err
		}
		if send < size {
			return errSilent
		}
	}
	s.w.WriteString(")\r\n")
	return nil
}

func parseFetchItems(a arg, ext map[string]func(*HostileFolder, *HostileMessage) string) (fetchItems, error) {
	var it fetchItems
	list := a.list
	if a.kind != listArg {
		list = []arg{a}
	}
	for _, x := range list {
		if x.kind != atomArg {
			return it, commandError("BAD unexpected FETCH item")
		}
		u := strings.ToUpper(x.s)
		switch u {
		case "UID":
			it.uid = true
		case "FLAGS":
			it.flags = true
		case "INTERNALDATE":
			it.date = true
		case "RFC822.SIZE":
			it.size = true
		default:
			if ext[u] != nil {
				it.ext = append(it.ext, u)
				continue
			}
			spec, ok := strings.CutPrefix(u, "BODY.PEEK[")
			if !ok {
				spec, ok = strings.CutPrefix(u, "BODY[")
			}
			spec, closed := strings.CutSuffix(spec, "]")
			if !ok || !closed {
				return it, commandError("BAD unsupported FETCH item " + x.s)
			}
			sec := section{echo: "BODY[" + spec + "]"}
			switch {
			case spec == "":
				sec.whole = true
			case spec == "HEADER":
			case strings.HasPrefix(spec, "HEADER.FIELDS (") && strings.HasSuffix(spec, ")"):
				// go-imap quotes the field names.
				for _, f := range strings.Fields(spec[len("HEADER.FIELDS (") : len(spec)-1]) {
					sec.fields = append(sec.fields, strings.Trim(f, `"`))
				}
				if len(sec.fields) == 0 {
					return it, commandError("BAD empty HEADER.FIELDS")
				}
			default:
				return it, commandError("BAD unsupported section " + x.s)
			}
			it.sections = append(it.sections, sec)
		}
	}
	return it, nil
}

// setsSeen reports whether FETCH items read a body without PEEK.
func setsSeen(a arg) bool {
	list := a.list
	if a.kind != listArg {
		list = []arg{a}
	}
	for _, x := range list {
		u := strings.ToUpper(x.s)
		if strings.HasPrefix(u, "BODY[") || u == "RFC822" || u == "RFC822.TEXT" {
			return true
		}
	}
	return false
}

// headerOf returns the message's header, or only the named fields of it,
// followed by the empty line, as BODY[HEADER...] has it.
func headerOf(body []byte, fields []string) []byte {
	head := body
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		head = body[:i+2]
	}
	var out []byte
	keep := false
	for line := range bytes.Lines(head) {
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := bytes.Cut(line, []byte(":"))
			keep = fields == nil || slices.ContainsFunc(fields, func(f string) bool {
				return strings.EqualFold(f, string(bytes.TrimSpace(name)))
			})
		}
		if keep {
			out = append(out, line...)
		}
	}
	return append(out, "\r\n"...)
}

// numSet is a parsed sequence or UID set.
type numSet [][2]uint32

func (n numSet) has(v uint32) bool {
	for _, r := range n {
		if v >= r[0] && v <= r[1] {
			return true
		}
	}
	return false
}

// parseSet reads "1:*,7,9:12"; "*" is last.
func parseSet(s string, last uint32) (numSet, error) {
	num := func(p string) (uint32, error) {
		if p == "*" {
			return last, nil
		}
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil || v == 0 {
			return 0, commandError("BAD invalid set " + s)
		}
		return uint32(v), nil
	}
	var set numSet
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := num(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = num(hi); err != nil {
				return nil, err
			}
		}
		set = append(set, [2]uint32{min(a, b), max(a, b)})
	}
	return set, nil
}

// listMatch matches a LIST pattern: "*" matches anything, "%" anything
// but the separator.
func listMatch(pattern, name string) bool {
	for len(pattern) > 0 {
		if w := pattern[0]; w == '*' || w == '%' {
			for i := 0; i <= len(name); i++ {
				if w == '%' && i > 0 && name[i-1] == '/' {
					return false
				}
				if listMatch(pattern[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if name == "" || name[0] != pattern[0] {
			return false
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// wireName encodes a folder name as IMAP4rev1 clients send it: modified
// UTF-7 (RFC 3501 5.1.3), so that names compare with what arrives.
func wireName(s string) string {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX"
	}
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 2*len(u))
		for i, c := range u {
			binary.BigEndian.PutUint16(buf[2*i:], c)
		}
		b.WriteString("&" + mutf7.EncodeToString(buf) + "-")
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// textBlock and atomBlock are the generated filler: text lines for message
// bodies, atom characters without a line ending for long lines.
var (
	textBlock = bytes.Repeat([]byte(strings.Repeat("x", 78)+"\r\n"), 800)
	atomBlock = bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 2500)
)

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// writeRepeated writes n bytes of block, over and over.
func writeRepeated(w io.Writer, block []byte, n int64) error {
	for n > 0 {
		k := min(n, int64(len(block)))
		if _, err := w.Write(block[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Command parsing.

// errSyntax is a command the server cannot parse; it hangs up.
var errSyntax = errors.New("syntax error")

// maxLine bounds a command line and a literal the client may send.
const maxLine = 1 << 20

type argKind int

const (
	atomArg argKind = iota
	stringArg
	literalArg // a string sent as a literal
	listArg
)

// arg is one command argument.
type arg struct {
	kind argKind
	s    string // atom or string
	list []arg
}

// readCommand reads one command with its literals. line is the command as
// recorded: without the tag, literals shown as {n}.
func (s *hostileSession) readCommand() (tag string, args []arg, line string, err error) {
	var rec strings.Builder
	tagArg, err := s.readAtom(&rec)
	if err != nil {
		return "", nil, "", err
	}
	if c, err := s.r.ReadByte(); err != nil {
		return "", nil, "", err
	} else if c != ' ' {
		return "", nil, "", fmt.Errorf("%w: no command after tag", errSyntax)
	}
	rec.Reset()
	args, err = s.readArgs(&rec, 0)
	if err != nil {
		return "", nil, "", err
	}
	return tagArg, args, rec.String(), nil
}

// readArgs reads space-separated arguments up to the end of the line
// (depth 0) or the closing parenthesis.
func (s *hostileSession) readArgs(rec *strings.Builder, depth int) ([]arg, error) {
	var args []arg
	for {
		if rec.Len() > maxLine {
			return nil, fmt.Errorf("%w: command too long", errSyntax)
		}
		c, err := s.r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case c == '\r' && depth == 0:
			if c, err = s.r.ReadByte(); err != nil || c != '\n' {
				return nil, fmt.Errorf("%w: CR without LF", errSyntax)
			}
			return args, nil
		case c == '\n' && depth == 0:
			return args, nil
		case c == ' ':
			rec.WriteByte(c)
		case c == ')' && depth > 0:
			rec.WriteByte(c)
			return args, nil
		case c == '(':
			rec.WriteByte(c)
			list, err := s.readArgs(rec, depth+1)
			if err != nil {
				return nil, err
			}
			args = append(args, arg{kind: listArg, list: list})
		case c == '"':
			str, err := s.readQuoted(rec)
			if err != nil {
				return nil, err
			}
			args = append(args, arg{kind: stringArg, s: str})
		case c == '{':
			str, err := s.readLiteral(rec)
			if err != nil {
				return nil, err
			}
			args = append(args, arg{kind: literalArg, s: str})
		case c == '\r' || c == '\n' || c == ')':
			return nil, fmt.Errorf("%w: unexpected %q", errSyntax, c)
		default:
			s.r.UnreadByte()
			a, err := s.readAtom(rec)
			if err != nil {
				return nil, err
			}
			args = append(args, arg{kind: atomArg, s: a})
		}
	}
}

// readAtom reads an atom; brackets may enclose spaces and parentheses,
// as in BODY.PEEK[HEADER.FIELDS (DATE FROM)].
func (s *hostileSession) readAtom(rec *strings.Builder) (string, error) {
	var b strings.Builder
	inBracket := false
	for b.Len() <= maxLine {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\r' || c == '\n' || (!inBracket && (c == ' ' || c == '(' || c == ')')) {
			s.r.UnreadByte()
			if b.Len() == 0 {
				return "", fmt.Errorf("%w: empty atom", errSyntax)
			}
			rec.WriteString(b.String())
			return b.String(), nil
		}
		switch c {
		case '[':
			inBracket = true
		case ']':
			inBracket = false
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("%w: atom too long", errSyntax)
}

func (s *hostileSession) readQuoted(rec *strings.Builder) (string, error) {
	var b strings.Builder
	for b.Len() <= maxLine {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch c {
		case '"':
			rec.WriteString(quote(b.String()))
			return b.String(), nil
		case '\\':
			if c, err = s.r.ReadByte(); err != nil {
				return "", err
			}
		case '\r', '\n':
			return "", fmt.Errorf("%w: line break in a quoted string", errSyntax)
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("%w: quoted string too long", errSyntax)
}

// readLiteral reads "n}" or "n+}", CRLF and n bytes, asking for them
// first unless the literal is non-synchronising.
func (s *hostileSession) readLiteral(rec *strings.Builder) (string, error) {
	spec, err := s.r.ReadString('}')
	if err != nil {
		return "", err
	}
	digits, nonSync := strings.CutSuffix(strings.TrimSuffix(spec, "}"), "+")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n > maxLine {
		return "", fmt.Errorf("%w: bad literal size {%s", errSyntax, spec)
	}
	if crlf, err := s.readLine(0); err != nil || crlf != "" {
		return "", fmt.Errorf("%w: literal size not followed by a line break", errSyntax)
	}
	rec.WriteString("{" + spec)
	if !nonSync {
		s.w.WriteString("+ Ready for literal data\r\n")
		if err := s.w.Flush(); err != nil {
			return "", err
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.r, buf); err != nil {
		return "", err
	}
	if s.h.fault(buf, true) >= 0 {
		return "", errCut
	}
	return string(buf), nil
}

// readLine reads up to CRLF (or LF), at most limit bytes before it.
func (s *hostileSession) readLine(limit int) (string, error) {
	var b strings.Builder
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '\n':
			return strings.TrimSuffix(b.String(), "\r"), nil
		case b.Len() > limit:
			return "", fmt.Errorf("%w: line too long", errSyntax)
		}
		b.WriteByte(c)
	}
}
