package hosting

import (
	"strings"
	"unicode/utf8"
)

// MinPasswordLength is the fewest characters a new mailbox password may
// have.
const MinPasswordLength = 10

// commonPasswords are passwords that guessing attacks try first; a
// mailbox with one of them is taken over within minutes. Compared in
// lower case.
var commonPasswords = map[string]bool{
	"1234567890": true, "12345678910": true, "0123456789": true, "1q2w3e4r5t": true,
	"qwertyuiop": true, "1qaz2wsx3edc": true, "password1": true, "password12": true,
	"password123": true, "password1234": true, "passw0rd123": true, "p@ssw0rd123": true,
	"iloveyou12": true, "qwerty1234": true, "qwerty12345": true, "qwerty123456": true,
	"abc1234567": true, "abcdefghij": true, "aaaaaaaaaa": true, "1111111111": true,
	"0000000000": true, "123123123123": true, "letmein123": true, "welcome123": true,
	"administrator": true, "changeme123": true, "football123": true, "sunshine123": true,
	"princess123": true, "trustno1234": true, "heslo12345": true, "heslo123456": true,
	"hesloheslo": true, "mojeheslo123": true, "passwort123": true, "zaq12wsxcde": true,
}

// CheckNewPassword is the password policy for a mailbox password the
// customer chooses (a changed one, or a new mailbox's): at least
// MinPasswordLength characters, not the address or the name before the
// @, not a commonly used password, and carriable by IMAP and the drivers.
// The password never appears in the error.
func CheckNewPassword(address, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return invalid("password.short", MinPasswordLength)
	}
	lower := strings.ToLower(password)
	local := address
	if at := strings.LastIndexByte(address, '@'); at >= 0 {
		local = address[:at]
	}
	if lower == strings.ToLower(address) || lower == strings.ToLower(local) {
		return invalid("password.own_name")
	}
	if commonPasswords[lower] {
		return invalid("password.common")
	}
	return nil
}
