//go:build unix

package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminateGroup sends SIGTERM to every process of the group pgid leads.
func terminateGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGTERM)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// killProcessGroup ends what is left of the group led by pgid (the master's
// PID): SIGTERM, then SIGKILL after grace, and waits until no live member
// remains.
func killProcessGroup(pgid int, grace time.Duration) error {
	if !groupAlive(pgid) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	killed := false
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("processes of group %d survive SIGKILL", pgid)
			}
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killed = true
			deadline = time.Now().Add(2 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// groupAlive reports whether a process of the group is still running.
// Zombies do not count: children orphaned by the master are reparented to
// PID 1, and a minimal container init may reap them only seconds later.
func groupAlive(pgid int) bool {
	if alive, ok := procGroupAlive(pgid); ok {
		return alive
	}
	// No /proc (not Linux): signal 0 checks for members, zombies included.
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// procGroupAlive scans /proc; ok is false when /proc is unusable.
func procGroupAlive(pgid int) (alive, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	sawSelf := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited while we looked
		}
		// "pid (comm) state ppid pgrp ..."; comm may contain spaces and
		// parentheses, so parse from the last ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(data[i+1:])
		if len(fields) < 3 {
			continue
		}
		if pid == os.Getpid() {
			sawSelf = true
		}
		state := fields[0]
		grp, err := strconv.Atoi(string(fields[2]))
		if err != nil || grp != pgid {
			continue
		}
		if !bytes.Equal(state, []byte("Z")) && !bytes.Equal(state, []byte("X")) {
			return true, true
		}
	}
	// Without finding ourselves this is not a Linux-style /proc.
	return false, sawSelf
}
