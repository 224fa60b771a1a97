package config

import "testing"

func TestNotifyKeys(t *testing.T) {
	c, err := Parse([]byte(`notify.smtp = smtp.hosting.test:587
notify.security = tls
notify.from = Migrace <noreply@hosting.test>
notify.user = mm
notify.password_file = /etc/mm/smtp.pw
notify.ca_file = /etc/mm/ca.pem
notify.base_url = https://migrate.hosting.test
`), "t")
	want := Notify{SMTP: "smtp.hosting.test:587", Security: "tls", From: "Migrace <noreply@hosting.test>", User: "mm",
		PasswordFile: "/etc/mm/smtp.pw", CAFile: "/etc/mm/ca.pem", BaseURL: "https://migrate.hosting.test"}
	if err != nil || c.Notify != want {
		t.Errorf("%+v %v", c.Notify, err)
	}
	if _, err := Parse([]byte("notify.security = ssl\n"), "t"); err == nil {
		t.Error("notify.security = ssl was taken")
	}
}
