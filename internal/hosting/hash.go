package hosting

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Password schemes the PasswdFile driver can write; Dovecot verifies all
// three (doveadm pw -l lists them).
const (
	SchemeArgon2ID    = "ARGON2ID"
	SchemeSHA512Crypt = "SHA512-CRYPT"
	SchemeBlfCrypt    = "BLF-CRYPT"
)

// Argon2id cost. Dovecot runs the hash in its auth process for every
// login, so memory is kept at the OWASP minimum (19 MiB) instead of the
// 64 MiB libsodium "interactive" default: a burst of logins must not
// exhaust the auth process.
const (
	argon2Memory  = 19456 // KiB
	argon2Time    = 2
	argon2Threads = 1
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// bcryptCost is x/crypto's default; Dovecot's own BLF-CRYPT default (5) is
// too cheap today.
const bcryptCost = 10

// hashPassword returns the password in Dovecot's "{SCHEME}hash" form.
func hashPassword(scheme, password string) (string, error) {
	switch scheme {
	case SchemeArgon2ID:
		salt, err := randomBytes(argon2SaltLen)
		if err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
		// The PHC string format libsodium writes and Dovecot reads.
		return fmt.Sprintf("{ARGON2ID}$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
			argon2.Version, argon2Memory, argon2Time, argon2Threads,
			base64.RawStdEncoding.EncodeToString(salt),
			base64.RawStdEncoding.EncodeToString(key)), nil
	case SchemeSHA512Crypt:
		salt, err := randomBytes(12)
		if err != nil {
			return "", err
		}
		// 12 random bytes are 16 characters of the crypt alphabet, the
		// longest salt SHA-crypt uses.
		return "{SHA512-CRYPT}" + sha512Crypt(password, cryptBase64(salt)[:16], 0), nil
	case SchemeBlfCrypt:
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		if errors.Is(err, bcrypt.ErrPasswordTooLong) {
			return "", invalid("password.long_blf_crypt")
		}
		if err != nil {
			return "", fmt.Errorf("hash password (BLF-CRYPT): %w", err)
		}
		return "{BLF-CRYPT}" + string(h), nil
	}
	return "", fmt.Errorf("hash password: unknown scheme %q", scheme)
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("password salt: %w", err)
	}
	return b, nil
}

// cryptAlphabet is the base-64 alphabet of crypt(3) hashes.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// cryptBase64 encodes bytes little-endian in 6-bit groups, as crypt does
// for salts it generates.
func cryptBase64(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := 0
		for j := 0; j < 3 && i+j < len(b); j++ {
			v |= uint32(b[i+j]) << (8 * j)
			n++
		}
		for k := 0; k <= n; k++ {
			sb.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	return sb.String()
}

// sha512Crypt implements the "$6$" scheme of Ulrich Drepper's SHA-crypt
// specification (glibc, libxcrypt), which is what Dovecot's SHA512-CRYPT
// verifies through crypt(3). rounds 0 means the default, 5000, which then
// is not written into the hash.
func sha512Crypt(password, salt string, rounds int) string {
	const defaultRounds = 5000
	if len(salt) > 16 {
		salt = salt[:16]
	}
	explicit := rounds != 0
	if !explicit {
		rounds = defaultRounds
	}
	rounds = min(max(rounds, 1000), 999999999)
	pw, s := []byte(password), []byte(salt)

	b := sha512.New()
	b.Write(pw)
	b.Write(s)
	b.Write(pw)
	sumB := b.Sum(nil)

	a := sha512.New()
	a.Write(pw)
	a.Write(s)
	for n := len(pw); n > 0; n -= 64 {
		a.Write(sumB[:min(n, 64)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(pw)
		}
	}
	sumA := a.Sum(nil)

	dp := sha512.New()
	for range len(pw) {
		dp.Write(pw)
	}
	p := repeatTo(dp.Sum(nil), len(pw))

	ds := sha512.New()
	for range 16 + int(sumA[0]) {
		ds.Write(s)
	}
	sBytes := repeatTo(ds.Sum(nil), len(s))

	c := sumA
	for i := range rounds {
		h := sha512.New()
		if i%2 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i%2 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$6$")
	if explicit {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	// The digest bytes go out in the specification's permuted order,
	// three at a time, 4 characters each; the last byte alone.
	order := [][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
		{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
		{62, 20, 41},
	}
	for _, o := range order {
		v := uint32(c[o[0]])<<16 | uint32(c[o[1]])<<8 | uint32(c[o[2]])
		for range 4 {
			out.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	v := uint32(c[63])
	for range 2 {
		out.WriteByte(cryptAlphabet[v&0x3f])
		v >>= 6
	}
	return out.String()
}

// repeatTo returns n bytes made of sum repeated (the P and S sequences of
// SHA-crypt).
func repeatTo(sum []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, sum[:min(n-len(out), len(sum))]...)
	}
	return out
}
