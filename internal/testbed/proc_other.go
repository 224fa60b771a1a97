//go:build !unix

package testbed

import (
	"os/exec"
	"time"
)

// Dovecot only runs on Unix; these keep the package compiling elsewhere.

func setProcessGroup(*exec.Cmd) {}

func terminateGroup(int) error { return nil }

func killProcessGroup(int, time.Duration) error { return nil }

func groupAlive(int) bool { return false }
