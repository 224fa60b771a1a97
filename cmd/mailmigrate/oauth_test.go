package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmigrate/internal/testbed"
)

// oauthMessages makes n messages for a hostile source.
func oauthMessages(n int) []testbed.HostileMessage {
	var out []testbed.HostileMessage
	for i := 1; i <= n; i++ {
		out = append(out, testbed.HostileMessage{UID: uint32(i), Flags: []string{`\Seen`},
			InternalDate: time.Date(2025, 1, 2, 3, 4, i, 0, time.UTC),
			Body: fmt.Appendf(nil, "Message-ID: <%d@ms.test>\r\nDate: Thu, 2 Jan 2025 03:04:%02d +0000\r\n"+
				"From: a@ms.test\r\nSubject: zpráva %d\r\n\r\ntext %d\r\n", i, i, i, i)})
	}
	return out
}

// migrate --source-oauth microsoft signs in with the device flow: the URL
// and code in the customer's language, the token kept in the token file
// (and its rotated refresh token), later runs sign in from the file, a
// revoked sign-in exits as an authentication failure telling to sign in
// again. No token or client secret is ever printed.
func TestMigrateSourceOAuth(t *testing.T) {
	const clientSecret = "client-secret-never-printed"
	const srcUser = "eva@firma.onmicrosoft.com"
	srv := testbed.StartOAuthServer(t, testbed.OAuthConfig{ClientID: "mm-cli", ClientSecret: clientSecret,
		User: srcUser, DevicePending: 1, RotateRefresh: true})
	src := testbed.StartHostile(t, testbed.HostileConfig{User: srcUser, Caps: []string{"AUTH=XOAUTH2", "AUTH=OAUTHBEARER"},
		CheckToken: srv.Valid, Folders: []testbed.HostileFolder{{Name: "INBOX", UIDValidity: 3, Messages: oauthMessages(12)}}})
	c := newCLI(t, testbed.CorpusOptions{})
	conf := c.write("mailmigrate.conf", "oauth.microsoft.client_id = mm-cli\n"+
		"oauth.microsoft.client_secret_file = "+c.write("ms.secret", clientSecret+"\n")+"\n"+
		"oauth.microsoft.token_url = "+srv.TokenURL+"\noauth.microsoft.device_url = "+srv.DeviceURL+"\n")
	tokenFile := filepath.Join(c.dir, "token.json")
	args := func(extra ...string) []string {
		return append([]string{"migrate", "--source", "imap://" + src.Addr, "--allow-plaintext",
			"--source-user", srcUser, "--dest", "imaps://" + c.d.IMAPSAddr(), "--ca-file", c.d.CAFile,
			"--dest-user", c.dstUser, "--dest-password-file", filepath.Join(c.dir, "dst.pw"),
			"--state", filepath.Join(c.dir, "state.db"), "--timeout", "20s"}, extra...)
	}
	var outputs []string
	run := func(lang string, args []string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "LC_ALL="+lang, "LANG="+lang)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		outputs = append(outputs, stdout.String(), stderr.String())
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	code, stdout, stderr := run("cs_CZ.UTF-8", args("--source-oauth", "microsoft", "--config", conf, "--source-oauth-token-file", tokenFile))
	if code != exitOK || !strings.Contains(stdout, "zkopírováno 12") {
		t.Fatalf("device sign-in: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "otevřete v prohlížeči") || !strings.Contains(stderr, "WDJB-MJHT") || !strings.Contains(stderr, "/activate") {
		t.Errorf("the Czech device instructions are missing:\n%s", stderr)
	}
	st, err := os.Stat(tokenFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v", err)
	}

	// The second run signs in from the file, without asking.
	code, stdout, stderr = run("C", args("--source-oauth", "microsoft", "--config", conf, "--source-oauth-token-file", tokenFile))
	if code != exitOK || !strings.Contains(stdout, "0 copied") || strings.Contains(stderr, "WDJB-MJHT") {
		t.Fatalf("from the token file: exit %d\n%s\n%s", code, stdout, stderr)
	}
	saved, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if rts := srv.RefreshTokens(); len(rts) != 1 || !strings.Contains(string(saved), rts[0]) {
		t.Errorf("the token file does not hold the server's current refresh token")
	}

	// An access token alone, on its first line.
	access, _, _ := srv.Grant()
	code, stdout, stderr = run("C", args("--source-oauth-token-file", c.write("access.txt", access+"\n")))
	if code != exitOK {
		t.Fatalf("access token file: exit %d\n%s\n%s", code, stdout, stderr)
	}

	srv.RevokeAll()
	code, stdout, stderr = run("C", args("--source-oauth", "microsoft", "--config", conf, "--source-oauth-token-file", tokenFile))
	if code != exitAuth || !strings.Contains(stdout, "Sign in with the provider again") {
		t.Errorf("revoked: exit %d, want %d\n%s\n%s", code, exitAuth, stdout, stderr)
	}

	code, _, stderr = run("C", args("--source-oauth", "microsoft", "--source-oauth-token-file", tokenFile))
	if code != exitUsage || !strings.Contains(stderr, "--config") {
		t.Errorf("without a client ID: exit %d\n%s", code, stderr)
	}

	secrets := append(srv.Tokens(), clientSecret, access)
	for _, o := range outputs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Fatalf("a token or the client secret was printed:\n%s", o)
			}
		}
	}
	if strings.Contains(strings.Join(outputs, ""), "rt-") {
		t.Error("a refresh token was printed")
	}
}
