// Package secret encrypts the credentials a migration needs while it runs
// (source and hosting passwords) for storage at rest, with AES-256-GCM under
// a key kept outside the database.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// Box seals and opens secrets with one key.
type Box struct {
	aead cipher.AEAD
}

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// LoadOrCreateKey returns the key from the environment variable env (base64)
// if set, else from the file at path, creating the file with a new random
// key and mode 0600 on first use. A key file readable by others is refused.
func LoadOrCreateKey(path, env string) ([]byte, error) {
	key, err := LoadKey(path, env)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	// O_EXCL: two processes starting at once must not both write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path, env)
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return key, nil
}

// LoadKey returns the key from the environment variable env (base64) if
// set, else from the file at path; an error wrapping fs.ErrNotExist when
// there is neither. A key file readable by others is refused.
func LoadKey(path, env string) ([]byte, error) {
	if v := os.Getenv(env); v != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("$%s must hold %d random bytes in base64 (e.g. from: head -c32 /dev/urandom | base64)", env, KeySize)
		}
		return key, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no secret key in %s or $%s: %w", path, env, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by other users (mode %o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("key file %s does not hold a %d-byte base64 key", path, KeySize)
	}
	return key, nil
}

// Fingerprint names a key without revealing it, so that a database can
// remember which key its secrets were sealed with.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(append([]byte("mailmigrate secret key fingerprint\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// Seal encrypts plaintext; context binds the ciphertext to its use (e.g. a
// task ID and field name) so that one stored secret cannot be swapped for
// another.
func (b *Box) Seal(plaintext, context string) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
}

// ErrOpen means a sealed secret could not be opened: another key, another
// context, or tampered data.
var ErrOpen = errors.New("stored secret cannot be decrypted (wrong key or damaged data)")

// Open decrypts what Seal produced with the same context.
func (b *Box) Open(sealed []byte, context string) (string, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return "", ErrOpen
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return "", ErrOpen
	}
	return string(out), nil
}
