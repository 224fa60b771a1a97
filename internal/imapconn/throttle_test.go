package imapconn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The answers of throttling servers seen in the wild are told from other
// refusals, with the wait they suggest.
func TestThrottleHint(t *testing.T) {
	for _, c := range []struct {
		code      imap.ResponseCode
		text      string
		throttled bool
		wait      time.Duration
	}{
		{"", "Request is throttled. Suggested Backoff Time: 299609 milliseconds", true, 299609 * time.Millisecond},
		{"", "request is throttled. suggested backoff time: 15 seconds", true, 15 * time.Second},
		{"", "Server Unavailable. 15", true, 0},
		{"", "Too many simultaneous connections. (Failure)", true, 0},
		{"", "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)", true, 0},
		{"THROTTLED", "Account exceeded command or bandwidth limits.", true, 0},
		{"", "Request is throttled. Suggested Backoff Time: 99999999999999 milliseconds", true, maxWait},
		{"AUTHENTICATIONFAILED", "Authentication failed.", false, 0},
		{"", "Mailbox does not exist", false, 0},
		{"UNAVAILABLE", "Internal error", false, 0},
	} {
		wait, throttled := ThrottleHint(c.code, c.text)
		if throttled != c.throttled || wait != c.wait {
			t.Errorf("[%s] %q: throttled %v, wait %v; want %v, %v", c.code, c.text, throttled, wait, c.throttled, c.wait)
		}
	}
}

// A throttled NO becomes ErrThrottled with the server's wait, or the
// connection's default when it names none, bounded by its maximum.
func TestThrottledError(t *testing.T) {
	c := &Conn{guard: newGuard(nil), opt: Options{ThrottleWait: 7 * time.Second, MaxThrottleWait: time.Minute}}
	for _, x := range []struct {
		text string
		want time.Duration
	}{
		{"Request is throttled. Suggested Backoff Time: 2000 milliseconds", 2 * time.Second},
		{"Request is throttled. Suggested Backoff Time: 299609 milliseconds", time.Minute},
		{"Server Unavailable. 15", 7 * time.Second},
	} {
		err := c.fail(t.Context(), "fetch", &imap.Error{Type: imap.StatusResponseTypeNo, Text: x.text})
		wait, ok := ThrottleWait(err)
		if !ok || wait != x.want || !errors.Is(err, ErrThrottled) || KindOf(err).Code() != "throttled" {
			t.Errorf("%q: %v (wait %v, %v); want throttled for %v", x.text, err, wait, ok, x.want)
		}
	}
	if _, ok := ThrottleWait(&Error{Kind: ErrServer}); ok {
		t.Error("a plain refusal counts as throttled")
	}
}

// Only a tagged OK with [THROTTLED] slows down; an untagged one, another
// code or a NO does not.
func TestThrottledOK(t *testing.T) {
	for line, want := range map[string]bool{
		"A12 OK [THROTTLED] FETCH completed\r\n":   true,
		"M3 ok [throttled] done\r\n":               true,
		"* OK [THROTTLED] slow down\r\n":           false,
		"A12 OK [READ-ONLY] EXAMINE completed\r\n": false,
		"A12 NO [THROTTLED] later\r\n":             false,
		"A12 OK THROTTLED\r\n":                     false,
		"+ [THROTTLED]\r\n":                        false,
	} {
		if got := throttledOK([]byte(line)); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// FuzzSuggestedWait: any server text gives a wait in [0, maxWait] and
// never panics; a number written in milliseconds reads back.
func FuzzSuggestedWait(f *testing.F) {
	for _, s := range []string{"Request is throttled. Suggested Backoff Time: 299609 milliseconds",
		"Suggested Backoff Time: 5 seconds", "Backoff Time:", "Server Unavailable. 15", "backoff time: 1ms",
		"backoff time: 999999999999 milliseconds"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		w := SuggestedWait(text)
		if w < 0 || w > maxWait {
			t.Fatalf("%q: wait %v out of range", text, w)
		}
		ThrottleHint("", text)
		throttledOK([]byte(text))
		if strings.Contains(text, "\x00") {
			return
		}
		if got := SuggestedWait("Suggested Backoff Time: 1500 milliseconds " + text); got != 1500*time.Millisecond {
			t.Fatalf("a leading hint read as %v", got)
		}
	})
}
