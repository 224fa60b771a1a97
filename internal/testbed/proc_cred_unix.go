//go:build unix

package testbed

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd lead its own process group and, when chown is set (we
// are root), run as uid and gid without supplementary groups.
func runAs(cmd *exec.Cmd, uid, gid int, chown bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if chown {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
}
