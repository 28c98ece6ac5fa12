package lab

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// cpio "newc" (SVR4, no CRC) writer: the format the kernel unpacks into its
// initramfs. Writing it here keeps the lab free of a host cpio dependency
// and makes archives byte-for-byte reproducible (fixed mtime, inode order).

const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

// entry is one file in an initramfs archive.
type entry struct {
	Name   string // path without leading slash
	Mode   uint32 // type | permission bits
	Data   []byte // regular file contents, or symlink target
	Source string // regular file contents read from this host path when Data is nil
	Major  uint32 // for device nodes
	Minor  uint32
}

// tree is an in-memory initramfs: paths to entries. Parent directories are
// created implicitly.
type tree struct {
	entries map[string]*entry
}

func newTree() *tree { return &tree{entries: map[string]*entry{}} }

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (t *tree) mkdirAll(name string) {
	name = clean(name)
	for name != "" && name != "." {
		if _, ok := t.entries[name]; ok {
			return
		}
		t.entries[name] = &entry{Name: name, Mode: modeDir | 0o755}
		name = path.Dir(name)
		if name == "." {
			return
		}
	}
}

func (t *tree) add(e *entry) {
	e.Name = clean(e.Name)
	if d := path.Dir(e.Name); d != "." {
		t.mkdirAll(d)
	}
	t.entries[e.Name] = e
}

func (t *tree) file(name string, perm uint32, data []byte) {
	t.add(&entry{Name: name, Mode: modeReg | perm, Data: data})
}

func (t *tree) hostFile(name string, perm uint32, src string) {
	t.add(&entry{Name: name, Mode: modeReg | perm, Source: src})
}

func (t *tree) symlink(name, target string) {
	t.add(&entry{Name: name, Mode: modeLink | 0o777, Data: []byte(target)})
}

func (t *tree) has(name string) bool {
	_, ok := t.entries[clean(name)]
	return ok
}

// write emits the archive in sorted path order (parents before children).
// readFile loads Source files.
func (t *tree) write(w io.Writer, readFile func(string) ([]byte, error)) error {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &cpioWriter{w: w, ino: 1000}
	for _, n := range names {
		e := t.entries[n]
		data := e.Data
		if data == nil && e.Source != "" {
			b, err := readFile(e.Source)
			if err != nil {
				return err
			}
			data = b
		}
		if err := cw.writeEntry(e, data); err != nil {
			return err
		}
	}
	return cw.close()
}

type cpioWriter struct {
	w   io.Writer
	n   int64
	ino uint32
}

func (c *cpioWriter) put(b []byte) error {
	k, err := c.w.Write(b)
	c.n += int64(k)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.put(make([]byte, 4-r))
	}
	return nil
}

func (c *cpioWriter) header(name string, mode uint32, size int, major, minor uint32) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
	if err := c.put([]byte(h)); err != nil {
		return err
	}
	if err := c.put(append([]byte(name), 0)); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) writeEntry(e *entry, data []byte) error {
	if err := c.header(e.Name, e.Mode, len(data), e.Major, e.Minor); err != nil {
		return err
	}
	if err := c.put(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) close() error {
	if err := c.header("TRAILER!!!", 0, 0, 0, 0); err != nil {
		return err
	}
	// Pad to a 512-byte boundary so that a following archive (the kernel
	// accepts concatenated archives) starts aligned.
	if r := c.n % 512; r != 0 {
		return c.put(make([]byte, 512-r))
	}
	return nil
}
