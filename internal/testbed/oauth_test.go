package testbed

import (
	"strings"
	"testing"
)

// The fake server reads back the XOAUTH2 and OAUTHBEARER responses that
// clients write, and anything else without panicking.
func FuzzParseTokenResponse(f *testing.F) {
	f.Add("eva@firma.test", "ya29.token", "host.test")
	f.Add("", "x", "")
	f.Add("a,b@c", "t\x01u", "h")
	f.Fuzz(func(t *testing.T, user, token, host string) {
		for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
			parseTokenResponse(mech, user+token+host) // arbitrary input
			raw := "user=" + user + "\x01auth=Bearer " + token + "\x01\x01"
			if mech == "OAUTHBEARER" {
				raw = "n,a=" + user + ",\x01host=" + host + "\x01auth=Bearer " + token + "\x01\x01"
			}
			u, tok, ok := parseTokenResponse(mech, raw)
			clean := token != "" && !strings.ContainsAny(user+token+host, "\x01,") && !strings.HasSuffix(token, "\x01")
			if clean && (!ok || u != user || tok != token) {
				t.Errorf("%s %q: got %q %q %v", mech, raw, u, tok, ok)
			}
		}
	})
}
