package filemode

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Under keepalived's umask 0177 the directories made are 0755, an
// existing one keeps its mode.
func TestMkdirAllIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "a", "b")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{base: 0o700, filepath.Join(base, "a"): 0o755, dir: 0o755} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}
