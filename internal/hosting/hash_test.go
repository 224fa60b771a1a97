package hosting

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Test vectors from Drepper's SHA-crypt specification.
func TestSHA512Crypt(t *testing.T) {
	for _, tc := range []struct {
		pw, salt string
		rounds   int
		want     string
	}{
		{"Hello world!", "saltstring", 0,
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"Hello world!", "saltstringsaltstring", 10000,
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"This is just a test", "toolongsaltstring", 5000,
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"we have a short salt string but not a short password", "short", 77777,
			"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
		{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "anotherlongsaltstring", 1400,
			"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	} {
		if got := sha512Crypt(tc.pw, tc.salt, tc.rounds); got != tc.want {
			t.Errorf("sha512Crypt(%q, %q, %d)\n got %s\nwant %s", tc.pw, tc.salt, tc.rounds, got, tc.want)
		}
	}
}

func TestHashFormats(t *testing.T) {
	for scheme, re := range map[string]string{
		SchemeArgon2ID:    `^\{ARGON2ID\}\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`,
		SchemeSHA512Crypt: `^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$`,
		SchemeBlfCrypt:    `^\{BLF-CRYPT\}\$2a\$10\$[./0-9A-Za-z]{53}$`,
	} {
		h, err := hashPassword(scheme, "secret")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(re).MatchString(h) {
			t.Errorf("%s hash %q does not match %s", scheme, h, re)
		}
		if h2, _ := hashPassword(scheme, "secret"); h2 == h {
			t.Errorf("%s: two hashes of one password are equal (no salt?)", scheme)
		}
	}
	if _, err := hashPassword(SchemeBlfCrypt, strings.Repeat("x", 73)); err == nil || !strings.Contains(err.Error(), "72") {
		t.Errorf("BLF-CRYPT of a 73-byte password: %v", err)
	}
}

// TestHashesVerifyWithDoveadm asks Dovecot itself whether it accepts the
// hashes we write.
func TestHashesVerifyWithDoveadm(t *testing.T) {
	doveadm, err := exec.LookPath("doveadm")
	if err != nil {
		t.Skip("doveadm not on PATH")
	}
	t.Parallel()
	for _, scheme := range []string{SchemeArgon2ID, SchemeSHA512Crypt, SchemeBlfCrypt} {
		for _, pw := range []string{"secret", `pa:ss "wörd" {5} <&> \ end `, "пароль密码🔑"} {
			h, err := hashPassword(scheme, pw)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(doveadm, "pw", "-t", h, "-p", pw).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "verified") {
				t.Errorf("doveadm pw -t %s (password %q): %v: %s", h, pw, err, out)
			}
			out, err = exec.Command(doveadm, "pw", "-t", h, "-p", pw+"x").CombinedOutput()
			if err == nil {
				t.Errorf("doveadm verified %s with a wrong password: %s", h, out)
			}
		}
	}
}
