package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	const pw = `heslo "s" \ ž`
	sealed := b.Seal(pw, "task 1 source")
	if bytes.Contains(sealed, []byte("heslo")) {
		t.Fatal("plaintext visible in the sealed secret")
	}
	if got, err := b.Open(sealed, "task 1 source"); err != nil || got != pw {
		t.Fatalf("open = %q, %v", got, err)
	}
	if b.Seal(pw, "x")[0] == b.Seal(pw, "x")[0] && bytes.Equal(b.Seal(pw, "x"), b.Seal(pw, "x")) {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if _, err := b.Open(sealed, "task 2 source"); !errors.Is(err, ErrOpen) {
		t.Errorf("another context opened the secret: %v", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(sealed, "task 1 source"); !errors.Is(err, ErrOpen) {
		t.Errorf("another key opened the secret: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := b.Open(sealed, "task 1 source"); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered data opened: %v", err)
	}
	if _, err := b.Open([]byte{1, 2}, "x"); !errors.Is(err, ErrOpen) {
		t.Errorf("short data: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Setenv("TEST_KEY", "")
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	k1, err := LoadOrCreateKey(path, "TEST_KEY")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKey(path, "TEST_KEY")
	if err != nil || !bytes.Equal(k1, k2) || len(k1) != KeySize {
		t.Fatalf("second load differs or fails: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path, "TEST_KEY"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable key file was accepted: %v", err)
	}
	env := bytes.Repeat([]byte{9}, KeySize)
	t.Setenv("TEST_KEY", base64.StdEncoding.EncodeToString(env))
	if k, err := LoadOrCreateKey(path, "TEST_KEY"); err != nil || !bytes.Equal(k, env) {
		t.Errorf("environment key not used: %v", err)
	}
	t.Setenv("TEST_KEY", "short")
	if _, err := LoadOrCreateKey(path, "TEST_KEY"); err == nil {
		t.Error("a malformed environment key was accepted")
	}
}
