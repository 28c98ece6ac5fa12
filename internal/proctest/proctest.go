// Package proctest is what the tests of tracked processes share: real
// processes of a chosen name, started in a process group of their own and
// killed with it, and the root requirement of such tests.
package proctest

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// RequireRoot skips without LVSD_INTEGRATION, and fails when it is set but
// the test does not run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 (as root) to follow real processes")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
}

// CopyExe copies the executable src to dst: a process started from dst
// has dst's base name as its comm.
func CopyExe(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// Start runs a command in a process group of its own, killed (with the
// group) when the test ends.
func Start(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Kill(cmd) })
	return cmd
}

// Kill kills a command's process group and reaps the command (its exit
// is then seen at once; a zombie would still count).
func Kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}
