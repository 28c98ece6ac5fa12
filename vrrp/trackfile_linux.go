package vrrp

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
)

// fileWatcher follows tracked files with inotify, as keepalived does: it
// watches each file's directory, so a file written in place (closed after
// writing), moved in, deleted or moved away is seen; a file that is gone
// counts as 0.
type fileWatcher struct {
	f     *os.File
	files map[string]conf.TrackFile
	done  chan struct{}
}

type watchedFile struct {
	name, base, path string
}

// startFileWatcher watches files and calls report(name, value) from its
// own goroutine after every change of one of them (report filters out
// unchanged values).
func startFileWatcher(files map[string]conf.TrackFile, report func(name string, v int), log *slog.Logger) (*fileWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("vrrp: track_file: inotify: %w", err)
	}
	byWD := map[int32][]watchedFile{}
	for name, f := range files {
		path, err := filepath.Abs(f.Path)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("vrrp: track_file %s: %w", name, err)
		}
		dir := filepath.Dir(path)
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		wd, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVE)
		if err != nil {
			// keepalived drops such a file; its value stays what was read.
			log.Error("vrrp: track_file: cannot watch its directory; changes will not be seen", "track_file", name, "dir", dir, "err", err)
			continue
		}
		byWD[int32(wd)] = append(byWD[int32(wd)], watchedFile{name: name, base: filepath.Base(path), path: filepath.Join(dir, filepath.Base(path))})
	}
	// A non-blocking descriptor: os.NewFile makes it pollable, so Read
	// waits in the runtime's poller and Close wakes it.
	w := &fileWatcher{f: os.NewFile(uintptr(fd), "inotify"), files: files, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameBytes := buf[off+unix.SizeofInotifyEvent : min(n, off+unix.SizeofInotifyEvent+int(ev.Len))]
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&unix.IN_ISDIR != 0 {
					continue
				}
				base := string(nameBytes)
				for i, c := range nameBytes {
					if c == 0 {
						base = string(nameBytes[:i])
						break
					}
				}
				for _, wf := range byWD[ev.Wd] {
					if wf.base != base {
						continue
					}
					if ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
						report(wf.name, 0)
						continue
					}
					v, ok := readTrackFile(wf.path)
					if !ok {
						log.Warn("vrrp: track_file: not a number; keeping the previous value", "track_file", wf.name, "file", wf.path)
						continue
					}
					report(wf.name, v)
				}
			}
		}
	}()
	return w, nil
}

// close stops the watcher and waits for its goroutine.
func (w *fileWatcher) close() {
	w.f.Close()
	<-w.done
}
