// Package nsenter puts the whole lvsd process into a named network
// namespace (keepalived's net_namespace NAME, the /run/netns/NAME of
// "ip netns add").
//
// A Go process cannot move all its threads with setns(2): the call moves
// only the calling thread, and the runtime starts threads of its own. So
// Exec switches one locked thread into the namespace and executes lvsd
// again from that thread: execve(2) ends every other thread, keeps the pid
// (the pid file, systemd's main pid and signals stay right) and leaves the
// new program, all of its threads, in the thread's namespace. The new
// program finds itself in the namespace (In) and goes on; an environment
// marker stops a loop if it does not.
package nsenter

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is where "ip netns add" and keepalived find named namespaces.
const Dir = "/run/netns"

// marker is set in the environment of the re-executed program.
const marker = "LVSD_NET_NAMESPACE"

// In reports whether the calling thread is in the namespace name: its
// /proc entry and /run/netns/NAME are the same nsfs inode.
func In(name string) (bool, error) {
	var want, have unix.Stat_t
	if err := unix.Stat(filepath.Join(Dir, name), &want); err != nil {
		return false, fmt.Errorf("net_namespace %s: %w", name, err)
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &have); err != nil {
		return false, err
	}
	return want.Dev == have.Dev && want.Ino == have.Ino, nil
}

// Enter makes sure the process runs in namespace name. In it already (the
// re-executed program, or lvsd started there), it returns nil; otherwise
// it executes the program again inside it and, on success, does not
// return.
func Enter(name string, argv []string) error {
	in, err := In(name)
	if err != nil {
		return err
	}
	if in {
		os.Unsetenv(marker) // not for the scripts lvsd runs
		return nil
	}
	if os.Getenv(marker) == name {
		return fmt.Errorf("net_namespace %s: re-executed but not in it", name)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when Exec fails after setns, the goroutine
		// ends locked and the runtime drops the thread with it.
		runtime.LockOSThread()
		errc <- execIn(name, argv)
	}()
	return <-errc
}

func execIn(name string, argv []string) error {
	fd, err := unix.Open(filepath.Join(Dir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_namespace %s: %w", name, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("net_namespace %s: setns: %w", name, err)
	}
	env := append(os.Environ(), marker+"="+name)
	err = syscall.Exec("/proc/self/exe", argv, env)
	return fmt.Errorf("net_namespace %s: exec: %w", name, err)
}
