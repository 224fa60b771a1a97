//go:build !unix

package hosting

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
)

// Dovecot and the operator scripts run on Unix; these keep the package
// compiling elsewhere.

func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("lock: file locking is only supported on Unix")
}

func chownLike(*os.File, fs.FileInfo) error { return nil }

func syncDir(string) error { return nil }

func setProcessGroup(*exec.Cmd) {}
