package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token file is read as a JSON token or an access token on its first
// line; whatever it holds, no error quotes it (it is a secret).
func FuzzReadTokenFile(f *testing.F) {
	f.Add(`{"access_token":"at-1","refresh_token":"rt-1","expiry":"2026-01-02T03:04:05Z"}`)
	f.Add("ya29.secret-token\r\nsecond line\n")
	f.Add(`{"access_token": "unterminated-secret`)
	f.Add(`{"expiry":"not a time secret-value"}`)
	f.Add("")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "token")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		tok, err := readTokenFile(path)
		if err != nil {
			for _, word := range strings.FieldsFunc(content, func(r rune) bool { return strings.ContainsRune(" \t\r\n{}\":,[]", r) }) {
				if len(word) >= 6 && strings.Contains(err.Error(), word) && !strings.Contains(path, word) {
					t.Fatalf("the error %q quotes the file's %q", err, word)
				}
			}
			return
		}
		if tok.AccessToken == "" && tok.RefreshToken == "" {
			t.Error("a token file without a token was accepted")
		}
		if !strings.HasPrefix(strings.TrimSpace(content), "{") {
			first, _, _ := strings.Cut(strings.TrimSpace(content), "\n")
			if tok.AccessToken != strings.TrimSpace(first) {
				t.Errorf("access token %q from %q", tok.AccessToken, content)
			}
		}
	})
}
