package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The program a hosting runs carries no test code: neither the test bed
// (which starts servers and knows test passwords) nor package testing.
func TestBinaryHasNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, bad := range []string{"testing", "mailmigrate/internal/testbed"} {
		if slices.Contains(deps, bad) {
			t.Errorf("mailmigrate links %s", bad)
		}
	}
}
