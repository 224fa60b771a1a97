package imapconn

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// readerConn is a net.Conn that reads from r, in chunks of step bytes.
type readerConn struct {
	net.Conn
	r    io.Reader
	step int
}

func (c *readerConn) Read(p []byte) (int, error) {
	if c.step > 0 && len(p) > c.step {
		p = p[:c.step]
	}
	return c.r.Read(p)
}

func TestGuard(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name    string
		in      string
		setMax  int64 // literal bound, 0 = default
		wantErr bool
		quote   string // what problem() quotes
	}{
		{"ordinary replies", "* OK hi\r\n* 1 FETCH (UID 5 FLAGS (\\Seen))\r\na1 OK done\r\n", 0, false, "a1 OK done"},
		{"a literal may hold long lines", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(long)) + "}\r\n" + long + " UID 1)\r\n", 1 << 30, false, "* 1 FETCH (BODY[] {1048586}"},
		{"an endless line is cut", "* 1 FETCH (UID " + long, 0, true, "* 1 FETCH (UID xxxx"},
		{"a literal larger than expected is refused", "* LIST () \"/\" {99999999}\r\n", 0, true, "* LIST () \"/\" {99999999}"},
		{"a password echoed is hidden", "* BAD no such command: LOGIN jana tajneheslo\r\n", 0, false, "* BAD no such command: LOGIN jana ***"},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 7, 4096} {
			g := newGuard(&readerConn{r: strings.NewReader(tc.in), step: step})
			g.redact("tajneheslo")
			if tc.setMax > 0 {
				g.setLiteralMax(tc.setMax)
			}
			_, err := io.Copy(io.Discard, g)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s (step %d): err = %v, want error %v", tc.name, step, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errProtocol) {
				t.Errorf("%s: err = %v, want a protocol error", tc.name, err)
			}
			if _, q := g.problem(); !strings.HasPrefix(q, tc.quote) {
				t.Errorf("%s (step %d): quoted %q, want it to start with %q", tc.name, step, q, tc.quote)
			}
		}
	}
}

func FuzzLiteralSize(f *testing.F) {
	for _, s := range []string{"{5}\r\n", "x {12+}\r\n", "~{0}\n", "{}\r\n", "{-1}\r\n", "}\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := literalSize(b); ok && n < 0 {
			t.Fatalf("negative literal size %d from %q", n, b)
		}
	})
}

// Replies to a command imapconn writes itself (continuation requests and
// its tagged reply) never reach go-imap; everything else does, literals
// included, however the bytes arrive.
func TestGuardDivert(t *testing.T) {
	in := "* 3 EXISTS\r\n+ go ahead\r\n* 1 FETCH (BODY[] {12}\r\nM1 OK inside)\r\n" +
		"M12 OK not ours\r\nM1 OK [APPENDUID 7 5:6] done\r\n* OK after\r\n"
	want := "* 3 EXISTS\r\n* 1 FETCH (BODY[] {12}\r\nM1 OK inside)\r\nM12 OK not ours\r\n* OK after\r\n"
	for _, step := range []int{1, 2, 7, 4096} {
		g := newGuard(&readerConn{r: strings.NewReader(in), step: step})
		lines := g.divert("M1", false)
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for l := range lines {
				got = append(got, string(l))
				if len(got) == 2 {
					return
				}
			}
		}()
		passed, err := io.ReadAll(g)
		<-done
		g.undivert()
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if string(passed) != want {
			t.Errorf("step %d: go-imap got %q, want %q", step, passed, want)
		}
		if len(got) != 2 || got[0] != "+ go ahead\r\n" || got[1] != "M1 OK [APPENDUID 7 5:6] done\r\n" {
			t.Errorf("step %d: diverted %q", step, got)
		}
	}
}
