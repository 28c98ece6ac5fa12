package status

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCreateDumpFileNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, DataFile)
	if err := WriteDumpFile(p, func(w io.Writer) error { _, err := io.WriteString(w, "hello\n"); return err }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
		t.Errorf("mode %v, want a regular file 0600", fi.Mode())
	}
	if b, _ := os.ReadFile(p); string(b) != "hello\n" {
		t.Errorf("content %q", b)
	}
}

func writeString(p, s string) error {
	f, err := CreateDumpFile(p)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// An existing dump of ours is truncated and its mode narrowed to 0600.
func TestCreateDumpFileRewrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), StatsFile)
	if err := os.WriteFile(p, []byte(strings.Repeat("old content\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeString(p, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "new\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v; want \"new\\n\" 0600", b, fi.Mode().Perm())
	}
}

// A symbolic link at the dump's path is refused and its target untouched,
// whether the target exists or not.
func TestCreateDumpFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, DataFile)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := writeString(link, "dump\n")
	if !errors.Is(err, ErrUnsafeDumpFile) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("err = %v, want ErrUnsafeDumpFile (symbolic link)", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("target changed: %q", b)
	}
	fi, _ := os.Stat(target)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("target mode changed to %v", fi.Mode().Perm())
	}

	dangling := filepath.Join(dir, StatsFile)
	if err := os.Symlink(filepath.Join(dir, "created-through-link"), dangling); err != nil {
		t.Fatal(err)
	}
	if err := writeString(dangling, "dump\n"); !errors.Is(err, ErrUnsafeDumpFile) {
		t.Fatalf("dangling link: err = %v, want ErrUnsafeDumpFile", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); !os.IsNotExist(err) {
		t.Errorf("a file was created through the dangling link (%v)", err)
	}
}

// A hard link to another file, a FIFO and a directory are refused; nothing
// is truncated.
func TestCreateDumpFileRefusesOthers(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard")
	if err := os.Link(other, hard); err != nil {
		t.Fatal(err)
	}
	if err := writeString(hard, "x"); !errors.Is(err, ErrUnsafeDumpFile) {
		t.Errorf("hard link: err = %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "keep\n" {
		t.Errorf("hard-linked file truncated: %q", b)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened without blocking: with no reader that fails at once (ENXIO),
	// with one it is refused as not a regular file.
	if err := writeString(fifo, "x"); err == nil {
		t.Errorf("fifo accepted")
	}
	if err := writeString(dir, "x"); err == nil {
		t.Errorf("directory accepted")
	}
}

// A file planted by another user is refused (root only: it needs chown).
func TestCreateDumpFileRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, DataFile)
	if err := os.WriteFile(p, []byte("theirs\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := writeString(p, "x"); !errors.Is(err, ErrUnsafeDumpFile) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "theirs\n" {
		t.Errorf("foreign file truncated: %q", b)
	}
}
