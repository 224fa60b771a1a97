package config

import (
	"slices"
	"strings"
	"testing"
)

// Only 143 and 993 unless the operator lists more; a list that is not
// ports is refused instead of read as a part of it.
func TestAllowedPorts(t *testing.T) {
	if c := Default(); c.Sources.AllowedPorts != nil {
		t.Errorf("default %v", c.Sources.AllowedPorts)
	}
	for in, want := range map[string][]int{
		"sources.allowed_ports = 143, 993, 10143\n": {143, 993, 10143},
		"sources.allowed_ports = 10143 20993\n":     {10143, 20993},
		"sources.allowed_ports = 10143,10143,1\n":   {10143, 1},
		"sources.allowed_ports = 65535\n":           {65535},
		"sources.allowed_ports =\n":                 nil,
	} {
		c, err := Parse([]byte(in), "t.conf")
		if err != nil || !slices.Equal(c.Sources.AllowedPorts, want) {
			t.Errorf("%q: %v, %v; want %v", in, c.Sources.AllowedPorts, err, want)
		}
	}
	for _, in := range []string{"0", "65536", "-143", "imap", "143;993", "0x8f", "993.0", "1e3"} {
		_, err := Parse([]byte("sources.allowed_ports = "+in+"\n"), "t.conf")
		if err == nil || !strings.Contains(err.Error(), "t.conf:1: sources.allowed_ports") {
			t.Errorf("%q: %v, want a refusal", in, err)
		}
	}
}
